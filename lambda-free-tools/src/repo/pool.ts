/**
 * The channel's pool (`<webRoot>/pool/<component>/<prefix>/<source>/[<codename>/]<file>.deb`):
 * where a package's file goes, and reading every file of it through the cache.
 * Layout as in the Debian archive (https://wiki.debian.org/DebianRepository/Format, "pool").
 */
import * as fs from 'fs';
import * as path from 'path';
import { DebError } from '../errors';
import { formatOf, type PackageFormat } from './format';
import { PoolCache, type CacheEntry } from './cache';
import { PLAIN_POOL_PATH } from './poolPath';
import { checkRelPath, walkNoFollow } from '../core/files';
import { routeCodenames } from './routing';
import { currentGeneration } from './generations';
import { intentFile } from './intent';
import type { PackageIdentity } from '../core/format';
import type { ChannelConfig, PoolPackage, Progress } from '../core/types';

/**
 * Mode of a pool file: group read+write so that the other channel's indexer (same pool group, see
 * the project's contracts) may hard-link it under fs.protected_hardlinks, which requires owning the
 * file or being able to read and write it.
 */
export const POOL_FILE_MODE = 0o664;
/** Mode of a new pool folder: never group-writable (the setgid bit of its parent is kept). */
export const POOL_DIR_MODE = 0o755;

/**
 * The pool path (relative to the web root, '/'-separated) of a package, as its format lays it out
 * (Debian: `pool/<component>/<prefix>/<source>/[<codename>/]<name>_<version without epoch>_<arch>.deb`,
 * the file name dpkg-name gives). Every part is checked before it becomes a path, since package
 * data is hostile: the format throws its error (Debian: DebError(name, reason)) for an invalid
 * name, source, architecture or version; a component or codename that is not a plain name is a
 * DebError too. The result passes checkRelPath.
 */
export function poolPathFor(
  p: { name: string; version: string; architecture: string; source: string },
  component: string,
  codename?: string,
  format: PackageFormat = formatOf(),
): string {
  const fail = (reason: string): never => {
    throw new DebError(JSON.stringify(p.name), reason);
  };
  // The format checks the package's own fields (only text is built: nothing touches the disk before checkRelPath).
  const out = format.poolPath(p, component, codename);
  if (!SAFE_NAME.test(component)) fail(`invalid component ${JSON.stringify(component)}`);
  if (codename !== undefined && !SAFE_NAME.test(codename)) fail(`invalid codename folder ${JSON.stringify(codename)}`);
  checkRelPath(out);
  return out;
}

/** A component or codename as a folder name: letters, digits, `.`, `_`, `+`, `-`, starting with a letter or digit. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export { isPoolPath } from './poolPath';

/**
 * Characters of a pool path segment: what poolPathFor writes (package names, versions without
 * their epoch, architectures, components, codenames: letters, digits and `. _ + ~ : -`). A name
 * with anything else (a space, `;`, `$`, `'`, `(`, a control character …) would be written into
 * Packages as a Filename that apt may not fetch, or that breaks the index.
 */
const POOL_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/;

/**
 * Why the file at pool path `poolPath` (as listPoolEntries gives it) cannot be published under
 * its name, or undefined when it can: every segment after `pool/` holds only the characters
 * poolPathFor writes (POOL_SEGMENT). The reason names the offending characters (JSON-escaped) and
 * what to do.
 */
export function poolNameProblem(poolPath: string): string | undefined {
  if (PLAIN_POOL_PATH.test(poolPath)) return undefined;
  const bad = new Set<string>();
  const segments = poolPath.split('/').slice(1);
  for (const seg of segments) {
    if (POOL_SEGMENT.test(seg)) continue;
    for (const c of seg) if (!/[A-Za-z0-9._+~:-]/.test(c)) bad.add(c);
    if (bad.size === 0) bad.add(seg.charAt(0)); // a segment starting with '.', '_' …
  }
  if (bad.size === 0) return undefined;
  const shown = [...bad].map((c) => JSON.stringify(c)).join(' ');
  return (
    `file name holds ${shown}: a pool path has only letters, digits and . _ + ~ : - (ingest names a file ` +
    '<package>_<version>_<architecture>.deb), so it cannot be a Filename in Packages; rename or remove it (publish --skip-invalid publishes the rest)'
  );
}

/** What listPoolFiles finds: the package files (`.deb`), and the symbolic links (never published, never followed). */
export interface PoolListing {
  files: string[];
  links: string[];
}

/**
 * Lists every package file (`*.deb`, or `format`'s extension) under `<webRoot>/pool` as sorted
 * pool paths, entering no symlinked folder; hidden names (temp files of a writer in progress) are
 * skipped. Symbolic links anywhere in the pool are returned apart in `links`: a link's target is
 * never published.
 */
export function listPoolEntries(webRoot: string, format: Pick<PackageFormat, 'extension'> = formatOf()): PoolListing {
  const links: string[] = [];
  const files = walkNoFollow(path.join(webRoot, 'pool'), { skip: (n) => n.startsWith('.'), onLink: (r) => links.push(`pool/${r}`) })
    .filter((r) => r.endsWith(format.extension))
    .map((r) => `pool/${r}`);
  return { files, links: links.sort() };
}

/** The pool's package files (see listPoolEntries; symbolic links are not listed). */
export function listPoolFiles(webRoot: string, format: Pick<PackageFormat, 'extension'> = formatOf()): string[] {
  return listPoolEntries(webRoot, format).files;
}

/**
 * The recorded upload times of channel `ch` (pool path → ms since epoch, from its pool store, see
 * cache.ts); empty when none were recorded. Entries that are not pool paths are dropped.
 */
export function readAdded(ch: Pick<ChannelConfig, 'stateDir' | 'format'>): Record<string, number> {
  return PoolCache.load(ch.stateDir, undefined, formatOf(ch)).addedTimes();
}

/**
 * Records when pool files entered the channel (`added`: pool path → ms since epoch) in its pool
 * store: into `cache` when the caller holds one it saves later (ingest, promote: their publish saves
 * it), else loaded and saved here (one append). The caller holds the channel lock.
 */
export async function recordAdded(ch: ChannelConfig, added: Record<string, number>, cache?: PoolCache): Promise<void> {
  if (cache) return cache.setAdded(added);
  const store = PoolCache.forChannel(ch);
  store.setAdded(added);
  store.save();
}

/** Result of scanPool; `debsRead` counts the files actually read (cache misses), for tests and benchmarks. */
export interface PoolScan {
  packages: PoolPackage[];
  problems: DebError[];
  debsRead: number;
}

/**
 * Reads every package file of the channel's pool: stats each file, takes control fields, size and
 * digests from the cache when size, mtime and inode match, reads the others with the channel's
 * format (formatOf; Debian: readDeb on every core, deb/parallel.ts), checks each identity with the
 * format (identify) and routes each package (routeCodenames). A file that cannot be read
 * becomes a DebError in `problems` (never thrown), and so does one whose inode is the one the cache
 * recorded but whose bytes differ (rewritten in place: pool files never change). Packages come sorted by pool path.
 * Fills addedMs from the store's upload times (recordAdded), else the file's mtime. With
 * `opts.cache` (a writer's, see PoolCache.forChannel: publish adds rendered stanzas to it), that
 * cache is used, told the listing is complete (PoolCache.markComplete) and saved by the caller;
 * without it, the store is only read (runs without the channel lock never write it). With
 * `opts.trustCache` too (a writer holding the channel lock), a cache marked as the pool of the
 * generation served now (PoolCache.isListingOf) is taken as the pool: nothing is listed, stat-ed or
 * read (scanFromCache); with `opts.onlyName` too, only the entries whose package name
 * (PackageFormat.nameOf) is that one are built (a reader after one package: versions), the rest
 * skipped; a listing of the pool ignores it (the caller filters).
 */
export async function scanPool(
  ch: ChannelConfig,
  opts: { progress?: Progress; cache?: PoolCache; trustCache?: boolean; onlyName?: string } = {},
): Promise<PoolScan> {
  const format = formatOf(ch);
  const cache = opts.cache ?? PoolCache.load(ch.stateDir, undefined, formatOf(ch));
  if (opts.trustCache && opts.cache && cache.isListingOf(await currentGeneration(ch))) return scanFromCache(ch, cache, opts.onlyName);
  const { files, links } = listPoolEntries(ch.webRoot, format);
  cache.markComplete();
  const results: (PoolPackage | DebError | undefined)[] = new Array(files.length);
  const toRead: { i: number; stat: fs.Stats }[] = [];
  const progress = opts.progress;
  progress?.start(files.length, 'Reading pool');

  const build = (i: number, stat: fs.Stats, e: CacheEntry, size: number): PoolPackage | DebError => {
    const poolPath = files[i];
    // The entry may come from the cache file: its identity is checked again.
    const id = identityOf(e, format);
    if (typeof id === 'string') return new DebError(path.join(ch.webRoot, poolPath), id);
    return packageOf(ch, poolPath, e, id, size, cache.addedMs(poolPath) ?? Math.round(stat.mtimeMs));
  };

  for (let i = 0; i < files.length; i++) {
    // A name that cannot be a Filename is refused before the file is read, with its reason.
    const nameProblem = poolNameProblem(files[i]);
    if (nameProblem) {
      results[i] = new DebError(JSON.stringify(path.join(ch.webRoot, files[i])), nameProblem);
      progress?.tick();
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(path.join(ch.webRoot, files[i]));
      if (!stat.isFile()) throw new Error('not a regular file');
    } catch (e) {
      results[i] = new DebError(path.join(ch.webRoot, files[i]), `cannot stat: ${(e as Error).message}`);
      progress?.tick();
      continue;
    }
    const hit = cache.get(files[i], stat);
    if (hit) {
      results[i] = build(i, stat, hit, hit.size);
      progress?.tick();
    } else {
      toRead.push({ i, stat });
    }
  }

  const readFiles = toRead.map(({ i }) => path.join(ch.webRoot, files[i]));
  await format.readMany(readFiles, {
    bytes: toRead.reduce((sum, r) => sum + r.stat.size, 0),
    onResult: (k, r) => {
      const { i, stat } = toRead[k];
      const before = cache.recorded(files[i]);
      if (r instanceof Error) {
        results[i] = r instanceof DebError ? r : new DebError(readFiles[k], r.message);
      } else if (before && before.ino === stat.ino && before.digests?.SHA256 && before.digests.SHA256 !== r.digests.SHA256) {
        // The same inode with other bytes: written in place, which no writer of ours does. Prod's
        // files are preprod's inodes (0664, pool group): indexing the new bytes would sign what
        // nobody promoted. Refused, and the record kept so that a retry refuses it too.
        cache.keep(files[i]);
        results[i] = new DebError(
          readFiles[k],
          `changed in place since it was indexed (SHA256 ${r.digests.SHA256}, indexed ${before.digests.SHA256}): pool files never change; a user with write access to it (the pool group) rewrote it. Put the indexed bytes back, or remove the file`,
        );
      } else {
        results[i] = build(i, stat, cache.set(files[i], stat, { control: r.control, digests: r.digests }), r.size);
      }
      progress?.tick();
    },
  });
  progress?.stop();

  const packages: PoolPackage[] = [];
  const problems: DebError[] = links.map(
    (l) => new DebError(path.join(ch.webRoot, l), 'symbolic link in the pool (never followed nor published; remove it)'),
  );
  for (const r of results) {
    if (r instanceof DebError) problems.push(r);
    else if (r) packages.push(r);
  }
  return { packages, problems, debsRead: toRead.length };
}

/**
 * The pool of `ch` for a run that only reads (pending, versions, promote's upstream channel; no lock
 * needed): the channel's store when it is marked as the pool of the generation served now (a
 * consistent state: entries saved after the mark drop it, see cache.ts) and no interrupted writer
 * left its intent record, else a listing (scanPool).
 * Writes nothing. `opts.onlyName`: as scanPool's (the caller still filters what it gets).
 */
export async function readPool(ch: ChannelConfig, opts: { progress?: Progress; onlyName?: string } = {}): Promise<PoolScan> {
  const cache = PoolCache.load(ch.stateDir, undefined, formatOf(ch));
  // An interrupted writer (its intent record there) may have changed the pool after the store's
  // mark; its recovery needs the lock: until then the pool is listed.
  const trustCache = !fs.existsSync(intentFile(ch));
  return scanPool(ch, { progress: opts.progress, cache, trustCache, onlyName: opts.onlyName });
}

/**
 * The pool as the cache holds it (see PoolCache.isListingOf): every entry, loaded or set in this
 * run, built as scanPool builds a file's package (identity checked again by the format, routed,
 * addedMs from the store's upload times else the recorded mtime), without listing or stat-ing a file.
 */
function scanFromCache(ch: ChannelConfig, cache: PoolCache, onlyName?: string): PoolScan {
  const format = formatOf(ch);
  const packages: PoolPackage[] = [];
  const problems: DebError[] = [];
  // A writer scans twice (before its changes, then in its publish): an entry built by the first
  // scan of this cache is taken again (same entry object, channel and upload time).
  let memo = builtFromCache.get(cache);
  if (!memo) builtFromCache.set(cache, (memo = new WeakMap()));
  for (const [poolPath, e] of cache.allEntries()) {
    if (onlyName !== undefined && (e.identity?.name ?? format.nameOf(e.control)) !== onlyName) continue;
    const addedMs = cache.addedMs(poolPath) ?? Math.round(e.mtimeMs);
    const known = memo.get(e);
    if (known && known.ch === ch && known.p.poolPath === poolPath && known.p.addedMs === addedMs) {
      packages.push(known.p);
      continue;
    }
    const id = identityOf(e, format);
    const nameProblem = poolNameProblem(poolPath);
    if (typeof id === 'string' || nameProblem) {
      problems.push(new DebError(path.join(ch.webRoot, poolPath), typeof id === 'string' ? id : nameProblem!));
      continue;
    }
    const p = packageOf(ch, poolPath, e, id, e.size, addedMs);
    memo.set(e, { ch, p });
    packages.push(p);
  }
  return { packages, problems, debsRead: 0 };
}

/**
 * The identity of a store entry, checked again since it may come from the store's files: the stored
 * identity through the format's checkIdentity, else the format's identify of its control fields.
 */
function identityOf(e: CacheEntry, format: PackageFormat): PackageIdentity | string {
  return e.identity ? format.checkIdentity(e.identity) : format.identify(e.control);
}

/**
 * A pool package whose control fields come from its store entry when first used: a class with the
 * getter on its prototype, so each package stays a plain fast object (an object literal with a
 * getter costs a closure and a slow property table per package: 50 MiB more at 30,000).
 */
class StoredPackage implements PoolPackage {
  readonly #entry: CacheEntry;

  constructor(
    readonly poolPath: string,
    id: PackageIdentity,
    entry: CacheEntry,
    readonly size: number,
    readonly codenames: string[],
    readonly addedMs: number,
  ) {
    this.name = id.name;
    this.version = id.version;
    this.architecture = id.architecture;
    this.source = id.source;
    this.digests = entry.digests;
    this.#entry = entry;
  }

  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly source: string;
  readonly digests: CacheEntry['digests'];

  get control(): [string, string][] {
    return this.#entry.control;
  }

  /** JSON of the package as a plain object (the getter's control included). */
  toJSON(): PoolPackage {
    const { poolPath, name, version, architecture, source, control, size, digests, codenames, addedMs } = this;
    return { poolPath, name, version, architecture, source, control, size, digests, codenames, addedMs };
  }
}

/** The package of pool file `poolPath` whose entry is `e` (control fields read from it only when used), routed for `ch`. */
function packageOf(ch: ChannelConfig, poolPath: string, e: CacheEntry, id: PackageIdentity, size: number, addedMs: number): PoolPackage {
  return new StoredPackage(poolPath, id, e, size, routeCodenames(id.version, poolPath, ch), addedMs);
}

/** scanFromCache's packages, per cache and entry (see there). */
const builtFromCache = new WeakMap<PoolCache, WeakMap<CacheEntry, { ch: ChannelConfig; p: PoolPackage }>>();

/**
 * Key of a (package, version, architecture) triple: the identity apt gives a .deb. The version is
 * normalised by the format (Debian: epoch 0 and an empty revision made explicit, since apt treats
 * `1.0` and `0:1.0` as one; an invalid version, which never reaches the pool, is kept as is).
 */
export function keyOf(name: string, version: string, architecture: string, format: PackageFormat = formatOf()): string {
  return `${name}\u0000${format.versionKey(version)}\u0000${architecture}`;
}
