/**
 * A real OpenSSH server started by a test or by `npm run local` (`/usr/sbin/sshd -D -e -f <tmp>/sshd_config`)
 * with its own ed25519 host key and one authorized client key for the current user (root in the
 * test containers), listening on a free port of 127.0.0.1, stopped by the test.
 * Options follow sshd_config(5); keys are made with ssh-keygen(1).
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findFreePort, stopChild, trackChild, waitForListening } from './processes';

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
