/**
 * The signing service: the only process that reads a channel's private key. It signs a Release it
 * is sent and nothing else, so the indexer, which parses untrusted `.deb` files, never holds a key.
 *
 * Protocol (one request per connection, over a Unix socket or stdin/stdout under systemd socket
 * activation): the client writes the exact Release bytes and half-closes; the server answers one
 * line of JSON and closes:
 *   `{"ok":true,"inRelease":"<cleartext-signed Release>","releaseGpg":"<armored detached signature>"}`
 *   `{"ok":false,"error":"<reason>"}`
 * A request is refused when it is over MAX_REQUEST_BYTES, holds a NUL byte or invalid UTF-8, is
 * not one deb822 stanza (Debian wiki "DebianRepository/Format", Release), or is not a Release of
 * this channel: Origin and Label must equal the channel's, Codename must be listed in liste_dist,
 * Suite (when present) too, and Date and a SHA256 block must be present.
 * Every signature and refusal is logged as one line (codename, SHA-256 of the request).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { Readable, Writable } from 'stream';
import { AptRepoError, ConfigError } from '../errors';
import { getField, parseStanzas } from '../deb/control';
import type { ChannelConfig } from '../core/types';
import type { ReleaseSigner, SignedRelease } from './sign';

/** Largest request accepted, in bytes (a Release of thousands of index files is well below). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** How long a client has to send its whole request, in ms, from the moment it connected. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Connections served at once by sign-server; more are closed by the kernel side at once. */
export const MAX_CONNECTIONS = 16;

/** The one-line answer of the service (see the module comment). */
export type SignAnswer = ({ ok: true } & SignedRelease) | { ok: false; error: string };

/** What a Release must match: the channel's Release fields and codenames. */
export type ReleaseIdentity = Pick<ChannelConfig, 'name' | 'origin' | 'label' | 'codenames'>;

/** A request the service refuses; `reason` is sent back to the client. */
export class SignRequestError extends AptRepoError {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * Checks that `bytes` is a Release of channel `ch` (see the module comment) and returns its text
 * and codename.
 * @throws SignRequestError naming the first problem found.
 */
export function checkRelease(bytes: Buffer, ch: ReleaseIdentity): { text: string; codename: string } {
  if (bytes.length === 0) throw new SignRequestError('empty request: expected a Release file');
  if (bytes.length > MAX_REQUEST_BYTES)
    throw new SignRequestError(`request of ${bytes.length} bytes is over the ${MAX_REQUEST_BYTES}-byte limit`);
  if (bytes.includes(0)) throw new SignRequestError('request holds a NUL byte: not a Release file');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SignRequestError('request is not valid UTF-8: not a Release file');
  }
  let stanzas;
  try {
    stanzas = parseStanzas(text, 'request');
  } catch (e) {
    throw new SignRequestError(`not a Release file (${(e as Error).message})`);
  }
  if (stanzas.length !== 1) throw new SignRequestError(`not a Release file: ${stanzas.length} stanzas, expected one`);
  const s = stanzas[0];
  const field = (name: string) => getField(s, name);
  const origin = field('Origin');
  const label = field('Label');
  const codename = field('Codename');
  const suite = field('Suite');
  if (origin !== ch.origin)
    throw new SignRequestError(`Origin ${JSON.stringify(origin ?? null)} is not channel ${ch.name}'s (${JSON.stringify(ch.origin)})`);
  if (label !== ch.label)
    throw new SignRequestError(`Label ${JSON.stringify(label ?? null)} is not channel ${ch.name}'s (${JSON.stringify(ch.label)})`);
  if (codename === undefined || !ch.codenames.includes(codename)) {
    throw new SignRequestError(
      `Codename ${JSON.stringify(codename ?? null)} is not in channel ${ch.name}'s liste_dist (${ch.codenames.join(', ')})`,
    );
  }
  if (suite !== undefined && !ch.codenames.includes(suite))
    throw new SignRequestError(`Suite ${JSON.stringify(suite)} is not in channel ${ch.name}'s liste_dist`);
  if (field('Date') === undefined) throw new SignRequestError('not a Release file: no Date field');
  if (field('SHA256') === undefined) throw new SignRequestError('not a Release file: no SHA256 field');
  return { text, codename };
}

/**
 * Answers one request: checks it (checkRelease), signs it with `signer`, logs one line through
 * `log` either way. Never throws: a signing failure becomes `{ ok: false }`.
 */
export async function answerRequest(
  bytes: Buffer,
  ch: ReleaseIdentity,
  signer: ReleaseSigner,
  log: (line: string) => void,
): Promise<SignAnswer> {
  const digest = createHash('sha256').update(bytes).digest('hex');
  let checked: { text: string; codename: string };
  try {
    checked = checkRelease(bytes, ch);
  } catch (e) {
    const reason = e instanceof SignRequestError ? e.reason : `cannot read the request: ${(e as Error).message}`;
    log(`refused ${bytes.length} bytes sha256 ${digest}: ${reason}`);
    return { ok: false, error: reason };
  }
  try {
    const signed = await signer.sign(checked.text);
    log(`signed ${ch.name} ${checked.codename} Release sha256 ${digest}`);
    return { ok: true, inRelease: signed.inRelease, releaseGpg: signed.releaseGpg };
  } catch (e) {
    log(`failed ${ch.name} ${checked.codename} Release sha256 ${digest}: ${(e as Error).message}`);
    return { ok: false, error: `signing failed: ${(e as Error).message}` };
  }
}

/**
 * Reads a whole request from `input` until its end, at most `maxBytes`, within `timeoutMs`.
 * Resolves `{ bytes }`, or `{ refused }` with the reason when the request is too large (the rest
 * is then read and dropped until the end or the time limit, so the client can read the answer)
 * or not complete in time (`input` is then destroyed by the caller's handling of `timedOut`).
 */
export function readRequest(
  input: Readable,
  opts: { maxBytes?: number; timeoutMs?: number } = {},
): Promise<{ bytes: Buffer } | { refused: string; timedOut: boolean }> {
  const maxBytes = opts.maxBytes ?? MAX_REQUEST_BYTES;
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let over = false;
    const done = (r: { bytes: Buffer } | { refused: string; timedOut: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        done({
          refused: over ? `request is over the ${maxBytes}-byte limit` : `request not complete within ${timeoutMs / 1000} s`,
          timedOut: true,
        }),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        // Answer at once; the caller keeps draining until the client's end or the time limit.
        done({ refused: `request is over the ${maxBytes}-byte limit`, timedOut: false });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done({ bytes: Buffer.concat(chunks) });
    const onError = (e: Error) => done({ refused: `connection error: ${e.message}`, timedOut: true });
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}

/** Serialises an answer as the protocol's one line. */
export function answerLine(a: SignAnswer): string {
  return JSON.stringify(a) + '\n';
}

/**
 * Serves one request read from `input` and answered on `output` (a socket for both, or stdin and
 * stdout under systemd's Accept=yes). Resolves to the answer sent.
 */
export async function serveOne(
  input: Readable,
  output: Writable,
  ch: ReleaseIdentity,
  signer: ReleaseSigner,
  log: (line: string) => void,
  limits: { maxBytes?: number; timeoutMs?: number } = {},
): Promise<SignAnswer> {
  const req = await readRequest(input, limits);
  let answer: SignAnswer;
  if ('refused' in req) {
    log(`refused: ${req.refused}`);
    answer = { ok: false, error: req.refused };
  } else {
    answer = await answerRequest(req.bytes, ch, signer, log);
  }
  await new Promise<void>((resolve) => {
    if (output.destroyed || output.writableEnded) return resolve();
    output.on('error', () => resolve());
    output.end(answerLine(answer), () => resolve());
  });
  if ('refused' in req) {
    if (req.timedOut || input.readableEnded || input.destroyed) input.destroy();
    else {
      // Oversized: drop the rest until the client ends, at most until the time limit.
      input.resume();
      const t = setTimeout(() => input.destroy(), limits.timeoutMs ?? REQUEST_TIMEOUT_MS);
      input.once('close', () => clearTimeout(t));
      input.once('end', () => {
        clearTimeout(t);
        input.destroy();
      });
    }
  }
  return answer;
}

/** A running sign-server. */
export interface SignServer {
  socketPath: string;
  /** Stops accepting, lets running requests finish, removes the socket and the pidfile. Idempotent. */
  close(): Promise<void>;
}

/**
 * Whether something answers on the Unix socket `file`: resolves false for ECONNREFUSED (a socket
 * left by a killed server) and ENOENT, true when a connection is accepted.
 */
function socketAlive(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts the long-running signer on the Unix socket `socketPath` (for hosts without systemd).
 * - An existing socket file nobody answers on (left by a killed server) is replaced; a live one,
 *   or a path that is not a socket, is refused (ConfigError naming the path).
 * - The socket is made with mode 0600 (umask during bind), then given the group of its folder and
 *   mode 0660; when the process may not give it that group, it gets 0666 and the folder (0750,
 *   group of the channel's indexer) is the access control.
 * - `pidfile`, when given, gets the process id once the socket listens.
 * - At most MAX_CONNECTIONS at once; each must send its request within REQUEST_TIMEOUT_MS and at
 *   most MAX_REQUEST_BYTES (see serveOne).
 * @throws ConfigError for an unusable socket path or folder.
 */
export async function startSignServer(opts: {
  socketPath: string;
  pidfile?: string;
  ch: ReleaseIdentity;
  signer: ReleaseSigner;
  log: (line: string) => void;
  limits?: { maxBytes?: number; timeoutMs?: number };
}): Promise<SignServer> {
  const { socketPath, ch, signer, log } = opts;
  const dir = path.dirname(socketPath);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (e) {
    throw new ConfigError(socketPath, `the socket's folder cannot be used: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!dirStat.isDirectory()) throw new ConfigError(socketPath, `${dir} is not a folder`);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ConfigError(socketPath, `cannot check the socket path: ${(e as Error).message}`);
  }
  if (existing) {
    if (!existing.isSocket()) throw new ConfigError(socketPath, 'exists and is not a socket; not replacing it');
    if (await socketAlive(socketPath)) throw new ConfigError(socketPath, 'another signer is already listening there');
    fs.unlinkSync(socketPath);
    log(`removed the stale socket ${socketPath}`);
  }

  const active = new Set<net.Socket>();
  const running = new Set<Promise<unknown>>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => {
    active.add(sock);
    sock.on('close', () => active.delete(sock));
    sock.on('error', () => undefined);
    const p = serveOne(sock, sock, ch, signer, log, opts.limits).catch((e) => log(`connection failed: ${(e as Error).message}`));
    running.add(p);
    void p.finally(() => running.delete(p));
  });
  server.maxConnections = MAX_CONNECTIONS;
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } catch (e) {
    throw new ConfigError(socketPath, `cannot listen: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    process.umask(oldMask);
  }
  const ino = fs.statSync(socketPath).ino;
  let mode = 0o660;
  try {
    fs.chownSync(socketPath, -1, dirStat.gid);
  } catch {
    mode = 0o666;
    log(
      `cannot give ${socketPath} the group ${dirStat.gid} of its folder: mode 0666, access is limited by ${dir} (mode ${(dirStat.mode & 0o7777).toString(8)})`,
    );
  }
  fs.chmodSync(socketPath, mode);
  if (opts.pidfile) fs.writeFileSync(opts.pidfile, `${process.pid}\n`, { mode: 0o644 });
  log(`listening on ${socketPath} for channel ${ch.name} (codenames ${ch.codenames.join(', ')})`);

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Requests being signed finish (briefly); a client still sending is cut off.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.allSettled([...running]), new Promise((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        for (const s of active) s.destroy();
        await closed;
        try {
          if (fs.lstatSync(socketPath).ino === ino) fs.unlinkSync(socketPath);
        } catch {
          // Already removed (libuv unlinks a socket it bound when the server closes).
        }
        if (opts.pidfile) {
          try {
            if (fs.readFileSync(opts.pidfile, 'utf8').trim() === String(process.pid)) fs.unlinkSync(opts.pidfile);
          } catch {
            // Gone already.
          }
        }
      })();
      return closing;
    },
  };
}
