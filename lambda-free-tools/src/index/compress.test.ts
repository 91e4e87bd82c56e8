import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { gzipBuffer, xzBuffer } from './compress';

// Text like a Packages file (compressible) plus random bytes (not), so both code paths of the compressors run.
const sample = Buffer.concat([Buffer.from('Package: hello\nVersion: 2.10-3\nDescription: hi\n\n'.repeat(5000)), randomBytes(200_000)]);

describe('gzipBuffer', () => {
  it('round-trips through gzip -dc and is deterministic', async () => {
    const gz = await gzipBuffer(sample);
    expect(gz.length).toBeLessThan(sample.length);
    expect(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 << 20 }).equals(sample)).toBe(true);
    expect((await gzipBuffer(sample)).equals(gz)).toBe(true);
  });
  it('compresses an empty buffer to a valid empty gzip stream', async () => {
    expect(execFileSync('gzip', ['-dc'], { input: await gzipBuffer(Buffer.alloc(0)) }).length).toBe(0);
  });
});

describe('xzBuffer', () => {
  it('round-trips through xz -dc and is deterministic', async () => {
    const xz = await xzBuffer(sample);
    expect(xz.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe(true);
    expect(execFileSync('xz', ['-dc'], { input: xz, maxBuffer: 64 << 20 }).equals(sample)).toBe(true);
    expect((await xzBuffer(sample)).equals(xz)).toBe(true);
  });
  it('compresses an empty buffer to a valid empty xz stream', async () => {
    expect(execFileSync('xz', ['-dc'], { input: await xzBuffer(Buffer.alloc(0)) }).length).toBe(0);
  });
  it('rejects an invalid preset with a clear error', async () => {
    await expect(xzBuffer(sample, { preset: 12 })).rejects.toThrow(/xz: invalid preset 12/);
  });
  it('reports a missing xz binary as AptRepoError', async () => {
    await expect(xzBuffer(sample, { command: '/nonexistent/xz' })).rejects.toThrow(
      /xz: command '\/nonexistent\/xz' not found; install xz-utils/,
    );
  });
});
