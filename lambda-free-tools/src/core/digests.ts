import { createHash } from 'crypto';
import * as fs from 'fs';
import { hashFd } from './files';

/** Digests of a file, as Packages and Release name them; hex lower case. */
export interface Digests {
  MD5sum: string;
  SHA1: string;
  SHA256: string;
  SHA512?: string;
}

/**
 * Digests of an in-memory buffer: MD5sum, SHA1, SHA256 and SHA512, hex lower case, the four
 * algorithms a Release file lists (Debian wiki "DebianRepository/Format", section Release).
 */
export function digestsOf(data: Buffer | string): Digests {
  const hex = (algorithm: string) => createHash(algorithm).update(data).digest('hex');
  return { MD5sum: hex('md5'), SHA1: hex('sha1'), SHA256: hex('sha256'), SHA512: hex('sha512') };
}

/**
 * Size (bytes) and the four digests of a file, read in one streaming pass (never the whole file
 * in memory). Throws the fs error (ENOENT …) unchanged.
 */
export async function digestFile(file: string): Promise<{ size: number; digests: Digests }> {
  const fd = fs.openSync(file, 'r');
  try {
    const { size, hex } = hashFd(fd, ['md5', 'sha1', 'sha256', 'sha512']);
    const [MD5sum, SHA1, SHA256, SHA512] = hex;
    return { size, digests: { MD5sum, SHA1, SHA256, SHA512 } };
  } finally {
    fs.closeSync(fd);
  }
}

/** The digests Packages and Release list, in the order they list them. */
export const DIGEST_NAMES: readonly (keyof Digests)[] = ['MD5sum', 'SHA1', 'SHA256', 'SHA512'];

/**
 * The problems of a file whose size and digests (`actual`) should be `size` and `expected` (only
 * the digests given are compared), one line each naming `what`.
 */
export function compareDigests(
  what: string,
  expected: Partial<Digests>,
  size: number,
  actual: { size: number; digests: Digests },
): string[] {
  const out: string[] = [];
  if (size !== actual.size) out.push(`${what}: size ${actual.size}, expected ${size}`);
  for (const n of DIGEST_NAMES) {
    const want = expected[n];
    if (want && want !== actual.digests[n]) out.push(`${what}: ${n} ${actual.digests[n]}, expected ${want}`);
  }
  return out;
}
