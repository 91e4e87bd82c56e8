/**
 * A folder's content as one comparable object: what tests snapshot before an operation and compare
 * after it (an attack changed nothing, a restore gives the same bytes, a killed command left the
 * previous state). Links are never followed.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** What fileTree records besides files and links, and what it leaves out. */
export interface FileTreeOptions {
  /** Entries to leave out (a skipped folder is not entered), by path relative to the top and by name. */
  skip?: (rel: string, name: string) => boolean;
  /** Put each file's mode (octal, special bits included) before its SHA-256; default true. */
  modes?: boolean;
  /** Record each folder as `dir <mode>` too; default false (folders appear only through what they hold). */
  dirs?: boolean;
  /** A folder that is missing (or vanishes while walked) reads as empty instead of throwing ENOENT; default false. */
  missingOk?: boolean;
}

/**
 * Every entry below `dir` by relative path ('a/b'): a file as `<mode> <sha256 hex>` (or the SHA-256
 * alone with `modes: false`), a symbolic link as `-> <target>`, a folder as `dir <mode>` with
 * `dirs`. Throws fs errors (ENOENT for a missing `dir` unless `missingOk`).
 */
export function fileTree(dir: string, opts: FileTreeOptions = {}): Record<string, string> {
  const { skip = () => false, modes = true, dirs = false, missingOk = false } = opts;
  const mode = (p: string) => (fs.lstatSync(p).mode & 0o7777).toString(8);
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch (e) {
      if (missingOk && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r, e.name)) continue;
      const p = path.join(dir, r);
      if (e.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) {
        if (dirs) out[r] = `dir ${mode(p)}`;
        walk(r);
      } else {
        const sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
        out[r] = modes ? `${mode(p)} ${sha}` : sha;
      }
    }
  };
  walk('');
  return out;
}
