import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chunkEnds, compressChunked, isIndexChunkList, MAX_CHUNK, MIN_CHUNK, xzBlocks, type ChunkedIndex } from './chunks';
import { xzBuffer } from './compress';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A Packages-like stanza for package `n`, version `v` (about 450 bytes, half of it digests). */
function stanza(n: number, v = '1.0-1'): string {
  return [
    `Package: pkg-${n}`,
    `Version: ${v}`,
    'Architecture: amd64',
    `Filename: pool/main/p/pkg-${n}/pkg-${n}_${v}_amd64.deb`,
    `Size: ${1000 + n}`,
    `SHA256: ${sha(`${n} ${v}`)}`,
    `SHA512: ${sha(`a${n}`)}${sha(`b${n}`)}`,
    `Description: package number ${n}`,
    ' generated for the chunking tests.',
    '',
  ].join('\n');
}

/** The Packages text of packages `names` (one version each), stanzas separated by a blank line. */
const packagesText = (stanzas: string[]) => Buffer.from(stanzas.join('\n'));

const names = Array.from({ length: 8000 }, (_, i) => i * 2); // even numbers: odd ones can be inserted in order
const base = names.map((n) => stanza(n));

const unxz = (b: Buffer) => execFileSync('xz', ['-dc'], { input: b, maxBuffer: 256 << 20 });
const gunzip = (b: Buffer) => execFileSync('gzip', ['-dc'], { input: b, maxBuffer: 256 << 20 });

/** The chunk texts of `raw` (see chunkEnds). */
const chunkTexts = (raw: Buffer) => chunkEnds(raw).map((end, i, ends) => raw.subarray(i === 0 ? 0 : ends[i - 1], end).toString());

function expectValid(out: ChunkedIndex, raw: Buffer): void {
  expect(gunzip(out.gz).equals(raw)).toBe(true);
  expect(unxz(out.xz).equals(raw)).toBe(true);
  // gzip -t and xz -t check the CRCs (gzip's trailer, xz's block checks, index and footer).
  execFileSync('gzip', ['-t'], { input: out.gz });
  execFileSync('xz', ['-t'], { input: out.xz });
  const blocks = xzBlocks(out.xz);
  expect(blocks.map((b) => b.uncompressed)).toEqual(out.chunks.map((c) => c.size));
  // xz itself counts one stream and one block per chunk (xz --list reads only a file).
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chunks-')), 'Packages.xz');
  fs.writeFileSync(file, out.xz);
  const robot = execFileSync('xz', ['--robot', '-lv', file]).toString();
  fs.rmSync(path.dirname(file), { recursive: true });
  expect(robot).toMatch(new RegExp(`^totals\\t1\\t${out.chunks.length}\\t`, 'm'));
}

describe('chunkEnds', () => {
  const raw = packagesText(base);
  const ends = chunkEnds(raw);

  it('cuts only between stanzas, within the size bounds, and covers the text', () => {
    expect(ends.length).toBeGreaterThan(5);
    expect(ends[ends.length - 1]).toBe(raw.length);
    let start = 0;
    for (const [i, end] of ends.entries()) {
      if (i < ends.length - 1) {
        expect(raw.toString('latin1', end - 2, end)).toBe('\n\n');
        expect(raw.toString('latin1', end, end + 9)).toBe('Package: ');
        expect(end - start).toBeGreaterThanOrEqual(MIN_CHUNK);
      }
      expect(end - start).toBeLessThan(MAX_CHUNK + 1000);
      start = end;
    }
  });

  it('keeps the other chunks when a stanza is added or removed', () => {
    const before = chunkTexts(raw);
    const added = chunkTexts(packagesText([...base.slice(0, 4000), stanza(7999), ...base.slice(4000)]));
    const removed = chunkTexts(packagesText([...base.slice(0, 2000), ...base.slice(2001)]));
    for (const after of [added, removed]) {
      const same = after.filter((t) => before.includes(t)).length;
      expect(same).toBeGreaterThanOrEqual(before.length - 2);
      expect(same).toBeLessThan(before.length);
    }
  });

  it('gives no chunk for an empty text and one for a short one', () => {
    expect(chunkEnds(Buffer.alloc(0))).toEqual([]);
    expect(chunkEnds(packagesText(base.slice(0, 3)))).toEqual([packagesText(base.slice(0, 3)).length]);
  });

  it('cuts a text without stanza ends only at its end', () => {
    const noBlank = Buffer.alloc(MAX_CHUNK * 2, 'a');
    expect(chunkEnds(noBlank)).toEqual([noBlank.length]);
  });
});

describe('compressChunked', () => {
  const raw = packagesText(base);
  let first: ChunkedIndex;
  beforeAll(async () => {
    first = await compressChunked(raw);
  });

  it('writes one gzip member and one xz stream that gzip, xz and their -t checks accept', () => {
    expect(first.reused).toBe(0);
    expect(isIndexChunkList(first.chunks)).toBe(true);
    expectValid(first, raw);
    // Comparable to compressing the whole text at once.
    expect(first.gz.length).toBeLessThan(raw.length / 2);
  });

  it('copies the unchanged chunks of the previous version and gives the bytes a fresh run gives', async () => {
    const next = packagesText([...base.slice(0, 4000), stanza(7999), ...base.slice(4000)]);
    const again = await compressChunked(next, { chunks: first.chunks, gz: first.gz, xz: first.xz });
    expect(again.reused).toBeGreaterThanOrEqual(first.chunks.length - 2);
    expect(again.reused).toBeLessThan(again.chunks.length);
    expectValid(again, next);
    const fresh = await compressChunked(next);
    expect(fresh.reused).toBe(0);
    expect(again.gz.equals(fresh.gz)).toBe(true);
    expect(again.xz.equals(fresh.xz)).toBe(true);
    expect(again.chunks).toEqual(fresh.chunks);
  });

  it('compresses again a chunk whose recorded place lies outside the previous files', async () => {
    const cut = { chunks: first.chunks, gz: first.gz.subarray(0, 100), xz: first.xz.subarray(0, 100) };
    const out = await compressChunked(raw, cut);
    expect(out.reused).toBe(0);
    expectValid(out, raw);
  });

  it('compresses an empty text to valid empty files', async () => {
    const out = await compressChunked(Buffer.alloc(0));
    expect(out.chunks).toEqual([]);
    expect(gunzip(out.gz).length).toBe(0);
    expect(unxz(out.xz).length).toBe(0);
  });

  it('checks the chunk list read back from a file', () => {
    expect(isIndexChunkList([])).toBe(true);
    const c = first.chunks[0];
    expect(isIndexChunkList([{ ...c, sha256: 'x' }])).toBe(false);
    expect(isIndexChunkList([{ ...c, xz: [c.xz[0], c.xz[1] + 1, c.xz[2]] }])).toBe(false);
    expect(isIndexChunkList([{ ...c, gz: [-1, 3] }])).toBe(false);
    expect(isIndexChunkList({})).toBe(false);
  });
});

describe('xzBlocks', () => {
  it('reads the blocks of what xz writes and refuses a damaged stream', async () => {
    const data = Buffer.from('x'.repeat(300_000));
    const xz = await xzBuffer(data, { blockList: [100_000, 200_000] });
    expect(xzBlocks(xz).map((b) => b.uncompressed)).toEqual([100_000, 200_000]);
    const damaged = Buffer.from(xz);
    damaged[damaged.length - 14] ^= 1; // inside the index CRC
    expect(() => xzBlocks(damaged)).toThrow(/xz: unexpected output \(index CRC\)/);
    expect(() => xzBlocks(Buffer.from('not xz at all, not xz at all, not xz'))).toThrow(/no stream header/);
  });

  it('refuses a block list that does not add up', async () => {
    await expect(xzBuffer(Buffer.from('abc'), { blockList: [1, 1] })).rejects.toThrow(/block list does not add up to the 3 bytes/);
  });
});
