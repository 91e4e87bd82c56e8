/**
 * A real OpenSSH server started by a test (`/usr/sbin/sshd -D -e -f <tmp>/sshd_config`, startSshd)
 * with its own ed25519 host key and one authorized client key for the current user (root in the
 * test containers), listening on a free port of 127.0.0.1, stopped by the test; or the daemon that
 * `npm run local` keeps running between runs (startKeptSshd: keys kept, pid in <root>/run/sshd.pid).
 * Options follow sshd_config(5); keys are made with ssh-keygen(1).
 */
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { findFreePort, runningPid, stopChild, stopPid, trackChild, waitForListening, waitForPort } from './processes';

const SSHD = '/usr/sbin/sshd';

/** A running test sshd and the credentials to reach it. */
export interface SshdServer {
  /** The listen address: '127.0.0.1' unless startSshd was given another loopback address. */
  host: string;
  port: number;
  /** The account the authorized key logs into (the user running the tests). */
  username: string;
  /** The client private key, OpenSSH format ('-----BEGIN OPENSSH PRIVATE KEY-----'), no passphrase. */
  privateKey: string;
  /** Path of the same private key (mode 0600), for tools that want a file. */
  privateKeyFile: string;
  /** The server's host public key: 'ssh-ed25519 AAAA…' (no comment). */
  hostPublicKey: string;
  /** known_hosts(5) line for it: '[127.0.0.1]:<port> ssh-ed25519 AAAA…'. */
  knownHostsLine: string;
  /** sshd's output so far (-e: log on stderr, LogLevel VERBOSE). */
  log(): string;
  /** SIGTERM (SIGKILL after 5 s), waits for exit, removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

/** What a test sshd may take from a sandbox: the plan's drop-ins, and where to write its pid. */
export interface SshdOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  listenAddress?: string;
  /**
   * An `Include` pattern (sshd_config(5)) read after the settings below, e.g. a sandbox's
   * `<root>/etc/ssh/sshd_config.d/*.conf`: the Match blocks the plan writes for uploaders and
   * operators then apply to this sshd. A pattern matching nothing is fine.
   */
  include?: string;
  /** Where sshd writes its pid (default: in its temp directory). The plan, without systemd, sends SIGHUP to the pid in `<root>/run/sshd.pid` after changing its drop-in. */
  pidFile?: string;
}

/** Renders sshd_config for a temp directory `dir` (host key, authorized_keys, pid file in it). */
export function renderSshdConfig(
  dir: string,
  port: number,
  listenAddress: string,
  opts: Pick<SshdOptions, 'include' | 'pidFile'> = {},
): string {
  return [
    `Port ${port}`,
    `ListenAddress ${listenAddress}`,
    `HostKey ${path.join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${opts.pidFile ?? path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // The temp directory is owned by root with mkdtemp's 0700; StrictModes would also check $HOME.
    'StrictModes no',
    'UsePAM no',
    'LogLevel VERBOSE',
    // Callers run many commands over one connection, sometimes in parallel channels.
    'MaxSessions 64',
    'MaxStartups 64:30:128',
    // node-ssh putFile/getFile use the sftp subsystem.
    'Subsystem sftp internal-sftp',
    // Last: a Match block ends with the file that opens it, so nothing above is affected.
    ...(opts.include ? [`Include ${opts.include}`] : []),
    '',
  ].join('\n');
}

/**
 * Starts sshd on a free port of `listenAddress` (default '127.0.0.1'; any 127.0.0.0/8 address works
 * on Linux) and resolves once it accepts TCP connections; `include` and `pidFile` as SshdOptions says.
 * Creates /run/sshd (sshd's privilege separation directory) if missing. Retries with another
 * port if the chosen one was taken meanwhile (5 attempts). Rejects with sshd's log otherwise.
 */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdServer> {
  const host = opts.listenAddress ?? '127.0.0.1';
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshd-'));
  try {
    const hostKey = path.join(dir, 'ssh_host_ed25519_key');
    const clientKey = path.join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-host', '-f', hostKey], { stdio: 'pipe' });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-client', '-f', clientKey], { stdio: 'pipe' });
    fs.copyFileSync(`${clientKey}.pub`, path.join(dir, 'authorized_keys'));
    const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const privateKey = fs.readFileSync(clientKey, 'utf8');
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await findFreePort(host);
      try {
        return await startOnce(dir, host, port, { hostPublicKey, privateKey, privateKeyFile: clientKey }, opts);
      } catch (err) {
        lastError = err;
        if (!/Address already in use/.test((err as Error).message)) throw err;
      }
    }
    throw lastError;
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startOnce(
  dir: string,
  host: string,
  port: number,
  keys: { hostPublicKey: string; privateKey: string; privateKeyFile: string },
  opts: SshdOptions,
): Promise<SshdServer> {
  const conf = path.join(dir, 'sshd_config');
  fs.writeFileSync(conf, renderSshdConfig(dir, port, host, opts));
  let output = '';
  const child = spawn(SSHD, ['-D', '-e', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  try {
    await waitForListening(host, port, child, () => output);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    host,
    port,
    username: os.userInfo().username,
    privateKey: keys.privateKey,
    privateKeyFile: keys.privateKeyFile,
    hostPublicKey: keys.hostPublicKey,
    knownHostsLine: `[${host}]:${port} ${keys.hostPublicKey}`,
    log: () => output,
    stop() {
      stopped ??= stopChild(child, 'SIGTERM').then(() => fs.rmSync(dir, { recursive: true, force: true }));
      return stopped;
    },
  };
}

/** The sshd `npm run local` keeps running between runs (startKeptSshd), and what reaches it. */
export interface KeptSshd {
  host: string;
  port: number;
  /** Its pid (the pid file's), alive when returned. */
  pid: number;
  /** True when an sshd already running with this configuration was reused. */
  reused: boolean;
  /** The account the operator key logs into (root: the plan needs it). */
  username: string;
  /** The operator's private key (OpenSSH format) and its file (0600). */
  privateKey: string;
  privateKeyFile: string;
  /** 'ssh-ed25519 AAAA…' (no comment) and a known_hosts file holding '[host]:port <key>'. */
  hostPublicKey: string;
  knownHostsFile: string;
  /** sshd's log file (-E). */
  logFile: string;
}

/** Where a kept sshd keeps its files: the server side in `serverDir`, the operator side in `clientDir`. */
export interface KeptSshdOptions {
  /** Host key, authorized_keys, sshd_config and log (created 0700, kept across runs). */
  serverDir: string;
  /** The operator key pair and the known_hosts file (created 0700, kept across runs). */
  clientDir: string;
  /** sshd's pid file (`<root>/run/sshd.pid`: the plan sends it SIGHUP after changing its drop-in). */
  pidFile: string;
  /** sshd_config(5) `Include` pattern read last (the plan's drop-ins). */
  include?: string;
  /** The port to listen on (taken: failure); default: the one of the previous run when free, else a free one. */
  port?: number;
}

function keyPair(file: string, comment: string): void {
  if (fs.existsSync(file) && fs.existsSync(`${file}.pub`)) return;
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
}

/** The `Port` of an sshd_config written by a previous run, if any. */
function previousPort(conf: string): number | undefined {
  try {
    const m = /^Port (\d+)$/m.exec(fs.readFileSync(conf, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** True when process `pid` is an sshd started with the configuration file `conf`. */
function startedWith(pid: number, conf: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return argv.includes('sshd') && argv.includes(conf);
  } catch {
    return false;
  }
}

/** Resolves true when nothing listens on host:port (a bind succeeds). */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Starts (or reuses) the sshd of `npm run local`: a daemon (`/usr/sbin/sshd -f <conf> -E <log>`,
 * no -D) that outlives the script, on 127.0.0.1, with a host key and an operator key made once and
 * kept, so the apt-ops settings the script prints stay valid from one run to the next. When the pid
 * file names a live process and the configuration is unchanged, that sshd is reused; otherwise a
 * live one is stopped and a new one started. Stop it with stopPid(runningPid(pidFile)).
 * Must run as root. Rejects with sshd's log when it does not start listening.
 */
export async function startKeptSshd(opts: KeptSshdOptions): Promise<KeptSshd> {
  const host = '127.0.0.1';
  for (const d of [opts.serverDir, opts.clientDir]) {
    // Parents with the default mode: others must still reach the rest of the sandbox.
    fs.mkdirSync(path.dirname(d), { recursive: true });
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.chmodSync(d, 0o700);
  }
  fs.mkdirSync(path.dirname(opts.pidFile), { recursive: true });
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = path.join(opts.serverDir, 'ssh_host_ed25519_key');
  const clientKey = path.join(opts.clientDir, 'operator_ed25519');
  keyPair(hostKey, 'local-stack-host');
  keyPair(clientKey, 'local-stack-operator');
  fs.writeFileSync(path.join(opts.serverDir, 'authorized_keys'), fs.readFileSync(`${clientKey}.pub`));
  const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const conf = path.join(opts.serverDir, 'sshd_config');
  const logFile = path.join(opts.serverDir, 'sshd.log');

  // A pid file outlives a reboot: only a live sshd started with this configuration is ours.
  const pidInFile = runningPid(opts.pidFile);
  const live = pidInFile !== undefined && startedWith(pidInFile, conf) ? pidInFile : undefined;
  const before = previousPort(conf);
  const port = opts.port ?? (live !== undefined || (before !== undefined && (await portFree(host, before))) ? before : undefined);
  const text = (p: number) => renderSshdConfig(opts.serverDir, p, host, { include: opts.include, pidFile: opts.pidFile });
  const result = (p: number, pid: number, reused: boolean): KeptSshd => {
    const knownHostsFile = path.join(opts.clientDir, 'known_hosts');
    fs.writeFileSync(knownHostsFile, `[${host}]:${p} ${hostPublicKey}\n`);
    return {
      host,
      port: p,
      pid,
      reused,
      username: os.userInfo().username,
      privateKey: fs.readFileSync(clientKey, 'utf8'),
      privateKeyFile: clientKey,
      hostPublicKey,
      knownHostsFile,
      logFile,
    };
  };
  if (live !== undefined && port !== undefined && fs.existsSync(conf) && fs.readFileSync(conf, 'utf8') === text(port)) {
    return result(port, live, true);
  }
  if (live !== undefined) await stopPid(live, 5000, 'SIGTERM');
  let lastError: unknown;
  // A port asked for is that port or a failure; otherwise another free one is tried if it was taken meanwhile.
  for (let attempt = 0; attempt < (opts.port !== undefined ? 1 : 5); attempt++) {
    const p = attempt === 0 && port !== undefined ? port : await findFreePort(host);
    fs.writeFileSync(conf, text(p));
    fs.rmSync(opts.pidFile, { force: true });
    const logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const newLog = () => {
      try {
        return fs.readFileSync(logFile, 'utf8').slice(logStart);
      } catch {
        return '';
      }
    };
    const r = spawnSync(SSHD, ['-f', conf, '-E', logFile], { encoding: 'utf8' });
    if (r.status !== 0) {
      lastError = new Error(`${SSHD} -f ${conf} failed (${r.status}): ${r.stderr}${newLog()}`);
      if (/Address already in use/.test(newLog())) continue;
      throw lastError;
    }
    try {
      // The daemon forks after binding: wait for its pid file, then for the port.
      const deadline = Date.now() + 15000;
      while (runningPid(opts.pidFile) === undefined) {
        if (/Address already in use|fatal/i.test(newLog()) || Date.now() > deadline)
          throw new Error(`sshd did not start on ${host}:${p}\n${newLog()}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      const pid = runningPid(opts.pidFile)!;
      await waitForPort(p, () => runningPid(opts.pidFile) !== undefined, newLog, 15000, 'sshd');
      return result(p, pid, false);
    } catch (err) {
      lastError = err;
      const pid = runningPid(opts.pidFile);
      if (pid !== undefined) await stopPid(pid, 5000, 'SIGTERM');
      if (!/Address already in use/.test(newLog())) throw err;
    }
  }
  throw lastError;
}
