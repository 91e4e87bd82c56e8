/**
 * Chunked compression of an index text (Packages), so that a republish compresses only the part
 * that changed. The text is cut into chunks of whole stanzas at content-defined places (chunkEnds);
 * each chunk is compressed on its own, history reset, into one xz block and one deflate piece; the
 * files are then assembled as ordinary single-stream files:
 *   - Packages.xz: one .xz stream, one block per chunk (the .xz file format 1.1.0, sections 2 and
 *     3: stream header, blocks, index, stream footer), what `xz -T2` writes too;
 *   - Packages.gz: one gzip member (RFC 1952) whose deflate stream (RFC 1951) is the chunks'
 *     pieces, each ended by a full flush (byte-aligned, no history carried over), then an empty
 *     final block; the trailer's CRC-32 is combined from the chunks' CRCs (crc32Combine).
 * Any gzip or xz reader reads them (no multi-member or multi-stream file). A chunk whose bytes (by
 * SHA256) the previous version of the index had is copied from that version's files, recorded in
 * its IndexChunk list (.by-hash.json); the rest are compressed in one xz run and on zlib's threads.
 */
import { createHash } from 'crypto';
import { constants as zconst, deflateRaw } from 'zlib';
import { promisify } from 'util';
import { AptRepoError } from '../errors';
import { crc32, crc32Combine } from '../core/crc32';
import { GZIP_LEVEL, gzipBuffer, xzBuffer } from './compress';

const deflateRawAsync = promisify(deflateRaw);

/** Where one chunk of an index text lies in the compressed files made from it (see the module comment). */
export interface IndexChunk {
  /** Length of the chunk's text, bytes. */
  size: number;
  /** SHA256 of the chunk's text, hex. */
  sha256: string;
  /** CRC-32 of the chunk's text. */
  crc32: number;
  /** [offset, length] of its deflate piece in the .gz file, bytes. */
  gz: [number, number];
  /** [offset, length with block padding, unpadded size] of its block in the .xz file, bytes. */
  xz: [number, number, number];
}

/** The compressed files of one index text and where each chunk lies in them. */
export interface ChunkedIndex {
  gz: Buffer;
  xz: Buffer;
  chunks: IndexChunk[];
  /** How many chunks were copied from the previous files rather than compressed. */
  reused: number;
}

/** The previous version of an index: its chunk list and its .gz and .xz files. */
export interface PreviousChunks {
  chunks: IndexChunk[];
  gz: Buffer;
  xz: Buffer;
}

/** No chunk ends before this many bytes (unless the text does). */
export const MIN_CHUNK = 64 * 1024;
/** A chunk is cut at the first stanza end past this many bytes, anchor or not. */
export const MAX_CHUNK = 1024 * 1024;
/**
 * One stanza in this many (by a hash of its first line, the `Package:` line) starts a chunk, once
 * the chunk has MIN_CHUNK bytes: chunks average MIN_CHUNK plus this many stanzas (about 180 KiB for
 * 500-byte stanzas). Being chosen by content, the cuts stay put when a stanza is added or removed
 * elsewhere: only the chunk that holds the change is compressed again.
 */
export const ANCHOR_ONE_IN = 256;

/** FNV-1a (32 bits) of data[from, to). */
function fnv1a(data: Buffer, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ data[i], 0x01000193);
  return h >>> 0;
}

/**
 * End offsets (exclusive, increasing, the last one raw.length) of the chunks of an index text:
 * every cut falls after a blank line that ends a stanza ("\n\n"), at the first stanza past
 * MIN_CHUNK bytes whose first line hashes to an anchor (ANCHOR_ONE_IN), or past MAX_CHUNK bytes.
 * [] for an empty text.
 */
export function chunkEnds(raw: Buffer): number[] {
  const ends: number[] = [];
  let start = 0;
  let at = raw.indexOf('\n\n', start + MIN_CHUNK - 2);
  while (at >= 0) {
    const cut = at + 2; // the next stanza starts here
    if (cut >= raw.length) break;
    let lineEnd = raw.indexOf(10, cut);
    if (lineEnd < 0) lineEnd = raw.length;
    if (cut - start >= MAX_CHUNK || fnv1a(raw, cut, lineEnd) % ANCHOR_ONE_IN === 0) {
      ends.push(cut);
      start = cut;
      at = raw.indexOf('\n\n', start + MIN_CHUNK - 2);
    } else {
      at = raw.indexOf('\n\n', cut);
    }
  }
  if (raw.length > start) ends.push(raw.length);
  return ends;
}

/** gzip member header (RFC 1952, 2.3): deflate, no flags, mtime 0, XFL 0 (levels 2..8), OS 3 (Unix), as zlib writes it. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);
/** An empty final block with fixed Huffman codes (BFINAL 1, BTYPE 01, end-of-block): ends the deflate stream. */
const DEFLATE_END = Buffer.from([0x03, 0x00]);

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const XZ_FOOTER_MAGIC = Buffer.from('YZ', 'latin1');
/** Stream flags with check type CRC64 (0x04), what xzBuffer writes. */
const XZ_FLAGS = Buffer.from([0x00, 0x04]);

const le32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A .xz multibyte integer (section 1.2): 7 bits per byte, low bits first. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** One block of a parsed .xz stream. */
interface XzBlock {
  offset: number;
  padded: number;
  unpadded: number;
  uncompressed: number;
}

/**
 * The blocks of a single-stream .xz file with check CRC64, from its index (section 4), after
 * checking the header, footer and index CRCs. Throws AptRepoError for anything else.
 */
export function xzBlocks(xz: Buffer): XzBlock[] {
  const bad = (why: string): never => {
    throw new AptRepoError(`xz: unexpected output (${why})`);
  };
  if (xz.length < 32 || !xz.subarray(0, 6).equals(XZ_MAGIC)) bad('no stream header');
  if (!xz.subarray(6, 8).equals(XZ_FLAGS) || xz.readUInt32LE(8) !== crc32(XZ_FLAGS)) bad('stream flags');
  const foot = xz.length - 12;
  if (!xz.subarray(foot + 10).equals(XZ_FOOTER_MAGIC) || !xz.subarray(foot + 8, foot + 10).equals(XZ_FLAGS)) bad('stream footer');
  if (xz.readUInt32LE(foot) !== crc32(xz.subarray(foot + 4, foot + 10))) bad('footer CRC');
  const indexSize = (xz.readUInt32LE(foot + 4) + 1) * 4;
  const index = foot - indexSize;
  if (index < 12 || xz[index] !== 0x00) bad('index');
  if (xz.readUInt32LE(foot - 4) !== crc32(xz.subarray(index, foot - 4))) bad('index CRC');
  let at = index + 1;
  const read = (): number => {
    let n = 0;
    for (let shift = 1; ; shift *= 0x80) {
      if (at >= foot - 4 || shift > 2 ** 49) bad('index integer');
      const b = xz[at++];
      n += (b & 0x7f) * shift;
      if (!(b & 0x80)) return n;
    }
  };
  const count = read();
  const blocks: XzBlock[] = [];
  let offset = 12;
  for (let i = 0; i < count; i++) {
    const unpadded = read();
    const uncompressed = read();
    const padded = Math.ceil(unpadded / 4) * 4;
    blocks.push({ offset, padded, unpadded, uncompressed });
    offset += padded;
  }
  if (offset !== index) bad('blocks do not fill the stream');
  return blocks;
}

/** A .xz stream (check CRC64) of the given blocks, in order: header, blocks, index, footer. */
function assembleXz(blocks: { bytes: Buffer; unpadded: number; uncompressed: number }[]): Buffer {
  const header = Buffer.concat([XZ_MAGIC, XZ_FLAGS, le32(crc32(XZ_FLAGS))]);
  const records: number[] = [0x00, ...varint(blocks.length)];
  for (const b of blocks) records.push(...varint(b.unpadded), ...varint(b.uncompressed));
  while (records.length % 4 !== 0) records.push(0);
  const index = Buffer.from(records);
  const indexWithCrc = Buffer.concat([index, le32(crc32(index))]);
  const backward = Buffer.concat([le32(indexWithCrc.length / 4 - 1), XZ_FLAGS]);
  const footer = Buffer.concat([le32(crc32(backward)), backward, XZ_FOOTER_MAGIC]);
  return Buffer.concat([header, ...blocks.map((b) => b.bytes), indexWithCrc, footer]);
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** True for a well-formed IndexChunk list (as read back from .by-hash.json). */
export function isIndexChunkList(v: unknown): v is IndexChunk[] {
  return (
    Array.isArray(v) &&
    v.every(
      (c: Partial<IndexChunk>) =>
        !!c &&
        isCount(c.size) &&
        c.size > 0 &&
        typeof c.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(c.sha256) &&
        isCount(c.crc32) &&
        c.crc32 <= 0xffffffff &&
        Array.isArray(c.gz) &&
        c.gz.length === 2 &&
        c.gz.every(isCount) &&
        Array.isArray(c.xz) &&
        c.xz.length === 3 &&
        c.xz.every(isCount) &&
        c.xz[1] === Math.ceil(c.xz[2] / 4) * 4,
    )
  );
}

/**
 * Packages.gz and Packages.xz of `raw` (see the module comment), with the chunk list that lets the
 * next version reuse them. Chunks whose SHA256 is in `previous.chunks` are copied from
 * `previous.gz`/`previous.xz` when their recorded places lie inside those files; the others are
 * compressed (deflate at GZIP_LEVEL on zlib's threads, one `xz` run with a block per chunk). The
 * output depends only on the text (and the compressors' versions): the same text gives the same
 * bytes whether its chunks were copied or compressed now. An empty text gives gzipBuffer's and
 * xzBuffer's empty files and no chunk.
 * @throws AptRepoError from xzBuffer, or when xz's output is not the expected single stream.
 */
export async function compressChunked(raw: Buffer, previous?: PreviousChunks): Promise<ChunkedIndex> {
  if (raw.length === 0) {
    const [gz, xz] = await Promise.all([gzipBuffer(raw), xzBuffer(raw)]);
    return { gz, xz, chunks: [], reused: 0 };
  }
  const ends = chunkEnds(raw);
  const texts = ends.map((end, i) => raw.subarray(i === 0 ? 0 : ends[i - 1], end));
  const sums = texts.map((t) => createHash('sha256').update(t).digest('hex'));

  const known = new Map<string, IndexChunk>();
  for (const c of previous?.chunks ?? []) {
    const inside = c.gz[0] + c.gz[1] <= previous!.gz.length && c.xz[0] + c.xz[1] <= previous!.xz.length;
    if (inside && !known.has(c.sha256)) known.set(c.sha256, c);
  }
  const fresh = texts.map((_, i) => i).filter((i) => !known.has(sums[i]) || known.get(sums[i])!.size !== texts[i].length);

  // Fresh chunks: one xz run (a block each), deflate pieces on zlib's threads, CRCs here meanwhile.
  // Every chunk fresh (a first publish): the text itself, not a copy of it.
  const xzInput = fresh.length === texts.length ? raw : Buffer.concat(fresh.map((i) => texts[i]));
  const xzRun = fresh.length > 0 ? xzBuffer(xzInput, { blockList: fresh.map((i) => texts[i].length) }) : undefined;
  const pieces = Promise.all(
    fresh.map((i) => deflateRawAsync(texts[i], { level: GZIP_LEVEL, finishFlush: zconst.Z_FULL_FLUSH }) as Promise<Buffer>),
  );
  const crcs = new Map(fresh.map((i) => [i, crc32(texts[i])]));
  const [xzFresh, gzFresh] = await Promise.all([xzRun, pieces]);
  const freshBlocks = xzFresh ? xzBlocks(xzFresh) : [];
  if (freshBlocks.length !== fresh.length || freshBlocks.some((b, k) => b.uncompressed !== texts[fresh[k]].length))
    throw new AptRepoError('xz: unexpected output (blocks do not match the chunks asked for)');

  const gzParts: Buffer[] = [GZIP_HEADER];
  const xzParts: { bytes: Buffer; unpadded: number; uncompressed: number }[] = [];
  const chunks: IndexChunk[] = [];
  let gzAt = GZIP_HEADER.length;
  let xzAt = 12;
  let crc = 0;
  let k = 0;
  for (let i = 0; i < texts.length; i++) {
    let piece: Buffer;
    let block: Buffer;
    let unpadded: number;
    let chunkCrc: number;
    if (k < fresh.length && fresh[k] === i) {
      const b = freshBlocks[k];
      piece = gzFresh[k];
      block = xzFresh!.subarray(b.offset, b.offset + b.padded);
      unpadded = b.unpadded;
      chunkCrc = crcs.get(i)!;
      k++;
    } else {
      const c = known.get(sums[i])!;
      piece = previous!.gz.subarray(c.gz[0], c.gz[0] + c.gz[1]);
      block = previous!.xz.subarray(c.xz[0], c.xz[0] + c.xz[1]);
      unpadded = c.xz[2];
      chunkCrc = c.crc32;
    }
    gzParts.push(piece);
    xzParts.push({ bytes: block, unpadded, uncompressed: texts[i].length });
    chunks.push({ size: texts[i].length, sha256: sums[i], crc32: chunkCrc, gz: [gzAt, piece.length], xz: [xzAt, block.length, unpadded] });
    crc = crc32Combine(crc, chunkCrc, texts[i].length);
    gzAt += piece.length;
    xzAt += block.length;
  }
  gzParts.push(DEFLATE_END, le32(crc), le32(raw.length % 2 ** 32));
  return { gz: Buffer.concat(gzParts), xz: assembleXz(xzParts), chunks, reused: texts.length - fresh.length };
}
