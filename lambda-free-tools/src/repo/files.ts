/**
 * Writing and placing files so that a crash never leaves a partial file under a published name,
 * and never replaces an existing one: the state files (cache, generation.json, upload times, keys)
 * and the pool files of ingest, promote, remove, import and backup.
 */
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { createReadStream, constants as fsConstants, promises as fsp } from 'fs';
import * as path from 'path';

/** Human text of a Node fs error (code and message, no stack). */
export function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.message ?? String(err);
}

/** Hex SHA256 of a file, streamed. Throws the fs error (ENOENT …). */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file).on('error', reject).on('data', (d) => h.update(d)).on('end', () => resolve());
  });
  return h.digest('hex');
}

/**
 * Puts the regular file `src` at `dest` (whose parent exists), never replacing an existing `dest`
 * (throws an EEXIST error instead):
 * - 'move': rename(2); across filesystems (EXDEV) a durable copy then unlink of `src`;
 * - 'link': link(2), so both names share one inode (prod ↔ preprod); where hard links are impossible
 *   (EXDEV, or EPERM under fs.protected_hardlinks) a durable copy;
 * - 'copy': a durable copy.
 * With `dirsToSync`, a rename's folder is added to the set instead of being fsynced at once: the
 * caller fsyncs each folder once, before anything refers to the file (ingest of 1,000 files into one
 * folder: one fsync instead of 1,000). Resolves to what was done.
 */
export async function placeFile(src: string, dest: string, how: 'move' | 'link' | 'copy', dirsToSync?: Set<string>): Promise<'renamed' | 'linked' | 'copied'> {
  if (how === 'link') {
    try {
      await fsp.link(src, dest);
      return 'linked';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM') throw err;
    }
    await durableCopy(src, dest);
    return 'copied';
  }
  if (how === 'move') {
    await assertFree(dest);
    try {
      await fsp.rename(src, dest);
      if (dirsToSync) dirsToSync.add(path.dirname(dest));
      else await fsyncDir(path.dirname(dest));
      return 'renamed';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
    await durableCopy(src, dest);
    await fsp.unlink(src);
    return 'copied';
  }
  await durableCopy(src, dest);
  return 'copied';
}

/**
 * Copies `src` to `dest` so that a crash never leaves a partial `dest`: copy to a temp name beside
 * it, fsync, rename into place (refusing to replace an existing `dest`: EEXIST), fsync the folder.
 * File mode is copied.
 */
export async function durableCopy(src: string, dest: string): Promise<void> {
  await assertFree(dest);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fsp.copyFile(src, tmp, fsConstants.COPYFILE_EXCL);
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await assertFree(dest);
    await fsp.rename(tmp, dest);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(dest));
}

async function assertFree(dest: string): Promise<void> {
  try {
    await fsp.lstat(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const e = new Error(`EEXIST: file already exists, ${dest}`) as NodeJS.ErrnoException;
  e.code = 'EEXIST';
  throw e;
}

/**
 * Writes `data` to `file` atomically: a temp file beside it, created with mode `mode` (exactly:
 * the umask is undone with fchmod before any byte is written), fsync, rename over, fsync of the
 * directory. A crash leaves either the old or the new content.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/** fsyncs a directory so that a rename or a new entry in it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `dir` and any missing parents with exactly `mode` (mkdir's mode is filtered by the
 * umask: a root shell with umask 077 would make directories nginx cannot enter). Existing
 * directories are left as they are.
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
