/**
 * SSH host key checking for apt-ops: a key pinned in stack config (`apt-repo:sshHostKey`) or the
 * operator's known_hosts file, compared with the key blob the server presents during key exchange.
 * Formats follow sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" and RFC 4253 §6.6 (public key blob).
 */
import { createHash, createHmac } from 'crypto';
import { ConfigError } from '../errors';

/** A public key as written on one line: `<type> <base64 blob> [comment]`. `blob` is the decoded wire format. */
export interface PublicKey {
  type: string;
  blob: Buffer;
  comment?: string;
}

/** One usable known_hosts line. `patterns` is the raw host field (comma-separated, possibly hashed). */
export interface KnownHostsEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string;
  key: PublicKey;
  /** 1-based line number in the file, for messages. */
  line: number;
}

/**
 * What the server's key is checked against: the key pinned in config, or the keys known_hosts lists
 * for this host (`keys` may be empty: then every key is refused as unknown).
 */
export type HostKeyPolicy =
  { kind: 'pinned'; key: PublicKey; source: string } | { kind: 'known_hosts'; file: string; keys: PublicKey[]; revoked: PublicKey[] };

/**
 * Reads the key type written inside a public key blob (RFC 4253 §6.6: `string` type name first).
 * @returns the type, or undefined for a blob too short to hold one.
 */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** The key's fingerprint as `ssh-keygen -l` prints it by default: `SHA256:` + unpadded base64 of SHA-256(blob). */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/**
 * Parses `<type> <base64> [comment]` (an OpenSSH public key line, as in `ssh_host_ed25519_key.pub`).
 * @param source names the file/key the line came from, for the error.
 * @throws ConfigError(source, reason) for a line without two fields, bad base64, or a blob whose
 *         embedded type differs from the written one.
 */
export function parsePublicKey(line: string, source: string): PublicKey {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2 || fields[0] === '')
    throw new ConfigError(source, `expected '<type> <base64 key> [comment]', got '${abbreviate(line)}'`);
  const [type, b64, ...rest] = fields;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    throw new ConfigError(source, `the key of type ${type} is not valid base64`);
  const blob = Buffer.from(b64, 'base64');
  const inner = keyTypeOfBlob(blob);
  if (inner !== type) throw new ConfigError(source, `the key says type ${type} but its data holds ${inner ?? 'no valid key'}`);
  return { type, blob, comment: rest.length ? rest.join(' ') : undefined };
}

/**
 * Parses a known_hosts file. Lines that are blank, comments or malformed are skipped, as ssh does.
 * @param text the file's content; `file` its path (kept for messages only).
 */
export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (fields[0].startsWith('@')) {
      if (fields[0] !== '@revoked' && fields[0] !== '@cert-authority') return;
      marker = fields[0];
      fields = fields.slice(1);
    }
    if (fields.length < 3) return;
    try {
      entries.push({ marker, patterns: fields[0], key: parsePublicKey(fields.slice(1).join(' '), `${file}:${i + 1}`), line: i + 1 });
    } catch {
      // ssh ignores a line it cannot parse; so do we.
    }
  });
  return entries;
}

/** The name known_hosts stores for a host: `host` on port 22, `[host]:port` otherwise (lower case). */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * Whether a known_hosts host field matches `host` on `port`: a hashed entry (`|1|salt|hmac`,
 * HMAC-SHA1 keyed with the salt), or comma-separated patterns with `*`/`?` wildcards where a matching
 * `!pattern` vetoes the line (sshd(8)).
 */
export function hostMatches(patterns: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p === '') continue;
    const negated = p.startsWith('!');
    const re = globToRegExp(negated ? p.slice(1) : p);
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * The known_hosts keys that apply to `host`:`port` (plain keys) and the revoked ones.
 * `@cert-authority` lines are ignored: host certificates are not used by ssh2.
 */
export function knownKeysFor(entries: KnownHostsEntry[], host: string, port: number): { keys: PublicKey[]; revoked: PublicKey[] } {
  const keys: PublicKey[] = [];
  const revoked: PublicKey[] = [];
  for (const e of entries) {
    if (e.marker === '@cert-authority') continue;
    if (!hostMatches(e.patterns, host, port)) continue;
    (e.marker === '@revoked' ? revoked : keys).push(e.key);
  }
  return { keys, revoked };
}

/**
 * Decides whether the key blob the server presented is acceptable under `policy`.
 * Keys are compared as whole blobs (base64 of the wire format), never by fingerprint alone.
 * @param target `host:port`, used in the reason.
 * @returns `{ ok: true }` or `{ ok: false, reason }` with a one-line reason for the operator.
 */
export function checkHostKey(presented: Buffer, policy: HostKeyPolicy, target: string): { ok: true } | { ok: false; reason: string } {
  const got = presented.toString('base64');
  const gotDesc = `${fingerprint(presented)} (${keyTypeOfBlob(presented) ?? 'unknown type'})`;
  if (policy.kind === 'pinned') {
    if (policy.key.blob.toString('base64') === got) return { ok: true };
    return {
      ok: false,
      reason: `host key of ${target} does not match ${policy.source}: expected ${fingerprint(policy.key.blob)} (${policy.key.type}), got ${gotDesc}; refusing to connect`,
    };
  }
  if (policy.revoked.some((k) => k.blob.toString('base64') === got)) {
    return { ok: false, reason: `host key of ${target} ${gotDesc} is marked @revoked in ${policy.file}; refusing to connect` };
  }
  if (policy.keys.some((k) => k.blob.toString('base64') === got)) return { ok: true };
  if (policy.keys.length === 0) {
    return {
      ok: false,
      reason: `host key of ${target} is unknown: ${gotDesc} is not in ${policy.file} and apt-repo:sshHostKey is not set; check the fingerprint, then set apt-repo:sshHostKey or add it to known_hosts`,
    };
  }
  return {
    ok: false,
    reason: `host key of ${target} does not match ${policy.file}: expected ${policy.keys.map((k) => fingerprint(k.blob)).join(' or ')}, got ${gotDesc}; refusing to connect`,
  };
}

/**
 * The ssh2 `algorithms.serverHostKey` list that makes the server present a key of a type we know
 * (as ssh does with HostKeyAlgorithms ordered by known_hosts): an RSA key can be proven with
 * rsa-sha2-512/256 or ssh-rsa signatures. Undefined when no key is known (ssh2's defaults apply).
 */
export function serverHostKeyAlgorithms(keys: PublicKey[]): string[] | undefined {
  const algos: string[] = [];
  for (const k of keys) {
    const add = k.type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [k.type];
    for (const a of add) if (SUPPORTED_HOST_KEY_ALGOS.includes(a) && !algos.includes(a)) algos.push(a);
  }
  return algos.length ? algos : undefined;
}

// What ssh2 1.x can verify (its README, "serverHostKey"); other types (certificates, sk-*) are skipped.
const SUPPORTED_HOST_KEY_ALGOS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
  'ssh-dss',
];

function abbreviate(s: string): string {
  const t = s.trim();
  return t.length > 40 ? t.slice(0, 37) + '…' : t;
}
