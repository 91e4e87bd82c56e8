/**
 * The one file-system module of the writers (ingest, promote, remove, import, backup, publish's
 * state files): placing files so that a crash never leaves a partial file under a published name and
 * an existing one is never replaced, and with one symlink policy, since uploads are hostile:
 *
 * - a path built from package data is a trusted base folder plus a relative '/'-path checked by
 *   `checkRelPath` (no absolute path, no `..`, `.` or empty segment, no control character);
 * - every folder below the base is opened with O_DIRECTORY|O_NOFOLLOW, one component at a time,
 *   and the operations then name entries through that folder's descriptor
 *   (`/proc/self/fd/<fd>/<name>`, Linux's openat(2) equivalent for a program without openat): a
 *   folder swapped for a symlink after a check is refused, never followed, and nothing is resolved
 *   twice between a check and its use;
 * - files are created with O_CREAT|O_EXCL|O_NOFOLLOW (temp names too) and fstat'ed after opening;
 *   a file is put under its final name with link(2), which fails on any existing entry, so a
 *   planted name is never written through nor replaced.
 */
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { constants as C, promises as fsp } from 'fs';
import * as path from 'path';
import { AptRepoError, UnsafePathError } from '../errors';
import { byteOrder } from './order';

/** Human text of a Node fs error (code and message, no stack). */
export function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.message ?? String(err);
}

/** The set-group-ID bit of a mode (inode(7)); not in Node's fs.constants. */
const S_ISGID = 0o2000;

/** Control characters (C0, DEL): never part of a name we create or follow. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks `rel`, a '/'-separated path relative to a trusted folder, and returns its segments.
 * Throws UnsafePathError(rel, reason) for an empty or absolute path, a control character (NUL,
 * newline …), or an empty, `.` or `..` segment.
 */
export function checkRelPath(rel: string): string[] {
  const fail = (reason: string): never => {
    throw new UnsafePathError(JSON.stringify(rel), reason);
  };
  if (typeof rel !== 'string' || rel === '') fail('empty path');
  if (CONTROL.test(rel)) fail('control character in path');
  if (rel.startsWith('/')) fail('absolute path where a relative one was expected');
  const segments = rel.split('/');
  for (const s of segments) {
    if (s === '') fail('empty path segment');
    if (s === '.' || s === '..') fail(`'${s}' segment (a path must stay below its folder)`);
  }
  return segments;
}

/**
 * Checks `name` as one entry of a folder: not empty, `.` or `..`, without '/' or NUL. Other control
 * characters are allowed here: names found in a listing (an upload's name) must still be movable.
 */
function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\u0000')) {
    throw new UnsafePathError(JSON.stringify(name), 'not a single file name');
  }
}

/**
 * `<base>/<rel>`, confined: `rel` passes checkRelPath, and every existing component below `base`
 * (lstat'ed one at a time, never followed) is a real folder, except the last, which may be a file;
 * a missing component ends the walk (what follows does not exist either). `base` itself is trusted
 * (it comes from the channel's configuration). Throws UnsafePathError naming the path for a bad
 * `rel`, a symbolic link on the way (the last component included) or a file where a folder is needed.
 */
export function confine(base: string, rel: string): string {
  const segments = checkRelPath(rel);
  let cur = base;
  for (let i = 0; i < segments.length; i++) {
    cur = path.join(cur, segments[i]);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
      throw e;
    }
    if (st.isSymbolicLink()) throw new UnsafePathError(cur, 'symbolic link (never followed)');
    if (i < segments.length - 1 && !st.isDirectory()) throw new UnsafePathError(cur, 'not a folder');
  }
  return path.join(base, ...segments);
}

let procChecked = false;
/** `/proc/self/fd/<fd>/<name>`: `name` looked up in the folder open as `fd`, not by its path. */
function at(fd: number, name: string): string {
  if (!procChecked) {
    if (!fs.existsSync('/proc/self/fd'))
      throw new AptRepoError('/proc/self/fd is missing: apt-repo needs Linux /proc to work on folders without following links');
    procChecked = true;
  }
  return name === '' ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function eexist(file: string): NodeJS.ErrnoException {
  const e = new Error(`EEXIST: file already exists, ${file}`) as NodeJS.ErrnoException;
  e.code = 'EEXIST';
  return e;
}

/**
 * A folder opened without following links (O_DIRECTORY|O_NOFOLLOW on every component below its
 * trusted base). Entries are named through its descriptor, so what it refers to cannot be swapped
 * for a symlink after it was opened. `path` is for messages only. Close it with `close()`.
 */
export class SafeDir {
  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  /**
   * Opens `<base>/<rel>` (`rel` '' or '.' for the base itself). `base` is trusted and may itself be
   * reached through links; every component of `rel` must be a real folder. With `create`, missing
   * folders are made with mode `create` (exactly, plus the setgid bit when their parent has it, so
   * a setgid pool keeps its group). With `owned`, the opened folder must belong to the running user.
   * Throws UnsafePathError for a bad `rel`, a symlink or non-folder on the way, or a folder of
   * another owner; the fs error (ENOENT …) otherwise.
   */
  static open(base: string, rel: string, opts: { create?: number; owned?: boolean } = {}): SafeDir {
    let fd = fs.openSync(base, C.O_RDONLY | C.O_DIRECTORY);
    let shown = base;
    try {
      for (const seg of rel === '' || rel === '.' ? [] : checkRelPath(rel)) {
        shown = path.join(shown, seg);
        const next = openSubdir(fd, seg, shown, opts.create);
        fs.closeSync(fd);
        fd = next;
      }
      if (opts.owned) checkOwned(fd, shown);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new SafeDir(fd, shown);
  }

  /**
   * Opens the folder `abs` whose parents are trusted (configuration paths) but whose last component
   * must not be a symlink (the rejected folder, a state folder): see `open` for the options.
   */
  static openAbs(abs: string, opts: { create?: number; owned?: boolean } = {}): SafeDir {
    return SafeDir.open(path.dirname(abs), path.basename(abs), opts);
  }

  /** The entry `name` (one segment, checked) as a path that resolves through this folder's descriptor. */
  entry(name: string): string {
    checkName(name);
    return at(this.fd, name);
  }

  /** lstat of entry `name`; undefined when it does not exist. */
  lstat(name: string): fs.Stats | undefined {
    return lstatOrUndefined(this.entry(name));
  }

  /** fstat of the folder itself. */
  stat(): fs.Stats {
    return fs.fstatSync(this.fd);
  }

  /** The entries of the folder, sorted by name (byte order), with their types (not followed). */
  list(): fs.Dirent[] {
    return fs.readdirSync(at(this.fd, ''), { withFileTypes: true }).sort((a, b) => byteOrder(a.name, b.name));
  }

  /** The sub-folder `name`, opened without following a link (see `open`). */
  sub(name: string, opts: { create?: number } = {}): SafeDir {
    checkName(name);
    return new SafeDir(openSubdir(this.fd, name, path.join(this.path, name), opts.create), path.join(this.path, name));
  }

  /**
   * Opens the existing regular file `name` for reading, never following a link nor blocking on a
   * FIFO; resolves to the descriptor and its fstat. Throws UnsafePathError for a symlink or a
   * non-regular file (the descriptor is then closed).
   */
  openFile(name: string): { fd: number; stat: fs.Stats } {
    let fd: number;
    try {
      fd = fs.openSync(this.entry(name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOOP')
        throw new UnsafePathError(path.join(this.path, name), 'symbolic link (never followed)');
      throw e;
    }
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) {
      fs.closeSync(fd);
      throw new UnsafePathError(path.join(this.path, name), 'not a regular file');
    }
    return { fd, stat };
  }

  /**
   * Creates the new file `name` with `data` and exactly `mode` (O_CREAT|O_EXCL|O_NOFOLLOW, so an
   * existing entry, a planted symlink included, is an EEXIST error and is never written through),
   * fsynced. A failure after the create removes the file.
   */
  createFile(name: string, data: string | Uint8Array, mode: number): void {
    const p = this.entry(name);
    const fd = fs.openSync(p, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1) throw new UnsafePathError(path.join(this.path, name), 'not the file just created');
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(p, { force: true });
      throw e;
    }
    fs.closeSync(fd);
  }

  /** Removes entry `name` (never a folder); with `ino`, only when it is still that inode. Resolves whether it was removed. */
  unlink(name: string, ino?: number): boolean {
    const st = this.lstat(name);
    if (!st || (ino !== undefined && st.ino !== ino)) return false;
    fs.unlinkSync(this.entry(name));
    return true;
  }

  /** Renames entry `from` of this folder to `to` of `dest` (neither is followed: rename(2) acts on the entries). */
  rename(from: string, dest: SafeDir, to: string): void {
    fs.renameSync(this.entry(from), dest.entry(to));
  }

  /** fsyncs the folder (a new entry in it survives a crash). */
  sync(): void {
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function openSubdir(parentFd: number, name: string, shown: string, create: number | undefined): number {
  const p = at(parentFd, name);
  const open = () => fs.openSync(p, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  try {
    return open();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || (code === 'ENOTDIR' && lstatOrUndefined(p)?.isSymbolicLink()))
      throw new UnsafePathError(shown, 'symbolic link (never followed)');
    if (code === 'ENOTDIR') throw new UnsafePathError(shown, 'not a folder');
    if (code !== 'ENOENT' || create === undefined) throw e;
  }
  try {
    fs.mkdirSync(p, create);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return openSubdir(parentFd, name, shown, undefined);
  }
  const fd = open();
  try {
    fs.fchmodSync(fd, create | (fs.fstatSync(parentFd).mode & S_ISGID));
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

function checkOwned(fd: number, shown: string): void {
  const uid = process.geteuid?.();
  const st = fs.fstatSync(fd);
  if (uid !== undefined && st.uid !== uid)
    throw new UnsafePathError(shown, `owned by uid ${st.uid}, not by the running user (uid ${uid}): refusing to write into it`);
}

/** A file named by a trusted base folder and a relative '/'-path below it (checked by checkRelPath). */
export interface Confined {
  base: string;
  rel: string;
}

/** `<base>/<rel>` for messages. */
export function shownPath(c: Confined): string {
  return path.join(c.base, c.rel);
}

function openParent(c: Confined, create?: number): { dir: SafeDir; name: string } {
  const segments = checkRelPath(c.rel);
  const name = segments.pop()!;
  return { dir: SafeDir.open(c.base, segments.join('/'), { create }), name };
}

/**
 * Removes the file `c`, opening each folder on the way without following a link (SafeDir).
 * Throws UnsafePathError for a bad path or a link on the way; the fs error (ENOENT …) otherwise.
 */
export function unlinkConfined(c: Confined): void {
  const { dir, name } = openParent(c);
  try {
    dir.unlink(name);
  } finally {
    dir.close();
  }
}

/**
 * The one file-digest loop: the size of an open file descriptor and its hex digests by each of
 * `algorithms` (node:crypto names: 'md5', 'sha1', 'sha256', 'sha512'), read from offset 0, 1 MiB
 * at a time, in one pass (never the whole file in memory). Throws the fs error unchanged.
 */
export function hashFd(fd: number, algorithms: readonly string[]): { size: number; hex: string[] } {
  const hashes = algorithms.map((a) => createHash(a));
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    for (const h of hashes) h.update(buf.subarray(0, n));
    pos += n;
  }
  return { size: pos, hex: hashes.map((h) => h.digest('hex')) };
}

/** Hex SHA256 of an open file descriptor, read from offset 0 (see hashFd). */
export function sha256Fd(fd: number): string {
  return hashFd(fd, ['sha256']).hex[0];
}

/**
 * Hex SHA256 of a regular file: `file` an absolute path (its last component is never followed), or
 * a Confined path (no component followed). Throws the fs error (ENOENT …) or UnsafePathError for a
 * symlink or a non-regular file.
 */
export async function sha256File(file: string | Confined): Promise<string> {
  const c = typeof file === 'string' ? { base: path.dirname(file), rel: path.basename(file) } : file;
  const { dir, name } = openParent(c);
  try {
    const { fd } = dir.openFile(name);
    try {
      return sha256Fd(fd);
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    dir.close();
  }
}

/** Options of placeFile and copyFdTo. */
export interface PlaceOptions {
  /** Mode of the placed file (a copy is created with it; a moved or linked file is fchmod'ed when ours); default: the source's. */
  mode?: number;
  /** Mode of folders created on the way to the destination (default 0755; setgid kept from the parent). */
  dirMode?: number;
  /**
   * A move's destination folder is added here instead of being fsynced at once: the caller fsyncs
   * each folder once, before anything refers to the file (ingest of 1,000 files into one folder).
   */
  dirsToSync?: Set<string>;
}

/**
 * Puts the regular file `src` at `dest`, both confined (no component followed, folders of `dest`
 * created as needed), never replacing an existing `dest` (EEXIST error):
 * - 'move': link(2) then unlink of `src` (the same inode under the new name); where that link is
 *   refused (EPERM under fs.protected_hardlinks) a rename(2) after checking `dest` is free; across
 *   filesystems (EXDEV) a durable copy, then unlink of `src`;
 * - 'link': link(2), so both names share one inode (prod ↔ preprod); where hard links are impossible
 *   (EXDEV, or EPERM under fs.protected_hardlinks) a durable copy;
 * - 'copy': a durable copy (copyFdTo).
 * Throws UnsafePathError when `src` is a symlink or not a regular file, or a path is not confined.
 * Resolves to what was done.
 */
export async function placeFile(
  src: Confined,
  dest: Confined,
  how: 'move' | 'link' | 'copy',
  opts: PlaceOptions = {},
): Promise<'renamed' | 'linked' | 'copied'> {
  const s = openParent(src);
  try {
    const sst = s.dir.lstat(s.name);
    if (!sst) {
      const e = new Error(`ENOENT: no such file, ${shownPath(src)}`) as NodeJS.ErrnoException;
      e.code = 'ENOENT';
      throw e;
    }
    if (sst.isSymbolicLink()) throw new UnsafePathError(shownPath(src), 'symbolic link (never followed)');
    if (!sst.isFile()) throw new UnsafePathError(shownPath(src), 'not a regular file');
    const d = openParent(dest, opts.dirMode ?? 0o755);
    try {
      if (d.dir.lstat(d.name)) throw eexist(shownPath(dest));
      if (how !== 'copy') {
        let done: 'renamed' | 'linked' | undefined;
        try {
          fs.linkSync(s.dir.entry(s.name), d.dir.entry(d.name));
          if (how === 'move') s.dir.unlink(s.name, sst.ino);
          done = how === 'move' ? 'renamed' : 'linked';
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EXDEV' && code !== 'EPERM') throw err;
          if (code === 'EPERM' && how === 'move') {
            if (d.dir.lstat(d.name)) throw eexist(shownPath(dest));
            s.dir.rename(s.name, d.dir, d.name);
            done = 'renamed';
          }
        }
        if (done) {
          if (opts.mode !== undefined && done === 'renamed') setModeIfOurs(d.dir, d.name, opts.mode);
          if (done === 'renamed' && opts.dirsToSync) opts.dirsToSync.add(d.dir.path);
          else d.dir.sync();
          return done;
        }
      }
      const { fd } = s.dir.openFile(s.name);
      try {
        const st = fs.fstatSync(fd);
        if (st.ino !== sst.ino) throw new UnsafePathError(shownPath(src), 'replaced while being placed');
        copyInto(fd, d.dir, d.name, opts.mode ?? st.mode & 0o777);
      } finally {
        fs.closeSync(fd);
      }
      if (how === 'move') s.dir.unlink(s.name, sst.ino);
      return 'copied';
    } finally {
      d.dir.close();
    }
  } finally {
    s.dir.close();
  }
}

function setModeIfOurs(dir: SafeDir, name: string, mode: number): void {
  const { fd, stat } = dir.openFile(name);
  try {
    if (process.geteuid === undefined || stat.uid === process.geteuid() || process.geteuid() === 0) fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Copies the bytes of the open regular file `srcFd` (from offset 0) to the new file `dest`
 * (confined, folders created with `opts.dirMode`), durably: a temp name beside it created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and exactly `opts.mode` (default 0644), fsync, link(2) to the final name
 * (EEXIST if it exists: never replaced), unlink of the temp name, fsync of the folder.
 */
export async function copyFdTo(srcFd: number, dest: Confined, opts: PlaceOptions = {}): Promise<void> {
  const d = openParent(dest, opts.dirMode ?? 0o755);
  try {
    if (d.dir.lstat(d.name)) throw eexist(shownPath(dest));
    copyInto(srcFd, d.dir, d.name, opts.mode ?? 0o644);
  } finally {
    d.dir.close();
  }
}

function copyInto(srcFd: number, dir: SafeDir, name: string, mode: number): void {
  const tmp = `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmpPath = dir.entry(tmp);
  const out = fs.openSync(tmpPath, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
  try {
    const st = fs.fstatSync(out);
    if (!st.isFile() || st.nlink !== 1) throw new UnsafePathError(path.join(dir.path, tmp), 'not the file just created');
    fs.fchmodSync(out, mode);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ;) {
      const n = fs.readSync(srcFd, buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let off = 0; off < n;) off += fs.writeSync(out, buf, off, n - off);
      pos += n;
    }
    fs.fsyncSync(out);
    fs.closeSync(out);
    fs.linkSync(tmpPath, dir.entry(name));
  } catch (e) {
    try {
      fs.closeSync(out);
    } catch {
      // already closed
    }
    fs.rmSync(tmpPath, { force: true });
    throw e;
  }
  fs.unlinkSync(tmpPath);
  dir.sync();
}

/**
 * Moves entry `name` of `src` (any type: file, symlink, folder, FIFO; never followed) to `destName`
 * in `dest`, which must be free (EEXIST otherwise; checked just before, so an entry planted in a
 * folder others can write would be replaced by the rename, never written through). Across
 * filesystems (EXDEV) a regular file is copied (copyFdTo rules) and a symlink re-created, then
 * the source is unlinked; other types fail there.
 */
export function moveEntry(src: SafeDir, name: string, dest: SafeDir, destName: string): void {
  if (dest.lstat(destName)) throw eexist(path.join(dest.path, destName));
  try {
    src.rename(name, dest, destName);
    dest.sync();
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const st = src.lstat(name);
  if (!st) throw new UnsafePathError(path.join(src.path, name), 'vanished while being moved');
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src.entry(name)), dest.entry(destName));
  } else if (st.isFile()) {
    const { fd } = src.openFile(name);
    try {
      copyInto(fd, dest, destName, st.mode & 0o777);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    throw new UnsafePathError(path.join(src.path, name), 'cannot move this kind of entry across filesystems');
  }
  src.unlink(name, st.ino);
}

/**
 * Copies the regular file `src` to the new file `dest` (see placeFile 'copy'); never replaces an
 * existing `dest` (EEXIST). Mode: `mode`, else the source's.
 */
export async function durableCopy(src: Confined, dest: Confined, mode?: number): Promise<void> {
  await placeFile(src, dest, 'copy', { mode });
}

/**
 * The temp name every writer uses beside `file` (same folder, so a rename or link(2) onto `file`
 * is atomic): `<folder>/.<name>.tmp-<pid>-<random hex>`, hidden (listings of the pool skip dot
 * names) and unique per call. With `tag`, `<folder>/.<name>.tmp-<pid>-<tag>` instead: a name a
 * later run can find again (backup's restore removes its own leftovers by it).
 */
export function tempName(file: string, tag?: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${tag ?? randomBytes(4).toString('hex')}`);
}

/**
 * Writes `data` to `dest` through a temp name (tempName) and a rename, mode exactly `mode` (chmod
 * after the umask): a reader sees the old file or the whole new one. Not durable on its own, on
 * purpose: it is for the files of a new generation (index/dist.ts), which publish fsyncs once, as
 * a tree, before `dists` points at it (many small fsyncs would dominate a publish). Use
 * writeFileAtomic for anything else.
 */
export async function replaceFile(dest: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempName(dest);
  await fsp.writeFile(tmp, data, { mode });
  await fsp.chmod(tmp, mode); // the umask may have taken bits away
  await fsp.rename(tmp, dest);
}

/**
 * Points the symbolic link `link` at `target` (a path relative to the link's folder) atomically: a
 * new link under a temp name beside it (tempName), renamed over `link` (a reader sees the old
 * target or the new one, never none), then the folder fsynced. rename(2) replaces the entry
 * without following it; it fails (EISDIR, ENOTEMPTY …) rather than replace a real folder, and the
 * temp link is then removed. The flips of `dists` and of the web catalogue.
 */
export function replaceSymlink(target: string, link: string): void {
  const tmp = tempName(link);
  fs.symlinkSync(target, tmp);
  try {
    fs.renameSync(tmp, link);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(link));
}

/**
 * Makes `dest` a hard link to `src`, replacing `dest` atomically (link to a temp name, rename);
 * a copy across file systems (EXDEV). Not durable on its own, as replaceFile (same use).
 */
export async function replaceWithLink(src: string, dest: string): Promise<void> {
  const tmp = tempName(dest);
  try {
    await fsp.link(src, tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fsp.copyFile(src, tmp);
  }
  await fsp.rename(tmp, dest);
  // rename(2) does nothing when both names are already the same file: the temp name is left behind.
  await fsp.rm(tmp, { force: true });
}

/**
 * Writes `data` to `file` atomically: a temp file beside it created with O_CREAT|O_EXCL|O_NOFOLLOW
 * and exactly `mode` (the umask is undone with fchmod before any byte is written), fsync, rename
 * over `file` (replacing the entry, never writing through a link at that name), fsync of the
 * folder. The folder (last component of its path) must not be a symlink: UnsafePathError.
 * A crash leaves either the old or the new content.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = SafeDir.openAbs(path.dirname(file));
  try {
    const name = path.basename(file);
    const tmp = path.basename(tempName(file));
    dir.createFile(tmp, data, mode);
    try {
      dir.rename(tmp, dir, name);
    } catch (e) {
      dir.unlink(tmp);
      throw e;
    }
    dir.sync();
  } finally {
    dir.close();
  }
}

/**
 * Appends `data` to the existing regular file `file` and fsyncs it before returning (a journal
 * line is durable once this returns). The file is opened with O_APPEND|O_NOFOLLOW (a symlink at
 * that name is refused, ELOOP) and must be a regular file with one name; its folder (last
 * component) must not be a symlink: UnsafePathError. A crash in the middle leaves the old content
 * followed by a prefix of `data`. `opts.truncateTo` (bytes): a longer file is first cut to that
 * length (the end of its last complete record, as its reader found it).
 */
export function appendDurable(file: string, data: string | Uint8Array, opts: { truncateTo?: number } = {}): void {
  const dir = SafeDir.openAbs(path.dirname(file));
  try {
    const fd = fs.openSync(dir.entry(path.basename(file)), C.O_WRONLY | C.O_APPEND | C.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1) throw new UnsafePathError(file, 'not a regular file with one name');
      // A torn tail (a writer killed in the middle of its append) is cut before the new data.
      if (opts.truncateTo !== undefined && st.size > opts.truncateTo) fs.ftruncateSync(fd, opts.truncateTo);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    dir.close();
  }
}

/** fsyncs a directory so that a rename or a new entry in it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `dir` and any missing parents with exactly `mode` (mkdir's mode is filtered by the
 * umask: a root shell with umask 077 would make directories nginx cannot enter). Existing
 * directories are left as they are. For configured (trusted) paths only.
 */
export function mkdirWithMode(dir: string, mode: number): void {
  if (fs.existsSync(dir)) return;
  mkdirWithMode(path.dirname(dir), mode);
  try {
    fs.mkdirSync(dir, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return;
  }
  fs.chmodSync(dir, mode);
}

/**
 * The one directory walker, with the one symlink policy: every entry below `root` that is not a
 * folder, as '/'-separated paths relative to it, sorted (byte order); folders are entered without
 * following links (each opened O_NOFOLLOW, see SafeDir), and a symbolic link is never listed nor
 * followed: `onLink` receives it. What differs between callers is explicit: `skip` filters names
 * (the pool and imports skip hidden temp names), `onDir` receives every folder entered, `root`
 * itself as ''; `includeLinks` lists the links too (still never followed). [] when `root` is missing.
 */
export function walkNoFollow(
  root: string,
  opts: { skip?: (name: string) => boolean; onLink?: (rel: string) => void; onDir?: (rel: string) => void; includeLinks?: boolean } = {},
): string[] {
  const out: string[] = [];
  let top: SafeDir;
  try {
    top = SafeDir.openAbs(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  const walk = (dir: SafeDir, rel: string) => {
    opts.onDir?.(rel);
    for (const d of dir.list()) {
      if (opts.skip?.(d.name)) continue;
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isSymbolicLink()) {
        opts.onLink?.(r);
        if (opts.includeLinks) out.push(r);
      } else if (d.isDirectory()) {
        const sub = dir.sub(d.name);
        try {
          walk(sub, r);
        } finally {
          sub.close();
        }
      } else out.push(r);
    }
  };
  try {
    walk(top, '');
  } finally {
    top.close();
  }
  return out.sort();
}
