/**
 * Replay of the Pulumi program's remote steps, for real, over SSH (node-ssh), without the Pulumi CLI.
 *
 * The program (infra/plan.ts `buildPlan`) reduces every remote resource to a PlanStep: files that a
 * copy resource uploads, then a bash script that a remote.Command runs with `secretStdin` on its
 * stdin. This module plays those steps the way the resources would:
 * - steps run in dependency order (a stable topological sort on `dependsOn`, the order Pulumi's
 *   engine guarantees; steps with no path between them keep the plan's order);
 * - files are written over SFTP as the SSH user, mode left to the server's defaults, nothing ever
 *   deleted (what a copy resource does: it never chmods, chowns or removes — the script installs);
 * - each script is sent as the exec request's command text (what remote.Command does with
 *   `create`), so it runs under the SSH user's login shell, with no PTY.
 * A step "changed" something when its script printed a line `CHANGED` on stdout (the convention of
 * infra/plan.ts); independently of that, `snapshotTree` lists a directory tree (type, mode, owner,
 * size, symlink target, SHA-256) so a test can prove that a second run changed nothing on disk.
 *
 * The second half builds sandbox stacks (config validated by stacks/config.ts, material, plan),
 * renders their client files and runs the sandbox's own nginx (<root>/etc/nginx/nginx.conf, pid in
 * <root>/run/nginx.pid, workers as www-data): shared by test/replay and scripts/local-stack.ts.
 */
import { NodeSSH } from 'node-ssh';
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parseStackConfig, type ClientCredential, type RawConfig, type StackConfig, type StackSecrets } from '../../stacks/config';
import { buildPlan, fileSha256, type PlanMaterial, type PlanStep } from '../../infra/plan';
import { renderHtpasswd } from '../../infra/htpasswd';
import type { HtpasswdSaltMap } from '../../infra/htpasswdSalts';
import { channelUrl, renderAuthConf, renderClientFiles } from '../../infra/clientFiles';
import { channelLayout } from '../../infra/layout';
import { trackChild } from './nginx';

/** One remote step: structurally infra/plan.ts `PlanStep`, so the Replayer also plays hand-made steps. */
export interface ReplayStep {
  name: string;
  dependsOn: string[];
  /** `localPath` set: the file is copied from that local file (the indexer bundle) and `content` is ignored. */
  files: { remotePath: string; content: string; mode: string; owner: string; secret: boolean; localPath?: string }[];
  script: string;
  secretStdin?: string;
  triggers: string[];
}

/** Where and as whom to connect; `hostPublicKey` ('ssh-ed25519 AAAA…') is checked when given, as the program's `hostKey`. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** OpenSSH/PEM private key text. */
  privateKey: string;
  hostPublicKey?: string;
}

/** What one step did: exit status, its output, whether it reported a change, and the paths it uploaded. */
export interface StepRun {
  name: string;
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the script printed a line that is exactly `CHANGED` (leading/trailing blanks ignored). */
  changed: boolean;
  uploaded: string[];
}

/** A tree listing: relative path → 'type mode user group size sha256|linktarget'. */
export type TreeSnapshot = Map<string, string>;

/**
 * Orders `steps` so that every step comes after the steps it names in `dependsOn`; among steps that
 * are ready at the same time the plan's order is kept (Kahn's algorithm, stable).
 * Throws Error naming the step for a duplicate name, an unknown dependency, or a cycle.
 */
export function orderSteps<T extends Pick<ReplayStep, 'name' | 'dependsOn'>>(steps: T[]): T[] {
  const byName = new Map<string, T>();
  for (const s of steps) {
    if (byName.has(s.name)) throw new Error(`plan: duplicate step name '${s.name}'`);
    byName.set(s.name, s);
  }
  for (const s of steps) {
    for (const d of s.dependsOn) if (!byName.has(d)) throw new Error(`plan: step '${s.name}' depends on unknown step '${d}'`);
  }
  const done = new Set<string>();
  const out: T[] = [];
  while (out.length < steps.length) {
    const next = steps.find((s) => !done.has(s.name) && s.dependsOn.every((d) => done.has(d)));
    if (!next) {
      const left = steps.filter((s) => !done.has(s.name)).map((s) => s.name);
      throw new Error(`plan: dependency cycle among steps ${left.join(', ')}`);
    }
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/** True when `stdout` holds a line `CHANGED` (the plan scripts' way to say they modified the host). */
export function reportsChange(stdout: string): boolean {
  return stdout.split('\n').some((l) => l.trim() === 'CHANGED');
}

/** Single-quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One SSH session that replays plan steps. Create with `Replayer.connect`, end with `dispose`. */
export class Replayer {
  private constructor(private readonly ssh: NodeSSH) {}

  /**
   * Connects to `target` with its private key; when `hostPublicKey` is set the server's host key
   * must equal it (else the connection is refused, like the program's `hostKey`). Rejects with
   * node-ssh's error when the connection or the authentication fails.
   */
  static async connect(target: SshTarget): Promise<Replayer> {
    const ssh = new NodeSSH();
    const expected = target.hostPublicKey ? Buffer.from(target.hostPublicKey.trim().split(/\s+/)[1] ?? '', 'base64') : undefined;
    await ssh.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: 20000,
      hostVerifier: expected ? (key: Buffer) => Buffer.isBuffer(key) && key.equals(expected) : undefined,
    } as Parameters<NodeSSH['connect']>[0]);
    return new Replayer(ssh);
  }

  /** Runs `command` (as remote.Command runs `create`: the login shell's `-c`), `stdin` written then closed. Never rejects on a non-zero exit. */
  async exec(command: string, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await this.ssh.execCommand(command, { stdin: stdin ?? '', noTrim: true });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Writes `content` to `remotePath` over SFTP as the SSH user (a copy resource's behaviour: the
   * parent directory must exist, mode and owner are the server's defaults, an existing file is
   * overwritten). Rejects with the SFTP error naming the path.
   */
  async upload(remotePath: string, content: string): Promise<void> {
    const sftp = await this.ssh.requestSFTP();
    try {
      await new Promise<void>((resolve, reject) => {
        sftp.writeFile(remotePath, Buffer.from(content, 'utf8'), (err: Error | null | undefined) => (err ? reject(new Error(`upload ${remotePath}: ${err.message}`)) : resolve()));
      });
    } finally {
      sftp.end();
    }
  }

  /** Copies the local file `localPath` to `remotePath` over SFTP (streamed; same rules as upload). */
  async uploadFile(localPath: string, remotePath: string): Promise<void> {
    try {
      await this.ssh.putFile(localPath, remotePath);
    } catch (err) {
      throw new Error(`upload ${localPath} to ${remotePath}: ${(err as Error).message}`);
    }
  }

  /**
   * Applies one step: uploads its files, then runs its script with `secretStdin`.
   * Throws Error naming the step with its exit code and stderr when the script fails (stdout is left
   * out of the message because a script may print what it installed).
   */
  async applyStep(step: ReplayStep): Promise<StepRun> {
    const uploaded: string[] = [];
    for (const f of step.files) {
      if (f.localPath) await this.uploadFile(f.localPath, f.remotePath);
      else await this.upload(f.remotePath, f.content);
      uploaded.push(f.remotePath);
    }
    const r = await this.exec(step.script, step.secretStdin);
    if (r.code !== 0) {
      throw new Error(`step '${step.name}' exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
    }
    return { name: step.name, code: r.code, stdout: r.stdout, stderr: r.stderr, changed: reportsChange(r.stdout), uploaded };
  }

  /** Applies every step of `steps` in dependency order (see orderSteps); stops at the first failure (Error from applyStep). */
  async applyPlan(steps: ReplayStep[], onStep?: (run: StepRun) => void): Promise<StepRun[]> {
    const runs: StepRun[] = [];
    for (const step of orderSteps(steps)) {
      const run = await this.applyStep(step);
      onStep?.(run);
      runs.push(run);
    }
    return runs;
  }

  /**
   * Lists the tree under `root` on the remote host: every entry's type, octal mode, owner, group,
   * size and SHA-256 (files) or target (symlinks). Modification times are left out on purpose: a
   * rewrite with identical content and metadata is not a change the host can see. `exclude` are
   * paths relative to `root` ('var/log') pruned with their subtrees.
   */
  async snapshotTree(root: string, exclude: string[] = []): Promise<TreeSnapshot> {
    const prune = exclude.length ? `\\( ${exclude.map((e) => `-path ${shellQuote('./' + e.replace(/^\.?\/+/, ''))}`).join(' -o ')} \\) -prune -o` : '';
    const cmd = [
      `cd ${shellQuote(root)}`,
      `find . -xdev ${prune} -printf 'E\\t%p\\t%y %m %u %g %s %l\\n'`,
      `find . -xdev ${prune} -type f -print0 | xargs -0 -r sha256sum | sed 's/^/H\\t/'`,
    ].join(' && ');
    const r = await this.exec(`set -eu; ${cmd}`);
    if (r.code !== 0) throw new Error(`snapshot of ${root} failed (${r.code}): ${r.stderr}`);
    const entries: TreeSnapshot = new Map();
    const hashes = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('E\t')) {
        const [, p, meta] = line.split('\t');
        entries.set(p, meta.trimEnd());
      } else if (line.startsWith('H\t')) {
        const m = /^H\t([0-9a-f]{64}) [ *](.*)$/.exec(line);
        if (m) hashes.set(m[2], m[1]);
      }
    }
    for (const [p, h] of hashes) entries.set(p, `${entries.get(p)} ${h}`);
    return entries;
  }

  /** Closes the SSH connection. */
  dispose(): void {
    this.ssh.dispose();
  }
}

/** Lists the differences between two snapshots as '+ path meta', '- path meta', '~ path old => new', sorted by path. */
export function diffSnapshots(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const out: string[] = [];
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const p of paths) {
    const a = before.get(p);
    const b = after.get(p);
    if (a === undefined) out.push(`+ ${p} ${b}`);
    else if (b === undefined) out.push(`- ${p} ${a}`);
    else if (a !== b) out.push(`~ ${p} ${a} => ${b}`);
  }
  return out;
}

/** A stable digest of a plan's steps (names, order, files, scripts, stdin, triggers): equal digests mean a second `pulumi up` has nothing to do. */
export function planDigest(steps: ReplayStep[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(steps)).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Sandbox stacks: the same configuration, material and web server wiring for the replay test and
// for scripts/local-stack.ts, so what the test proves is what `npm run local` does.
// ---------------------------------------------------------------------------------------------

/** What a sandbox stack needs besides its channel name. */
export interface SandboxStackOptions {
  /** The sandbox root (absolute): every server path of the stack is under it. */
  root: string;
  channel: string;
  /** The channel promote takes packages from (prod: 'preprod'). */
  upstream?: string;
  /** The SSH server the steps are applied through (its host key becomes sshHostKey). */
  ssh: SshTarget;
  /** nginx port of this channel on 127.0.0.1 (plain HTTP, allowed explicitly). */
  httpPort: number;
  /** Unused without TLS but must differ from httpPort (default httpPort + 1000, capped). */
  httpsPort?: number;
  credentials: ClientCredential[];
  allowedCidrs: string[];
  codenames: string[];
  architectures: string[];
  /** Node.js the service user runs the indexer with (default: this process's node). */
  nodePath?: string;
  /** Let the plan apt-get install missing packages (default false: the caller did). */
  installPackages?: boolean;
  /** More raw `apt-repo:*` keys (string values, JSON for lists), applied last. */
  extra?: RawConfig;
}

/** One sandbox stack: validated config, secrets, plan material and the plan. */
export interface SandboxStack {
  config: StackConfig;
  secrets: StackSecrets;
  material: PlanMaterial;
  steps: PlanStep[];
}

/**
 * Builds the raw stack config of a sandbox channel (the keys a Pulumi.<stack>.yaml would hold) and
 * validates it with stacks/config.ts parseStackConfig, so a sandbox passes the same checks as a
 * real stack. nginx listens on 127.0.0.1 only, serverName is 127.0.0.1 so the rendered client URL
 * is the one a local client uses. Throws ConfigError as parseStackConfig does.
 */
export function sandboxStackConfig(o: SandboxStackOptions): { config: StackConfig; secrets: StackSecrets } {
  const raw: RawConfig = {
    channel: o.channel,
    domain: 'epiconcept.fr',
    serverName: '127.0.0.1',
    listenAddress: '127.0.0.1',
    sshHost: o.ssh.host,
    sshPort: String(o.ssh.port),
    sshUser: o.ssh.username,
    ...(o.ssh.hostPublicKey ? { sshHostKey: o.ssh.hostPublicKey } : {}),
    sshPrivateKey: o.ssh.privateKey,
    root: o.root,
    nodePath: o.nodePath ?? process.execPath,
    codenames: JSON.stringify(o.codenames),
    architectures: JSON.stringify(o.architectures),
    allowedCidrs: JSON.stringify(o.allowedCidrs),
    clientCredentials: JSON.stringify(o.credentials),
    tls: JSON.stringify({ mode: 'none' }),
    allowPlainHttp: 'true',
    httpPort: String(o.httpPort),
    httpsPort: String(o.httpsPort ?? (o.httpPort < 64535 ? o.httpPort + 1000 : o.httpPort - 1000)),
    installPackages: o.installPackages ? 'true' : 'false',
    ...(o.upstream ? { upstream: o.upstream } : {}),
    ...o.extra,
  };
  return parseStackConfig(raw, o.channel);
}

/** A signing key in the shape both keys.ts and a stored key give: armored private and public keys, binary public key. */
export interface KeyMaterial {
  privateArmored: string;
  publicArmored: string;
  publicBinary: Uint8Array;
}

/**
 * The plan material of a stack: the key, the htpasswd rendered by infra/htpasswd.ts from the
 * credentials (with `salts`, the salts a previous run kept, as the HtpasswdSalts resource keeps them
 * in the stack state; without, random salts fixed for this process), and the indexer bundle with its
 * SHA-256. Throws the fs error if the bundle is missing.
 */
export function planMaterial(key: KeyMaterial, credentials: ClientCredential[], bundlePath: string, salts?: HtpasswdSaltMap): PlanMaterial {
  return {
    signingKeyArmored: key.privateArmored,
    publicKeyArmored: key.publicArmored,
    publicKeyBinaryBase64: Buffer.from(key.publicBinary).toString('base64'),
    htpasswd: renderHtpasswd(credentials, salts),
    bundlePath,
    bundleSha256: fileSha256(bundlePath),
  };
}

/** sandboxStackConfig + planMaterial + buildPlan. */
export function sandboxStack(o: SandboxStackOptions, key: KeyMaterial, bundlePath: string, salts?: HtpasswdSaltMap): SandboxStack {
  const { config, secrets } = sandboxStackConfig(o);
  const material = planMaterial(key, secrets.clientCredentials, bundlePath, salts);
  return { config, secrets, material, steps: buildPlan(config, material) };
}

/**
 * Applies the stacks one after the other (each in its own dependency order: step names repeat
 * across stacks), returning every run with its name prefixed by the channel ('prod/vhost').
 */
export async function applyStacks(replayer: Replayer, stacks: SandboxStack[]): Promise<StepRun[]> {
  const runs: StepRun[] = [];
  for (const s of stacks) {
    for (const r of await replayer.applyPlan(s.steps)) runs.push({ ...r, name: `${s.config.channel}/${r.name}` });
  }
  return runs;
}

/**
 * Where sandbox roots go: sshd chroots the upload accounts into `<root>/srv/apt/incoming`, and
 * requires every folder of that path to be root-owned and writable by root only — never true under
 * /tmp (1777). A root-owned 0755 folder under /srv is.
 */
export const SANDBOX_PARENT = '/srv/apt-replay';

/**
 * Creates a fresh sandbox root `<SANDBOX_PARENT>/<prefix>-XXXXXX`, root-owned, mode 0755 (the
 * service, signer and upload users, and nginx's workers, reach it as they reach / on a server).
 * Must run as root. Throws the fs error otherwise.
 */
export function makeSandboxRoot(prefix: string): string {
  fs.mkdirSync(SANDBOX_PARENT, { recursive: true, mode: 0o755 });
  fs.chmodSync(SANDBOX_PARENT, 0o755);
  const root = fs.mkdtempSync(path.join(SANDBOX_PARENT, `${prefix}-`));
  fs.chmodSync(root, 0o755);
  return root;
}

/**
 * Stops the `sign-server` processes the plan started for `stacks` (services 'none'): SIGTERM to the
 * pid in each channel's pid file, when that process is alive; resolves once they are gone (SIGKILL
 * after 5 s).
 */
export async function stopSandboxSigners(stacks: Pick<SandboxStack, 'config'>[]): Promise<void> {
  for (const s of stacks) {
    const pid = runningPid(channelLayout(s.config).signerPidFile);
    if (pid !== undefined) await stopPid(pid, 5000, 'SIGTERM');
  }
}

/** Removes the sudoers rules the plan wrote for `stacks` in /etc/sudoers.d (sandbox roots name them apart). */
export function removeSandboxSudoers(stacks: Pick<SandboxStack, 'config'>[]): void {
  for (const s of stacks) {
    const file = channelLayout(s.config).sudoersFile;
    if (s.config.root !== '/') fs.rmSync(file, { force: true });
  }
}

/** What a client of one channel installs: the rendered files of infra/clientFiles.ts plus where the key is served. */
export interface ChannelClientConfig {
  url: string;
  /** URLs of the public key files in the web root (served without credentials, behind the allowlist). */
  keyUrls: { asc: string; gpg: string };
  /** /usr/share/keyrings/<keyName>-archive-keyring.gpg: where clients put the binary key. */
  keyringPath: string;
  sourcesList: Record<string, string>;
  sources: Record<string, string>;
  /** auth.conf.d entry per user name (secret). */
  authConf: Record<string, string>;
}

/** Renders the client configuration of a stack with infra/clientFiles.ts (as the stack outputs do). */
export function clientConfig(s: Pick<SandboxStack, 'config' | 'secrets'>): ChannelClientConfig {
  const c = s.config;
  const url = channelUrl(c.serverName, c.tls.mode !== 'none', c.httpPort, c.httpsPort);
  const files = renderClientFiles({ url, codenames: c.codenames, component: 'main', keyName: c.keyName });
  return {
    url,
    keyUrls: { asc: `${url}${c.keyName}-archive-keyring.asc`, gpg: `${url}${c.keyName}-archive-keyring.gpg` },
    keyringPath: files.keyringPath,
    sourcesList: files.sourcesList,
    sources: files.sources,
    authConf: renderAuthConf(url, s.secrets.clientCredentials),
  };
}

/** Paths of the sandbox's own nginx (not managed by the plan): a server-like layout under the root. */
export function sandboxNginxPaths(root: string): { conf: string; pidFile: string; logDir: string; tempDir: string; sitesEnabled: string } {
  return {
    conf: path.join(root, 'etc/nginx/nginx.conf'),
    // The plan reloads nginx (services: none) only when a master runs with <root>/run/nginx.pid.
    pidFile: path.join(root, 'run/nginx.pid'),
    logDir: path.join(root, 'var/log/nginx'),
    tempDir: path.join(root, 'var/lib/nginx'),
    sitesEnabled: path.join(root, 'etc/nginx/sites-enabled'),
  };
}

/**
 * Renders the sandbox nginx.conf, the equivalent of Debian's /etc/nginx/nginx.conf: workers as
 * `user` (default www-data, as on the server, so file modes the plan sets are really tested), pid
 * in <root>/run, logs and temp paths under the root, and `include <root>/etc/nginx/sites-enabled/*`
 * (the plan's vhost links). No `daemon` directive: the caller chooses with `-g`.
 */
export function renderSandboxNginxConf(root: string, user = 'www-data'): string {
  const p = sandboxNginxPaths(root);
  const t = (n: string) => path.join(p.tempDir, n);
  return [
    `user ${user};`,
    'worker_processes 1;',
    `pid ${p.pidFile};`,
    `error_log ${path.join(p.logDir, 'error.log')};`,
    'events { worker_connections 256; }',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  server_tokens off;',
    `  access_log ${path.join(p.logDir, 'access.log')};`,
    `  client_body_temp_path ${t('body')};`,
    `  proxy_temp_path ${t('proxy')};`,
    `  fastcgi_temp_path ${t('fastcgi')};`,
    `  uwsgi_temp_path ${t('uwsgi')};`,
    `  scgi_temp_path ${t('scgi')};`,
    `  include ${p.sitesEnabled}/*;`,
    '}',
    '',
  ].join('\n');
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; rejects after `timeoutMs` or as soon as `alive()` is false. */
export async function waitForPort(port: number, alive: () => boolean, describe: () => string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const done = (v: boolean) => { s.destroy(); resolve(v); };
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      s.setTimeout(1000, () => done(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`nginx is not running (port ${port})\n${describe()}`);
    if (Date.now() > deadline) throw new Error(`nginx not listening on 127.0.0.1:${port} after ${timeoutMs} ms\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid in `pidFile` when that process is alive, else undefined. */
export function runningPid(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** A sandbox nginx started by startSandboxNginx. */
export interface SandboxNginx {
  pid: number;
  /** SIGQUIT (graceful), SIGKILL after 5 s; resolves once the master is gone. */
  stop(): Promise<void>;
  errorLog(): string;
}

/**
 * Writes the sandbox nginx.conf and starts `/usr/sbin/nginx -c <conf> -p <root>/var/lib/nginx/`,
 * then waits until every port in `ports` accepts connections. `detached`: nginx daemonizes and
 * outlives this process (scripts/local-stack.ts); otherwise it runs in the foreground as a child
 * of this process (tests), killed when the process exits. Rejects with nginx's output and error
 * log when the configuration is wrong or a port does not open.
 */
export async function startSandboxNginx(root: string, ports: number[], opts: { detached?: boolean; user?: string } = {}): Promise<SandboxNginx> {
  const p = sandboxNginxPaths(root);
  for (const d of [path.dirname(p.pidFile), p.logDir, p.tempDir]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(p.conf, renderSandboxNginxConf(root, opts.user));
  const errorLogFile = path.join(p.logDir, 'error.log');
  const errorLog = () => { try { return fs.readFileSync(errorLogFile, 'utf8'); } catch { return ''; } };
  const args = ['-c', p.conf, '-p', p.tempDir + '/', '-e', errorLogFile, '-g', opts.detached ? 'daemon on;' : 'daemon off;'];
  let output = '';
  let alive: () => boolean;
  if (opts.detached) {
    const r = spawnSync('/usr/sbin/nginx', args, { encoding: 'utf8' });
    output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.status !== 0) throw new Error(`nginx -c ${p.conf} failed (${r.status}):\n${output}${errorLog()}`);
    alive = () => runningPid(p.pidFile) !== undefined;
  } else {
    const child = spawn('/usr/sbin/nginx', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    alive = () => child.exitCode === null && child.signalCode === null;
  }
  const describe = () => `${output}${errorLog()}`;
  try {
    for (const port of ports) await waitForPort(port, alive, describe);
  } catch (err) {
    const pid = runningPid(p.pidFile);
    if (pid) await stopPid(pid);
    throw err;
  }
  // With daemon off the master writes the pid file a moment after it binds the ports.
  const deadline = Date.now() + 5000;
  while (runningPid(p.pidFile) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const pid = runningPid(p.pidFile);
  if (pid === undefined) throw new Error(`nginx wrote no pid file at ${p.pidFile}\n${describe()}`);
  return { pid, stop: () => stopPid(pid), errorLog };
}

/** Sends `signal` (SIGQUIT: nginx's graceful stop) to `pid`, SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 5000, signal: NodeJS.Signals = 'SIGQUIT'): Promise<void> {
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  if (!alive()) return;
  process.kill(pid, signal);
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
  while (alive()) await new Promise((r) => setTimeout(r, 50));
}
