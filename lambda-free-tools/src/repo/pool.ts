/**
 * The channel's pool (`<webRoot>/pool/<component>/<prefix>/<source>/[<codename>/]<file>.deb`):
 * where a package's file goes, and reading every file of it through the cache.
 * Layout as in the Debian archive (https://wiki.debian.org/DebianRepository/Format, "pool").
 */
import * as fs from 'fs';
import * as path from 'path';
import { DebError } from '../errors';
import { readDebs } from '../deb/parallel';
import { parseVersion } from '../deb/version';
import type { Progress } from '../cli/context';
import { PoolCache } from './cache';
import { writeFileAtomic } from './files';
import { routeCodenames } from './routing';
import type { ChannelConfig, Digests, PoolPackage } from './types';

/**
 * The pool directory prefix of a source package: its first letter, or `lib` + the fourth letter
 * for `lib*` sources (`libfoo` → `libf`), as the Debian archive does.
 */
export function poolPrefix(source: string): string {
  return source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
}

/**
 * The pool path (relative to the web root, '/'-separated) of a package:
 * `pool/<component>/<prefix>/<source>/[<codename>/]<name>_<version without epoch>_<arch>.deb`
 * (the file name dpkg-name gives). Throws VersionError for an invalid version.
 */
export function poolPathFor(p: { name: string; version: string; architecture: string; source: string }, component: string, codename?: string): string {
  const v = parseVersion(p.version);
  const noEpoch = v.revision ? `${v.upstream}-${v.revision}` : v.upstream;
  const dir = ['pool', component, poolPrefix(p.source), p.source, ...(codename ? [codename] : [])].join('/');
  return `${dir}/${p.name}_${noEpoch}_${p.architecture}.deb`;
}

/** Lists every `*.deb` under `<webRoot>/pool` (following no directory symlinks; hidden names skipped), as sorted pool paths. */
export function listPoolFiles(webRoot: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(webRoot, rel), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const d of entries) {
      // Hidden names are temp files of ingest/promote in progress.
      if (d.name.startsWith('.')) continue;
      const r = `${rel}/${d.name}`;
      if (d.isDirectory()) walk(r);
      else if ((d.isFile() || d.isSymbolicLink()) && d.name.endsWith('.deb')) out.push(r);
    }
  };
  walk('pool');
  return out.sort();
}

function addedFile(ch: Pick<ChannelConfig, 'stateDir'>): string {
  return path.join(ch.stateDir, 'added.json');
}

/** The recorded upload times (pool path → ms since epoch); empty when none were recorded. */
export function readAdded(ch: Pick<ChannelConfig, 'stateDir'>): Record<string, number> {
  try {
    const v = JSON.parse(fs.readFileSync(addedFile(ch), 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}

/**
 * Records when pool files entered the channel (`added`: pool path → ms since epoch), merged into
 * `<stateDir>/added.json` (atomic write); entries whose pool file no longer exists are dropped.
 * The caller holds the channel lock.
 */
export async function recordAdded(ch: ChannelConfig, added: Record<string, number>): Promise<void> {
  const all = { ...readAdded(ch), ...added };
  const kept: Record<string, number> = {};
  for (const k of Object.keys(all).sort()) if (fs.existsSync(path.join(ch.webRoot, k))) kept[k] = all[k];
  fs.mkdirSync(ch.stateDir, { recursive: true });
  writeFileAtomic(addedFile(ch), JSON.stringify(kept));
}

function fieldOf(control: [string, string][], name: string): string | undefined {
  // Field names are case-insensitive (Policy §5.1), but nearly always written as `name` is: try
  // that first (this runs for every pool file of every scan).
  for (const [k, v] of control) if (k === name) return v;
  const lower = name.toLowerCase();
  for (const [k, v] of control) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** Result of scanPool; `debsRead` counts the files actually read (cache misses), for tests and benchmarks. */
export interface PoolScan {
  packages: PoolPackage[];
  problems: DebError[];
  debsRead: number;
}

/**
 * Reads every .deb of the channel's pool: stats each file, takes control fields, size and digests
 * from the cache when size, mtime and inode match, reads the others with readDeb (on every core,
 * deb/parallel.ts), routes each package (routeCodenames) and saves the cache. A file that cannot be read
 * becomes a DebError in `problems` (never thrown). Packages come sorted by pool path.
 * Fills addedMs from recordAdded's file, else the file's mtime. With `opts.cache` (publish, which
 * adds rendered stanzas to it), that cache is used and the caller saves it.
 */
export async function scanPool(ch: ChannelConfig, opts: { progress?: Progress; cache?: PoolCache } = {}): Promise<PoolScan> {
  const files = listPoolFiles(ch.webRoot);
  const cache = opts.cache ?? PoolCache.load(ch.stateDir);
  const added = readAdded(ch);
  const results: (PoolPackage | DebError | undefined)[] = new Array(files.length);
  const toRead: { i: number; stat: fs.Stats }[] = [];
  const progress = opts.progress;
  progress?.start(files.length, 'Reading pool');

  const build = (i: number, stat: fs.Stats, control: [string, string][], size: number, digests: Digests): PoolPackage | DebError => {
    const poolPath = files[i];
    const name = fieldOf(control, 'Package');
    const version = fieldOf(control, 'Version');
    const architecture = fieldOf(control, 'Architecture');
    if (!name || !version || !architecture) return new DebError(path.join(ch.webRoot, poolPath), 'control has no Package, Version or Architecture');
    const source = sourceName(fieldOf(control, 'Source'), name);
    return {
      poolPath, name, version, architecture, source, control, size, digests,
      codenames: routeCodenames(version, poolPath, ch),
      addedMs: added[poolPath] ?? Math.round(stat.mtimeMs),
    };
  };

  for (let i = 0; i < files.length; i++) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(path.join(ch.webRoot, files[i]));
    } catch (e) {
      results[i] = new DebError(path.join(ch.webRoot, files[i]), `cannot stat: ${(e as Error).message}`);
      progress?.tick();
      continue;
    }
    const hit = cache.get(files[i], stat);
    if (hit) {
      results[i] = build(i, stat, hit.control, hit.size, hit.digests);
      progress?.tick();
    } else {
      toRead.push({ i, stat });
    }
  }

  const readFiles = toRead.map(({ i }) => path.join(ch.webRoot, files[i]));
  await readDebs(readFiles, {
    bytes: toRead.reduce((sum, r) => sum + r.stat.size, 0),
    onResult: (k, r) => {
      const { i, stat } = toRead[k];
      if (r instanceof Error) {
        results[i] = r instanceof DebError ? r : new DebError(readFiles[k], r.message);
      } else {
        const control = Array.from(r.control.entries());
        cache.set(files[i], stat, { control, digests: r.digests });
        results[i] = build(i, stat, control, r.size, r.digests);
      }
      progress?.tick();
    },
  });
  progress?.stop();
  if (!opts.cache) cache.save();

  const packages: PoolPackage[] = [];
  const problems: DebError[] = [];
  for (const r of results) {
    if (r instanceof DebError) problems.push(r);
    else if (r) packages.push(r);
  }
  return { packages, problems, debsRead: toRead.length };
}

/**
 * Key of a (package, version, architecture) triple: the identity apt gives a .deb. The version is
 * normalised (epoch 0 and an empty revision made explicit), since apt treats `1.0` and `0:1.0` as one.
 */
export function keyOf(name: string, version: string, architecture: string): string {
  let v = version;
  try {
    const p = parseVersion(version);
    v = `${p.epoch}:${p.upstream}-${p.revision}`;
  } catch {
    // An invalid version never reaches the pool (readDeb refuses it); keep the raw text.
  }
  return `${name}\u0000${v}\u0000${architecture}`;
}

/** The Source field without its optional `(version)`, or the package name (Debian Policy §5.6.1). */
export function sourceName(sourceField: string | undefined, name: string): string {
  const s = sourceField?.trim().split(/\s+/)[0];
  return s ? s : name;
}
