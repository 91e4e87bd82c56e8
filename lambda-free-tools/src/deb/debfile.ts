/**
 * Reads a binary package (.deb, deb(5)) in one streaming pass: its size, the digests the indexes
 * need, and its control stanza. Only the control member is buffered (it is small; it is capped);
 * data.tar.* is hashed and never kept. Member order follows dpkg-deb: `debian-binary` first, then
 * `control.tar[.gz|.xz|.zst]`, then `data.tar.*`, with members named `_…` allowed in between.
 */
import { createHash, Hash } from 'crypto';
import * as fs from 'fs';
import type { ReadableStream } from 'stream/web';
import * as zlib from 'zlib';
import { DebError, VersionError } from '../errors';
import type { Digests } from '../core/types';
import { ArMember, ArReader } from './ar';
import { decodeControlBytes, getField, isValidArchitecture, isValidPackageName, parseSourceField, parseStanza, Stanza } from './control';
import { parseVersion } from './version';

/** Digest names as Packages and Release files spell them. */
export type DigestName = 'MD5sum' | 'SHA1' | 'SHA256' | 'SHA512';

/** What readDeb returns. */
export interface DebInfo {
  /** The DEBIAN/control stanza, fields in file order. */
  control: Stanza;
  /** File size in bytes. */
  size: number;
  /** Hex digests of the whole file; only the requested ones are present. */
  digests: Digests;
}

const ALGORITHMS: Record<DigestName, string> = { MD5sum: 'md5', SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };
/** Largest control member (compressed, and uncompressed) accepted: real ones are a few KiB. */
const MAX_CONTROL_BYTES = 64 << 20;
/** Read size: large reads keep the per-chunk overhead (system calls, hashing, parsing) small. */
const CHUNK_SIZE = 1 << 20;

/**
 * The read buffer, shared by every readDeb of this thread: the read loop is synchronous (no await
 * between a read and the hashing/parsing of its bytes), so two calls never use it at once. One
 * buffer for the process instead of one per file: reading 10,000 small files allocated 10 GiB of
 * short-lived buffers, and the garbage collection of that dominated the run.
 */
let sharedBuffer: Buffer | undefined;

/**
 * Reads `file` once, streaming: computes its size and `opts.digests` (default MD5sum, SHA1,
 * SHA256) over every byte, and parses DEBIAN/control from the control member. `file` is opened
 * without following a symlink; with `opts.fd` (a regular file the caller opened safely), that
 * descriptor is read from offset 0 instead, `file` only names it in errors, and it is left open.
 * Throws DebError(file, reason) for: a missing, unreadable or directory path; an empty file; not an
 * ar archive; a truncated header or member; debian-binary missing, not first or not `2.x`; no
 * control or data member, or an unexpected member; an unsupported control compression; corrupt
 * compressed data or tar; no `./control` in the tar; malformed control text; a missing Package,
 * Version or Architecture field; an invalid package name (Policy §5.6.1), version (§5.6.12) or
 * architecture. The file descriptor is closed before the promise settles.
 */
export async function readDeb(file: string, opts: { digests?: DigestName[]; fd?: number } = {}): Promise<DebInfo> {
  const names = opts.digests ?? ['MD5sum', 'SHA1', 'SHA256'];
  const hashes: [DigestName, Hash][] = names.map((n) => [n, createHash(ALGORITHMS[n])]);
  const layout = new DebLayout(file);
  const ar = new ArReader(file, layout);
  let size = 0;
  // Synchronous reads: with the file in the page cache a read is a copy, and the thread-pool round
  // trip of an asynchronous read cost more than the copy. Parallelism comes from worker threads
  // (deb/parallel.ts), not from overlapping reads on one thread.
  const buffer = (sharedBuffer ??= Buffer.allocUnsafe(CHUNK_SIZE));
  let fd: number | undefined;
  try {
    if (opts.fd === undefined) {
      // O_NOFOLLOW: a pool or drop-folder entry that is a symlink is never read through;
      // O_NONBLOCK: a FIFO must not block the read.
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new DebError(file, 'is a directory, not a .deb file');
      if (!st.isFile()) throw new DebError(file, 'not a regular file');
    }
    for (let pos = 0; ;) {
      const bytesRead = fs.readSync(opts.fd ?? fd!, buffer, 0, CHUNK_SIZE, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const chunk = buffer.subarray(0, bytesRead);
      size += bytesRead;
      for (const [, h] of hashes) h.update(chunk);
      ar.write(chunk);
    }
  } catch (e) {
    throw readError(file, e);
  } finally {
    if (fd !== undefined && opts.fd === undefined) fs.closeSync(fd);
  }
  ar.end();
  const control = await layout.control();
  const digests = Object.fromEntries(hashes.map(([n, h]) => [n, h.digest('hex')])) as unknown as Digests;
  return { control, size, digests };
}

/** Maps a read error to a DebError naming the file (DebErrors pass through). */
function readError(file: string, e: unknown): Error {
  if (e instanceof DebError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new DebError(file, 'no such file');
  if (code === 'EISDIR') return new DebError(file, 'is a directory, not a .deb file');
  if (code === 'EACCES' || code === 'EPERM') return new DebError(file, 'permission denied');
  if (code === 'ELOOP') return new DebError(file, 'symbolic link (never followed)');
  if (e instanceof Error && code) return new DebError(file, `cannot read: ${e.message}`);
  return e as Error;
}

/**
 * Checks the member sequence of a .deb as the ArReader reports it and keeps debian-binary and the
 * control member (dpkg-deb's rules, deb(5)).
 */
class DebLayout {
  private step: 'start' | 'control' | 'data' | 'done' = 'start';
  private keep: Buffer[] | undefined;
  private kept = 0;
  private controlName = '';
  private controlData: Buffer | undefined;

  constructor(private readonly file: string) {}

  onMember(m: ArMember): void {
    const fail = (reason: string): never => {
      throw new DebError(this.file, reason);
    };
    this.keep = undefined;
    if (this.step === 'start') {
      if (m.name !== 'debian-binary') fail(`not a Debian package: first member is '${m.name}', expected 'debian-binary'`);
      if (m.size > 1024) fail(`debian-binary is ${m.size} bytes, expected a format version line`);
      this.keep = [];
    } else if (this.step === 'control') {
      if (m.name.startsWith('_')) return;
      if (!/^control\.tar(\..*)?$/.test(m.name)) fail(`unexpected member '${m.name}' where control.tar was expected`);
      if (!['control.tar', 'control.tar.gz', 'control.tar.xz', 'control.tar.zst'].includes(m.name)) {
        fail(`unsupported compression of control member '${m.name}' (expected control.tar, .gz, .xz or .zst)`);
      }
      if (m.size > MAX_CONTROL_BYTES) fail(`control member '${m.name}' is ${m.size} bytes, over the ${MAX_CONTROL_BYTES}-byte limit`);
      this.controlName = m.name;
      this.keep = [];
    } else if (this.step === 'data') {
      if (m.name.startsWith('_')) return;
      if (!/^data\.tar(\..*)?$/.test(m.name)) fail(`unexpected member '${m.name}' where data.tar was expected`);
    }
    this.kept = 0;
  }

  onData(chunk: Buffer): void {
    if (!this.keep) return;
    // Copied: the chunk is a view of the read buffer, overwritten by the next read.
    this.keep.push(Buffer.from(chunk));
    this.kept += chunk.length;
  }

  onMemberEnd(m: ArMember): void {
    if (this.step === 'start') {
      const text = Buffer.concat(this.keep!).toString('latin1');
      // dpkg-deb accepts any 2.x format version and ignores what follows the first line.
      if (!/^2\.[0-9]+\n/.test(text))
        throw new DebError(this.file, `unsupported format version '${text.split('\n')[0].slice(0, 20)}' in debian-binary (expected 2.0)`);
      this.step = 'control';
    } else if (this.step === 'control' && m.name === this.controlName) {
      this.controlData = Buffer.concat(this.keep!, this.kept);
      this.step = 'data';
    } else if (this.step === 'data' && !m.name.startsWith('_')) {
      this.step = 'done';
    }
    this.keep = undefined;
  }

  /** After the whole file was read: the parsed and checked control stanza. */
  async control(): Promise<Stanza> {
    const fail = (reason: string): never => {
      throw new DebError(this.file, reason);
    };
    if (this.step === 'start') fail('not a Debian package: no debian-binary member');
    if (this.step === 'control') fail('not a Debian package: no control.tar member');
    if (this.step === 'data') fail('not a Debian package: no data.tar member');
    const tarData = await decompress(this.file, this.controlName, this.controlData!);
    const text = await controlFromTar(this.file, this.controlName, tarData);
    let stanza: Stanza;
    try {
      stanza = parseStanza(text, this.file);
    } catch (e) {
      throw e instanceof DebError ? new DebError(this.file, `control file: ${e.reason}`) : e;
    }
    checkControl(this.file, stanza);
    return stanza;
  }
}

/** Decompresses a control member by its name's extension; DebError on corrupt data. */
async function decompress(file: string, name: string, data: Buffer): Promise<Buffer> {
  const corrupt = (e: unknown): never => {
    throw new DebError(file, `corrupt ${name}: ${e instanceof Error ? e.message : String(e)}`);
  };
  const tooLarge = (): never => {
    throw new DebError(file, `${name} uncompresses to more than ${MAX_CONTROL_BYTES} bytes`);
  };
  if (name.endsWith('.gz')) {
    try {
      // Synchronous: a control member is a few KiB, far less than a thread-pool round trip costs.
      return zlib.gunzipSync(data, { maxOutputLength: MAX_CONTROL_BYTES });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') tooLarge();
      return corrupt(e);
    }
  }
  const out: Buffer[] = [];
  let total = 0;
  const add = (chunk: Uint8Array): void => {
    total += chunk.length;
    if (total > MAX_CONTROL_BYTES) tooLarge();
    out.push(Buffer.from(chunk));
  };
  if (name.endsWith('.zst')) {
    try {
      // Loaded on first use, like xz-decompress: most commands never open a .deb.
      const { Decompress } = require('fzstd') as typeof import('fzstd');
      const z = new Decompress((chunk) => add(chunk));
      z.push(data, true);
    } catch (e) {
      if (e instanceof DebError) throw e;
      corrupt(e);
    }
    return Buffer.concat(out);
  }
  if (name.endsWith('.xz')) {
    const { XzReadableStream } = require('xz-decompress') as typeof import('xz-decompress');
    const { ReadableStream: WebReadableStream } = require('stream/web') as typeof import('stream/web');
    const input = new WebReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(data.buffer, data.byteOffset, data.length));
        controller.close();
      },
    });
    // xz-decompress is typed against the DOM's ReadableStream; Node's web stream is the same thing.
    const reader = (new XzReadableStream(input as never) as unknown as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        add(value);
      }
    } catch (e) {
      await reader.cancel().catch(() => undefined);
      if (e instanceof DebError) throw e;
      corrupt(e);
    }
    return Buffer.concat(out);
  }
  return data;
}

/**
 * Finds `./control` (a regular file) in the uncompressed control tar and returns it as text, every
 * byte kept (decodeControlBytes: a Latin-1 byte is not turned into U+FFFD), with tar-stream (loaded
 * on first use). Throws DebError for a corrupt tar or a missing ./control.
 */
async function controlFromTar(file: string, name: string, data: Buffer): Promise<string> {
  const tar = require('tar-stream') as typeof import('tar-stream');
  const extract = tar.extract();
  let control: Buffer | undefined;
  try {
    extract.end(data);
    for await (const entry of extract) {
      const path = entry.header.name.replace(/^(\.\/)+/, '');
      if (path === 'control' && (entry.header.type === 'file' || entry.header.type === 'contiguous-file')) {
        const parts: Buffer[] = [];
        for await (const part of entry) parts.push(part as Buffer);
        control = Buffer.concat(parts);
      } else {
        entry.resume();
      }
    }
  } catch (e) {
    throw new DebError(file, `corrupt tar in ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!control) throw new DebError(file, `no ./control file in ${name}`);
  return decodeControlBytes(control);
}

/** A control value shown in a message: quoted, control characters escaped, cut at 80 characters. */
function shown(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
}

/**
 * Checks the fields every binary package needs (Policy §5.3) and every field that becomes part of a
 * pool path or file name, naming the file and the field: Package (§5.6.1), Version (§5.6.12),
 * Architecture (§5.6.8, one architecture or `all`) and, when present, Source (§5.6.1: `name` or
 * `name (version)`). Package data is hostile: a `/`, `..`, NUL or newline in any of them is refused
 * here, before anything builds a path from it.
 */
function checkControl(file: string, s: Stanza): void {
  const fail = (reason: string): never => {
    throw new DebError(file, reason);
  };
  const required = (field: string): string => {
    const v = getField(s, field);
    if (v === undefined || v === '') fail(`control file has no ${field} field`);
    return v!;
  };
  const name = required('Package');
  const version = required('Version');
  const architecture = required('Architecture');
  if (!isValidPackageName(name))
    fail(
      `invalid Package field ${shown(name)} (Debian Policy §5.6.1: lower-case letters, digits, + - . only, at least two characters, starting with a letter or digit)`,
    );
  try {
    parseVersion(version);
  } catch (e) {
    if (e instanceof VersionError) fail(`invalid Version field ${shown(version)}: ${e.reason} (Debian Policy §5.6.12)`);
    throw e;
  }
  if (!isValidArchitecture(architecture))
    fail(`invalid Architecture field ${shown(architecture)} (Debian Policy §5.6.8: one architecture name, or all)`);
  const source = getField(s, 'Source');
  if (source !== undefined && !parseSourceField(source)) {
    fail(`invalid Source field ${shown(source)} (Debian Policy §5.6.1: a source package name, optionally followed by ' (version)')`);
  }
}
