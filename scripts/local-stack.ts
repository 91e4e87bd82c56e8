/**
 * `npm run local`: a complete preprod + prod repository on this machine, without Pulumi and
 * without Docker, built by the very steps the Pulumi program runs on a server.
 *
 * On Debian 12, as root:
 * 1. installs what is missing (nginx, openssh-server, xz-utils, dpkg-dev) with apt-get;
 * 2. starts a private sshd on a free port of 127.0.0.1 (scripts/local/sshd.ts: its own host and
 *    client keys, stopped at the end) and applies, over SSH, the plan of infra/plan.ts for a
 *    preprod and a prod stack whose `root` is the sandbox (`./sandbox` by default), exactly as the
 *    replay tests do (scripts/local/replayer.ts and stack.ts, which they share);
 * 3. leaves nginx running in the background on 127.0.0.1 (preprod 8081, prod 8082; plain HTTP,
 *    allowed explicitly), with its pid in <sandbox>/run/nginx.pid;
 * 4. drops a few real Debian packages into <sandbox>/srv/apt/incoming/build/ and runs the deployed
 *    indexer's `ingest`, so preprod has something to promote;
 * 5. prints each channel's client configuration and the next commands to try.
 * Re-running changes nothing (the plan is idempotent; packages already in the pool are not dropped
 * again) and prints the configuration again. `--stop` stops the background nginx and the signers (sign-server, one per channel).
 *
 * Environment: LOCAL_STACK_ROOT (sandbox, absolute or relative to the project),
 * LOCAL_STACK_PREPROD_PORT, LOCAL_STACK_PROD_PORT (nginx ports).
 * Operator-side state (signing keys, client credentials, client apt configuration) is kept in
 * <project>/.cache/local-stack/ (mode 0700), so the keys do not change between runs.
 * Exit code 0 on success, 1 with a one-line reason on failure, 2 for a wrong argument.
 */
import { execFileSync, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { startSshd } from './local/sshd';
import { fetchRealDebs } from './local/realDebs';
import { renderAptConf } from './local/aptConf';
import { Replayer } from './local/replayer';
import {
  applyStacks,
  clientConfig,
  sandboxStack,
  sandboxStackConfig,
  stopSandboxSigners,
  type KeyMaterial,
  type SandboxStack,
} from './local/stack';
import { sandboxNginxPaths, startSandboxNginx } from './local/nginx';
import { runningPid, stopPid } from './local/processes';
import { channelLayout } from '../infra/layout';
import { saltsFor, type HtpasswdSaltMap, type HtpasswdSaltsOutputs } from '../infra/htpasswdSalts';
import { generateSigningKey, publicKeyFiles } from '../lambda-free-tools/src/sign/keys';
import { shellJoin, shellQuote } from '../lambda-free-tools/src/shellQuote';
import type { ClientCredential } from '../stacks/config';

const projectRoot = path.resolve(__dirname, '..');
const DEBIAN_PACKAGES = ['nginx', 'openssh-server', 'xz-utils', 'dpkg-dev'];
/** Small real packages: hello, figlet, sl (this architecture) and cowsay (all). */
const SAMPLE_PACKAGES = ['hello', 'cowsay', 'figlet', 'sl'];
const CODENAMES = ['bookworm', 'bullseye'];
/** The sandbox when the project's own folder is not reachable by other users. */
const FALLBACK_ROOT = '/srv/apt-local-stack';

/** A failure with a message meant for the operator (printed as one line). */
class LocalStackError extends Error {}

function log(msg: string): void {
  process.stderr.write(`local-stack: ${msg}\n`);
}

let settingsCache: ReturnType<typeof readSettings> | undefined;

/** The run's settings, read once from the environment. */
function settings(): ReturnType<typeof readSettings> {
  return (settingsCache ??= readSettings());
}

function readSettings() {
  const rootArg = process.env.LOCAL_STACK_ROOT ?? 'sandbox';
  const port = (name: string, dflt: number) => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new LocalStackError(`${name}: '${v}' is not a port number 1-65535`);
    return n;
  };
  const ports = { preprod: port('LOCAL_STACK_PREPROD_PORT', 8081), prod: port('LOCAL_STACK_PROD_PORT', 8082) };
  if (ports.preprod === ports.prod) throw new LocalStackError('LOCAL_STACK_PREPROD_PORT and LOCAL_STACK_PROD_PORT must differ');
  let root = path.resolve(projectRoot, rootArg);
  // A project cloned under a private home (/root is 0700) cannot host the sandbox: aptrepo and
  // nginx's workers must reach it. Without an explicit LOCAL_STACK_ROOT, use a folder under /srv.
  if (process.env.LOCAL_STACK_ROOT === undefined && unreachableParent(root) !== undefined) {
    root = FALLBACK_ROOT;
    log(`${projectRoot} is not reachable by other users: the sandbox goes to ${root} (set LOCAL_STACK_ROOT to choose)`);
  }
  return {
    root,
    ports,
    stateDir: path.join(projectRoot, '.cache', 'local-stack'),
    bundlePath: path.join(projectRoot, 'dist', 'apt-repo.cjs'),
  };
}

/** Installs the Debian packages of DEBIAN_PACKAGES that dpkg does not list as installed. */
function ensureDebianPackages(): void {
  const missing = DEBIAN_PACKAGES.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return !(r.status === 0 && r.stdout.includes('install ok installed'));
  });
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: ['ignore', 'inherit', 'inherit'], env });
}

/**
 * The service user (aptrepo) and nginx's workers (www-data) reach the sandbox the way they reach
 * / on a server: every parent directory must be searchable by others. Returns the first existing
 * parent of `root` that is not, or undefined when all are.
 */
function unreachableParent(root: string): string | undefined {
  for (let d = path.dirname(root); ; d = path.dirname(d)) {
    if (fs.existsSync(d) && (fs.statSync(d).mode & 0o001) === 0) return d;
    if (d === path.dirname(d)) return undefined;
  }
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

/** Writes an isolated apt configuration (APT_CONFIG) for a channel's client under the state dir; returns its apt.conf path. */
function writeClient(stateDir: string, s: SandboxStack, keyFile: string, cred: ClientCredential): string {
  const dir = path.join(stateDir, `client-${s.config.channel}`);
  for (const d of [
    'etc/apt/apt.conf.d',
    'etc/apt/sources.list.d',
    'etc/apt/trusted.gpg.d',
    'etc/apt/auth.conf.d',
    'etc/apt/preferences.d',
    'var/lib/apt/lists/partial',
    'var/cache/apt/archives/partial',
    'var/log/apt',
  ]) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  const cc = clientConfig(s);
  fs.writeFileSync(path.join(dir, 'etc/apt/apt.conf'), '');
  fs.writeFileSync(
    path.join(dir, 'etc/apt/sources.list.d', `${s.config.keyName}.sources`),
    cc.sources[CODENAMES[0]].replace(cc.keyringPath, keyFile),
  );
  fs.writeFileSync(path.join(dir, 'etc/apt/auth.conf.d', `${s.config.keyName}.conf`), cc.authConf[cred.username], { mode: 0o600 });
  const aptConf = path.join(dir, 'apt.conf');
  fs.writeFileSync(aptConf, renderAptConf(dir, hostArchitecture(), []));
  return aptConf;
}

function hostArchitecture(): string {
  return execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
}

/** The two sandbox channels' configs, enough to find their sign-server pid files (no key needed). */
function sandboxConfigs(root: string): { config: ReturnType<typeof sandboxStackConfig>['config'] }[] {
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

async function stop(): Promise<void> {
  const { root } = settings();
  // The signers (sign-server as aptsign-<channel>) the plan started for each channel.
  await stopSandboxSigners(sandboxConfigs(root));
  const pidFile = sandboxNginxPaths(root).pidFile;
  const pid = runningPid(pidFile);
  if (pid === undefined) {
    log(`nginx is not running (no live pid in ${pidFile})`);
    return;
  }
  await stopPid(pid);
  log(`nginx (pid ${pid}) stopped`);
}

async function up(): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new LocalStackError('run as root: the plan installs files owned by root, aptrepo and www-data, as on the server');
  const st = settings();
  if (!fs.existsSync(st.bundlePath)) throw new LocalStackError(`${st.bundlePath} is missing: run npm run build first`);
  ensureDebianPackages();
  fs.mkdirSync(st.root, { recursive: true });
  fs.chmodSync(st.root, 0o755);
  checkReachable(st.root);
  fs.mkdirSync(st.stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(st.stateDir, 0o700);

  const creds = credentials(st.stateDir);
  const salts = htpasswdSalts(st.stateDir, creds);
  const keys = { preprod: await signingKey(st.stateDir, 'preprod'), prod: await signingKey(st.stateDir, 'prod') };
  const sshd = await startSshd();
  let replayer: Replayer | undefined;
  try {
    const ssh = {
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      privateKey: sshd.privateKey,
      hostPublicKey: sshd.hostPublicKey,
    };
    const common = {
      root: st.root,
      ssh,
      credentials: creds,
      allowedCidrs: ['127.0.0.0/8'],
      codenames: CODENAMES,
      architectures: [hostArchitecture()],
    };
    const stacks = [
      sandboxStack({ ...common, channel: 'preprod', httpPort: st.ports.preprod }, keys.preprod, st.bundlePath, salts),
      sandboxStack({ ...common, channel: 'prod', upstream: 'preprod', httpPort: st.ports.prod }, keys.prod, st.bundlePath, salts),
    ];
    replayer = await Replayer.connect(ssh);
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
      log(`nginx started in the background (pid ${n.pid}); stop it with: npm run local -- --stop`);
    } else {
      log(`nginx already running (pid ${nginxPid})`);
    }

    // Drop the sample packages that the preprod pool does not hold yet, then ingest them.
    const pre = stacks[0].config;
    const preLayout = channelLayout(pre);
    const debs = fetchRealDebs(SAMPLE_PACKAGES);
    const inPool = (
      await replayer.exec(`find ${shellQuote(path.join(preLayout.webRoot, 'pool'), { always: true })} -name '*.deb' -printf '%f\\n'`)
    ).stdout.split('\n');
    const toDrop = debs.filter((d) => !inPool.includes(path.basename(d)));
    if (toDrop.length) {
      for (const d of toDrop) await replayer.uploadFile(d, path.join(preLayout.incomingDir, 'build', path.basename(d)));
      const ingest = [pre.nodePath, pre.indexerPath, '--root', pre.root, '--channel', 'preprod', 'ingest', '--settle-ms', '0'];
      // As the service user, like the ingest unit (User=aptrepo), so the pool stays its own.
      const r = await replayer.exec(
        ['runuser', '-u', pre.serviceUser, '--', ...ingest].map((w) => shellQuote(w, { always: true })).join(' '),
      );
      if (r.code !== 0) throw new LocalStackError(`ingest failed (${r.code}): ${r.stderr.trim()}`);
      process.stderr.write(r.stdout);
    } else {
      log('sample packages already in preprod');
    }
    printConfiguration(st, stacks, creds);
  } finally {
    replayer?.dispose();
    await sshd.stop();
  }
}

/** What nextCommands needs of a channel's stack (SandboxStack config fields). */
export interface NextCommandsChannel {
  channel: string;
  root: string;
  nodePath: string;
  indexerPath: string;
  serviceUser: string;
}

/**
 * The "next:" lines `npm run local` prints: shell command lines that work from any folder (every
 * path absolute, each word shell-quoted) and as the right user. Commands that only read (pending,
 * verify, versions) run as whoever typed them (root); commands that write a channel (promote) run
 * as that channel's service user through `runuser -u <serviceUser> --`, as on the server (the
 * indexer refuses to write as anyone else). `aptConfProd` is the prod client's APT_CONFIG file.
 */
export function nextCommands(preprod: NextCommandsChannel, prod: NextCommandsChannel, aptConfProd: string): string[] {
  const indexer = (c: NextCommandsChannel, ...args: string[]) => [
    c.nodePath,
    c.indexerPath,
    '--root',
    path.resolve(c.root),
    '--channel',
    c.channel,
    ...args,
  ];
  const asOwner = (c: NextCommandsChannel, ...args: string[]) => shellJoin(['runuser', '-u', c.serviceUser, '--', ...indexer(c, ...args)]);
  const apt = (...args: string[]) => `APT_CONFIG=${shellJoin([path.resolve(aptConfProd)])} ${shellJoin(args)}`;
  return [
    shellJoin(indexer(prod, 'pending')),
    asOwner(prod, 'promote', 'hello'),
    shellJoin(indexer(prod, 'verify')),
    shellJoin(indexer(preprod, 'versions', 'hello')),
    apt('apt-get', 'update'),
    apt('apt-cache', 'policy', 'hello'),
    apt('apt-get', 'install', '-s', 'hello'),
  ];
}

function printConfiguration(st: ReturnType<typeof settings>, stacks: SandboxStack[], creds: ClientCredential[]): void {
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
      '',
    );
  }
  // The deployed indexers (readable by the service users, unlike a project under /root), absolute
  // paths: the lines work from any folder; writers run as the channel's service user.
  out.push('next (from any folder, as root):', ...nextCommands(stacks[0].config, stacks[1].config, aptConfs.prod).map((l) => `  ${l}`));
  out.push('stop nginx and the signers: npm run local -- --stop');
  process.stdout.write(out.join('\n') + '\n');
}

async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const unknown = args.filter((a) => a !== '--stop');
  if (unknown.length) {
    process.stderr.write(`local-stack: unknown argument ${unknown[0]} (usage: local-stack [--stop])\n`);
    return 2;
  }
  try {
    if (args.includes('--stop')) await stop();
    else await up();
    return 0;
  } catch (err) {
    process.stderr.write(`local-stack: ${(err as Error).message}\n`);
    if (!(err instanceof LocalStackError) && process.env.DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
