/**
 * Stale temporary files of dead writers (see repo/recover.ts): which temp names are a dead
 * process's (`.<name>.tmp-<pid>-<hex>`, `.<name>.tmp-<pid>-restore`), and their removal, in one
 * folder or a whole tree. Used by crash recovery and by restore; imports nothing of either.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SafeDir } from '../core/files';
import { alive } from '../core/proc';

/** An hour: a temp name older than this is stale even if its pid was reused by another process. */
export const STALE_MS = 3_600_000;

export function lstatQuiet(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Removes the temp names of dead writers in folder `dir` (a trusted configuration path): names
 * `pattern` matches, whose first group is the writer's pid. Only regular files and symlinks are
 * removed (never followed). Returns the removed names.
 */
export function removeStale(dir: string, pattern: RegExp, now: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = pattern.exec(n);
    if (!m) continue;
    const st = lstatQuiet(path.join(dir, n));
    if (!st || !(st.isFile() || st.isSymbolicLink())) continue;
    if (!staleTemp(Number(m[1]), st.mtimeMs, now)) continue;
    try {
      fs.unlinkSync(path.join(dir, n));
      removed.push(n);
    } catch {
      // gone meanwhile, or not ours: left for a later run
    }
  }
  return removed;
}

/**
 * The temp names our writers make (files.ts and repo/backup.ts), the writer's pid in group 1:
 * writeFileAtomic and copyInto `.<name>.tmp-<pid>-<8 hex>`; restore `.<name>.tmp-<pid>-restore`
 * (a file or the `dists` link); restore's copy through copyInto
 * `..<name>.tmp-<pid>-restore.tmp-<pid>-<8 hex>` (the first form, its name being restore's temp).
 */
export const TMP_RE = /^\..+\.tmp-(\d+)-(?:[0-9a-f]{8}|restore)$/;

/** Whether a temp entry of writer `pid`, last changed at `mtimeMs`, is stale (see STALE_MS). */
export function staleTemp(pid: number, mtimeMs: number, now: number): boolean {
  return !alive(pid) || now - mtimeMs >= STALE_MS;
}

/**
 * Removes, in every folder below `base` (a trusted configuration path: the web root, config or
 * state folder of a channel, `base` included), the temp entries of dead writers: names TMP_RE
 * matches, regular files or symlinks (removed, never followed). Folders are opened one by one
 * without following a link (SafeDir); a link to a folder is not entered. The caller holds the
 * channel lock. Returns the removed paths (absolute); a missing `base` gives []. Errors on the way
 * (an entry replaced meanwhile, a folder we may not read) skip that entry.
 */
export function removeDeadTempsBelow(base: string): string[] {
  const removed: string[] = [];
  const now = Date.now();
  const walk = (dir: SafeDir) => {
    let entries: fs.Dirent[];
    try {
      entries = dir.list();
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        let sub: SafeDir;
        try {
          sub = dir.sub(e.name);
        } catch {
          continue;
        }
        try {
          walk(sub);
        } finally {
          sub.close();
        }
        continue;
      }
      const m = TMP_RE.exec(e.name);
      if (!m) continue;
      const st = dir.lstat(e.name);
      if (!st || !(st.isFile() || st.isSymbolicLink()) || !staleTemp(Number(m[1]), st.mtimeMs, now)) continue;
      try {
        if (dir.unlink(e.name, st.ino)) removed.push(path.join(dir.path, e.name));
      } catch {
        // gone meanwhile, or not ours to remove: left for a later run
      }
    }
  };
  let top: SafeDir;
  try {
    top = SafeDir.open(base, '');
  } catch {
    return removed;
  }
  try {
    walk(top);
  } finally {
    top.close();
  }
  return removed;
}
