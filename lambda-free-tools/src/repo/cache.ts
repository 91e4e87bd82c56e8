/**
 * The pool index cache (`<stateDir>/cache.json`): what readDeb found in each pool file, keyed by
 * pool path + size + mtime + inode, so that a republish reads only new or changed files and merely
 * stats the others.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../core/files';
import { isPoolPath } from './poolPath';
import { formatOf, type PackageFormat } from './format';
import type { ChannelConfig, Digests } from '../core/types';

/** What the cache keeps for one pool file. */
export interface CacheEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  control: [string, string][];
  digests: Digests;
  /** The file's Packages stanza as publish last rendered it (valid while the file's stanzaKey matches). */
  stanza?: string;
}

/**
 * Format 2: control values keep every byte of the .deb (deb/control.ts decodeControlBytes: an
 * invalid UTF-8 byte is a lone surrogate, which JSON keeps as `\udcXX`). Format 1 decoded control
 * files as UTF-8, turning such bytes into U+FFFD: its entries holding U+FFFD are read again.
 */
const CACHE_VERSION = 2;

interface CacheFile {
  version: 1 | 2;
  /** Identifies the stanza renderer the `stanza` fields came from (see PoolCache.load). */
  stanzaKey?: string;
  /**
   * The generation whose publish saved this cache from a complete, problem-free view of the pool
   * (see PoolCache.markListed): while that generation serves, the entries are the pool.
   */
  listedFor?: string;
  entries: Record<string, CacheEntry>;
}

/**
 * The cache of one channel. `get` answers only when size, mtime and inode all match the file's
 * current stat; `set` records a fresh read; `save` writes only the entries used since loading
 * (so removed pool files drop out) and only when something changed.
 */
export class PoolCache {
  private readonly used = new Map<string, CacheEntry>();
  private dirty = false;

  private constructor(
    readonly file: string,
    private readonly old: Record<string, CacheEntry>,
    private readonly stanzaKey: string | undefined,
    /** Loaded from an older format: saved in the current one even when nothing else changed. */
    private readonly upgrade = false,
    /** The loaded file's listedFor. */
    private readonly loadedListedFor?: string,
  ) {}

  /** Set by markListed: the listedFor this instance saves (no other instance's claim is carried over). */
  private listedFor?: string;

  /**
   * Loads `<stateDir>/cache.json`; a missing, unreadable or foreign-format file gives an empty cache.
   * Entries whose key is not a pool path of `format` (isPoolPath) are dropped; scanPool checks the
   * control fields of an entry again before using them.
   * `stanzaKey` identifies the caller's stanza renderer: stanzas stored under another key are
   * dropped (a new renderer must not serve old text); without a key, stored stanzas are kept as they are.
   */
  static load(stateDir: string, stanzaKey?: string, format: Pick<PackageFormat, 'extension'> = formatOf()): PoolCache {
    const file = path.join(stateDir, 'cache.json');
    let entries: Record<string, CacheEntry> = {};
    let key = stanzaKey;
    let upgrade = false;
    let listedFor: string | undefined;
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as CacheFile;
      if (parsed && (parsed.version === 1 || parsed.version === CACHE_VERSION) && parsed.entries && typeof parsed.entries === 'object') {
        // Keys are read back from a file: only pool paths are kept (see isPoolPath).
        entries = Object.fromEntries(
          Object.entries(parsed.entries).filter(([k, e]) => isPoolPath(k, format) && e && typeof e === 'object'),
        );
        // Format 1 may have replaced bytes of the control file by U+FFFD: read those files again.
        upgrade = parsed.version !== CACHE_VERSION;
        if (parsed.version === 1)
          entries = Object.fromEntries(Object.entries(entries).filter(([, e]) => !JSON.stringify(e.control ?? []).includes('\ufffd')));
        if (typeof parsed.listedFor === 'string' && parsed.version === CACHE_VERSION) listedFor = parsed.listedFor;
        if (stanzaKey === undefined) key = parsed.stanzaKey;
        else if (parsed.stanzaKey !== stanzaKey) for (const e of Object.values(entries)) delete e.stanza;
      }
    } catch {
      // A damaged cache only costs a full re-read.
    }
    return new PoolCache(file, entries, key, upgrade, listedFor);
  }

  /**
   * The cache of channel `ch`, loaded with its format's index entry key (IndexLayout.entryKey), so
   * entries rendered by another renderer are dropped: what publish, ingest and promote use.
   */
  static forChannel(ch: Pick<ChannelConfig, 'stateDir' | 'format'>): PoolCache {
    const format = formatOf(ch);
    return PoolCache.load(ch.stateDir, format.indexes.entryKey, format);
  }

  /** The stored Packages stanza of `poolPath`, if its entry was validated by get/set in this run and has one. */
  stanza(poolPath: string): string | undefined {
    return this.used.get(poolPath)?.stanza;
  }

  /** Stores the rendered Packages stanza of a pool file validated by get/set in this run. */
  setStanza(poolPath: string, stanza: string): void {
    const e = this.used.get(poolPath);
    if (e && e.stanza !== stanza) {
      e.stanza = stanza;
      this.dirty = true;
    }
  }

  /** The cached entry for `poolPath` (set in this run, or loaded) if `stat` matches it (size, mtimeMs, ino), else undefined. */
  get(poolPath: string, stat: fs.Stats): CacheEntry | undefined {
    // An entry set in this run (a file read by ingest) counts as well as a loaded one.
    const e = this.used.get(poolPath) ?? this.old[poolPath];
    if (!e || e.size !== stat.size || e.mtimeMs !== stat.mtimeMs || e.ino !== stat.ino) return undefined;
    this.used.set(poolPath, e);
    return e;
  }

  /**
   * What `poolPath` held when it was last read (set in this run, else loaded), whatever its stat
   * now: scanPool compares a re-read file of the same inode with it (pool files never change).
   */
  recorded(poolPath: string): CacheEntry | undefined {
    return this.used.get(poolPath) ?? this.old[poolPath];
  }

  /** Keeps the recorded entry of `poolPath` in the saved cache (a file refused as changed stays refused on the next run). */
  keep(poolPath: string): void {
    const e = this.recorded(poolPath);
    if (e) this.used.set(poolPath, e);
  }

  /** Records what was read from `poolPath` with the stat taken before reading it. */
  set(poolPath: string, stat: fs.Stats, entry: Omit<CacheEntry, 'size' | 'mtimeMs' | 'ino'>): void {
    this.used.set(poolPath, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, control: entry.control, digests: entry.digests });
    this.dirty = true;
  }

  /**
   * True when the loaded file was saved by the publish of generation `id` from a complete,
   * problem-free view of the pool (markListed): while `id` is served, its entries are exactly the
   * pool's files, so a writer holding the lock may take them instead of listing and stat-ing the pool.
   */
  isListingOf(id: string | undefined): boolean {
    return id !== undefined && this.loadedListedFor === id;
  }

  /**
   * Claims, for the next save, that the entries used in this run are the whole pool as generation
   * `id` publishes it. Only the publish that wrote `id`, under the channel lock, after a scan
   * without problems, calls this. A save without the claim (any other run, such as pending reading
   * another channel's pool without its lock) drops the loaded claim whenever it changes the entries.
   */
  markListed(id: string): void {
    this.listedFor = id;
    this.dirty = true;
  }

  /** Every entry (loaded or set in this run), each marked used, sorted by pool path: what a trusted scan takes as the pool. */
  allEntries(): [string, CacheEntry][] {
    for (const [k, e] of Object.entries(this.old)) if (!this.used.has(k)) this.used.set(k, e);
    return [...this.used].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Writes the cache atomically if it changed (new reads, or pool files gone since the last save). */
  save(): void {
    if (!this.dirty && this.used.size === Object.keys(this.old).length && !this.upgrade) return;
    const entries: Record<string, CacheEntry> = {};
    for (const k of [...this.used.keys()].sort()) entries[k] = this.used.get(k)!;
    const body: CacheFile = {
      version: CACHE_VERSION,
      stanzaKey: this.stanzaKey,
      ...(this.listedFor ? { listedFor: this.listedFor } : {}),
      entries,
    };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, JSON.stringify(body));
  }
}
