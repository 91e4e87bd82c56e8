/**
 * Generations: each publish writes a complete `dists` tree into `<webRoot>/.generations/<id>/`,
 * records `generation.json` last, and only then points `<webRoot>/dists` at it by renaming a new
 * relative symlink over the old one (rename(2) is atomic), so clients see either the old or the new
 * index, never a mixture, and a crash at any point leaves a complete generation serving.
 * A directory without generation.json is an interrupted publish: ignored, and removed by prune.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AptRepoError, UsageError } from '../errors';
import { replaceSymlink, writeFileAtomic } from '../core/files';
import type { ChannelConfig, GenerationInfo, ServedRecord } from '../core/types';
import { isPoolPath } from './poolPath';
import { formatOf } from './format';
import { utcStamp } from '../core/stamp';

const ID_RE = /^\d{8}T\d{6}Z-\d{6}$/;

/** `<webRoot>/.generations`. */
export function generationsDir(ch: Pick<ChannelConfig, 'webRoot'>): string {
  return path.join(ch.webRoot, '.generations');
}

/** `<webRoot>/.generations/<id>`. */
export function generationDir(ch: Pick<ChannelConfig, 'webRoot'>, id: string): string {
  return path.join(generationsDir(ch), id);
}

/**
 * The sequence number of a generation id (`…-NNNNNN`): ids of one channel are ordered by it, even
 * when the clock went back between two publishes (see newGenerationId).
 */
export function generationSequence(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}

/**
 * The generation folder names under `<webRoot>/.generations` (complete or not), sorted; [] when
 * the folder does not exist. Throws the fs error for any other failure to read it.
 */
export function generationIds(ch: Pick<ChannelConfig, 'webRoot'>): string[] {
  try {
    return fs
      .readdirSync(generationsDir(ch))
      .filter((n) => ID_RE.test(n))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * A new generation id, `YYYYMMDDTHHMMSSZ-NNNNNN` (UTC date of `now`, then a sequence number one
 * above every existing directory's, so ids stay ordered even if the clock goes back).
 */
export function newGenerationId(ch: Pick<ChannelConfig, 'webRoot'>, now: Date): string {
  const seq = Math.max(0, ...generationIds(ch).map(generationSequence)) + 1;
  const stamp = utcStamp(now);
  return `${stamp}-${String(seq).padStart(6, '0')}`;
}

/** Reads `<generation>/generation.json`; undefined when absent or unreadable (an incomplete generation). */
export function readGenerationInfo(ch: Pick<ChannelConfig, 'webRoot'>, id: string): Omit<GenerationInfo, 'current'> | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(generationDir(ch, id), 'generation.json'), 'utf8')) as Omit<
      GenerationInfo,
      'current'
    >;
    if (!info || info.id !== id) return undefined;
    // rollback orders generations by their origin's id: a malformed one is dropped, not trusted.
    if (info.rolledBackFrom !== undefined && !(typeof info.rolledBackFrom === 'string' && ID_RE.test(info.rolledBackFrom)))
      delete info.rolledBackFrom;
    return info;
  } catch {
    return undefined;
  }
}

/**
 * Writes `<generation>/generation.json` atomically and durably: the marker that the generation is
 * complete, so the caller writes it after every other file of the generation is on disk.
 */
export function writeGenerationInfo(ch: Pick<ChannelConfig, 'webRoot'>, info: Omit<GenerationInfo, 'current'>): void {
  const { id, date, packages, counts, poolPaths, rolledBackFrom, change } = info;
  const record = {
    id,
    date,
    ...(rolledBackFrom === undefined ? {} : { rolledBackFrom }),
    ...(change === undefined ? {} : { change }),
    packages,
    ...(counts === undefined ? {} : { counts }),
    poolPaths,
  };
  writeFileAtomic(path.join(generationDir(ch, id), 'generation.json'), JSON.stringify(record, null, 1) + '\n');
}

const SERVED_FILE = 'served.json';

/**
 * Writes `<generation>/served.json`: what generation `id` serves (ServedRecord, one per pool path
 * its indexes list). Written into the new generation's folder before generation.json marks it
 * complete (the generation writer fsyncs the whole folder first). Throws EEXIST when the name is
 * already taken (by anything, a symbolic link included: it is never followed).
 */
export function writeServed(ch: Pick<ChannelConfig, 'webRoot'>, id: string, served: ServedRecord[]): void {
  const rows = served.map((r) => [r.poolPath, r.name, r.version, r.architecture, r.sha256, r.addedMs]);
  // 'wx' (O_CREAT|O_EXCL): a name already there, a planted link included, fails the write instead of being followed.
  fs.writeFileSync(path.join(generationDir(ch, id), SERVED_FILE), JSON.stringify({ version: 1, served: rows }) + '\n', {
    mode: 0o644,
    flag: 'wx',
  });
}

/**
 * What generation `id` serves, from its served.json; undefined when it has none (written before
 * apt-repo recorded it) or when the file does not hold well-formed records (every field checked:
 * pool paths by isPoolPath, names and versions by the channel's format, SHA256 as 64 hex digits):
 * the caller then scans the pool instead.
 */
export function readServed(ch: Pick<ChannelConfig, 'webRoot' | 'format'>, id: string): ServedRecord[] | undefined {
  let parsed: { version?: unknown; served?: unknown };
  try {
    parsed = JSON.parse(fs.readFileSync(path.join(generationDir(ch, id), SERVED_FILE), 'utf8')) as typeof parsed;
  } catch {
    return undefined;
  }
  if (!parsed || parsed.version !== 1 || !Array.isArray(parsed.served)) return undefined;
  const format = formatOf(ch);
  const out: ServedRecord[] = [];
  for (const row of parsed.served as unknown[]) {
    if (!Array.isArray(row) || row.length !== 6) return undefined;
    const [poolPath, name, version, architecture, sha256, addedMs] = row as unknown[];
    if (
      !isPoolPath(poolPath, format) ||
      typeof name !== 'string' ||
      !format.isValidName(name) ||
      typeof version !== 'string' ||
      !format.isValidVersion(version) ||
      typeof architecture !== 'string' ||
      !/^[a-z0-9][a-z0-9-]*$/.test(architecture) ||
      typeof sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(sha256) ||
      typeof addedMs !== 'number' ||
      !Number.isFinite(addedMs)
    )
      return undefined;
    out.push({ poolPath, name, version, architecture, sha256, addedMs });
  }
  return out;
}

/**
 * The id of the generation `<webRoot>/dists` points at, or undefined when there is no `dists`
 * symlink yet. Throws AptRepoError if `dists` exists but is not a symlink into `.generations/`.
 */
export async function currentGeneration(ch: Pick<ChannelConfig, 'webRoot'>): Promise<string | undefined> {
  const link = path.join(ch.webRoot, 'dists');
  let target: string;
  try {
    target = fs.readlinkSync(link);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL')
      throw new AptRepoError(`${link}: is not a symlink (publish manages dists as a symlink to .generations/<id>/dists; move it away)`);
    throw e;
  }
  const m = /^(?:\.\/)?\.generations\/([^/]+)\/dists\/?$/.exec(target);
  if (!m) throw new AptRepoError(`${link}: points at '${target}', not at .generations/<id>/dists`);
  return m[1];
}

/** Every complete generation (with generation.json), newest first, `current` set on the one `dists` points at. */
export async function listGenerations(ch: Pick<ChannelConfig, 'webRoot'>): Promise<GenerationInfo[]> {
  const current = await currentGeneration(ch);
  const out: GenerationInfo[] = [];
  for (const id of generationIds(ch)) {
    const info = readGenerationInfo(ch, id);
    if (info) out.push({ ...info, current: id === current });
  }
  return out.sort((a, b) => generationSequence(b.id) - generationSequence(a.id) || (a.id < b.id ? 1 : -1));
}

/**
 * Points `<webRoot>/dists` at generation `id` atomically: a relative symlink
 * `.generations/<id>/dists` is created under a temp name beside `dists`, renamed over it, and the
 * web root is fsynced. Throws UsageError for an unknown id or an incomplete generation (no
 * generation.json or no dists directory). The caller holds the channel lock.
 */
export async function switchGeneration(ch: Pick<ChannelConfig, 'webRoot'>, id: string): Promise<void> {
  if (!ID_RE.test(id)) throw new UsageError(`'${id}' is not a generation id (YYYYMMDDTHHMMSSZ-NNNNNN)`);
  if (!fs.existsSync(generationDir(ch, id))) throw new UsageError(`generation ${id} does not exist in ${generationsDir(ch)}`);
  if (!readGenerationInfo(ch, id) || !fs.statSync(path.join(generationDir(ch, id), 'dists'), { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`generation ${id} is incomplete (no generation.json or no dists)`);
  }
  await currentGeneration(ch); // refuses a dists that is a real directory before replacing it
  replaceSymlink(`.generations/${id}/dists`, path.join(ch.webRoot, 'dists'));
}

/**
 * Removes old and broken generations: keeps the `keep` newest complete generations and always the
 * current one; removes every other generation directory, complete or not (an interrupted publish's
 * leftovers), and stray `.dists.tmp-*` symlinks. Returns the removed ids. The caller holds the lock.
 */
export async function pruneGenerations(ch: Pick<ChannelConfig, 'webRoot'>, keep: number): Promise<string[]> {
  const current = await currentGeneration(ch);
  const complete = await listGenerations(ch);
  const kept = new Set(complete.slice(0, Math.max(1, keep)).map((g) => g.id));
  if (current) kept.add(current);
  const removed: string[] = [];
  for (const id of generationIds(ch)) {
    if (kept.has(id)) continue;
    // Renamed out of the id namespace first: a removal cut short must never leave a directory that
    // still has its generation.json but has lost part of its dists (it would look complete).
    fs.renameSync(generationDir(ch, id), path.join(generationsDir(ch), `.trash-${id}`));
    removed.push(id);
  }
  for (const n of fs.readdirSync(generationsDir(ch))) {
    if (n.startsWith('.trash-')) fs.rmSync(path.join(generationsDir(ch), n), { recursive: true, force: true });
  }
  for (const n of fs.readdirSync(ch.webRoot)) if (n.startsWith('.dists.tmp-')) fs.rmSync(path.join(ch.webRoot, n), { force: true });
  return removed;
}
