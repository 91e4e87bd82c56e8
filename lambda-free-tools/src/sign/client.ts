/**
 * The indexer's side of the signing service (sign/service.ts): sends one Release over the Unix
 * socket, reads the one-line JSON answer. The indexer never opens the private key.
 */
import * as net from 'net';
import { AptRepoError } from '../errors';
import type { ReleaseSigner, SignedRelease } from './sign';

/** Longest answer read, in bytes (the signatures add a few KiB to a Release of at most 4 MiB). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** How long publish waits for one signature, in ms (RSA-4096 takes well under a second). */
export const SIGN_TIMEOUT_MS = 60_000;

/** The signing service is unreachable, too slow, or refused to sign; `socket` names it. */
export class SignerError extends AptRepoError {
  constructor(
    readonly socket: string,
    readonly reason: string,
  ) {
    super(`signer at ${socket}: ${reason}`);
  }
}

/** A reason for a failed connection, in words an operator can act on. */
function connectReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT':
      return 'no such socket (ENOENT): the signing service is not running, or repo.yaml signerSocket is wrong';
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED): the signing service is not running';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${e.code}): this user may not connect; the socket's folder must be in the indexer's group`;
    case 'ENOTSOCK':
      return 'not a socket (ENOTSOCK)';
    default:
      return `cannot connect (${e.code ?? e.message})`;
  }
}

/**
 * Parses the service's answer (the first line of `text`).
 * @throws SignerError(socket, …) for an answer that is not the protocol's JSON, a refusal (with the
 *         service's reason), or signatures that do not have the shape apt needs.
 */
export function parseAnswer(socket: string, text: string): SignedRelease {
  const line = text.split('\n')[0];
  if (line === '') throw new SignerError(socket, 'closed the connection without an answer');
  let a: unknown;
  try {
    a = JSON.parse(line);
  } catch {
    throw new SignerError(socket, `answered something that is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const o = a as { ok?: unknown; error?: unknown; inRelease?: unknown; releaseGpg?: unknown };
  if (o?.ok === false) throw new SignerError(socket, `refused to sign: ${typeof o.error === 'string' ? o.error : 'no reason given'}`);
  if (o?.ok !== true || typeof o.inRelease !== 'string' || typeof o.releaseGpg !== 'string') {
    throw new SignerError(socket, 'answered JSON that is not {ok, inRelease, releaseGpg}');
  }
  if (!o.inRelease.startsWith('-----BEGIN PGP SIGNED MESSAGE-----\n') || !o.inRelease.endsWith('\n-----END PGP SIGNATURE-----\n')) {
    throw new SignerError(socket, 'answered an InRelease that is not a cleartext signature ending with its END PGP SIGNATURE line');
  }
  if (!o.releaseGpg.startsWith('-----BEGIN PGP SIGNATURE-----\n') || !o.releaseGpg.endsWith('\n-----END PGP SIGNATURE-----\n')) {
    throw new SignerError(socket, 'answered a Release.gpg that is not an armored signature');
  }
  return { inRelease: o.inRelease, releaseGpg: o.releaseGpg };
}

/**
 * Sends `release` to the service at `socket` and resolves to its signatures (one connection).
 * @throws SignerError naming the socket and the reason: not running, no permission, timed out,
 *         refused (with the service's reason), malformed answer.
 */
export function requestSignature(socket: string, release: string | Buffer, timeoutMs = SIGN_TIMEOUT_MS): Promise<SignedRelease> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let connected = false;
    let settled = false;
    const s = net.connect({ path: socket, allowHalfOpen: true });
    const fail = (err: SignerError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new SignerError(socket, `no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    s.on('connect', () => {
      connected = true;
      s.end(release);
    });
    s.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_ANSWER_BYTES) return fail(new SignerError(socket, `answer over ${MAX_ANSWER_BYTES} bytes`));
      chunks.push(d);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET while sending: the service answered (a refusal) and closed; read what came.
      if (connected && (e.code === 'EPIPE' || e.code === 'ECONNRESET')) return;
      fail(new SignerError(socket, connected ? `connection failed: ${e.code ?? e.message}` : connectReason(e)));
    });
    s.on('close', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        resolve(parseAnswer(socket, Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** A ReleaseSigner that asks the signing service at `socket`, one connection per Release. */
export function socketSigner(socket: string, timeoutMs = SIGN_TIMEOUT_MS): ReleaseSigner {
  return { sign: (releaseText: string) => requestSignature(socket, releaseText, timeoutMs) };
}
