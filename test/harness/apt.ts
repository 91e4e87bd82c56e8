/**
 * Test harness: an isolated APT client. Every apt-get / apt-cache run gets `APT_CONFIG` pointing at
 * a private apt.conf that moves every directory apt reads or writes into a temp folder, so the
 * client sees only the test's sources, keys and credentials, never /etc/apt/sources.list(.d),
 * /etc/apt/apt.conf.d or /etc/apt/trusted.gpg.d, and never writes to /var/lib/apt or /var/cache/apt.
 *
 * Why APT_CONFIG and not `-o`: apt reads APT_CONFIG first, then Dir::Etc::Parts, then
 * Dir::Etc::Main (apt.conf(5)); setting those two in APT_CONFIG keeps /etc/apt/apt.conf.d out,
 * whereas `-o` options are applied after the system files were read.
 * The one system file kept is dpkg's status (Dir::State::status), so `install -s` resolves
 * dependencies against what is really installed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runProcess, type RunResult } from './cli';
import { APT_CLIENT_DIRS, aptConfString, renderAptConf } from '../../scripts/local/aptConf';

/** Options of createAptClient. */
/** apt's own warnings and errors in a run's output (lines starting W:, E: or Err:): signature, hash or date problems. */
export const aptProblems = (r: RunResult): string[] => (r.stdout + '\n' + r.stderr).split('\n').filter((l) => /^(W|E|Err):/.test(l));

export interface AptClientOptions {
  /** sources content: deb822 (has a `Types:` field, written to sources.list.d/test.sources) or one-line format (sources.list). */
  sources: string;
  /** A public key (binary .gpg or armored .asc, by extension) trusted for every source, copied into the client's trusted.gpg.d. */
  keyFile?: string;
  /** auth.conf content, netrc format (apt_auth.conf(5)): `machine 127.0.0.1:8080/ login u password p`. */
  authConf?: string;
  /** APT::Architecture (default 'amd64'); foreign architectures in `foreignArchitectures`. */
  arch?: string;
  /** Extra architectures (APT::Architectures besides `arch`), e.g. ['i386']. */
  foreignArchitectures?: string[];
  /** Extra apt.conf lines appended to the private configuration. */
  extraConf?: string;
  /**
   * A PEM CA certificate the client trusts for https sources (`Acquire::https::CaInfo`, apt's
   * GnuTLS method), instead of the system's CA bundle: a test CA's certificate.
   */
  caFile?: string;
}

/** A run of an apt command that downloaded files. */
export interface DownloadResult extends RunResult {
  /** Absolute paths of the .deb files now in the client's download directory, sorted. */
  files: string[];
}

/** An isolated apt client (see module comment). */
export interface AptClient {
  /** The client's root folder (etc/apt, var/lib/apt, var/cache/apt, downloads). */
  dir: string;
  /** The private apt.conf given in APT_CONFIG. */
  aptConfig: string;
  /** Where `download()` puts .deb files. */
  downloadDir: string;
  /** The environment every command runs with (APT_CONFIG set, proxies removed, LC_ALL=C). */
  env: NodeJS.ProcessEnv;
  /** `apt-get update`. */
  update(): Promise<RunResult>;
  /** `apt-cache policy <pkg>`. */
  policy(pkg: string): Promise<RunResult>;
  /** `apt-get install -s -y <spec…>` (spec: 'demo', 'demo=1.0-1', 'demo/bookworm'; several separated by spaces or as an array). */
  installSimulate(spec: string | string[]): Promise<RunResult>;
  /** `apt-get download <spec…>` run in downloadDir: fetches the .deb bytes through the configured sources. */
  download(spec: string | string[]): Promise<DownloadResult>;
  /** `apt-cache madison <pkg>`. */
  madison(pkg: string): Promise<RunResult>;
  /**
   * Runs a command with the client's environment. `args[0]` may name the program (apt-get, apt-cache,
   * apt-config, apt, or an absolute path); otherwise the args go to apt-get.
   */
  run(args: string[], opts?: { cwd?: string }): Promise<RunResult>;
  /** Rewrites the sources (same format rules as the option). */
  setSources(sources: string): void;
  /** Rewrites the credentials file auth.conf.d/test.conf (netrc format). */
  setAuth(authConf: string | undefined): void;
  /** Removes the client's folder. */
  dispose(): void;
}

/**
 * A one-line `deb` source (sources.list(5)): `deb [signed-by=<key> arch=…] <url> <suite> <components…>`.
 * `signedBy` is a key file path (binary or armored, apt ≥ 2.4 reads both).
 */
export function oneLineSource(
  url: string,
  suite: string,
  opts: { components?: string[]; signedBy?: string; arch?: string[] } = {},
): string {
  const o: string[] = [];
  if (opts.signedBy) o.push(`signed-by=${opts.signedBy}`);
  if (opts.arch?.length) o.push(`arch=${opts.arch.join(',')}`);
  return `deb ${o.length ? `[${o.join(' ')}] ` : ''}${url} ${suite} ${(opts.components ?? ['main']).join(' ')}\n`;
}

/** A deb822 `.sources` stanza (sources.list(5), "DEB822-STYLE FORMAT") with Signed-By a key file path. */
export function deb822Source(
  url: string,
  suites: string[],
  opts: { components?: string[]; signedBy?: string; arch?: string[] } = {},
): string {
  return (
    [
      'Types: deb',
      `URIs: ${url}`,
      `Suites: ${suites.join(' ')}`,
      `Components: ${(opts.components ?? ['main']).join(' ')}`,
      opts.arch?.length ? `Architectures: ${opts.arch.join(' ')}` : '',
      opts.signedBy ? `Signed-By: ${opts.signedBy}` : '',
    ]
      .filter((l) => l !== '')
      .join('\n') + '\n'
  );
}

const PROGRAMS = new Set(['apt-get', 'apt-cache', 'apt-config', 'apt', 'apt-mark']);

/**
 * Creates an isolated apt client in a new temp folder (layout mirrors / : etc/apt, var/lib/apt,
 * var/cache/apt, var/log/apt, plus downloads/). Synchronous; nothing runs until a method is called.
 * Every method resolves with the exit code and output, never rejects on a non-zero exit.
 */
export function createAptClient(opts: AptClientOptions): AptClient {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-client-'));
  for (const d of [...APT_CLIENT_DIRS, 'downloads']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const aptConfig = path.join(dir, 'apt-config.conf');
  const caConf = opts.caFile ? `Acquire::https::CaInfo ${aptConfString(opts.caFile)};\n` : '';
  fs.writeFileSync(
    aptConfig,
    renderAptConf(dir, opts.arch ?? 'amd64', opts.foreignArchitectures ?? [], `${caConf}${opts.extraConf ?? ''}`),
  );
  fs.writeFileSync(path.join(dir, 'etc/apt/apt.conf'), '');
  if (opts.keyFile) {
    const ext = opts.keyFile.endsWith('.asc') ? 'asc' : 'gpg';
    fs.copyFileSync(opts.keyFile, path.join(dir, 'etc/apt/trusted.gpg.d', `test-archive.${ext}`));
  }
  const downloadDir = path.join(dir, 'downloads');

  const env: NodeJS.ProcessEnv = { ...process.env, APT_CONFIG: aptConfig, LC_ALL: 'C', LANG: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY']) delete env[k];

  const setSources = (sources: string) => {
    const list = path.join(dir, 'etc/apt/sources.list');
    const deb822 = path.join(dir, 'etc/apt/sources.list.d/test.sources');
    fs.rmSync(list, { force: true });
    fs.rmSync(deb822, { force: true });
    if (/^Types:/im.test(sources)) fs.writeFileSync(deb822, sources);
    else fs.writeFileSync(list, sources);
  };
  const setAuth = (authConf: string | undefined) => {
    const f = path.join(dir, 'etc/apt/auth.conf.d/test.conf');
    fs.rmSync(f, { force: true });
    // apt warns about (and since 2.x ignores for the _apt user) world-readable credentials: 0600.
    if (authConf !== undefined) fs.writeFileSync(f, authConf, { mode: 0o600 });
  };
  setSources(opts.sources);
  setAuth(opts.authConf);

  const split = (spec: string | string[]) => (Array.isArray(spec) ? spec : spec.split(/\s+/).filter(Boolean));
  const run = (args: string[], o: { cwd?: string } = {}) => {
    const [first, ...rest] = args;
    if (first !== undefined && (PROGRAMS.has(first) || path.isAbsolute(first))) return runProcess(first, rest, { env, cwd: o.cwd ?? dir });
    return runProcess('apt-get', args, { env, cwd: o.cwd ?? dir });
  };
  const listDebs = () =>
    fs
      .readdirSync(downloadDir)
      .filter((f) => f.endsWith('.deb'))
      .sort()
      .map((f) => path.join(downloadDir, f));

  return {
    dir,
    aptConfig,
    downloadDir,
    env,
    update: () => run(['apt-get', 'update']),
    policy: (pkg) => run(['apt-cache', 'policy', pkg]),
    installSimulate: (spec) => run(['apt-get', 'install', '-s', '-y', ...split(spec)]),
    async download(spec) {
      const r = await run(['apt-get', 'download', ...split(spec)], { cwd: downloadDir });
      return { ...r, files: listDebs() };
    },
    madison: (pkg) => run(['apt-cache', 'madison', pkg]),
    run,
    setSources,
    setAuth,
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
