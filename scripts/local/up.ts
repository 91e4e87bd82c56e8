/**
 * What `npm run local` does (scripts/local-stack.ts is its entry and its documentation): `up` builds
 * or re-checks the sandbox and prints the playground, `stop` stops what `up` left running. Loaded
 * only for these two, so `--help` answers without evaluating the plan and its dependencies.
 */
import { execFileSync, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { startKeptSshd } from './sshd';
import { buildSampleDebs, type SampleDeb } from './sampleDebs';
import { APT_CLIENT_DIRS, renderAptConf } from './aptConf';
import { Replayer } from './replayer';
import {
  applyStacks,
  clientConfig,
  sandboxStack,
  sandboxStackConfig,
  stopSandboxSigners,
  type KeyMaterial,
  type SandboxStack,
} from './stack';
import { sandboxNginxPaths, startSandboxNginx } from './nginx';
import { runningPid, stopPid } from './processes';
import { unreachableParent } from './reach';
import { playgroundBlocks, renderBlocks, type OpsChannel } from './commands';
import { channelLayout } from '../../infra/layout';
import { saltsFor, type HtpasswdSaltMap, type HtpasswdSaltsOutputs } from '../../infra/htpasswdSalts';
import { generateSigningKey, publicKeyFiles } from '../../lambda-free-tools/src/sign/keys';
import { shellJoin, shellQuote } from '../../lambda-free-tools/src/shellQuote';
import type { ClientCredential } from '../../stacks/config';

/** The run's settings (scripts/local-stack.ts reads them from the environment). */
export interface LocalStackSettings {
  projectRoot: string;
  /** The sandbox: every server path of both stacks is under it. */
  root: string;
  ports: { preprod: number; prod: number };
  /** Operator-side state (keys, credentials, clients, samples), mode 0700. */
  stateDir: string;
  /** dist/apt-repo.cjs and dist/apt-ops.cjs. */
  bundlePath: string;
  opsBundlePath: string;
  /** sshd's port (LOCAL_STACK_SSH_PORT); undefined: the previous run's when free, else a free one. */
  sshPort?: number;
  /** Use dist/ as it is instead of running scripts/build.mjs first. */
  skipBuild: boolean;
  /** The line that stops everything, as printed. */
  stopCommand: string;
}

/** A failure with a message meant for the operator (printed as one line). */
export class LocalStackError extends Error {}

/** Prints one progress line of the local stack on stderr, prefixed `local-stack: ` (stdout stays for the export lines). */
export function log(msg: string): void {
  process.stderr.write(`local-stack: ${msg}\n`);
}

const DEBIAN_PACKAGES = ['nginx', 'openssh-server', 'xz-utils', 'dpkg-dev'];
export const CODENAMES = ['bookworm', 'bullseye'];
/** How long apt-get waits for the dpkg lock (another apt-get, unattended-upgrades) before failing, in seconds. */
export const DPKG_LOCK_TIMEOUT = 300;
/** The drop folder samples go to (one the plan creates: build, ci, php). */
const DROP_SOURCE = 'build';
/** The drop folder the printed `apt-ops upload` uses. */
const UPLOAD_SOURCE = 'ci';

/** Installs the Debian packages of DEBIAN_PACKAGES that dpkg does not list as installed, waiting for the dpkg lock. */
function ensureDebianPackages(): void {
  const missing = DEBIAN_PACKAGES.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return !(r.status === 0 && r.stdout.includes('install ok installed'));
  });
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', `DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT}`];
  execFileSync('apt-get', [...lock, 'update', '-q'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', [...lock, 'install', '-y', '-q', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
}

/** Throws a LocalStackError naming the first parent of `root` other users cannot search. */
function checkReachable(root: string): void {
  const d = unreachableParent(root);
  if (d === undefined) return;
  throw new LocalStackError(
    `${d} is not searchable by other users (mode ${(fs.statSync(d).mode & 0o777).toString(8)}): the service and signer users (aptrepo-<channel>, aptsign-<channel>) and nginx (www-data) could not reach ${root}; ` +
      'clone the project elsewhere (e.g. under /srv or /opt) or set LOCAL_STACK_ROOT=/srv/apt-sandbox',
  );
}

/** Reads the signing key of `channel` from the state dir, generating it (RSA-4096) on the first run. */
async function signingKey(stateDir: string, channel: string): Promise<KeyMaterial> {
  const file = path.join(stateDir, `${channel}-signing-key.asc`);
  if (!fs.existsSync(file)) {
    log(`generating the ${channel} signing key (RSA-4096, once)`);
    const k = await generateSigningKey({ name: `Epiconcept APT ${channel} (local sandbox)`, email: `apt-${channel}@epiconcept.fr` });
    fs.writeFileSync(file, k.privateArmored, { mode: 0o600 });
  }
  const privateArmored = fs.readFileSync(file, 'utf8');
  const pub = await publicKeyFiles(privateArmored);
  return { privateArmored, publicArmored: pub.armored, publicBinary: pub.binary };
}

/** The client credentials of the sandbox (two client servers), generated once. */
function credentials(stateDir: string): ClientCredential[] {
  const file = path.join(stateDir, 'credentials.json');
  if (!fs.existsSync(file)) {
    const make = (username: string) => ({ username, password: randomBytes(18).toString('base64url') });
    fs.writeFileSync(file, JSON.stringify([make('local-client-1'), make('local-client-2')], null, 2) + '\n', { mode: 0o600 });
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ClientCredential[];
}

/**
 * The htpasswd salts of the sandbox, kept between runs in the state dir (0600) the way the
 * HtpasswdSalts resource keeps them in a stack's state: a user whose password is unchanged keeps
 * its salt, so a second run installs the same htpasswd and reports no change.
 */
function htpasswdSalts(stateDir: string, creds: ClientCredential[]): HtpasswdSaltMap {
  const file = path.join(stateDir, 'htpasswd-salts.json');
  let previous: HtpasswdSaltsOutputs | undefined;
  try {
    previous = JSON.parse(fs.readFileSync(file, 'utf8')) as HtpasswdSaltsOutputs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log(`ignoring ${file}: ${(e as Error).message}`);
  }
  const salts = saltsFor(creds, previous);
  fs.writeFileSync(file, JSON.stringify({ credentials: creds, salts }, null, 2) + '\n', { mode: 0o600 });
  return salts;
}

/**
 * Writes an isolated apt configuration (APT_CONFIG) for a channel's client under the state dir;
 * returns its apt.conf path. It installs into this machine's dpkg, so unlike the tests' clients it
 * takes apt's and dpkg's locks (and waits for them with DPkg::Lock::Timeout).
 */
function writeClient(stateDir: string, s: SandboxStack, keyFile: string, cred: ClientCredential): string {
  const dir = path.join(stateDir, `client-${s.config.channel}`);
  for (const d of APT_CLIENT_DIRS) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const cc = clientConfig(s);
  fs.writeFileSync(path.join(dir, 'etc/apt/apt.conf'), '');
  fs.writeFileSync(
    path.join(dir, 'etc/apt/sources.list.d', `${s.config.keyName}.sources`),
    cc.sources[CODENAMES[0]].replace(cc.keyringPath, keyFile),
  );
  fs.writeFileSync(path.join(dir, 'etc/apt/auth.conf.d', `${s.config.keyName}.conf`), cc.authConf[cred.username], { mode: 0o600 });
  const aptConf = path.join(dir, 'apt.conf');
  fs.writeFileSync(aptConf, renderAptConf(dir, hostArchitecture(), [], 'Debug::NoLocking "false";'));
  return aptConf;
}

function hostArchitecture(): string {
  return execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
}

/** The sandbox's architectures: this machine's, and one more so that Architecture: all shows in two binary-<arch>. */
function sandboxArchitectures(): string[] {
  const host = hostArchitecture();
  return [host, host === 'amd64' ? 'arm64' : 'amd64'];
}

/** The two sandbox channels' configs, enough to find their sign-server pid files (no key needed). */
export function sandboxConfigs(root: string): { config: ReturnType<typeof sandboxStackConfig>['config'] }[] {
  const ssh = {
    host: '127.0.0.1',
    port: 22,
    username: 'root',
    privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n',
    hostPublicKey: 'ssh-ed25519 AAAA',
  };
  const common = {
    root,
    ssh,
    credentials: [],
    allowedCidrs: ['127.0.0.0/8'],
    codenames: CODENAMES,
    architectures: ['amd64'],
    httpPort: 8081,
  };
  return [
    sandboxStackConfig({ ...common, channel: 'preprod' }),
    sandboxStackConfig({ ...common, channel: 'prod', upstream: 'preprod', httpPort: 8082 }),
  ];
}

/** Where the kept sshd's server files are: host key, authorized_keys, sshd_config, log (0700). */
function sshdServerDir(root: string): string {
  return path.join(root, 'etc/local-stack-sshd');
}

/** Stops the signers (sign-server, one per channel), nginx and the kept sshd of the sandbox at `root`. */
export async function stop(root: string): Promise<void> {
  await stopSandboxSigners(sandboxConfigs(root));
  const servers: [string, string, NodeJS.Signals][] = [
    ['nginx', sandboxNginxPaths(root).pidFile, 'SIGQUIT'],
    ['sshd', path.join(root, 'run/sshd.pid'), 'SIGTERM'],
  ];
  for (const [name, pidFile, signal] of servers) {
    const pid = runningPid(pidFile);
    if (pid === undefined) {
      log(`${name} is not running (no live pid in ${pidFile})`);
      continue;
    }
    await stopPid(pid, 5000, signal);
    log(`${name} (pid ${pid}) stopped`);
  }
}

/** Copies the indexer bundle to `<stateDir>/bundle/apt-repo.cjs` (written aside, then renamed) and returns the copy's path. */
function snapshotBundle(bundlePath: string, stateDir: string): string {
  const dir = path.join(stateDir, 'bundle');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const copy = path.join(dir, path.basename(bundlePath));
  fs.copyFileSync(bundlePath, `${copy}.tmp`);
  fs.renameSync(`${copy}.tmp`, copy);
  return copy;
}

/** Runs scripts/build.mjs (dist/apt-repo.cjs, dist/apt-ops.cjs); throws LocalStackError when it fails. */
function build(st: LocalStackSettings): void {
  log('building dist/ (node scripts/build.mjs)');
  const r = spawnSync(process.execPath, [path.join(st.projectRoot, 'scripts/build.mjs')], {
    cwd: st.projectRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new LocalStackError(`node scripts/build.mjs failed (exit ${r.status ?? r.signal})`);
}

/** Builds (unless told not to), applies the plan over the kept sshd, starts nginx, ingests the samples, prints the playground. */
export async function up(st: LocalStackSettings): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new LocalStackError('run as root: the plan installs files owned by root, aptrepo and www-data, as on the server');
  if (!st.skipBuild) build(st);
  for (const f of [st.bundlePath, st.opsBundlePath])
    if (!fs.existsSync(f)) throw new LocalStackError(`${f} is missing: run npm run build first (LOCAL_STACK_SKIP_BUILD is set)`);
  ensureDebianPackages();
  fs.mkdirSync(st.root, { recursive: true });
  fs.chmodSync(st.root, 0o755);
  checkReachable(st.root);
  fs.mkdirSync(st.stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(st.stateDir, 0o700);

  // The plan hashes the bundle, then uploads it: both from one copy, which a rebuild of dist/ meanwhile cannot change.
  const bundle = snapshotBundle(st.bundlePath, st.stateDir);
  const creds = credentials(st.stateDir);
  const salts = htpasswdSalts(st.stateDir, creds);
  const keys = { preprod: await signingKey(st.stateDir, 'preprod'), prod: await signingKey(st.stateDir, 'prod') };
  const sshd = await startKeptSshd({
    serverDir: sshdServerDir(st.root),
    clientDir: path.join(st.stateDir, 'operator'),
    pidFile: path.join(st.root, 'run/sshd.pid'),
    include: path.join(st.root, 'etc/ssh/sshd_config.d/*.conf'),
    port: st.sshPort,
  });
  log(
    sshd.reused
      ? `sshd already running (pid ${sshd.pid}, 127.0.0.1:${sshd.port})`
      : `sshd started (pid ${sshd.pid}, 127.0.0.1:${sshd.port})`,
  );
  const ssh = { host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, hostPublicKey: sshd.hostPublicKey };
  const common = {
    root: st.root,
    ssh,
    credentials: creds,
    allowedCidrs: ['127.0.0.0/8'],
    codenames: CODENAMES,
    architectures: sandboxArchitectures(),
  };
  const stacks = [
    sandboxStack({ ...common, channel: 'preprod', httpPort: st.ports.preprod }, keys.preprod, bundle, salts),
    sandboxStack({ ...common, channel: 'prod', upstream: 'preprod', httpPort: st.ports.prod }, keys.prod, bundle, salts),
  ];
  const replayer = await Replayer.connect(ssh);
  try {
    log(`applying the plan of both stacks to ${st.root} over SSH (127.0.0.1:${sshd.port})`);
    const runs = await applyStacks(replayer, stacks);
    const changed = runs.filter((r) => r.changed).map((r) => r.name);
    log(changed.length ? `changed: ${changed.join(', ')}` : 'no change: the sandbox already matches the plan');

    const nginxPid = runningPid(sandboxNginxPaths(st.root).pidFile);
    if (nginxPid === undefined) {
      const n = await startSandboxNginx(
        st.root,
        stacks.map((s) => s.config.httpPort),
        { detached: true },
      );
      log(`nginx started in the background (pid ${n.pid})`);
    } else {
      log(`nginx already running (pid ${nginxPid})`);
    }
    const samples = buildSampleDebs(path.join(st.stateDir, 'debs'), hostArchitecture());
    await ingestSamples(replayer, stacks[0], samples);
    printConfiguration(st, stacks, creds, sshd, samples);
  } finally {
    replayer.dispose();
  }
}

/**
 * Drops the samples meant for ingest that preprod's pool does not hold yet into its `build` drop
 * folder, then runs the deployed indexer's `ingest` as the service user (like the ingest unit), so
 * the pool stays its own. A sample already in the pool (same file name) is never dropped again.
 */
async function ingestSamples(replayer: Replayer, pre: SandboxStack, samples: SampleDeb[]): Promise<void> {
  const c = pre.config;
  const l = channelLayout(c);
  const inPool = (await replayer.exec(`find ${shellQuote(l.poolDir, { always: true })} -name '*.deb' -printf '%f\\n'`)).stdout.split('\n');
  const toDrop = samples.filter((d) => d.ingest && !inPool.includes(path.basename(d.file)));
  if (!toDrop.length) {
    log('sample packages already in preprod');
    return;
  }
  for (const d of toDrop) await replayer.uploadFile(d.file, path.join(l.incomingDir, DROP_SOURCE, path.basename(d.file)));
  const ingest = [c.nodePath, c.indexerPath, '--root', c.root, '--channel', c.channel, 'ingest', '--settle-ms', '0'];
  const r = await replayer.exec(shellJoin(['runuser', '-u', c.serviceUser, '--', ...ingest]));
  if (r.code !== 0) throw new LocalStackError(`ingest failed (${r.code}): ${r.stderr.trim()}`);
  process.stderr.write(r.stdout);
}

function opsChannel(s: SandboxStack): OpsChannel {
  const c = s.config;
  const l = channelLayout(c);
  return {
    channel: c.channel,
    root: c.root,
    nodePath: c.nodePath,
    indexerPath: c.indexerPath,
    serviceUser: c.serviceUser,
    incomingDir: l.incomingDir,
    webRoot: l.webRoot,
  };
}

function printConfiguration(
  st: LocalStackSettings,
  stacks: SandboxStack[],
  creds: ClientCredential[],
  sshd: Awaited<ReturnType<typeof startKeptSshd>>,
  samples: SampleDeb[],
): void {
  const out: string[] = [];
  const aptConfs: Record<string, string> = {};
  for (const s of stacks) {
    const c = s.config;
    const cc = clientConfig(s);
    const l = channelLayout(c);
    aptConfs[c.channel] = writeClient(st.stateDir, s, l.publicKeyGpg, creds[0]);
    out.push(
      `== ${c.channel}: ${cc.url}`,
      `public key (Signed-By): ${l.publicKeyGpg}  (served at ${cc.keyUrls.gpg}; clients install it as ${cc.keyringPath})`,
      'sources.list line:',
      `  ${cc.sourcesList[CODENAMES[0]].trimEnd()}`,
      `/etc/apt/sources.list.d/${c.keyName}.sources:`,
      ...cc.sources[CODENAMES[0]]
        .trimEnd()
        .split('\n')
        .map((x) => `  ${x}`),
      `/etc/apt/auth.conf.d/${c.keyName}.conf (mode 0600):`,
      `  ${cc.authConf[creds[0].username].trimEnd()}`,
      `isolated apt client for this machine (sources, key and credentials above): APT_CONFIG=${aptConfs[c.channel]}`,
      `web catalogue (in a browser, user ${creds[0].username}, its password in the line above): ${cc.url}catalogue/`,
      '',
    );
  }
  out.push('sample packages (built here with dpkg-deb; names Debian does not have):');
  for (const d of samples) out.push(`  ${d.file}  ${d.ingest ? 'in preprod' : 'not ingested'}: ${d.purpose}`);
  out.push('');
  const upload = samples.find((d) => !d.ingest)!;
  const hello = samples.filter((d) => d.name === upload.name);
  const projectDir = path.join(st.stateDir, 'apt-ops');
  fs.mkdirSync(projectDir, { recursive: true, mode: 0o700 });
  const blocks = playgroundBlocks({
    preprod: opsChannel(stacks[0]),
    prod: opsChannel(stacks[1]),
    server: {
      host: sshd.host,
      port: sshd.port,
      user: sshd.username,
      knownHostsFile: sshd.knownHostsFile,
      identityFile: sshd.privateKeyFile,
      projectDir,
    },
    nodePath: process.execPath,
    aptOps: st.opsBundlePath,
    uploadDeb: upload.file,
    uploadSource: UPLOAD_SOURCE,
    aptConf: { preprod: aptConfs.preprod, prod: aptConfs.prod },
    pkg: upload.name,
    olderVersion: hello[0].version,
    sampleNames: [...new Set(samples.map((d) => d.name))],
    lockTimeout: DPKG_LOCK_TIMEOUT,
    stop: st.stopCommand,
  });
  out.push(renderBlocks(blocks));
  process.stdout.write(out.join('\n') + '\n');
}
