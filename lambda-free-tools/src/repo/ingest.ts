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
import { constants as fsConstants, promises as fsp, Stats } from 'fs';
import * as path from 'path';
import { AptRepoError, DebError, UsageError } from '../errors';
import { readDeb } from '../deb/debfile';
import { getField } from '../deb/control';
import { withChannelLock } from './lock';
import { keyOf, poolPathFor, recordAdded, scanPool, sourceName } from './pool';
import { durableCopy, errText, fsyncDir, placeFile, sha256File } from './files';
import { trashDir } from './remove';
import { publishLocked, PublishResult, STANZA_KEY } from './publish';
import { PoolCache } from './cache';
import { currentGeneration } from './generations';
import { routeCodenames } from './routing';
import type { ChannelConfig } from './types';
import type { Progress } from '../cli/context';

/** What happened to one incoming file. */
export type IngestStatus = 'accepted' | 'present' | 'rejected' | 'skipped';

/** One row of the ingest report (`file` is relative to incomingDir, '/'-separated). */
export interface IngestEntry {
  status: IngestStatus;
  file: string;
  /** Why it was rejected, skipped or found present. */
  reason?: string;
  package?: string;
  version?: string;
  architecture?: string;
  /** Accepted/present: the pool path (relative to the web root). */
  poolPath?: string;
  /** Accepted: the codenames it is published under. */
  codenames?: string[];
  /** Rejected: where the file went (absolute); undefined when it could not be moved (then it is left in place). */
  movedTo?: string;
}

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
 * different content is rejected naming the pool file; symlinks, non-regular files, unreadable or
 * invalid debs, unknown codename folders and architectures outside liste_arch are rejected into
 * `<rejectedDir>/<UTC stamp>-<name>` with `<that>.reason` (one line). One publishLocked at the end
 * when anything was accepted.
 * Throws UsageError for a channel with an upstream or an unknown --source, LockError when the lock
 * is held too long, and AptRepoError when the publish fails (the accepted files then stay in the pool).
 */
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
      entries.push({ status: 'skipped', file: c.rel, reason: `changed less than ${settleMs} ms ago (upload in progress?)` });
      continue;
    }
    regular.add(c);
  }
  const ready = candidates.filter((c) => c.rejectReason || regular.has(c));
  if (ready.length === 0) return { entries: sortEntries(entries) };
  if (recheckMs > 0 && [...regular].some((c) => c.first?.isFile())) await sleep(recheckMs);

  return withChannelLock(ch, async () => {
    // One cache for the scan, the files accepted and the publish: publish then reads no accepted file again.
    const cache = PoolCache.load(ch.stateDir, STANZA_KEY);
    const pool = await scanPool(ch, { cache });
    const byKey: PoolIndex = new Map();
    for (const p of pool.packages) {
      const k = keyOf(p.name, p.version, p.architecture);
      byKey.set(k, [...(byKey.get(k) ?? []), { poolPath: p.poolPath, sha256: p.digests.SHA256, codenames: p.codenames }]);
    }
    const added: Record<string, number> = {};
    // Pool folders that received files: fsynced once each before the publish (see placeFile).
    const dirsToSync = new Set<string>();
    opts.progress?.start(ready.length, 'ingest');
    for (const c of ready) {
      opts.progress?.tick();
      try {
        const entry = await ingestOne(ch, c, byKey, added, cache, dirsToSync);
        if (entry) entries.push(entry);
      } catch (err) {
        // An environment failure (permissions, disk full), not a bad upload: leave the file for the next run.
        entries.push({ status: 'rejected', file: c.rel, reason: `could not be ingested (${errText(err)}); left in place` });
      }
    }
    opts.progress?.stop();
    const result: IngestResult = { entries: sortEntries(entries) };
    const accepted = Object.keys(added);
    await Promise.all([...dirsToSync].map((d) => fsyncDir(d)));
    if (accepted.length === 0) {
      cache.save();
      return result;
    }
    await recordAdded(ch, added);
    const served = await currentGeneration(ch);
    try {
      result.publish = await publishLocked(ch, { now: opts.now, progress: opts.progress, cache });
    } catch (err) {
      // A failure after the switch (pruning old generations) leaves the new index serving.
      const now = await currentGeneration(ch).catch(() => served);
      const state = now === served ? 'the previous index still serves' : `generation ${now} serves them, but publish did not finish`;
      throw new AptRepoError(`${accepted.length} file(s) were moved into ${ch.webRoot}/pool but publishing failed (${state}): ${(err as Error).message}`);
    }
    result.generation = result.publish.generation;
    return result;
  });
}

/** Exit code of an ingest run: 1 when anything was rejected, else 0. */
export function ingestExitCode(r: IngestResult): number {
  return r.entries.some((e) => e.status === 'rejected') ? 1 : 0;
}

async function ingestOne(
  ch: ChannelConfig,
  c: Candidate,
  byKey: PoolIndex,
  added: Record<string, number>,
  cache: PoolCache,
  dirsToSync: Set<string>,
): Promise<IngestEntry | undefined> {
  let st: Stats;
  try {
    st = await fsp.lstat(c.abs);
  } catch {
    return undefined; // taken by a concurrent ingest between our looks
  }
  if (c.rejectReason) return reject(ch, c, c.rejectReason);
  if (st.isSymbolicLink()) return reject(ch, c, 'symbolic link (never followed; drop the file itself)');
  if (!st.isFile()) return reject(ch, c, `not a regular file (${fileKind(st)})`);
  if (c.first && changed(c.first, st)) return { status: 'skipped', file: c.rel, reason: 'still being written (size or time changed)' };

  // O_NONBLOCK: a FIFO swapped in after lstat must not block us; O_NOFOLLOW: nor a symlink.
  try {
    const fh = await fsp.open(c.abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    const fst = await fh.stat();
    await fh.close();
    if (!fst.isFile() || fst.ino !== st.ino) return { status: 'skipped', file: c.rel, reason: 'replaced while being read' };
  } catch (err) {
    return reject(ch, c, `cannot be read: ${errText(err)}`);
  }

  let info;
  try {
    info = await readDeb(c.abs);
  } catch (err) {
    return reject(ch, c, err instanceof DebError ? err.reason : `cannot be read: ${errText(err)}`);
  }
  try {
    const after = await fsp.lstat(c.abs);
    if (changed(st, after)) return { status: 'skipped', file: c.rel, reason: 'changed while being read' };
  } catch {
    return undefined;
  }

  const name = getField(info.control, 'Package') ?? '';
  const version = getField(info.control, 'Version') ?? '';
  const architecture = getField(info.control, 'Architecture') ?? '';
  const source = sourceName(getField(info.control, 'Source'), name);
  const base = { file: c.rel, package: name, version, architecture };
  if (architecture !== 'all' && !ch.architectures.includes(architecture)) {
    return { ...base, ...(await reject(ch, c, `architecture ${architecture} is not in liste_arch (${ch.architectures.join(', ')})`)) };
  }
  const poolPath = poolPathFor({ name, version, architecture, source }, ch.component, c.codename);
  const codenames = routeCodenames(version, poolPath, ch);
  if (codenames.length === 0) {
    return { ...base, ...(await reject(ch, c, `version ${version} routes to no codename of liste_dist (${ch.codenames.join(', ')})`)) };
  }
  const dest = path.join(ch.webRoot, poolPath);
  const existing = await sha256File(dest).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  if (existing !== undefined) {
    if (existing === info.digests.SHA256) return present(c, base, poolPath);
    return { ...base, ...(await reject(ch, c, `conflicts with pool file ${poolPath}: same package, version and architecture, different content (SHA256 ${info.digests.SHA256} vs ${existing})`)) };
  }
  // A version withdrawn by `remove` stays in the trash while a kept generation may list it: new
  // bytes under the same identity would make a rollback serve an index whose hashes no longer
  // match the pool, and clients that cached the old file would get different content.
  const trashed = await sha256File(path.join(trashDir(ch), poolPath)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  if (trashed !== undefined && trashed !== info.digests.SHA256) {
    return { ...base, ...(await reject(ch, c, `${name} ${version} (${architecture}) was removed with different content (SHA256 ${trashed}); a version is never reused for other bytes: build a new version`)) };
  }
  // The same identity elsewhere in the pool (another codename folder): apt must never see two
  // different files under one identity in a codename, but identical bytes already covering every
  // codename of this drop are a no-op.
  const key = keyOf(name, version, architecture);
  const same = byKey.get(key) ?? [];
  const clash = same.find((k) => k.sha256 !== info.digests.SHA256 && k.codenames.some((cn) => codenames.includes(cn)));
  if (clash) {
    return { ...base, ...(await reject(ch, c, `conflicts with pool file ${clash.poolPath}: same package, version and architecture in ${clash.codenames.filter((cn) => codenames.includes(cn)).join(', ')}, different content (SHA256 ${info.digests.SHA256} vs ${clash.sha256})`)) };
  }
  const covering = same.find((k) => k.sha256 === info.digests.SHA256 && codenames.every((cn) => k.codenames.includes(cn)));
  if (covering) return present(c, base, covering.poolPath);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  // An upload owned by another user (the CI account) is copied rather than renamed, so that the pool
  // file belongs to the indexer: the uploader can no longer change a published file, and promote can
  // hard-link it under fs.protected_hardlinks (a rename would keep the uploader as owner).
  const foreign = process.getuid !== undefined && process.getuid() !== 0 && st.uid !== process.getuid();
  const how = await placeFile(c.abs, dest, foreign ? 'copy' : 'move', dirsToSync);
  if (foreign) await fsp.unlink(c.abs);
  const placed = await fsp.lstat(dest);
  // The bytes in the pool must be the ones read: same inode, size and mtime after a rename (rename
  // itself changes ctime), same SHA256 after a copy.
  const intact = placed.isFile() && (how === 'renamed' ? placed.ino === st.ino && placed.size === st.size && placed.mtimeMs === st.mtimeMs : (await sha256File(dest)) === info.digests.SHA256);
  if (!intact) {
    return { ...base, ...(await reject(ch, { ...c, abs: dest }, 'replaced or changed while being ingested')) };
  }
  await settlePoolFile(dest, placed);
  // What was just read is what the publish needs: keyed by the placed file's size, mtime and inode
  // (a rename keeps them; a copy was hash-checked above).
  cache.set(poolPath, placed, { control: Array.from(info.control.entries()), digests: info.digests });
  byKey.set(key, [...same, { poolPath, sha256: info.digests.SHA256, codenames }]);
  added[poolPath] = Date.now();
  return { ...base, status: 'accepted', poolPath, codenames };
}

async function present(c: Candidate, base: Omit<IngestEntry, 'status'>, poolPath: string): Promise<IngestEntry> {
  await fsp.unlink(c.abs);
  return { ...base, status: 'present', poolPath, reason: `already present (${poolPath}, same SHA256)` };
}

/** Moves a rejected file to `<rejectedDir>/<stamp>-<name>` and writes `<that>.reason`; never deletes it. */
async function reject(ch: ChannelConfig, c: Candidate, reason: string): Promise<IngestEntry> {
  const line = reason.replace(/[\r\n]+/g, ' ');
  let dest: string;
  try {
    await fsp.mkdir(ch.rejectedDir, { recursive: true });
    dest = await uniquePath(path.join(ch.rejectedDir, `${utcStamp(new Date())}-${path.basename(c.abs)}`));
    await moveAnything(c.abs, dest);
  } catch (err) {
    return { status: 'rejected', file: c.rel, reason: `${line}; could not be moved to ${ch.rejectedDir} (${errText(err)}), left in place` };
  }
  try {
    await fsp.writeFile(`${dest}.reason`, line + '\n', { mode: 0o644 });
  } catch (err) {
    return { status: 'rejected', file: c.rel, reason: `${line}; moved to ${dest} but ${dest}.reason could not be written (${errText(err)})`, movedTo: dest };
  }
  return { status: 'rejected', file: c.rel, reason: line, movedTo: dest };
}

/** Lists the drop folders' candidates; names that are not ours to take are reported as skipped. */
async function findCandidates(ch: ChannelConfig, onlySource: string | undefined, entries: IngestEntry[]): Promise<Candidate[]> {
  if (onlySource !== undefined && (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(onlySource))) {
    throw new UsageError(`--source '${onlySource}': a drop folder name (letters, digits, . _ + -)`);
  }
  const top = await readDirOrEmpty(ch.incomingDir);
  if (onlySource !== undefined && !top.some((d) => d.name === onlySource && d.isDirectory())) {
    throw new UsageError(`--source ${onlySource}: no folder ${path.join(ch.incomingDir, onlySource)}`);
  }
  const rejected = path.resolve(ch.rejectedDir);
  const out: Candidate[] = [];
  for (const d of top) {
    if (d.name.startsWith('.')) continue;
    const abs = path.join(ch.incomingDir, d.name);
    if (path.resolve(abs) === rejected) continue;
    if (onlySource !== undefined && d.name !== onlySource) continue;
    if (!d.isDirectory()) {
      if (onlySource === undefined) entries.push({ status: 'skipped', file: d.name, reason: 'not inside a <source>/ drop folder' });
      continue;
    }
    for (const e of await readDirOrEmpty(abs)) {
      const rel = `${d.name}/${e.name}`;
      const eAbs = path.join(abs, e.name);
      if (isTemporaryName(e.name)) {
        entries.push({ status: 'skipped', file: rel, reason: 'temporary upload name (.part or dot file)' });
      } else if (e.name.endsWith('.deb')) {
        out.push({ abs: eAbs, rel, source: d.name });
      } else if (e.isDirectory()) {
        const known = ch.codenames.includes(e.name);
        for (const f of await readDirOrEmpty(eAbs)) {
          const fRel = `${rel}/${f.name}`;
          if (isTemporaryName(f.name)) {
            entries.push({ status: 'skipped', file: fRel, reason: 'temporary upload name (.part or dot file)' });
          } else if (f.name.endsWith('.deb')) {
            out.push({
              abs: path.join(eAbs, f.name), rel: fRel, source: d.name, codename: e.name,
              rejectReason: known ? undefined : `codename folder '${e.name}' is not in liste_dist (${ch.codenames.join(', ')})`,
            });
          } else {
            entries.push({ status: 'skipped', file: fRel, reason: f.isDirectory() ? 'folder below a codename folder (not looked into)' : 'not a .deb' });
          }
        }
      } else if (e.isSymbolicLink()) {
        entries.push({ status: 'skipped', file: rel, reason: 'symbolic link that is not a .deb (not followed)' });
      } else {
        entries.push({ status: 'skipped', file: rel, reason: 'not a .deb' });
      }
    }
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

function isTemporaryName(n: string): boolean {
  return n.startsWith('.') || n.endsWith('.part');
}

async function readDirOrEmpty(dir: string) {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
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
  return entries.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `20261121T051500Z`: a UTC timestamp usable in file names, sortable. */
export function utcStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** `p` if free, else `p-1`, `p-2`, … (first free one). */
async function uniquePath(p: string): Promise<string> {
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? p : `${p}-${i}`;
    try {
      await fsp.lstat(candidate);
    } catch {
      return candidate;
    }
  }
}


/** Moves any kind of entry (file, symlink, folder, FIFO) without following it. */
async function moveAnything(src: string, dest: string): Promise<void> {
  try {
    await fsp.rename(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const st = await fsp.lstat(src);
  if (st.isSymbolicLink()) {
    await fsp.symlink(await fsp.readlink(src), dest);
  } else if (st.isFile()) {
    await durableCopy(src, dest);
  } else {
    throw new Error(`cannot move a ${fileKind(st)} across filesystems`);
  }
  await fsp.unlink(src);
}

/**
 * Makes a file that entered the pool world-readable (nginx serves it) and, when we can (root),
 * owned by us, so the uploader can no longer change a published file.
 */
async function settlePoolFile(dest: string, st: Stats): Promise<void> {
  try {
    if (process.getuid && process.getgid && (st.uid !== process.getuid() || st.gid !== process.getgid())) {
      await fsp.chown(dest, process.getuid(), process.getgid());
    }
  } catch {
    // Not root: the file keeps its uploader as owner (documented in README).
  }
  try {
    await fsp.chmod(dest, 0o644);
  } catch {
    // Not ours to chmod; nginx must still be able to read it (checked by verify).
  }
}
