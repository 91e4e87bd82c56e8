/**
 * ingest: takes the `.deb` files dropped into a channel's incoming folders
 * (`<incomingDir>/<source>/<file>.deb` or `<incomingDir>/<source>/<codename>/<file>.deb`), moves the
 * valid ones into the pool, rejects the others into `<rejectedDir>` with a `.reason` file, and
 * publishes once for the whole batch, all under the channel lock.
 *
 * When is a file complete? Uploads arrive by scp/rsync/CI while we run, and nothing tells us a
 * writer has finished. The rule (robust against clock skew of the uploading machine, since `scp -p`
 * and rsync copy the sender's mtime):
 *   1. names ending in `.part` or starting with '.' are temporary (rsync, curl, lftp) and skipped;
 *   2. a file whose ctime (set by this server's clock on every write, never by the uploader) is
 *      younger than `settleMs` (default 2000 ms) is skipped;
 *   3. size, mtime and ctime are taken twice, `recheckMs` apart (default min(1000, settleMs / 2)),
 *      and again after reading the file; any change means a writer is still busy: skipped.
 * A skipped file stays where it is and is taken by the next run. Both delays are options (the CLI's
 * `--settle-ms`), so tests can run with 0.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import { promises as fsp, Stats } from 'fs';
import * as path from 'path';
import { AptRepoError, DebError, UnsafePathError, UsageError } from '../errors';
import { withChannelLock } from './lock';
import { formatOf } from './format';
import { keyOf, POOL_DIR_MODE, POOL_FILE_MODE, poolPathFor, recordAdded, scanPool } from './pool';
import { confine, Confined, unlinkConfined, copyFdTo, errText, fsyncDir, moveEntry, placeFile, SafeDir, sha256File } from '../core/files';
import { trashDir } from './trash';
import { publishLocked, PublishResult } from './generationWriter';
import { appendHistory, changeRecord, type HistoryRecord } from './history';
import { PoolCache } from './cache';
import { currentGeneration } from './generations';
import { recoverChannel } from './recover';
import { beginIntent, Intent, intentFile, settleFailedPublish } from './intent';
import { routeCodenames } from './routing';
import type { ChannelConfig, Progress } from '../core/types';
import type { IngestEntry, IngestReasonCode } from './ingestReport';
import { byteOrder } from '../core/order';
import { utcStamp } from '../core/stamp';

export type { IngestEntry } from './ingestReport';

/** Result of one ingest run; `generation` is set when a publish happened. */
export interface IngestResult {
  entries: IngestEntry[];
  generation?: string;
  publish?: PublishResult;
}

/** Options of ingest(). Delays in milliseconds. */
export interface IngestOptions {
  /** Only this drop folder (`<incomingDir>/<source>`). */
  source?: string;
  /** Minimum age of a file's last change (ctime) before it is taken; default 2000. */
  settleMs?: number;
  /** Delay between the two stats of the stability check; default min(1000, settleMs / 2). */
  recheckMs?: number;
  progress?: Progress;
  /** Publish date (tests). */
  now?: Date;
}

/** Pool files by identity (keyOf). */
type PoolIndex = Map<string, { poolPath: string; sha256: string; codenames: string[] }[]>;

/** The state of one locked ingest run, shared by the steps of every file. */
interface Batch {
  byKey: PoolIndex;
  /** Pool paths accepted in this run → upload time (ms since epoch). */
  added: Record<string, number>;
  cache: PoolCache;
  /** Pool folders that received files: fsynced once each before the publish (see placeFile). */
  dirsToSync: Set<string>;
  /** Where every pool change and every move into rejected/ is announced before it is made. */
  intent: Intent;
}

interface Candidate {
  abs: string;
  rel: string;
  source: string;
  /** The codename folder it was dropped in, if any. */
  codename?: string;
  /** Set when the file must be rejected without being read. */
  rejectReason?: string;
  first?: Stats;
}

/**
 * Ingests every complete `.deb` of the incoming folders into `ch` (a channel without upstream).
 * Valid files go to `poolPathFor(control, ch.component, codename-folder)` by rename (copy + fsync +
 * unlink across filesystems) and get their upload time recorded; a file identical (SHA256) to the
 * pool file of the same name, version and architecture is removed from incoming ("present");
 * different content is rejected naming the pool file; symlinks, hard links, non-regular files,
 * unreadable or invalid packages (the channel's format checks every control field that reaches a
 * path: readDeb for Debian), unknown
 * codename folders and architectures outside liste_arch are rejected into
 * `<rejectedDir>/<UTC stamp>-<name>` with `<that>.reason` (see rejectUpload). Drop and codename folders
 * that are symlinks are skipped, never followed; a folder named `*.deb` that another user owns is
 * rejected where it is (moved, it would give its owner a writable folder inside rejected/). Pool files get mode 0664 (POOL_FILE_MODE), new pool
 * folders 0755 (setgid kept). One publishLocked at the end when anything was accepted.
 * Crash safety: under the lock, recoverChannel runs first; every pool placement and every move
 * into rejected/ is announced in the intent record (repo/recover.ts) before it is made, and the
 * record is cleared once the new generation serves, so a kill at any instant is finished or undone
 * by the next writing command: an accepted file ends up served, still in incoming, or rejected
 * with its reason, never stranded in the pool unserved.
 * Throws UsageError for a channel with an upstream or an unknown --source, LockError when the lock
 * is held too long, and AptRepoError when the publish fails (the accepted files then stay in the pool, and
 * the next writing command of the channel publishes them).
 */
/** The history record of an ingest: the packages accepted (with their drop folder) and the uploads rejected. */
function ingestChange(entries: IngestEntry[]): HistoryRecord {
  const added = entries
    .filter((e) => e.status === 'accepted' && e.package && e.version && e.architecture)
    .map((e) => ({ name: e.package!, version: e.version!, architecture: e.architecture!, source: e.file.split('/')[0] }));
  const rejected = entries.filter((e) => e.status === 'rejected').map((e) => ({ file: e.file, reason: e.reason ?? '' }));
  return changeRecord('ingest', { ...(added.length ? { added } : {}), ...(rejected.length ? { rejected } : {}) });
}

export async function ingest(ch: ChannelConfig, opts: IngestOptions = {}): Promise<IngestResult> {
  if (ch.upstream) {
    throw new UsageError(`channel ${ch.name} takes packages from ${ch.upstream} with promote; ingest is for the channel uploads land in`);
  }
  const settleMs = opts.settleMs ?? 2000;
  const recheckMs = opts.recheckMs ?? Math.min(1000, Math.floor(settleMs / 2));
  const entries: IngestEntry[] = [];
  const candidates = await findCandidates(ch, opts.source, entries);

  // First look, outside the lock so a slow upload does not hold other writers.
  const nowMs = Date.now();
  const regular = new Set<Candidate>();
  for (const c of candidates) {
    if (c.rejectReason) continue;
    let st: Stats;
    try {
      st = await fsp.lstat(c.abs);
    } catch {
      continue; // gone: taken by a concurrent run or deleted by its uploader
    }
    c.first = st;
    // settleMs 0 means "no age rule": the kernel's coarse ctime may even be a little ahead of Date.now().
    if (st.isFile() && settleMs > 0 && nowMs - st.ctimeMs < settleMs) {
      entries.push({
        status: 'skipped',
        file: c.rel,
        reason: `changed less than ${settleMs} ms ago (upload in progress?)`,
        reasonCode: 'settling',
      });
      continue;
    }
    regular.add(c);
  }
  const ready = candidates.filter((c) => c.rejectReason || regular.has(c));
  // Nothing new: the lock is taken only to finish an interrupted writer (its record is there).
  if (ready.length === 0 && !fs.existsSync(intentFile(ch))) return { entries: sortEntries(entries) };
  if (recheckMs > 0 && [...regular].some((c) => c.first?.isFile())) await sleep(recheckMs);

  return withChannelLock(ch, async () => {
    // An interrupted writer is finished or undone first; its intent record is cleared by then.
    const recovered = await recoverChannel(ch, { progress: opts.progress });
    if (ready.length === 0)
      return { entries: sortEntries(entries), ...(recovered?.generation ? { generation: recovered.generation } : {}) };
    const intent = await beginIntent(ch, 'ingest');
    // One cache for the scan, the files accepted and the publish: publish then reads no accepted file again.
    const cache = PoolCache.forChannel(ch);
    // Under the lock: the pool is taken from the cache when it is marked as the pool served now.
    const pool = await scanPool(ch, { cache, trustCache: true });
    const byKey: PoolIndex = new Map();
    for (const p of pool.packages) {
      const k = keyOf(p.name, p.version, p.architecture, formatOf(ch));
      byKey.set(k, [...(byKey.get(k) ?? []), { poolPath: p.poolPath, sha256: p.digests.SHA256, codenames: p.codenames }]);
    }
    const batch: Batch = { byKey, added: {}, cache, dirsToSync: new Set<string>(), intent };
    const { added, dirsToSync } = batch;
    opts.progress?.start(ready.length, 'ingest');
    for (const c of ready) {
      opts.progress?.tick();
      try {
        const entry = await ingestOne(ch, c, batch);
        if (entry) entries.push(entry);
      } catch (err) {
        // An environment failure (permissions, disk full), not a bad upload: leave the file for the next run.
        entries.push({
          status: 'rejected',
          file: c.rel,
          reason: `could not be ingested (${errText(err)}); left in place`,
          reasonCode: 'environment',
        });
      }
    }
    opts.progress?.stop();
    const result: IngestResult = { entries: sortEntries(entries) };
    const accepted = Object.keys(added);
    for (const d of dirsToSync) fsyncDir(d);
    const change = ingestChange(result.entries);
    if (accepted.length === 0) {
      cache.save();
      // Only rejections (each complete, or cut short and handled by recovery): nothing to serve.
      intent.clear();
      if (change.rejected?.length) appendHistory(ch, change);
      return result;
    }
    // Saved with the publish's first save of the store.
    await recordAdded(ch, added, cache);
    const served = await currentGeneration(ch);
    try {
      result.publish = await publishLocked(ch, { now: opts.now, progress: opts.progress, cache, trustCache: true, change });
    } catch (err) {
      // Nothing is undone: while the previous index serves, the intent record stays and the next
      // writing command of the channel (any of them) publishes these files. A failure after the
      // switch (pruning old generations) leaves the new index serving.
      const { previousServes, now } = await settleFailedPublish(ch, intent, served, { unreadable: 'previous' });
      const state = previousServes
        ? 'the previous index still serves; the next writing command of this channel publishes them'
        : `generation ${now} serves them, but publish did not finish`;
      throw new AptRepoError(
        `${accepted.length} file(s) were moved into ${ch.webRoot}/pool but publishing failed (${state}): ${(err as Error).message}`,
      );
    }
    intent.clear();
    result.generation = result.publish.generation;
    return result;
  });
}

/** Exit code of an ingest run: 1 when anything was rejected, else 0. */
export function ingestExitCode(r: IngestResult): number {
  return r.entries.some((e) => e.status === 'rejected') ? 1 : 0;
}

async function ingestOne(ch: ChannelConfig, c: Candidate, batch: Batch): Promise<IngestEntry | undefined> {
  const name = path.posix.basename(c.rel);
  let dir: SafeDir;
  try {
    // The drop folder, opened without following links: a folder swapped for a symlink since the
    // listing is refused here, and every later step names the file through this descriptor.
    dir = SafeDir.open(ch.incomingDir, path.posix.dirname(c.rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { status: 'rejected', file: c.rel, reason: `${errText(err)}; left in place`, reasonCode: 'unreadable-folder' };
  }
  try {
    return await ingestFrom(ch, c, dir, name, batch);
  } finally {
    dir.close();
  }
}

async function ingestFrom(ch: ChannelConfig, c: Candidate, dir: SafeDir, name: string, batch: Batch): Promise<IngestEntry | undefined> {
  const reject = (chan: ChannelConfig, cand: Candidate, code: IngestReasonCode, reason: string) =>
    rejectUpload(chan, cand, code, reason, batch.intent);
  const st = dir.lstat(name);
  if (!st) return undefined; // taken by a concurrent ingest between our looks
  if (c.rejectReason) return reject(ch, c, 'unknown-codename', c.rejectReason);
  if (st.isSymbolicLink()) return reject(ch, c, 'symlink', 'symbolic link (never followed; drop the file itself)');
  if (st.isDirectory() && process.geteuid !== undefined && st.uid !== process.geteuid()) {
    // Moved into rejected/, a folder the uploader owns (and may have made writable) would give it
    // a place to write there: left where it was dropped.
    return {
      status: 'rejected',
      file: c.rel,
      reason: `not a regular file (a folder of another user: never moved into ${ch.rejectedDir}); left in place`,
      reasonCode: 'foreign-folder',
    };
  }
  if (!st.isFile()) return reject(ch, c, 'not-regular-file', `not a regular file (${fileKind(st)})`);
  // A second name elsewhere would let its owner change the bytes after they were checked.
  if (st.nlink > 1) return reject(ch, c, 'hard-link', `hard link (${st.nlink} names): drop a fresh file`);
  if (c.first && changed(c.first, st))
    return { status: 'skipped', file: c.rel, reason: 'still being written (size or time changed)', reasonCode: 'settling' };

  let opened: { fd: number; stat: Stats };
  try {
    opened = dir.openFile(name);
  } catch (err) {
    return reject(ch, c, 'unreadable', `cannot be read: ${err instanceof UnsafePathError ? err.reason : errText(err)}`);
  }
  try {
    const fst = opened.stat;
    if (fst.ino !== st.ino) return { status: 'skipped', file: c.rel, reason: 'replaced while being read', reasonCode: 'replaced' };
    if (fst.nlink > 1) return reject(ch, c, 'hard-link', `hard link (${fst.nlink} names): drop a fresh file`);
    return await ingestOpened(ch, c, dir, name, opened.fd, st, batch);
  } finally {
    fs.closeSync(opened.fd);
  }
}

async function ingestOpened(
  ch: ChannelConfig,
  c: Candidate,
  dir: SafeDir,
  name: string,
  fd: number,
  st: Stats,
  batch: Batch,
): Promise<IngestEntry | undefined> {
  const { byKey, added, cache, dirsToSync, intent } = batch;
  const reject = (chan: ChannelConfig, cand: Candidate, code: IngestReasonCode, reason: string) =>
    rejectUpload(chan, cand, code, reason, intent);
  const format = formatOf(ch);
  let info;
  try {
    info = await format.read(c.abs, { fd });
  } catch (err) {
    return err instanceof DebError
      ? reject(ch, c, 'invalid-package', err.reason)
      : reject(ch, c, 'unreadable', `cannot be read: ${errText(err)}`);
  }
  const after = dir.lstat(name);
  if (!after) return undefined;
  if (changed(st, after)) return { status: 'skipped', file: c.rel, reason: 'changed while being read', reasonCode: 'settling' };

  // The format's read checked these fields (Debian Policy §5.6.1, §5.6.8, §5.6.12) before any becomes a path.
  const id = format.identify(info.control);
  if (typeof id === 'string') return reject(ch, c, 'invalid-package', id);
  const { name: pkg, version, architecture } = id;
  const base = { file: c.rel, package: pkg, version, architecture };
  let poolPath: string;
  try {
    poolPath = poolPathFor(id, ch.component, c.codename, format);
  } catch (err) {
    return { ...base, ...(await reject(ch, c, 'invalid-package', err instanceof DebError ? err.reason : errText(err))) };
  }
  if (architecture !== 'all' && !ch.architectures.includes(architecture)) {
    return {
      ...base,
      ...(await reject(
        ch,
        c,
        'unknown-architecture',
        `architecture ${architecture} is not in liste_arch (${ch.architectures.join(', ')})`,
      )),
    };
  }
  const codenames = routeCodenames(version, poolPath, ch);
  if (codenames.length === 0) {
    return {
      ...base,
      ...(await reject(ch, c, 'no-codename', `version ${version} routes to no codename of liste_dist (${ch.codenames.join(', ')})`)),
    };
  }
  const dest: Confined = { base: ch.webRoot, rel: poolPath };
  const existing = await sha256File(dest).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  if (existing !== undefined) {
    if (existing === info.digests.SHA256) return present(c, dir, name, st, base, poolPath);
    return {
      ...base,
      ...(await reject(
        ch,
        c,
        'conflict',
        `conflicts with pool file ${poolPath}: same package, version and architecture, different content (SHA256 ${info.digests.SHA256} vs ${existing})`,
      )),
    };
  }
  // A version withdrawn by `remove` stays in the trash while a kept generation may list it: new
  // bytes under the same identity would make a rollback serve an index whose hashes no longer
  // match the pool, and clients that cached the old file would get different content.
  const trashed = await sha256File({ base: trashDir(ch), rel: poolPath }).catch((e: NodeJS.ErrnoException) =>
    e.code === 'ENOENT' ? undefined : Promise.reject(e),
  );
  if (trashed !== undefined && trashed !== info.digests.SHA256) {
    return {
      ...base,
      ...(await reject(
        ch,
        c,
        'version-reused',
        `${pkg} ${version} (${architecture}) was removed with different content (SHA256 ${trashed}); a version is never reused for other bytes: build a new version`,
      )),
    };
  }
  // The same identity elsewhere in the pool (another codename folder): apt must never see two
  // different files under one identity in a codename, but identical bytes already covering every
  // codename of this drop are a no-op.
  const key = keyOf(pkg, version, architecture, format);
  const same = byKey.get(key) ?? [];
  const clash = same.find((k) => k.sha256 !== info.digests.SHA256 && k.codenames.some((cn) => codenames.includes(cn)));
  if (clash) {
    return {
      ...base,
      ...(await reject(
        ch,
        c,
        'conflict',
        `conflicts with pool file ${clash.poolPath}: same package, version and architecture in ${clash.codenames.filter((cn) => codenames.includes(cn)).join(', ')}, different content (SHA256 ${info.digests.SHA256} vs ${clash.sha256})`,
      )),
    };
  }
  const covering = same.find((k) => k.sha256 === info.digests.SHA256 && codenames.every((cn) => k.codenames.includes(cn)));
  if (covering) return present(c, dir, name, st, base, covering.poolPath);

  // An upload owned by another user (the upload account) is copied from the descriptor that was
  // read, so that the pool file belongs to the indexer: the uploader can no longer change a
  // published file, and prod's indexer can hard-link it (mode 0664, see contracts: pool group).
  const ours = process.geteuid !== undefined && st.uid === process.geteuid();
  const place = { mode: POOL_FILE_MODE, dirMode: POOL_DIR_MODE, dirsToSync };
  // Announced before the pool changes: a kill from here on is finished (the pool file is this
  // inode, or has these bytes) or undone (the upload is still in incoming) by the next writer.
  const at = Date.now();
  intent.record({ op: 'add', poolPath, sha256: info.digests.SHA256, at, from: { kind: 'incoming', rel: c.rel, ino: st.ino } });
  let how: 'renamed' | 'linked' | 'copied';
  if (ours) {
    how = await placeFile({ base: ch.incomingDir, rel: c.rel }, dest, 'move', place);
  } else {
    await copyFdTo(fd, dest, place);
    how = 'copied';
    // The uploader still owns the source inode and could write it while it was copied.
    if ((await sha256File(dest)) !== info.digests.SHA256) {
      unlinkConfined(dest);
      return {
        ...base,
        status: 'skipped',
        reason: 'changed while being copied into the pool; left for the next run',
        reasonCode: 'changed-while-copied',
      };
    }
    dir.unlink(name, st.ino);
  }
  const placed = fs.lstatSync(confine(ch.webRoot, poolPath));
  // A moved file must be the inode that was read (same size and mtime; the move changes ctime); a
  // copy made across filesystems, the bytes that were read.
  const intact =
    how === 'copied'
      ? placed.isFile() && (!ours || (await sha256File(dest)) === info.digests.SHA256)
      : placed.isFile() && placed.ino === st.ino && placed.size === st.size && placed.mtimeMs === st.mtimeMs;
  if (!intact) throw new AptRepoError(`${path.join(ch.webRoot, poolPath)}: not the file that was read after placing it into the pool`);
  // What was just read is what the publish needs: keyed by the placed file's size, mtime and inode.
  cache.set(poolPath, placed, { control: info.control, digests: info.digests });
  byKey.set(key, [...same, { poolPath, sha256: info.digests.SHA256, codenames }]);
  added[poolPath] = at;
  return { ...base, status: 'accepted', poolPath, codenames };
}

async function present(
  c: Candidate,
  dir: SafeDir,
  name: string,
  st: Stats,
  base: Omit<IngestEntry, 'status'>,
  poolPath: string,
): Promise<IngestEntry> {
  dir.unlink(name, st.ino);
  return { ...base, status: 'present', poolPath, reason: `already present (${poolPath}, same SHA256)`, reasonCode: 'already-present' };
}

/** One line of text: control characters (newline, NUL …) written as `\xNN`. */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** An upload's name as part of a rejected name: characters other than letters, digits and `._+-~` become `_`. */
function safeFileName(n: string): string {
  return (
    n
      .replace(/[^A-Za-z0-9._+~-]/g, '_')
      .replace(/^\./, '_')
      .slice(0, 200) || '_'
  );
}

/**
 * Moves a rejected entry (never followed) to `<rejectedDir>/<UTC stamp>-<name>` with
 * `<that>.reason` beside it (contracts.md: `reason:`, `file:` relative to incomingDir, `time:`
 * ISO 8601 UTC); never deletes it. The rejected folder must be a real folder owned by the running
 * user (created 0755 when missing). The move is announced in `intent` first (recovery removes a
 * `.reason` whose upload was never moved). The `.reason` is created first with O_EXCL|O_NOFOLLOW; when
 * that name or the target name is taken (a planted file or symlink), another name with a random
 * part is chosen: nothing is ever written through an existing entry.
 */
async function rejectUpload(
  ch: ChannelConfig,
  c: Candidate,
  reasonCode: IngestReasonCode,
  reason: string,
  intent: Intent,
): Promise<IngestEntry> {
  const line = oneLine(reason);
  const now = new Date();
  const dirs: SafeDir[] = [];
  try {
    const src = SafeDir.open(ch.incomingDir, path.posix.dirname(c.rel));
    dirs.push(src);
    const rej = SafeDir.openAbs(ch.rejectedDir, { create: 0o755, owned: true });
    dirs.push(rej);
    const text = `reason: ${line}\nfile: ${oneLine(c.rel)}\ntime: ${now.toISOString()}\n`;
    const stem = safeFileName(path.posix.basename(c.rel));
    let dest: string | undefined;
    for (let i = 0; i < 20 && dest === undefined; i++) {
      const candidate = i === 0 ? `${utcStamp(now)}-${stem}` : `${utcStamp(now)}-${randomBytes(6).toString('hex')}-${stem}`;
      if (rej.lstat(candidate)) continue;
      // A kill between the .reason and the move leaves a .reason without its upload: recovery removes it.
      intent.record({ op: 'reject', rel: c.rel, name: candidate });
      try {
        rej.createFile(`${candidate}.reason`, text, 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      dest = candidate;
    }
    if (dest === undefined) throw new AptRepoError('no free name in the rejected folder');
    try {
      moveEntry(src, path.posix.basename(c.rel), rej, dest);
    } catch (err) {
      rej.unlink(`${dest}.reason`);
      throw err;
    }
    return { status: 'rejected', file: c.rel, reason: line, reasonCode, movedTo: path.join(ch.rejectedDir, dest) };
  } catch (err) {
    return {
      status: 'rejected',
      file: c.rel,
      reason: `${line}; could not be moved to ${ch.rejectedDir} (${errText(err)}), left in place`,
      reasonCode,
    };
  } finally {
    for (const d of dirs) d.close();
  }
}

/** Drop folder and codename folder names: letters, digits, `.`, `_`, `+`, `-`, starting with a letter or digit. */
const FOLDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * Lists the drop folders' candidates, opening every folder without following links; names that
 * are not ours to take are reported as skipped: a source or codename folder that is a symlink
 * (never followed) or whose name is not a plain name, temporary names, non-debs.
 */
async function findCandidates(ch: ChannelConfig, onlySource: string | undefined, entries: IngestEntry[]): Promise<Candidate[]> {
  if (onlySource !== undefined && !FOLDER_NAME.test(onlySource)) {
    throw new UsageError(`--source '${onlySource}': a drop folder name (letters, digits, . _ + -)`);
  }
  let top: SafeDir;
  try {
    top = SafeDir.open(ch.incomingDir, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (onlySource !== undefined) throw new UsageError(`--source ${onlySource}: no folder ${path.join(ch.incomingDir, onlySource)}`);
    return [];
  }
  const out: Candidate[] = [];
  try {
    const listing = top.list();
    if (onlySource !== undefined && !listing.some((d) => d.name === onlySource && (d.isDirectory() || d.isSymbolicLink()))) {
      throw new UsageError(`--source ${onlySource}: no folder ${path.join(ch.incomingDir, onlySource)}`);
    }
    const rejected = path.resolve(ch.rejectedDir);
    for (const d of listing) {
      if (d.name.startsWith('.')) continue;
      if (path.resolve(ch.incomingDir, d.name) === rejected) continue;
      if (onlySource !== undefined && d.name !== onlySource) continue;
      const shown = oneLine(d.name);
      if (d.isSymbolicLink()) {
        entries.push({
          status: 'skipped',
          file: shown,
          reason: 'symbolic link instead of a drop folder (never followed)',
          reasonCode: 'symlink',
        });
        continue;
      }
      if (!d.isDirectory()) {
        if (onlySource === undefined)
          entries.push({ status: 'skipped', file: shown, reason: 'not inside a <source>/ drop folder', reasonCode: 'outside-drop-folder' });
        continue;
      }
      if (!FOLDER_NAME.test(d.name)) {
        entries.push({
          status: 'skipped',
          file: shown,
          reason: 'drop folder name not allowed (letters, digits, . _ + -); not looked into',
          reasonCode: 'bad-folder-name',
        });
        continue;
      }
      await listDropFolder(ch, top, d.name, entries, out);
    }
  } finally {
    top.close();
  }
  return out.sort((a, b) => byteOrder(a.rel, b.rel));
}

async function listDropFolder(ch: ChannelConfig, top: SafeDir, source: string, entries: IngestEntry[], out: Candidate[]): Promise<void> {
  let dir: SafeDir;
  try {
    dir = top.sub(source);
  } catch (err) {
    entries.push({ status: 'skipped', file: source, reason: `${errText(err)}; not looked into`, reasonCode: 'unreadable-folder' });
    return;
  }
  try {
    for (const e of dir.list()) {
      const rel = `${source}/${e.name}`;
      const shown = oneLine(rel);
      if (isTemporaryName(e.name)) {
        entries.push({ status: 'skipped', file: shown, reason: 'temporary upload name (.part or dot file)', reasonCode: 'temporary-name' });
      } else if (e.name.endsWith(formatOf(ch).extension)) {
        out.push({ abs: path.join(ch.incomingDir, rel), rel, source });
      } else if (e.isSymbolicLink()) {
        entries.push({
          status: 'skipped',
          file: shown,
          reason: 'symbolic link that is not a .deb (never followed, not even as a codename folder)',
          reasonCode: 'symlink',
        });
      } else if (e.isDirectory()) {
        if (!FOLDER_NAME.test(e.name)) {
          entries.push({
            status: 'skipped',
            file: shown,
            reason: 'codename folder name not allowed (letters, digits, . _ + -); not looked into',
            reasonCode: 'bad-folder-name',
          });
          continue;
        }
        listCodenameFolder(ch, dir, source, e.name, entries, out);
      } else {
        entries.push({ status: 'skipped', file: shown, reason: 'not a .deb', reasonCode: 'not-a-package' });
      }
    }
  } finally {
    dir.close();
  }
}

function listCodenameFolder(
  ch: ChannelConfig,
  parent: SafeDir,
  source: string,
  codename: string,
  entries: IngestEntry[],
  out: Candidate[],
): void {
  const rel = `${source}/${codename}`;
  let dir: SafeDir;
  try {
    dir = parent.sub(codename);
  } catch (err) {
    entries.push({ status: 'skipped', file: rel, reason: `${errText(err)}; not looked into`, reasonCode: 'unreadable-folder' });
    return;
  }
  const known = ch.codenames.includes(codename);
  try {
    for (const f of dir.list()) {
      const fRel = `${rel}/${f.name}`;
      if (isTemporaryName(f.name)) {
        entries.push({
          status: 'skipped',
          file: oneLine(fRel),
          reason: 'temporary upload name (.part or dot file)',
          reasonCode: 'temporary-name',
        });
      } else if (f.name.endsWith(formatOf(ch).extension)) {
        out.push({
          abs: path.join(ch.incomingDir, fRel),
          rel: fRel,
          source,
          codename,
          rejectReason: known ? undefined : `codename folder '${codename}' is not in liste_dist (${ch.codenames.join(', ')})`,
        });
      } else {
        entries.push(
          f.isDirectory()
            ? {
                status: 'skipped',
                file: oneLine(fRel),
                reason: 'folder below a codename folder (not looked into)',
                reasonCode: 'nested-folder',
              }
            : f.isSymbolicLink()
              ? { status: 'skipped', file: oneLine(fRel), reason: 'symbolic link (never followed)', reasonCode: 'symlink' }
              : { status: 'skipped', file: oneLine(fRel), reason: 'not a .deb', reasonCode: 'not-a-package' },
        );
      }
    }
  } finally {
    dir.close();
  }
}

function isTemporaryName(n: string): boolean {
  return n.startsWith('.') || n.endsWith('.part');
}

function changed(a: Stats, b: Stats): boolean {
  return a.ino !== b.ino || a.size !== b.size || a.mtimeMs !== b.mtimeMs || a.ctimeMs !== b.ctimeMs;
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'unknown type';
}

function sortEntries(entries: IngestEntry[]): IngestEntry[] {
  return entries.sort((a, b) => byteOrder(a.file, b.file));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
