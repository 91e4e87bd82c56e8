/**
 * status: one look at a channel, gathered by the indexer itself (run as the channel's service
 * user) so that apt-ops never reads server files as root: the served generation, disk use of the
 * web root, the last package added, what is pending between the channel and its pair, the refused
 * uploads with their `.reason`, who holds the channel lock, and how many differences from the
 * expected state doctor finds (drift). Read-only, takes no lock.
 */
import * as fs from 'fs';
import * as path from 'path';
import { errText } from '../core/files';
import { UsageError } from '../errors';
import { listGenerations } from './generations';
import { lockFileOf } from './lock';
import { readAdded } from './pool';
import type { ChannelConfig, GenerationInfo } from '../core/types';
import { publicKeyFacts, publicKeyFileNames } from '../sign/keys';
import { releaseFreshness } from './freshness';
import { byteOrder } from '../core/order';

/** One refused upload in `<incomingDir>/rejected`. */
export interface RejectedUpload {
  /** Its name in the rejected folder (`<UTC stamp>-<file name>`). */
  name: string;
  /** The path it was dropped under, relative to incomingDir (`.reason` line `file:`); undefined with an old one-line `.reason`. */
  file?: string;
  /** Size in bytes (of the entry itself: a symbolic link is never followed). */
  size: number;
  /** ISO 8601 time of the rejection: `.reason` line `time:`, else the `.reason` file's mtime, else the file's. */
  date: string;
  /** The `.reason` line `reason:` (or the first line of an old one-line `.reason`); undefined without a readable `.reason`. */
  reason?: string;
}

/** Who holds the channel lock (`<stateDir>/lock`), as the lock file records it. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601 time the lock was taken. */
  since: string;
}

/** What `apt-repo status --json` prints. */
export interface ChannelStatus {
  channel: string;
  webRoot: string;
  /** Apparent size of every file and folder under the web root, bytes, each inode once (like `du -sb`). */
  diskBytes: number;
  /**
   * Disk use by part, bytes, each inode once within a part (generations share inodes with each
   * other, not with the pool): the pool, the kept generations (`.generations`), the trash
   * (`<stateDir>/trash`), the backups (`backupDir`).
   */
  disk?: { pool: number; generations: number; trash: number; backups: number };
  /** The generation `dists` points at (last publish); undefined before the first publish. */
  current?: { id: string; date: string; packages: Record<string, number> };
  generationsKept: number;
  /** ISO date of the newest file added to the pool (ingest for preprod, promote for prod). */
  lastAdded?: string;
  /** The pair of channels pending compares, when the other side is configured. */
  pair?: { upstream: string; downstream: string };
  /** Packages promote could take (upstream pool not in downstream pool); undefined without a pair. */
  pending?: number;
  /** Package counts per codename of the current generation, for this channel and its pair. */
  channels: Record<string, Record<string, number>>;
  /**
   * Per codename and architecture of the served generation: index entries (`versions`) and
   * distinct package names (`packages`); absent when that generation predates the record.
   */
  counts?: Record<string, Record<string, { packages: number; versions: number }>>;
  /** The newest ingest the history records (repo/history.ts): when, who, how many accepted and rejected. */
  lastIngest?: { time: string; who: string; accepted: number; rejected: number; generation?: string };
  /** The newest complete backup of the channel in backupDir, and its age in seconds at the time of the report. */
  lastBackup?: { stamp: string; createdAt: string; ageSeconds: number; generation?: string };
  /** The channel's public signing key (`<webRoot>/<keyName>-archive-keyring.asc`): fingerprint, algorithm, expiry (none: never). */
  signingKey?: { fingerprint: string; algorithm: string; expires?: string };
  /**
   * The web catalogue served at `<webRoot>/catalogue` (catalogue/write.ts): the generation it
   * describes, when it was built, and whether that is the served generation; absent when the
   * channel has none (catalogue off, nothing published, or not built yet).
   */
  catalogue?: { generation: string; builtAt: string; current: boolean };
  /** With validUntilDays: the served Releases' earliest Valid-Until, and when a publish is due to renew it. */
  validUntil?: { date: string; refreshAt?: string };
  rejectedDir: string;
  /** How many refused uploads the rejected folder holds. */
  rejectedCount: number;
  /** The newest refused uploads (at most REJECTED_SHOWN), newest first. */
  rejected: RejectedUpload[];
  /** The lock holder, when a writer holds the channel lock. */
  lock?: LockHolder;
  /**
   * Drift: what `apt-repo doctor` finds against `<configDir>/expected-state.json` (repo/doctor.ts),
   * counted; undefined when the channel has no manifest (not deployed by the Pulumi program, or by
   * a version without it) or the manifest does not parse (then a line in `problems`).
   */
  drift?: { differences: number; notChecked: number };
  /** Facts that could not be gathered, one line each. */
  problems: string[];
}

/** How many rejected uploads status lists (the count covers all of them). */
export const REJECTED_SHOWN = 50;
/** The most read of one `.reason` file, bytes. */
const REASON_MAX_BYTES = 4096;

/**
 * Parses a `.reason` file: the three-line form `reason: <text>` / `file: <path as dropped>` /
 * `time: <ISO 8601 UTC>` (any order, unknown lines ignored), or the older form whose first line is
 * the reason. Control characters are replaced by spaces; the reason is cut at 500 characters.
 */
export function parseReason(text: string): { reason?: string; file?: string; time?: string } {
  const clean = (s: string) => s.replace(/[\0-\x1f\x7f]/g, ' ').trim();
  const lines = text.split('\n');
  if (!/^reason: /.test(lines[0] ?? '')) {
    const first = clean(lines[0] ?? '');
    return first ? { reason: first.slice(0, 500) } : {};
  }
  const out: { reason?: string; file?: string; time?: string } = {};
  for (const line of lines) {
    const m = /^(reason|file|time): ([^\n]*)$/.exec(line);
    if (!m || out[m[1] as 'reason'] !== undefined) continue;
    const v = clean(m[2]);
    if (m[1] === 'reason') out.reason = v.slice(0, 500);
    else if (m[1] === 'file') out.file = v.slice(0, 1000);
    else if (!Number.isNaN(Date.parse(v))) out.time = new Date(Date.parse(v)).toISOString();
  }
  return out;
}

/**
 * Reads a small regular file without following a symbolic link (O_NOFOLLOW) and without blocking
 * on a FIFO (O_NONBLOCK); at most `max` bytes. Undefined when it is not a readable regular file.
 */
function readSmallFile(file: string, max: number): { text: string; mtimeMs: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(max, st.size));
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return { text: buf.subarray(0, n).toString('utf8'), mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Lists `rejectedDir`: every entry but the `.reason` files and dot files, with its `.reason`
 * (parseReason), newest first. Nothing is followed: entries are lstat'ed, `.reason` files opened
 * with O_NOFOLLOW. A missing folder is an empty list.
 */
export function listRejected(rejectedDir: string): RejectedUpload[] {
  let names: string[];
  try {
    names = fs.readdirSync(rejectedDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const all = new Set(names);
  const out: RejectedUpload[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    if (name.endsWith('.reason') && all.has(name.slice(0, -'.reason'.length))) continue;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(rejectedDir, name));
    } catch {
      continue; // removed meanwhile
    }
    const r = all.has(`${name}.reason`) ? readSmallFile(path.join(rejectedDir, `${name}.reason`), REASON_MAX_BYTES) : undefined;
    const parsed = r ? parseReason(r.text) : {};
    out.push({
      name,
      file: parsed.file,
      size: st.size,
      date: parsed.time ?? new Date(r?.mtimeMs ?? st.mtimeMs).toISOString(),
      reason: parsed.reason,
    });
  }
  return out.sort((a, b) => byteOrder(b.date, a.date) || byteOrder(a.name, b.name));
}

/**
 * Apparent size in bytes of everything under `dir` (files, folders, links), each inode counted
 * once (hard links between generations and by-hash), without following links; like `du -sb`.
 */
export function diskUse(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    total += st.size;
    if (!st.isDirectory()) return;
    let entries: string[];
    try {
      entries = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries) walk(path.join(p, e));
  };
  walk(dir);
  return total;
}

/** The holder recorded in the channel's lock file, or undefined when the lock is free (or unreadable). */
export function lockHolder(ch: Pick<ChannelConfig, 'stateDir'>): LockHolder | undefined {
  const r = readSmallFile(lockFileOf(ch), REASON_MAX_BYTES);
  if (!r) return undefined;
  try {
    const h = JSON.parse(r.text) as Partial<LockHolder>;
    return { pid: Number(h.pid) || 0, host: String(h.host ?? ''), since: String(h.since ?? '') };
  } catch {
    return { pid: 0, host: '', since: '' };
  }
}

/**
 * Gathers the ChannelStatus of `ch` under `root`. The pair (pending, the other channel's counts)
 * is looked up with repo/pending.ts; a channel without a configured pair has none. Facts that
 * cannot be read go into `problems` rather than failing the whole report.
 * @throws only for an unreadable web root listing of generations (the file system's error).
 */
export async function channelStatus(root: string, ch: ChannelConfig): Promise<ChannelStatus> {
  const problems: string[] = [];
  const gens = await listGenerations(ch);
  const cur = gens.find((g) => g.current);
  const channels: Record<string, Record<string, number>> = { [ch.name]: cur?.packages ?? {} };
  const added = Object.values(readAdded(ch)).filter((v) => typeof v === 'number' && Number.isFinite(v));

  let pair: ChannelStatus['pair'];
  let pending: number | undefined;
  try {
    const { pendingPackages } = await import('./pending');
    const { resolveChannelPair } = await import('./channel');
    const p = await resolveChannelPair(root, ch);
    pair = { upstream: p.upstream.name, downstream: p.downstream.name };
    const other = p.upstream.name === ch.name ? p.downstream : p.upstream;
    channels[other.name] = (await listGenerations(other)).find((g) => g.current)?.packages ?? {};
    const r = await pendingPackages(p);
    pending = r.rows.length;
    for (const x of r.problems) problems.push(`pending: ${x}`);
  } catch (e) {
    // No pair configured (a lone channel) is not a problem; anything else is reported.
    if (!(e instanceof UsageError)) problems.push(`pending: ${errText(e)}`);
  }

  let rejected: RejectedUpload[] = [];
  try {
    rejected = listRejected(ch.rejectedDir);
  } catch (e) {
    problems.push(`cannot list ${ch.rejectedDir}: ${errText(e)}`);
  }

  const drift = await driftOf(ch, problems);
  const facts = await channelFacts(ch, cur, problems);

  return {
    channel: ch.name,
    webRoot: ch.webRoot,
    diskBytes: diskUse(ch.webRoot),
    disk: {
      pool: diskUse(path.join(ch.webRoot, 'pool')),
      generations: diskUse(path.join(ch.webRoot, '.generations')),
      trash: diskUse(path.join(ch.stateDir, 'trash')),
      backups: diskUse(ch.backupDir),
    },
    current: cur ? { id: cur.id, date: cur.date, packages: cur.packages } : undefined,
    generationsKept: gens.length,
    lastAdded: added.length ? new Date(Math.max(...added)).toISOString() : undefined,
    pair,
    pending,
    channels,
    rejectedDir: ch.rejectedDir,
    rejectedCount: rejected.length,
    rejected: rejected.slice(0, REJECTED_SHOWN),
    lock: lockHolder(ch),
    ...(drift ? { drift } : {}),
    ...facts,
    problems,
  };
}

const isCount = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/**
 * The facts status adds from other records: the served generation's counts, the last ingest
 * (history), the last backup, the public key, the web catalogue, the Valid-Until. One that cannot be read adds a line
 * to `problems` and is left out.
 */
async function channelFacts(
  ch: ChannelConfig,
  cur: GenerationInfo | undefined,
  problems: string[],
): Promise<Pick<ChannelStatus, 'counts' | 'lastIngest' | 'lastBackup' | 'signingKey' | 'validUntil' | 'catalogue'>> {
  const out: Pick<ChannelStatus, 'counts' | 'lastIngest' | 'lastBackup' | 'signingKey' | 'validUntil' | 'catalogue'> = {};
  const counts = cur?.counts;
  // Read back from generation.json: only well-formed counts are shown.
  if (
    counts &&
    Object.values(counts).every((per) => per && Object.values(per).every((c) => c && isCount(c.packages) && isCount(c.versions)))
  )
    out.counts = counts;
  try {
    const { readHistory } = await import('./history');
    const last = (await readHistory(ch)).filter((r) => r.op === 'ingest').pop();
    if (last)
      out.lastIngest = {
        time: last.time,
        who: last.who.user,
        accepted: last.added?.length ?? 0,
        rejected: last.rejected?.length ?? 0,
        ...(last.generation ? { generation: last.generation } : {}),
      };
  } catch (e) {
    problems.push(`history: ${errText(e)}`);
  }
  try {
    const { listBackups } = await import('./backup');
    const b = (await listBackups(ch.backupDir, ch.name)).pop();
    if (b)
      out.lastBackup = {
        stamp: b.stamp,
        createdAt: b.createdAt,
        ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(b.createdAt)) / 1000)),
        ...(b.generation ? { generation: b.generation } : {}),
      };
  } catch (e) {
    problems.push(`backups: ${errText(e)}`);
  }
  const keyFile = path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc);
  const armored = readSmallFile(keyFile, 256 * 1024);
  if (armored) {
    try {
      out.signingKey = await publicKeyFacts(armored.text);
    } catch (e) {
      problems.push(`signing key ${keyFile}: ${errText(e)}`);
    }
  }
  if (ch.catalogue) {
    const { servedCatalogue } = await import('../catalogue/write');
    const m = servedCatalogue(ch);
    if (m) out.catalogue = { generation: m.generation, builtAt: m.builtAt, current: m.generation === cur?.id };
  }
  if (ch.validUntilDays) {
    try {
      const f = releaseFreshness(ch, new Date());
      if (f.validUntil)
        out.validUntil = { date: f.validUntil.toISOString(), ...(f.refreshAt ? { refreshAt: f.refreshAt.toISOString() } : {}) };
    } catch (e) {
      problems.push(`Valid-Until: ${errText(e)}`);
    }
  }
  return out;
}

/**
 * Counts doctor's differences and unchecked paths for `ch` (its whole check: the files it names are
 * few; the largest, the indexer bundle, is about 2 MB). Undefined when `<configDir>/expected-state.json`
 * does not exist; a manifest that cannot be read or parsed adds a line to `problems` instead.
 */
export async function driftOf(ch: Pick<ChannelConfig, 'configDir' | 'name'>, problems: string[]): Promise<ChannelStatus['drift']> {
  const { assertManifestChannel, EXPECTED_STATE_FILE, MANIFEST_MAX_BYTES, parseExpectedState } = await import('./expectedState');
  const file = path.join(ch.configDir, EXPECTED_STATE_FILE);
  const r = readSmallFile(file, MANIFEST_MAX_BYTES);
  if (!r) {
    try {
      fs.lstatSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    }
    problems.push(`drift: cannot read ${file}`);
    return undefined;
  }
  try {
    const state = parseExpectedState(r.text, file);
    assertManifestChannel(state, ch.name, file);
    const { checkExpectedState } = await import('./doctor');
    const report = await checkExpectedState(state);
    return { differences: report.differences.length, notChecked: report.notChecked.length };
  } catch (e) {
    problems.push(`drift: ${errText(e)}`);
    return undefined;
  }
}
