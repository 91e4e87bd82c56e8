/**
 * Opens the SSH connection apt-ops works over (node-ssh on top of ssh2): host key checked against
 * the pinned key or known_hosts, authentication with ssh-agent and/or a key file, and failures
 * turned into one-line ConnectionError / ConfigError messages.
 */
import * as fs from 'fs';
import { NodeSSH, Config as NodeSshConfig } from 'node-ssh';
import { ConfigError, UsageError } from '../errors';
import { ConnectionError } from './errors';
import { checkHostKey, HostKeyPolicy, knownKeysFor, parseKnownHosts, parsePublicKey, serverHostKeyAlgorithms } from './hostKey';
import { OpsConfig } from './stackConfig';

/** An open connection plus what is needed to report its loss. */
export interface Connection {
  ssh: NodeSSH;
  /** `user@host:port`, for messages. */
  target: string;
  /** The error that ended the connection, or `closed` once it is gone without one. */
  state(): { closed: boolean; error?: Error };
  /** Registers a callback run once when the connection closes (immediately if already closed). */
  onClose(cb: () => void): void;
  /** Closes the connection (idempotent). */
  dispose(): void;
}

/** `user@host:port` of a config. */
export function targetOf(cfg: Pick<OpsConfig, 'user' | 'host' | 'port'>): string {
  return `${cfg.user}@${cfg.host}:${cfg.port}`;
}

/**
 * The host key policy for `cfg`: the pinned key (cfg.hostKey) if set, else the keys that
 * cfg.knownHostsFile lists for host:port (a missing file means no known key).
 * @throws ConfigError naming the source for a malformed pinned key.
 */
export function hostKeyPolicy(cfg: Pick<OpsConfig, 'host' | 'port' | 'hostKey' | 'hostKeySource' | 'knownHostsFile'>): HostKeyPolicy {
  if (cfg.hostKey !== undefined) {
    const source = cfg.hostKeySource ?? 'the pinned host key';
    return { kind: 'pinned', key: parsePublicKey(cfg.hostKey, source), source };
  }
  let text = '';
  try {
    text = fs.readFileSync(cfg.knownHostsFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ConfigError(cfg.knownHostsFile, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { keys, revoked } = knownKeysFor(parseKnownHosts(text, cfg.knownHostsFile), cfg.host, cfg.port);
  return { kind: 'known_hosts', file: cfg.knownHostsFile, keys, revoked };
}

/**
 * Builds the ssh2 connect options (via node-ssh's Config) for `cfg`: credentials, host verifier,
 * timeouts, keepalives. `onRefused` receives the host key refusal reason.
 * @throws UsageError when neither an agent nor a key file is available; ConfigError for an
 *         unreadable key file or malformed pinned key.
 */
export function sshOptions(cfg: OpsConfig, onRefused: (reason: string) => void): NodeSshConfig {
  if (!cfg.agentSocket && !cfg.identityFile) {
    throw new UsageError('no SSH credentials: start ssh-agent with your key (SSH_AUTH_SOCK) or pass --identity <file> / APT_OPS_IDENTITY');
  }
  let privateKey: string | undefined;
  if (cfg.identityFile) {
    try {
      privateKey = fs.readFileSync(cfg.identityFile, 'utf8');
    } catch (e) {
      throw new ConfigError(
        cfg.identityFile,
        `cannot read the identity file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }
  const policy = hostKeyPolicy(cfg);
  const hostPort = `${cfg.host}:${cfg.port}`;
  const known = policy.kind === 'pinned' ? [policy.key] : policy.keys;
  const algos = serverHostKeyAlgorithms(known);
  return {
    host: cfg.host,
    port: cfg.port,
    username: cfg.user,
    agent: cfg.agentSocket,
    privateKey,
    passphrase: privateKey ? cfg.passphrase : undefined,
    readyTimeout: cfg.connectTimeoutMs,
    keepaliveInterval: 10_000,
    keepaliveCountMax: 3,
    ...(algos ? { algorithms: { serverHostKey: algos } } : {}),
    hostVerifier: (key: Buffer) => {
      const verdict = checkHostKey(key, policy, hostPort);
      if (!verdict.ok) onRefused(verdict.reason);
      return verdict.ok;
    },
  } as NodeSshConfig;
}

/**
 * Maps an error from ssh2/node-ssh during connect to a one-line apt-ops error.
 * @param refused the host key refusal reason, if the verifier refused.
 */
export function connectError(err: unknown, cfg: OpsConfig, refused?: string): Error {
  const target = targetOf(cfg);
  if (refused) return new ConnectionError(target, refused);
  const e = err as Error & { code?: string; level?: string };
  const msg = String(e?.message ?? err);
  if (cfg.identityFile && /encrypted/i.test(msg) && /passphrase/i.test(msg)) {
    return new ConfigError(cfg.identityFile, 'the key is encrypted: set APT_OPS_PASSPHRASE or load it into ssh-agent');
  }
  if (cfg.identityFile && /(Cannot parse privateKey|Unsupported key format|privateKey value|bad passphrase|Malformed)/i.test(msg)) {
    return new ConfigError(cfg.identityFile, `cannot use the identity file: ${msg}`);
  }
  if (e?.level === 'client-authentication' || /All configured authentication methods failed/.test(msg)) {
    const tried = [cfg.agentSocket ? `ssh-agent (${cfg.agentSocket})` : '', cfg.identityFile ? `key file ${cfg.identityFile}` : '']
      .filter(Boolean)
      .join(' and ');
    return new ConnectionError(target, `authentication failed (tried ${tried})`);
  }
  if (e?.code === 'ECONNREFUSED') return new ConnectionError(target, 'connection refused (is sshd running and the port right?)');
  if (e?.level === 'client-timeout' || e?.code === 'ETIMEDOUT')
    return new ConnectionError(target, `timed out after ${cfg.connectTimeoutMs / 1000} s`);
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN' || e?.level === 'client-dns')
    return new ConnectionError(target, `host not found (${e.code ?? msg})`);
  if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH') return new ConnectionError(target, `host unreachable (${e.code})`);
  if (e?.code === 'ECONNRESET' || /No response from server/.test(msg))
    return new ConnectionError(target, 'the server closed the connection during the handshake');
  if (err instanceof UsageError || err instanceof ConfigError) return err;
  return new ConnectionError(target, msg.split('\n')[0]);
}

/**
 * Connects to the server `cfg` names and checks its host key.
 * @returns an open Connection; call dispose() when done.
 * @throws ConnectionError (exit 255) for refused/timed out/unknown host, host key refused, failed
 *         authentication; ConfigError/UsageError for unusable credentials.
 */
export async function connect(cfg: OpsConfig): Promise<Connection> {
  let refused: string | undefined;
  const options = sshOptions(cfg, (r) => (refused = r));
  const ssh = new NodeSSH();
  try {
    await ssh.connect(options);
  } catch (err) {
    ssh.dispose();
    throw connectError(err, cfg, refused);
  }
  const client = ssh.connection!;
  let closed = false;
  let lastError: Error | undefined;
  const closers: (() => void)[] = [];
  // node-ssh drops its 'error' listener once connected; without ours a reset would crash the process.
  client.on('error', (err: Error) => (lastError = err));
  const onGone = () => {
    closed = true;
    for (const cb of closers.splice(0)) cb();
  };
  // 'end' (the server's FIN) comes before 'close'; pending SFTP requests may fail in between, and
  // their errors must already read as a lost connection.
  client.on('end', onGone);
  client.on('close', onGone);
  return {
    ssh,
    target: targetOf(cfg),
    state: () => ({ closed, error: lastError }),
    onClose(cb) {
      if (closed) cb();
      else closers.push(cb);
    },
    dispose() {
      ssh.dispose();
    },
  };
}
