/**
 * The pool store of a channel: what readDeb found in each pool file (keyed by pool path, valid
 * while size + mtime + inode match), the file's rendered index entry, when it entered the channel,
 * and whether these entries are exactly the pool a generation publishes.
 *
 * On disk, in `<stateDir>`, in ASCII (asciiJson):
 *   - `cache.json`: a snapshot (`{version: 4, logId, stanzaKey, listedFor, entries, added}`);
 *   - `cache.log`: the changes since that snapshot, one JSON array per line, appended and fsynced
 *     by each writer (so a run's cost grows with what it changes, not with the pool):
 *     `["log", logId]` first, then `["s", path, entry]` (set), `["d", path]` (delete),
 *     `["a", path, ms]` (upload time), `["l", generation]` (the entries are that generation's pool).
 * A line that does not parse ends the log (a writer killed in the middle of its append: the next
 * writer cuts it off before appending). A log whose first line names another logId belongs to an
 * older snapshot and is ignored. When the log grows past a quarter of the snapshot (at least
 * 256 KiB), the next save writes a new snapshot, then a new log (each through a rename).
 * An entry (DiskEntry) keeps its control fields as JSON text, parsed only when a run uses them, and
 * the identity the format found in them, so that a run over every entry (a publish) parses no
 * control data: the snapshot of 10,000 packages parses in 36 ms instead of 61 and holds 14 MiB
 * less. Earlier formats (3: control as arrays; 1 and 2: no log, upload times in `added.json`) are
 * read, and rewritten as a snapshot by the next save.
 *
 * Only the channel's writers (holding its lock) save; any run may load.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { isAscii } from 'buffer';
import { appendDurable, writeFileAtomic } from '../core/files';
import { timed } from '../core/timings';
import { isPoolPath } from './poolPath';
import { formatOf, type PackageFormat } from './format';
import type { PackageIdentity } from '../core/format';
import type { ChannelConfig, Digests } from '../core/types';

/** What the store keeps for one pool file. */
export interface CacheEntry {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  /** The control fields, in file order (a loaded entry parses them on first use). */
  readonly control: [string, string][];
  readonly digests: Digests;
  /** The file's index entry (Debian: Packages stanza) as publish last rendered it (valid while the file's stanzaKey matches). */
  readonly stanza?: string;
  /**
   * What the format's identify gave for these control fields when they were stored (none when it
   * found them invalid); read back from a file, so a reader checks it again (checkIdentity).
   */
  readonly identity?: PackageIdentity;
}

/** An entry as the store writes it (format 4; format 3 and before: `control` as pairs, no `id`). */
interface DiskEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  /** name, version, architecture, source (CacheEntry.identity). */
  id?: [string, string, string, string];
  /** JSON text of the control pairs. */
  controlJson?: string;
  control?: [string, string][];
  digests: Digests;
  stanza?: string;
}

const isPairs = (v: unknown): v is [string, string][] =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');

/** The control pairs of an entry's JSON text; [] for text that is not a list of pairs (the format then finds no identity). */
function parseControlJson(text: string): [string, string][] {
  try {
    const v = JSON.parse(text) as unknown;
    return isPairs(v) ? v : [];
  } catch {
    return [];
  }
}

/** A stored entry whose control fields are parsed on first use (see the module comment). */
class StoredEntry implements CacheEntry {
  private pairs?: [string, string][];

  private constructor(
    readonly size: number,
    readonly mtimeMs: number,
    readonly ino: number,
    readonly digests: Digests,
    readonly stanza: string | undefined,
    readonly identity: PackageIdentity | undefined,
    pairs: [string, string][] | undefined,
    private readonly controlJson: string | undefined,
  ) {
    this.pairs = pairs;
  }

  get control(): [string, string][] {
    return (this.pairs ??= parseControlJson(this.controlJson ?? '[]'));
  }

  /** An entry of fields just read from a file; `identity` as the format's identify gave it. */
  static read(
    stat: Pick<fs.Stats, 'size' | 'mtimeMs' | 'ino'>,
    control: [string, string][],
    digests: Digests,
    identity: PackageIdentity | undefined,
  ): StoredEntry {
    return new StoredEntry(stat.size, stat.mtimeMs, stat.ino, digests, undefined, identity, control, undefined);
  }

  /** The entry `raw` of a store file (any format), or undefined when it is not one. */
  static fromDisk(raw: unknown): StoredEntry | undefined {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
    const e = raw as Partial<DiskEntry>;
    if (!e.digests || typeof e.digests !== 'object') return undefined;
    if (typeof e.controlJson !== 'string' && !isPairs(e.control)) return undefined;
    const id = Array.isArray(e.id) && e.id.length === 4 && e.id.every((x) => typeof x === 'string') ? e.id : undefined;
    return new StoredEntry(
      e.size as number,
      e.mtimeMs as number,
      e.ino as number,
      e.digests,
      typeof e.stanza === 'string' ? e.stanza : undefined,
      id && { name: id[0], version: id[1], architecture: id[2], source: id[3] },
      typeof e.controlJson === 'string' ? undefined : e.control,
      typeof e.controlJson === 'string' ? e.controlJson : undefined,
    );
  }

  /** This entry with the identity `format` finds in its control fields (none when they are invalid). */
  withIdentity(format: Pick<PackageFormat, 'identify'>): StoredEntry {
    const id = format.identify(this.control);
    const identity = typeof id === 'string' ? undefined : id;
    return new StoredEntry(this.size, this.mtimeMs, this.ino, this.digests, this.stanza, identity, this.pairs, this.controlJson);
  }

  /** This entry with another index entry text (undefined: none). */
  withStanza(stanza: string | undefined): StoredEntry {
    return new StoredEntry(this.size, this.mtimeMs, this.ino, this.digests, stanza, this.identity, this.pairs, this.controlJson);
  }

  /** The entry as written (JSON.stringify calls it). */
  toJSON(): DiskEntry {
    const id = this.identity;
    return {
      size: this.size,
      mtimeMs: this.mtimeMs,
      ino: this.ino,
      ...(id ? { id: [id.name, id.version, id.architecture, id.source] as DiskEntry['id'] } : {}),
      controlJson: this.controlJson ?? JSON.stringify(this.pairs ?? []),
      digests: this.digests,
      ...(this.stanza !== undefined ? { stanza: this.stanza } : {}),
    };
  }
}

/**
 * Format 4: control fields as JSON text, the identity beside them. Format 3: a snapshot and its
 * log, upload times inside. Format 2: control values keep every byte of the .deb
 * (deb/control.ts decodeControlBytes: an invalid UTF-8 byte is a lone surrogate, which JSON keeps
 * as `\udcXX`). Format 1 decoded control files as UTF-8, turning such bytes into U+FFFD: its
 * entries holding U+FFFD are read again.
 */
const STORE_VERSION = 4;

interface SnapshotFile {
  version: 1 | 2 | 3 | 4;
  /** Names the log that continues this snapshot (format 3). */
  logId?: string;
  /** Identifies the renderer the `stanza` fields came from (see PoolCache.load). */
  stanzaKey?: string;
  /**
   * The generation whose publish saved this store from a complete, problem-free view of the pool
   * (see PoolCache.markListed): while that generation serves, the entries are the pool.
   */
  listedFor?: string;
  entries: Record<string, unknown>;
  /** Upload times (pool path → ms since epoch), format 3 and later. */
  added?: Record<string, number>;
}

/** A log of at most this many bytes is never folded into a new snapshot. */
const LOG_MIN_COMPACT = 256 * 1024;

type LogLine = ['log', string] | ['s', string, StoredEntry] | ['d', string] | ['a', string, number] | ['l', string];

/** What load read from the disk. */
interface Loaded {
  entries: Map<string, StoredEntry>;
  added: Map<string, number>;
  stanzaKey?: string;
  listedFor?: string;
  /** The snapshot's logId; undefined when there is no snapshot of the current format. */
  logId?: string;
  /** The snapshot's format (0: none). */
  version: number;
  snapshotBytes: number;
  /** End of the log's last complete line that belongs to the snapshot; undefined: no usable log. */
  logBytes?: number;
}

/**
 * JSON text of `v` in ASCII only (every other character as a \u escape, JSON's own grammar):
 * read back with readText, the store's 10 MB (10,000 packages) decode twice as fast as UTF-8.
 */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The text of a store file: Latin-1 when every byte is ASCII (what asciiJson writes), else UTF-8 (earlier writers). */
function readText(file: string): string {
  const bytes = fs.readFileSync(file);
  return bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
}

/** Reads the snapshot, then replays its log (see the module comment); never throws. */
function readStore(stateDir: string, format: Pick<PackageFormat, 'extension'>): Loaded {
  const out: Loaded = { entries: new Map(), added: new Map(), snapshotBytes: 0, version: 0 };
  let snap: SnapshotFile | undefined;
  try {
    const text = readText(path.join(stateDir, 'cache.json'));
    out.snapshotBytes = text.length;
    const parsed = JSON.parse(text) as SnapshotFile;
    if (parsed && [1, 2, 3, 4].includes(parsed.version) && parsed.entries && typeof parsed.entries === 'object') snap = parsed;
  } catch {
    // A damaged store only costs a full re-read of the pool.
  }
  // Upload times: in the snapshot from format 3, in added.json before (or with no snapshot at all).
  const added = snap && snap.version >= 3 ? snap.added : readLegacyAdded(stateDir);
  for (const [k, t] of Object.entries(added ?? {})) if (isPoolPath(k, format) && typeof t === 'number') out.added.set(k, t);
  if (!snap) return out;
  // Keys are read back from a file: only pool paths are kept (see isPoolPath).
  for (const [k, raw] of Object.entries(snap.entries)) {
    if (!isPoolPath(k, format)) continue;
    const e = StoredEntry.fromDisk(raw);
    if (!e) continue;
    // Format 1 may have replaced bytes of the control file by U+FFFD: those files are read again.
    if (snap.version === 1 && JSON.stringify(e.control).includes('\ufffd')) continue;
    out.entries.set(k, e);
  }
  out.stanzaKey = snap.stanzaKey;
  out.version = snap.version;
  // Format 3 has the same log (its entries' control as pairs); the next save writes format 4.
  if (snap.version < 3) return out;
  if (typeof snap.listedFor === 'string') out.listedFor = snap.listedFor;
  if (typeof snap.logId !== 'string') return out;
  out.logId = snap.logId;
  let log: Buffer;
  try {
    log = fs.readFileSync(path.join(stateDir, 'cache.log'));
  } catch {
    return out;
  }
  let at = 0;
  let first = true;
  for (;;) {
    const nl = log.indexOf(10, at);
    if (nl < 0) break;
    let line: LogLine;
    try {
      line = JSON.parse(log.toString('utf8', at, nl)) as LogLine;
    } catch {
      break;
    }
    if (!Array.isArray(line)) break;
    if (first) {
      // Another snapshot's log (a writer killed between writing the snapshot and the new log).
      if (line[0] !== 'log' || line[1] !== snap.logId) return out;
      first = false;
    } else if (line[0] === 'l' && typeof line[1] === 'string') {
      out.listedFor = line[1];
    } else if ((line[0] === 's' || line[0] === 'd' || line[0] === 'a') && typeof line[1] === 'string') {
      if (isPoolPath(line[1], format)) {
        const e = line[0] === 's' ? StoredEntry.fromDisk(line[2]) : undefined;
        if (e) out.entries.set(line[1], e);
        else if (line[0] === 'a' && typeof line[2] === 'number') out.added.set(line[1], line[2]);
        else if (line[0] === 'd') {
          out.entries.delete(line[1]);
          out.added.delete(line[1]);
        }
      }
      // Entries changed after the claim: no longer known to be the pool.
      if (line[0] !== 'a') out.listedFor = undefined;
    } else {
      break;
    }
    at = nl + 1;
  }
  if (!first) out.logBytes = at;
  return out;
}

/** Upload times of format 2 and before (`<stateDir>/added.json`). */
function readLegacyAdded(stateDir: string): Record<string, number> {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(stateDir, 'added.json'), 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}

/**
 * The store of one channel, as one run sees it. `get` answers only when size, mtime and inode all
 * match the file's current stat; `set` records a fresh read; `save` writes what changed since the
 * load or the last save (new reads and stanzas, upload times, pool files gone: entries loaded but
 * not used in this run are deleted), appended to the log.
 */
export class PoolCache {
  private readonly used = new Map<string, StoredEntry>();
  /** Paths whose entry was set or changed since the last save. */
  private readonly changed = new Set<string>();
  /** Paths whose upload time was set since the last save. */
  private readonly addedChanged = new Set<string>();
  /** Set by markListed: the claim this instance saves (no other instance's claim is carried over). */
  private listedFor?: string;
  /** Set by markComplete: entries not used in this run are deleted by save. */
  private complete = false;

  private constructor(
    readonly file: string,
    private readonly stanzaKey: string | undefined,
    private readonly format: Pick<PackageFormat, 'identify'>,
    private state: Loaded,
    /** The snapshot must be rewritten (older format, another renderer's stanzas, no usable log). */
    private rewrite: boolean,
  ) {}

  /**
   * Loads the store of `<stateDir>` (cache.json and cache.log); missing, unreadable or foreign
   * files give an empty store. Entries whose key is not a pool path of `format` (isPoolPath) are
   * dropped; scanPool checks the control fields of an entry again before using them.
   * `stanzaKey` identifies the caller's index entry renderer: stanzas stored under another key are
   * dropped (a new renderer must not serve old text); without a key, stored stanzas are kept as they are.
   */
  static load(stateDir: string, stanzaKey?: string, format: Pick<PackageFormat, 'extension' | 'identify'> = formatOf()): PoolCache {
    const state = timed('store load', () => readStore(stateDir, format));
    let rewrite = state.logBytes === undefined || state.version !== STORE_VERSION;
    // Entries of an earlier format get their identity once, written with the new snapshot.
    if (state.version < STORE_VERSION) for (const [k, e] of state.entries) if (!e.identity) state.entries.set(k, e.withIdentity(format));
    let key = stanzaKey;
    if (stanzaKey === undefined) key = state.stanzaKey;
    else if (state.stanzaKey !== stanzaKey) {
      // Entries are shared with nothing yet: the stanzas of another renderer are dropped in place.
      for (const [k, e] of state.entries) if (e.stanza !== undefined) state.entries.set(k, e.withStanza(undefined));
      rewrite = true;
    }
    return new PoolCache(path.join(stateDir, 'cache.json'), key, format, state, rewrite);
  }

  /**
   * The store of channel `ch`, loaded with its format's index entry key (IndexLayout.entryKey), so
   * entries rendered by another renderer are dropped: what publish, ingest and promote use.
   */
  static forChannel(ch: Pick<ChannelConfig, 'stateDir' | 'format'>): PoolCache {
    const format = formatOf(ch);
    return PoolCache.load(ch.stateDir, format.indexes.entryKey, format);
  }

  /** The stored index entry of `poolPath`, if its entry was validated by get/set in this run and has one. */
  stanza(poolPath: string): string | undefined {
    return this.used.get(poolPath)?.stanza;
  }

  /** Stores the rendered index entry of a pool file validated by get/set in this run. */
  setStanza(poolPath: string, stanza: string): void {
    const e = this.used.get(poolPath);
    if (e && e.stanza !== stanza) {
      // A new object: the loaded one may be shared with a scan's packages.
      this.used.set(poolPath, e.withStanza(stanza));
      this.changed.add(poolPath);
    }
  }

  /** The cached entry for `poolPath` (set in this run, or loaded) if `stat` matches it (size, mtimeMs, ino), else undefined. */
  get(poolPath: string, stat: Pick<fs.Stats, 'size' | 'mtimeMs' | 'ino'>): CacheEntry | undefined {
    // An entry set in this run (a file read by ingest) counts as well as a loaded one.
    const e = this.used.get(poolPath) ?? this.state.entries.get(poolPath);
    if (!e || e.size !== stat.size || e.mtimeMs !== stat.mtimeMs || e.ino !== stat.ino) return undefined;
    this.used.set(poolPath, e);
    return e;
  }

  /**
   * What `poolPath` held when it was last read (set in this run, else loaded), whatever its stat
   * now: scanPool compares a re-read file of the same inode with it (pool files never change).
   */
  recorded(poolPath: string): CacheEntry | undefined {
    return this.used.get(poolPath) ?? this.state.entries.get(poolPath);
  }

  /** Keeps the recorded entry of `poolPath` in the saved store (a file refused as changed stays refused on the next run). */
  keep(poolPath: string): void {
    const e = this.used.get(poolPath) ?? this.state.entries.get(poolPath);
    if (e) this.used.set(poolPath, e);
  }

  /**
   * Records what was read from `poolPath` with the stat taken before reading it (with the identity
   * the format's identify gives its control fields, if valid); returns the entry.
   */
  set(
    poolPath: string,
    stat: Pick<fs.Stats, 'size' | 'mtimeMs' | 'ino'>,
    entry: { control: [string, string][]; digests: Digests },
  ): CacheEntry {
    const id = this.format.identify(entry.control);
    const e = StoredEntry.read(stat, entry.control, entry.digests, typeof id === 'string' ? undefined : id);
    this.used.set(poolPath, e);
    this.changed.add(poolPath);
    return e;
  }

  /** When `poolPath` entered the channel (ms since epoch), if recorded. */
  addedMs(poolPath: string): number | undefined {
    return this.state.added.get(poolPath);
  }

  /** Every recorded upload time (pool path → ms since epoch). */
  addedTimes(): Record<string, number> {
    return Object.fromEntries(this.state.added);
  }

  /** Records when pool files entered the channel (pool path → ms since epoch), saved by the next save. */
  setAdded(added: Record<string, number>): void {
    for (const [k, t] of Object.entries(added)) {
      if (this.state.added.get(k) === t) continue;
      this.state.added.set(k, t);
      this.addedChanged.add(k);
    }
  }

  /**
   * True when the store was saved by the publish of generation `id` from a complete, problem-free
   * view of the pool (markListed), and no change was saved after it: while `id` is served, its
   * entries are exactly the pool's files, so a writer holding the lock may take them instead of
   * listing and stat-ing the pool.
   */
  isListingOf(id: string | undefined): boolean {
    return id !== undefined && this.state.listedFor === id;
  }

  /**
   * Claims, for the next save, that the entries used in this run are the whole pool as generation
   * `id` publishes it. Only the publish that wrote `id`, under the channel lock, after a scan
   * without problems, calls this. Any saved change of the entries without the claim drops it.
   */
  markListed(id: string): void {
    this.listedFor = id;
    this.complete = true;
  }

  /**
   * Says that the entries used in this run (get, set, keep) are every file of the pool: save then
   * deletes the others (removed pool files drop out). scanPool calls it after listing the pool.
   */
  markComplete(): void {
    this.complete = true;
  }

  /** Every entry (loaded or set in this run), each marked used, sorted by pool path: what a trusted scan takes as the pool. */
  allEntries(): [string, CacheEntry][] {
    this.complete = true;
    for (const [k, e] of this.state.entries) if (!this.used.has(k)) this.used.set(k, e);
    return [...this.used].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Writes what changed since the load (or the last save): appended to the log, fsynced, the claim
   * of markListed in a last append of its own (never durable before the entries it covers); or, when
   * the log has grown (see the module comment) or the snapshot must be rewritten, a new snapshot and
   * an empty log. Does nothing when nothing changed. The caller holds the channel lock.
   */
  save(): void {
    timed('store save', () => this.saveNow());
  }

  private saveNow(): void {
    const { entries, added } = this.state;
    const lines: LogLine[] = [];
    for (const k of [...this.changed].sort()) if (this.used.has(k)) lines.push(['s', k, this.used.get(k)!]);
    // After a complete listing: files gone from the pool, and upload times of files it does not hold.
    const deleted: string[] = [];
    if (this.complete) {
      for (const k of entries.keys()) if (!this.used.has(k) && !this.addedChanged.has(k)) deleted.push(k);
      for (const k of added.keys()) if (!entries.has(k) && !this.used.has(k) && !this.addedChanged.has(k)) deleted.push(k);
    }
    for (const k of deleted) lines.push(['d', k]);
    for (const k of [...this.addedChanged].sort()) lines.push(['a', k, added.get(k)!]);
    const claim = this.listedFor !== undefined && this.listedFor !== this.state.listedFor;
    if (lines.length === 0 && !claim && !this.rewrite) return;

    // The state after this save (as a load would replay it), updated in place: only what changed is
    // touched (upload times are already in `added`, see setAdded). Should the write below fail, the
    // next save rewrites the whole snapshot from this state.
    for (const k of deleted) {
      entries.delete(k);
      added.delete(k);
    }
    for (const k of this.changed) if (this.used.has(k)) entries.set(k, this.used.get(k)!);
    const changesEntries = lines.some((l) => l[0] !== 'a');
    this.state.listedFor = this.listedFor ?? (changesEntries ? undefined : this.state.listedFor);
    const recordedNow = new Set(this.addedChanged);
    this.changed.clear();
    this.addedChanged.clear();
    try {
      this.write(lines, claim, recordedNow);
    } catch (e) {
      this.rewrite = true;
      throw e;
    }
  }

  /** Appends `lines` (then the claim, on its own) to the log, or writes a new snapshot and log; see save. */
  private write(lines: LogLine[], claim: boolean, recordedNow: Set<string>): void {
    const { entries, added, listedFor } = this.state;
    const text = (ls: LogLine[]) => ls.map((l) => `${asciiJson(l)}\n`).join('');
    // Not rendered when a snapshot is written anyway (a first publish sets every entry).
    const body = this.rewrite ? '' : text(lines);
    const logFile = path.join(path.dirname(this.file), 'cache.log');
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    if (this.rewrite || (this.state.logBytes ?? 0) + body.length > Math.max(LOG_MIN_COMPACT, this.state.snapshotBytes / 4)) {
      const logId = randomBytes(8).toString('hex');
      const byPath = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);
      const snapshot: SnapshotFile = {
        version: STORE_VERSION,
        logId,
        stanzaKey: this.stanzaKey,
        ...(listedFor ? { listedFor } : {}),
        entries: Object.fromEntries([...entries].sort(byPath)),
        // Upload times of files the store holds, or just recorded (a file not read yet).
        added: Object.fromEntries([...added].filter(([k]) => entries.has(k) || recordedNow.has(k)).sort(byPath)),
      };
      const snapText = asciiJson(snapshot);
      // Snapshot first: until the new log is in place, the old one names another logId and is ignored.
      writeFileAtomic(this.file, snapText);
      const header = text([['log', logId]]);
      writeFileAtomic(logFile, header);
      // Upload times now live in the snapshot.
      fs.rmSync(path.join(path.dirname(this.file), 'added.json'), { force: true });
      Object.assign(this.state, { stanzaKey: this.stanzaKey, logId, snapshotBytes: snapText.length, logBytes: header.length });
      this.rewrite = false;
      return;
    }
    let logBytes = this.state.logBytes!;
    if (body) {
      appendDurable(logFile, body, { truncateTo: logBytes });
      logBytes += Buffer.byteLength(body);
    }
    if (claim) {
      // Its own append: a claim is never on disk before the entries it covers.
      const mark = text([['l', listedFor!]]);
      appendDurable(logFile, mark, { truncateTo: logBytes });
      logBytes += Buffer.byteLength(mark);
    }
    this.state.logBytes = logBytes;
  }
}

/** What a channel's pool store holds (see readPoolStore). */
export interface PoolStoreState {
  /** Pool path → entry. */
  entries: Record<string, CacheEntry>;
  /** Pool path → upload time (ms since epoch). */
  added: Record<string, number>;
  /** The generation whose pool the entries are (PoolCache.isListingOf), if claimed. */
  listedFor?: string;
  /** The renderer key of the stored index entries. */
  stanzaKey?: string;
}

/**
 * The pool store of `<stateDir>` as a load sees it (snapshot + log replayed), for checks and tests
 * (doctor, the kill tests' consistency checks). Never throws: a missing or damaged store is empty.
 */
export function readPoolStore(stateDir: string, format: Pick<PackageFormat, 'extension'> = formatOf()): PoolStoreState {
  const s = readStore(stateDir, format);
  // Plain objects, control parsed: what the store holds, whatever its format.
  const plain = ([k, e]: [string, StoredEntry]): [string, CacheEntry] => [
    k,
    {
      size: e.size,
      mtimeMs: e.mtimeMs,
      ino: e.ino,
      control: e.control,
      digests: e.digests,
      ...(e.stanza !== undefined ? { stanza: e.stanza } : {}),
      ...(e.identity ? { identity: e.identity } : {}),
    },
  ];
  return {
    entries: Object.fromEntries([...s.entries].map(plain)),
    added: Object.fromEntries(s.added),
    ...(s.listedFor !== undefined ? { listedFor: s.listedFor } : {}),
    ...(s.stanzaKey !== undefined ? { stanzaKey: s.stanzaKey } : {}),
  };
}
