import { createHash } from 'crypto';
import * as fs from 'fs';
import { hashFd } from '../core/files';
import type { Digests } from '../core/types';

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
