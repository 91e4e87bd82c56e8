import { createHash } from 'crypto';
import { createReadStream } from 'fs';
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
export function digestFile(file: string): Promise<{ size: number; digests: Digests }> {
  return new Promise((resolve, reject) => {
    const hashes = ['md5', 'sha1', 'sha256', 'sha512'].map((a) => createHash(a));
    let size = 0;
    createReadStream(file)
      .on('data', (chunk) => {
        size += chunk.length;
        for (const h of hashes) h.update(chunk);
      })
      .on('error', reject)
      .on('end', () => {
        const [MD5sum, SHA1, SHA256, SHA512] = hashes.map((h) => h.digest('hex'));
        resolve({ size, digests: { MD5sum, SHA1, SHA256, SHA512 } });
      });
  });
}
