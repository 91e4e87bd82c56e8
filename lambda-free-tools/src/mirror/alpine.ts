/**
 * The Alpine Linux formats a mirror checks, apk-tools 2 era (v3.15): the signed APKINDEX.tar.gz, the
 * `.apk` identity checksum (`C:`), `releases/<arch>/latest-releases.yaml` and `.sha256`/`.sha512`
 * files. Pure functions over bytes or one streamed file; nothing here writes.
 *
 * Package data is hostile until checked: every value that later becomes a path or a URL (name,
 * version, arch, image file names) is held to a strict allowlist here.
 *
 * Sources followed: apk-tools 2.12 `src/package.c` (`apk_sign_ctx_mpart_cb`, `apk_pkg_add_info`),
 * `src/io_gunzip.c` (member boundaries), `src/archive.c` (tar reading), `src/version.c` (version
 * grammar), `src/blob.c` (`apk_blob_push_csum`: `Q1` + base64 SHA-1), `src/database.c`
 * (`<name>-<version>.apk`); apk-tools 3 `src/extract_v2.c` (one gzip member after an index
 * signature); abuild `abuild-sign.in`, `abuild-tar.c` (`--cut`); aports `scripts/mkimage-yaml.sh`.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as zlib from 'zlib';
import { crc32 } from '../core/crc32';
import { MirrorError } from '../errors';

/** One package stanza of an APKINDEX. */
export interface ApkIndexEntry {
  name: string;
  version: string;
  arch?: string;
  /** `S:`: size of the .apk file in bytes. */
  size: number;
  /** The `C:` value, e.g. 'Q1…=': 'Q1' + base64 of a SHA-1. */
  checksum: string;
}

/** The result of reading a signed APKINDEX.tar.gz. */
export interface ApkIndex {
  /** The DESCRIPTION member's text, trimmed (e.g. 'v3.15.4-127-g…'), when there is one. */
  description?: string;
  entries: ApkIndexEntry[];
  /** The key file name whose signature verified; undefined when no trusted key was given. */
  signedBy?: string;
}

/** One image of releases/<arch>/latest-releases.yaml. */
export interface ReleaseImage {
  file: string;
  version: string;
  /** 64 lower-case hex digits. */
  sha256: string;
  /** 128 lower-case hex digits, when the entry has one. */
  sha512?: string;
  /** Bytes. */
  size?: number;
  flavor?: string;
}

/** Package names: apk-tools accepts more, Alpine uses these; they become file names and URLs. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;
/** apk-tools 2 `src/version.c` grammar: digits, `.digits`, one letter, `_suffix[N]`, `~hash`, `-rN`. */
const VERSION = /^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$/;
/** `C:` as apk index writes it: 'Q1' + base64 of a 20-byte SHA-1 (28 characters, one '=' of padding). */
const CHECKSUM = /^Q1[A-Za-z0-9+/]{27}=$/;
/** `A:` (it becomes a URL folder, apk-tools `apk_repo_format_real_url`): x86_64, aarch64, armv7, noarch… */
const ARCH = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** Release image file names and flavors (alpine-standard-3.15.4-x86_64.iso). */
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;
/** Longest name, version or file name accepted (apk has no limit; a file name has 255 bytes). */
const MAX_FIELD = 200;
/** Inflated size allowed for the members of an index held in memory (real ones: a few MB). */
const MAX_INDEX_INFLATED = 256 * 1024 * 1024;
/** Inflated size allowed for an .apk's signature and control members (real control tars: KBs). */
const MAX_CONTROL_INFLATED = 64 * 1024 * 1024;
/** Longest gzip header accepted (FEXTRA, FNAME and FCOMMENT fields included). */
const MAX_GZIP_HEADER = 64 * 1024;
/** Slice size when an in-memory file is fed to the member walker. */
const SLICE = 64 * 1024;

/** A value shown in a message: JSON-quoted (control characters escaped), cut at 80 characters. */
function shown(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
}

/** A format problem found by the gzip or tar readers below; the exported functions turn it into MirrorError. */
class Malformed extends Error {}

/** `e` as a MirrorError for `file` when it is a format problem; anything else (fs errors) as is. */
function asMirrorError(file: string, e: unknown, context = ''): unknown {
  return e instanceof Malformed ? new MirrorError(file, `${context}${e.message}`) : e;
}

// ---------------------------------------------------------------------------------------------
// gzip members (RFC 1952), streamed

/** What the member walker reports; `index` counts members from 0. */
interface MemberSink {
  /** Compressed bytes of member `index` exactly as stored (header to trailer), in order. */
  raw?(index: number, bytes: Buffer): void;
  /** Decompressed bytes of member `index`, in order. */
  inflated?(index: number, bytes: Buffer): void;
}

/** Where and how far walkGzipMembers reads. */
interface WalkOptions {
  /** Stop after this many members. */
  maxMembers: number;
  /** Largest inflated size of one member, in bytes. */
  maxInflated: number;
  sink?: MemberSink;
  /** For messages: the 1-based number and file offset of the first member walked (default 1, 0). */
  firstMember?: number;
  firstOffset?: number;
}

/** Result of walkGzipMembers: the end offset of each member read, and whether bytes follow. */
interface MemberWalk {
  /** Offset just past each member's trailer, relative to the start of the input. */
  ends: number[];
  /** True when the walk stopped at `maxMembers` with input left unread. */
  more: boolean;
}

/**
 * Length of the gzip header at the start of `b` (RFC 1952 §2.3: 10 bytes, then FEXTRA = 2-byte
 * length + data, FNAME and FCOMMENT NUL-terminated, FHCRC 2 bytes, checked), undefined when `b`
 * holds only part of it. Throws Malformed for anything that is not a deflate gzip header.
 */
function gzipHeaderLength(b: Buffer): number | undefined {
  if (b.length >= 1 && b[0] !== 0x1f) throw new Malformed('not gzip (bad magic)');
  if (b.length >= 2 && b[1] !== 0x8b) throw new Malformed('not gzip (bad magic)');
  if (b.length >= 3 && b[2] !== 8) throw new Malformed(`gzip compression method ${b[2]} is not deflate`);
  if (b.length < 10) return undefined;
  const flags = b[3];
  if (flags & 0xe0) throw new Malformed(`gzip header has reserved flag bits set (0x${flags.toString(16)})`);
  let p = 10;
  if (flags & 4) {
    if (b.length < p + 2) return undefined;
    p += 2 + b.readUInt16LE(p);
  }
  for (const bit of [8, 16]) {
    if (flags & bit) {
      const nul = b.indexOf(0, p);
      if (nul < 0) return undefined;
      p = nul + 1;
    }
  }
  if (flags & 2) {
    if (b.length < p + 2) return undefined;
    if (b.readUInt16LE(p) !== (crc32(b.subarray(0, p)) & 0xffff)) throw new Malformed('gzip header CRC mismatch');
    p += 2;
  }
  return b.length >= p ? p : undefined;
}

/** Writes `chunk` into `inflate` and waits until zlib has processed it (or failed). */
function inflateWrite(inflate: zlib.InflateRaw, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    inflate.once('error', onError);
    inflate.write(chunk, (e) => {
      inflate.off('error', onError);
      if (e) reject(e);
      else resolve();
    });
  });
}

/**
 * Walks the gzip members of a byte stream, streaming: memory stays bounded by one chunk, one gzip
 * header (MAX_GZIP_HEADER) and zlib's window, whatever the member sizes.
 *
 * How a member's end is found: each member's deflate data is written, chunk after chunk, into a
 * fresh `zlib.InflateRaw` stream, awaiting each write. zlib stops consuming input at the end of the
 * deflate stream (Z_STREAM_END), and Node's `bytesWritten` counts the input bytes zlib consumed, so
 * the first write after which `bytesWritten` lags behind the bytes written marks the end: the
 * unconsumed rest of that chunk starts the 8-byte trailer (CRC-32, ISIZE: both checked against the
 * inflated output), then the next member's header. (A deflate stream ending exactly at a chunk's end
 * is seen on the next write, which zlib, being done, does not consume.) This is the streaming form of
 * research §2.3's `inflateRawSync(…, { info: true }).engine.bytesWritten`, and of apk-tools'
 * `src/io_gunzip.c`, which reports APK_MPART_BOUNDARY at each member end the same way.
 *
 * Stops after `maxMembers` members (`more` says whether input was left), so an .apk's large data
 * member is never inflated. `maxInflated` bounds each member's inflated size (a gzip bomb stops
 * there). Throws Malformed naming the member (1-based) and its offset.
 */
async function walkGzipMembers(chunks: AsyncIterable<Buffer>, opts: WalkOptions): Promise<MemberWalk> {
  const { maxMembers, maxInflated, sink = {}, firstMember = 1, firstOffset = 0 } = opts;
  const ends: number[] = [];
  let state: 'header' | 'deflate' | 'trailer' = 'header';
  let pending: Buffer = Buffer.alloc(0);
  let offset = 0; // input offset of the next byte to process
  let memberStart = 0;
  let inflate: zlib.InflateRaw | undefined;
  let inflateEnded: Promise<unknown> = Promise.resolve();
  let fed = 0;
  let crc = 0;
  let outLen = 0;
  const where = () => `gzip member ${firstMember + ends.length} (at byte ${firstOffset + memberStart})`;

  const startInflate = () => {
    const index = ends.length;
    const z = zlib.createInflateRaw();
    fed = 0;
    crc = 0;
    outLen = 0;
    z.on('data', (out: Buffer) => {
      outLen += out.length;
      if (outLen > maxInflated) {
        z.destroy(new Error(`inflates to more than ${maxInflated} bytes`));
        return;
      }
      crc = crc32(out, crc);
      sink.inflated?.(index, out);
    });
    inflateEnded = new Promise((resolve, reject) => {
      z.once('end', resolve);
      z.once('error', reject);
    });
    // A rejection is awaited at the member's end; until then it must not count as unhandled.
    inflateEnded.catch(() => undefined);
    inflate = z;
  };

  try {
    for await (const input of chunks) {
      let chunk = input;
      while (chunk.length > 0) {
        if (state === 'header') {
          if (ends.length === maxMembers) return { ends, more: true };
          if (pending.length === 0) memberStart = offset;
          pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
          let n: number | undefined;
          try {
            n = gzipHeaderLength(pending);
          } catch (e) {
            throw e instanceof Malformed ? new Malformed(`${where()}: ${e.message}`) : e;
          }
          if (n === undefined) {
            if (pending.length > MAX_GZIP_HEADER) throw new Malformed(`${where()}: gzip header longer than ${MAX_GZIP_HEADER} bytes`);
            offset += chunk.length;
            chunk = Buffer.alloc(0);
            continue;
          }
          const used = n - (pending.length - chunk.length);
          sink.raw?.(ends.length, pending.subarray(0, n));
          offset += used;
          chunk = chunk.subarray(used);
          pending = Buffer.alloc(0);
          state = 'deflate';
          startInflate();
        } else if (state === 'deflate') {
          const z = inflate!;
          const before = z.bytesWritten;
          fed += chunk.length;
          try {
            await inflateWrite(z, chunk);
          } catch (e) {
            throw new Malformed(`${where()}: corrupt deflate data (${e instanceof Error ? e.message : String(e)})`);
          }
          const used = z.bytesWritten - before;
          sink.raw?.(ends.length, chunk.subarray(0, used));
          offset += used;
          chunk = chunk.subarray(used);
          if (z.bytesWritten < fed) {
            try {
              await inflateEnded;
            } catch (e) {
              throw new Malformed(`${where()}: corrupt deflate data (${e instanceof Error ? e.message : String(e)})`);
            }
            z.destroy();
            inflate = undefined;
            state = 'trailer';
          }
        } else {
          const take = Math.min(8 - pending.length, chunk.length);
          pending = Buffer.concat([pending, chunk.subarray(0, take)]);
          offset += take;
          chunk = chunk.subarray(take);
          if (pending.length < 8) continue;
          if (pending.readUInt32LE(0) !== crc >>> 0) throw new Malformed(`${where()}: CRC-32 mismatch`);
          if (pending.readUInt32LE(4) !== outLen % 2 ** 32) throw new Malformed(`${where()}: length (ISIZE) mismatch`);
          sink.raw?.(ends.length, pending);
          pending = Buffer.alloc(0);
          ends.push(offset);
          state = 'header';
        }
      }
    }
  } finally {
    inflate?.destroy();
  }
  if (state === 'deflate' || state === 'trailer') throw new Malformed(`${where()}: truncated`);
  if (pending.length > 0) throw new Malformed(`${where()}: truncated gzip header (${pending.length} trailing bytes)`);
  return { ends, more: false };
}

/** `bytes` as an iterable of slices, so an in-memory file goes through the streaming walker. */
async function* slices(bytes: Buffer): AsyncIterable<Buffer> {
  for (let p = 0; p < bytes.length; p += SLICE) yield bytes.subarray(p, p + SLICE);
}

// ---------------------------------------------------------------------------------------------
// tar, strict and in memory (what apk-tools `src/archive.c` reads)

interface TarEntry {
  /** Path, a leading './' removed. */
  name: string;
  /** The typeflag: '0' for a regular file ('\0' is read as '0'), '5' a directory… */
  type: string;
  data: Buffer;
}

/** Reads an octal tar number field (NUL- or space-terminated); base-256 is refused. */
function tarNumber(field: Buffer): number | undefined {
  if (field[0] & 0x80) return undefined;
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) return undefined;
  return text === '' ? 0 : parseInt(text, 8);
}

/** A NUL-terminated string field. */
function tarString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

/**
 * Reads a tar held in memory: ustar headers (name + prefix, checksum checked), pax `x` headers
 * (path, size) and GNU `L` long names applied to the next entry, pax `g` headers skipped. Stops at
 * the end-of-archive block; anything but zero bytes after it is refused (apk stops reading there, so
 * a hidden second archive would be read by other tools only). A tar that ends at a header boundary
 * without end-of-archive blocks is accepted: abuild `--cut` writes signature and control tars so.
 * Throws Malformed.
 */
function readTar(buf: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  let nextName: string | undefined;
  let nextSize: number | undefined;
  while (pos < buf.length) {
    if (buf.length - pos < 512) throw new Malformed(`tar truncated at byte ${pos}`);
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) {
      const rest = buf.subarray(pos);
      if (!rest.every((b) => b === 0)) throw new Malformed(`data after the tar end-of-archive block (byte ${pos})`);
      break;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (tarNumber(h.subarray(148, 156)) !== sum) throw new Malformed(`tar header checksum mismatch at byte ${pos}`);
    const size = nextSize ?? tarNumber(h.subarray(124, 136));
    if (size === undefined) throw new Malformed(`tar header at byte ${pos} has an unreadable size`);
    const typeflag = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    const start = pos + 512;
    if (start + size > buf.length) throw new Malformed(`tar entry at byte ${pos} is truncated`);
    const data = buf.subarray(start, start + size);
    pos = start + Math.ceil(size / 512) * 512;
    if (pos > buf.length) throw new Malformed(`tar entry at byte ${start - 512} lacks its padding`);
    if (typeflag === 'x') {
      for (const [k, v] of paxRecords(data)) {
        if (k === 'path') nextName = v;
        if (k === 'size') {
          if (!/^[0-9]+$/.test(v)) throw new Malformed(`pax size ${shown(v)} is not a number`);
          nextSize = Number(v);
        }
      }
      continue;
    }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') {
      nextName = tarString(data);
      continue;
    }
    const magic = h.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? tarString(h.subarray(345, 500)) : '';
    const base = tarString(h.subarray(0, 100));
    const name = (nextName ?? (prefix ? `${prefix}/${base}` : base)).replace(/^(\.\/)+/, '');
    entries.push({ name, type: typeflag, data });
    nextName = undefined;
    nextSize = undefined;
  }
  return entries;
}

/** The records of a pax extended header: `<len> <key>=<value>\n` each. */
function paxRecords(data: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let p = 0;
  while (p < data.length) {
    const space = data.indexOf(0x20, p);
    const len = space < 0 ? NaN : Number(data.subarray(p, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || p + len > data.length) throw new Malformed('malformed pax header');
    const record = data.subarray(space + 1, p + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq < 0) throw new Malformed('malformed pax header');
    out.push([record.slice(0, eq), record.slice(eq + 1)]);
    p += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// APKINDEX.tar.gz

/** apk-tools 2.12 `apk_sign_ctx_process_file`: signature entry type → digest. */
const SIGNATURE_DIGEST: Record<string, string> = { RSA512: 'sha512', RSA256: 'sha256', RSA: 'sha1', DSA: 'sha1' };

/**
 * Verifies and reads a signed APKINDEX.tar.gz held in memory (an index is a few MB at most).
 *
 * Layout (abuild `abuild-sign.in`, apk-tools 2.12 `src/package.c` `apk_sign_ctx_mpart_cb`): gzip
 * member 1 is a cut tar of `.SIGN.<RSA|RSA256|RSA512|DSA>.<key file name>` entries, each a PKCS#1
 * v1.5 signature (SHA-1, SHA-256, SHA-512, SHA-1) over every byte after member 1, exactly as stored;
 * that part must be exactly one gzip member (apk-tools 3 `src/extract_v2.c`), a tar of `DESCRIPTION`
 * (optional) and `APKINDEX`. The signature is checked before member 2 is inflated.
 *
 * @param file a label for messages (an upstream path or URL).
 * @param bytes the whole file.
 * @param trustedKeys key file name (e.g. 'alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub') →
 *        PEM public key text. Empty or undefined: the signature is not checked (the structure is),
 *        and `signedBy` is undefined.
 * @returns the description, the entries in index order, and the key file name that verified.
 * @throws MirrorError naming `file` and the reason: not gzip, a corrupt member, no signature member,
 *         no signature by a trusted key or a signature mismatch (naming the key files), more than
 *         one gzip member after the signature, an entry other than `.SIGN.*` in the signature member,
 *         no APKINDEX, a stanza without P/V/C/S, a bad S:, a name/version/arch/checksum outside the
 *         allowlists, a duplicate package, an unreadable trusted key.
 */
export async function readApkIndex(file: string, bytes: Buffer, trustedKeys?: Map<string, string>): Promise<ApkIndex> {
  const fail = (reason: string): never => {
    throw new MirrorError(file, reason);
  };
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) fail('not gzip (bad magic)');

  // Member 1: the signatures.
  const sigParts: Buffer[] = [];
  let first: MemberWalk;
  try {
    first = await walkGzipMembers(slices(bytes), {
      maxMembers: 1,
      maxInflated: MAX_INDEX_INFLATED,
      sink: { inflated: (_i, b) => sigParts.push(b) },
    });
  } catch (e) {
    throw asMirrorError(file, e);
  }
  if (!first.more) fail('one gzip member only: no signature member (an unsigned index?)');
  const signed = bytes.subarray(first.ends[0]);
  let sigEntries: TarEntry[] = [];
  try {
    sigEntries = readTar(Buffer.concat(sigParts));
  } catch (e) {
    throw asMirrorError(file, e, 'signature member: ');
  }
  if (sigEntries.length === 0) fail('no signature member: the first gzip member holds no tar entry');
  const signatures: { type: string; key: string; sig: Buffer }[] = [];
  for (const e of sigEntries) {
    if (!e.name.startsWith('.SIGN.')) {
      fail(
        e.name === 'APKINDEX' || e.name === 'DESCRIPTION'
          ? `no signature member: the first gzip member holds ${e.name} (an unsigned index?)`
          : `entry ${shown(e.name)} in the signature member is not a .SIGN.* file`,
      );
    }
    if (e.type !== '0') fail(`signature entry ${shown(e.name)} is not a regular file`);
    const m = /^\.SIGN\.([A-Z0-9]+)\.(.+)$/s.exec(e.name);
    if (!m || m[2].includes('/') || /[\0-\x1f]/.test(m[2])) fail(`malformed signature entry name ${shown(e.name)}`);
    signatures.push({ type: m![1], key: m![2], sig: e.data });
  }

  let signedBy: string | undefined;
  if (trustedKeys && trustedKeys.size > 0) {
    const tried: string[] = [];
    for (const s of signatures) {
      const digest = SIGNATURE_DIGEST[s.type];
      const pem = trustedKeys.get(s.key);
      if (!digest || pem === undefined) continue;
      let key: crypto.KeyObject;
      try {
        key = crypto.createPublicKey(pem);
      } catch (e) {
        return fail(`trusted key ${s.key} is not a readable public key (${e instanceof Error ? e.message : String(e)})`);
      }
      tried.push(`.SIGN.${s.type}.${s.key}`);
      let ok = false;
      try {
        ok = crypto.verify(digest, signed, key, s.sig);
      } catch {
        ok = false;
      }
      if (ok) {
        signedBy = s.key;
        break;
      }
    }
    if (!signedBy) {
      const present = signatures.map((s) => `.SIGN.${s.type}.${s.key}`).join(', ');
      if (tried.length) fail(`signature mismatch: ${tried.join(', ')} does not verify the index (tampered or corrupt)`);
      fail(`no signature by a trusted key: the file has ${present}; trusted keys: ${[...trustedKeys.keys()].join(', ')}`);
    }
  }

  // Member 2: the index itself, alone after the signature.
  const indexParts: Buffer[] = [];
  let second: MemberWalk;
  try {
    second = await walkGzipMembers(slices(signed), {
      maxMembers: 1,
      maxInflated: MAX_INDEX_INFLATED,
      sink: { inflated: (_i, b) => indexParts.push(b) },
      firstMember: 2,
      firstOffset: first.ends[0],
    });
  } catch (e) {
    throw asMirrorError(file, e);
  }
  if (second.more) {
    const rest = signed.subarray(second.ends[0]);
    fail(
      rest[0] === 0x1f && rest[1] === 0x8b
        ? 'more than one gzip member after the signature (apk-tools 3 refuses this)'
        : `${rest.length} trailing bytes after the index's gzip member`,
    );
  }
  let indexEntries: TarEntry[] = [];
  try {
    indexEntries = readTar(Buffer.concat(indexParts));
  } catch (e) {
    throw asMirrorError(file, e, 'index tar: ');
  }
  let text: string | undefined;
  let description: string | undefined;
  for (const e of indexEntries) {
    if (e.name !== 'APKINDEX' && e.name !== 'DESCRIPTION') continue;
    if (e.type !== '0') fail(`${e.name} in the index tar is not a regular file`);
    if (e.name === 'APKINDEX') {
      if (text !== undefined) fail('two APKINDEX entries in the index tar');
      text = e.data.toString('latin1');
    } else {
      if (description !== undefined) fail('two DESCRIPTION entries in the index tar');
      description = e.data.toString('utf8').trim();
      if (/[\0-\x1f\x7f]/.test(description)) fail(`DESCRIPTION ${shown(description)} holds control characters`);
    }
  }
  if (text === undefined) fail('no APKINDEX in the index tar');
  return { description, entries: parseApkIndexText(file, text!), signedBy };
}

/**
 * The stanzas of an APKINDEX text (apk-tools 2.12 `apk_pkg_add_info`: `X:value` lines, a blank line
 * ends a stanza). Text is read as Latin-1 so the allowlists see every byte. Only C, P, V, A and S are
 * kept; other fields are not checked. Throws MirrorError naming `file`, the line and the field.
 */
function parseApkIndexText(file: string, text: string): ApkIndexEntry[] {
  const entries: ApkIndexEntry[] = [];
  const seen = new Set<string>();
  let fields = new Map<string, string>();
  let stanzaLine = 0;
  const lines = text.split('\n');
  const fail = (reason: string): never => {
    throw new MirrorError(file, `APKINDEX stanza at line ${stanzaLine}: ${reason}`);
  };
  const close = () => {
    if (fields.size === 0) return;
    const get = (k: string, what: string): string => {
      const v = fields.get(k);
      if (v === undefined || v === '') fail(`no ${k}: (${what}) field`);
      return v!;
    };
    const name = get('P', 'name');
    const version = get('V', 'version');
    const checksum = get('C', 'checksum');
    const sizeText = get('S', 'size');
    const arch = fields.get('A');
    if (name.length > MAX_FIELD || !NAME.test(name)) fail(`invalid package name P:${shown(name)}`);
    if (version.length > MAX_FIELD || !VERSION.test(version)) fail(`invalid version V:${shown(version)} for ${name}`);
    if (!CHECKSUM.test(checksum)) fail(`invalid checksum C:${shown(checksum)} for ${name} (expected Q1 + 28 base64 characters)`);
    if (!/^[0-9]+$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
      fail(`size S:${shown(sizeText)} of ${name} is not a non-negative integer`);
    if (arch !== undefined && (arch.length > MAX_FIELD || !ARCH.test(arch))) fail(`invalid architecture A:${shown(arch)} for ${name}`);
    const id = `${name}-${version}`;
    if (seen.has(id)) fail(`package ${id} is listed twice`);
    seen.add(id);
    entries.push({ name, version, ...(arch !== undefined ? { arch } : {}), size: Number(sizeText), checksum });
    fields = new Map();
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') {
      close();
      continue;
    }
    if (fields.size === 0) stanzaLine = i + 1;
    if (line.length < 2 || line[1] !== ':' || !/^[A-Za-z]$/.test(line[0]))
      throw new MirrorError(file, `APKINDEX line ${i + 1} is not a field (X:value): ${shown(line)}`);
    const key = line[0];
    if (fields.has(key)) fail(`field ${key}: appears twice (line ${i + 1})`);
    fields.set(key, line.slice(2));
  }
  close();
  return entries;
}

/**
 * The file name of an entry's package in the same folder: `${name}-${version}.apk` (apk-tools 2.12
 * `src/database.c`, `apk_repo_format_real_url` with PKG_FILE_FMT).
 * @throws MirrorError (file: the would-be name, quoted) when name or version leave their allowlists,
 *         so the result is always one path segment.
 */
export function apkFileName(e: ApkIndexEntry): string {
  const name = `${e.name}-${e.version}.apk`;
  if (e.name.length > MAX_FIELD || !NAME.test(e.name)) throw new MirrorError(shown(name), `invalid package name ${shown(e.name)}`);
  if (e.version.length > MAX_FIELD || !VERSION.test(e.version))
    throw new MirrorError(shown(name), `invalid package version ${shown(e.version)}`);
  return name;
}

/**
 * The `C:` checksum of an .apk: 'Q1' + base64(SHA-1 of the second gzip member's compressed bytes,
 * as stored), as `apk index` computes it (apk-tools 2.12 `src/package.c` `apk_sign_ctx_mpart_cb`,
 * APK_SIGN_VERIFY_AND_GENERATE; `src/blob.c` `apk_blob_push_csum`; research notes §2.2). Valid for
 * packages whose .PKGINFO has a `datahash` (all modern ones); for a pre-datahash package apk hashes
 * to the end of the file and this value will not match its `C:`.
 *
 * Streams the file (fs read stream, `readChunkBytes` at a time, 64 KiB by default) through
 * walkGzipMembers: members 1 and 2 (signature and control, small) are inflated only to find their
 * ends and check their CRC-32; reading stops at the end of member 2, so the data member (tens of MB)
 * is never read. Memory stays bounded by one chunk and zlib's window.
 *
 * @param file path of the .apk (also the label in messages).
 * @param readChunkBytes read size; tests use small ones to put member boundaries inside chunks.
 * @throws MirrorError naming `file` when it is not gzip, has fewer than 2 gzip members, or a corrupt
 *         member; an fs error (ENOENT…) as is.
 */
export async function apkChecksum(file: string, readChunkBytes = 64 * 1024): Promise<string> {
  return (await apkHead(file, readChunkBytes, false)).checksum;
}

/**
 * Walks the first two gzip members of an .apk (signature, control): the `C:` checksum of the
 * control member's compressed bytes, with `keepControl` its inflated bytes (bounded by
 * MAX_CONTROL_INFLATED), and the offset where the data member starts. Throws MirrorError naming
 * `file` (not gzip, fewer than 2 members, a corrupt member).
 */
async function apkHead(
  file: string,
  readChunkBytes: number,
  keepControl: boolean,
): Promise<{ checksum: string; control: Buffer[]; dataStart: number }> {
  const hash = crypto.createHash('sha1');
  const control: Buffer[] = [];
  const stream = fs.createReadStream(file, { highWaterMark: readChunkBytes });
  let walk: MemberWalk;
  try {
    walk = await walkGzipMembers(stream as AsyncIterable<Buffer>, {
      maxMembers: 2,
      maxInflated: MAX_CONTROL_INFLATED,
      sink: {
        // 0-based: member 1 is the control member.
        raw: (i, b) => {
          if (i === 1) hash.update(b);
        },
        ...(keepControl
          ? {
              inflated: (i: number, b: Buffer) => {
                if (i === 1) control.push(b);
              },
            }
          : {}),
      },
    });
  } catch (e) {
    throw asMirrorError(file, e);
  } finally {
    stream.destroy();
  }
  if (walk.ends.length < 2)
    throw new MirrorError(file, `${walk.ends.length} gzip member(s): an .apk has at least 2 (signature, control[, data])`);
  return { checksum: `Q1${hash.digest('base64')}`, control, dataStart: walk.ends[1] };
}

/**
 * Checks a downloaded .apk against its APKINDEX entry, the whole file: the `C:` checksum (SHA-1 of
 * the control member, see apkChecksum) must equal `expected`, and the control member's `.PKGINFO`
 * must name a `datahash` equal to the SHA-256 of the rest of the file (the data member's compressed
 * bytes, as abuild writes it and apk-tools 2.12 checks it at the end of the data: research §2.2),
 * so one changed byte anywhere is caught. Streams the file twice at most (the control member is
 * inflated, bounded; the data member only hashed). Resolves to the checksum.
 * @throws MirrorError naming `file` and both values for a checksum or datahash mismatch, a package
 *         without `datahash`, or a malformed file.
 */
export async function verifyApk(file: string, expected: string): Promise<string> {
  const { checksum, control, dataStart } = await apkHead(file, 64 * 1024, true);
  if (checksum !== expected) throw new MirrorError(file, `checksum ${checksum}, but the index lists ${expected}; not kept`);
  let pkginfo: Buffer | undefined;
  try {
    pkginfo = readTar(Buffer.concat(control)).find((e) => e.name === '.PKGINFO')?.data;
  } catch (e) {
    throw asMirrorError(file, e, 'control member: ');
  }
  const m = pkginfo && /^datahash = ([0-9a-f]{64})$/m.exec(pkginfo.toString('utf8'));
  if (!m) throw new MirrorError(file, '.PKGINFO has no datahash: the data cannot be checked; not kept');
  const sha256 = crypto.createHash('sha256');
  const rest = fs.createReadStream(file, { start: dataStart, highWaterMark: 1024 * 1024 });
  for await (const chunk of rest) sha256.update(chunk as Buffer);
  const datahash = sha256.digest('hex');
  if (datahash !== m[1]) throw new MirrorError(file, `data SHA-256 ${datahash}, but its .PKGINFO says ${m[1]}; not kept`);
  return checksum;
}

// ---------------------------------------------------------------------------------------------
// releases/<arch>/

/** A file name that is one path segment of the allowed characters. */
function isImageName(v: string): boolean {
  return v.length <= MAX_FIELD && IMAGE_NAME.test(v) && v !== '.' && v !== '..';
}

/**
 * Parses releases/<arch>/latest-releases.yaml (aports `scripts/mkimage-yaml.sh`: a YAML list, one
 * mapping per image: branch, arch, version, flavor, file, iso, date, time, size, sha256, sha512, and
 * title/desc on the published files). Read with the `yaml` package's failsafe schema, so every
 * scalar stays a string (`version: 3.10` is not the number 3.1). Unknown keys are ignored.
 *
 * @param file a label for messages.
 * @param text the file's content.
 * @returns one ReleaseImage per list item, in file order; sha256/sha512 lower-cased, size in bytes.
 * @throws MirrorError naming `file`: not YAML, not a non-empty list, an item without `file`
 *         (one path segment of [A-Za-z0-9+._-]), `version`, or `sha256` (64 hex), a bad `sha512`
 *         (128 hex), `size` (non-negative integer) or `flavor`, the same file listed twice.
 */
export function readLatestReleases(file: string, text: string): ReleaseImage[] {
  const yaml = require('yaml') as typeof import('yaml');
  const fail = (reason: string): never => {
    throw new MirrorError(file, reason);
  };
  let doc: unknown;
  try {
    doc = yaml.parse(text, { schema: 'failsafe' });
  } catch (e) {
    return fail(`not valid YAML (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  if (!Array.isArray(doc)) return fail('not a YAML list of images');
  if (doc.length === 0) fail('lists no image');
  const images: ReleaseImage[] = [];
  const files = new Set<string>();
  doc.forEach((item: unknown, i: number) => {
    const at = `item ${i + 1}`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail(`${at} is not a mapping`);
    const m = item as Record<string, unknown>;
    const str = (k: string): string | undefined => {
      const v = m[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') return fail(`${at}: ${k} is not a scalar`);
      return v;
    };
    const name = str('file');
    if (name === undefined) return fail(`${at} has no file`);
    if (!isImageName(name)) fail(`${at}: file ${shown(name)} is not one plain file name`);
    if (files.has(name)) fail(`${at}: file ${name} is listed twice`);
    files.add(name);
    const version = str('version');
    if (!version || version.length > MAX_FIELD || !/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(version))
      fail(`${at} (${name}): version ${version === undefined ? 'missing' : shown(version)} is not a version`);
    const sha256 = str('sha256');
    if (!sha256 || !/^[0-9a-fA-F]{64}$/.test(sha256))
      fail(`${at} (${name}): sha256 ${sha256 === undefined ? 'missing' : shown(sha256)} is not 64 hex digits`);
    const image: ReleaseImage = { file: name, version: version!, sha256: sha256!.toLowerCase() };
    const sha512 = str('sha512');
    if (sha512 !== undefined) {
      if (!/^[0-9a-fA-F]{128}$/.test(sha512)) fail(`${at} (${name}): sha512 ${shown(sha512)} is not 128 hex digits`);
      image.sha512 = sha512.toLowerCase();
    }
    const size = str('size');
    if (size !== undefined) {
      if (!/^[0-9]+$/.test(size) || !Number.isSafeInteger(Number(size)))
        fail(`${at} (${name}): size ${shown(size)} is not a non-negative integer`);
      image.size = Number(size);
    }
    const flavor = str('flavor');
    if (flavor !== undefined) {
      if (!isImageName(flavor)) fail(`${at} (${name}): flavor ${shown(flavor)} holds characters outside [A-Za-z0-9+._-]`);
      image.flavor = flavor;
    }
    images.push(image);
  });
  return images;
}

/**
 * Parses a `<hex>  <file name>` checksum file as `sha256sum`/`sha512sum` write it beside each image
 * (aports `scripts/mkimage.sh`, `mkimage-yaml.sh`): one line, an optional `*` (binary mode) before the
 * name, a name that may carry a path (the basename is returned).
 *
 * @returns the digest (lower-case hex), the file name (basename), and the algorithm by hex length
 *          (64: sha256, 128: sha512).
 * @throws MirrorError naming `file` (the label): not one line, hex of another length or with non-hex
 *         characters, no file name, a name that is '.', '..' or holds control characters.
 */
export function readChecksumFile(file: string, text: string): { digest: string; fileName: string; algorithm: 'sha256' | 'sha512' } {
  const fail = (reason: string): never => {
    throw new MirrorError(file, reason);
  };
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length !== 1 || lines[0] === '') fail(`expected one "<hex>  <file name>" line, found ${lines[0] === '' ? 0 : lines.length}`);
  const m = /^(\S+)\s+\*?(.+)$/.exec(lines[0]);
  if (!m) return fail(`not a "<hex>  <file name>" line: ${shown(lines[0])}`);
  const [, hex, path] = m;
  if (!/^[0-9a-fA-F]+$/.test(hex)) fail(`digest ${shown(hex)} is not hexadecimal`);
  if (hex.length !== 64 && hex.length !== 128) fail(`digest has ${hex.length} hex digits: neither SHA-256 (64) nor SHA-512 (128)`);
  const fileName = path.slice(path.lastIndexOf('/') + 1);
  if (fileName === '' || fileName === '.' || fileName === '..' || /[\0-\x1f\x7f]/.test(fileName))
    fail(`file name ${shown(path)} is not a file name`);
  return { digest: hex.toLowerCase(), fileName, algorithm: hex.length === 64 ? 'sha256' : 'sha512' };
}
