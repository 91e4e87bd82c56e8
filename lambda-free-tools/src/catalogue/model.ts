/**
 * What a channel's web catalogue shows, gathered from the channel's own records (never from the
 * pool files): the served generation's served.json (what apt clients get), the pool store's control
 * fields (descriptions), the kept generations' records (what changed between them), the history,
 * and, on a channel with an upstream, what `pending` lists. Read-only; the caller holds the channel
 * lock when it writes the result (catalogue/write.ts).
 */
import { formatOf } from '../repo/format';
import { currentGeneration, generationSequence, listGenerations, readServed } from '../repo/generations';
import { routeCodenames } from '../repo/routing';
import { readHistory, type HistoryRecord } from '../repo/history';
import { resolveChannelPair, type ChannelPair } from '../repo/channel';
import { pendingPackages, type PendingRow } from '../repo/pending';
import type { CacheEntry } from '../repo/cache';
import { byteOrder } from '../core/order';
import { errText } from '../core/files';
import { AptRepoError } from '../errors';
import { timed, timedAsync } from '../core/timings';
import type { ChannelConfig, ServedRecord } from '../core/types';

/** One served file of a package. */
export interface CatalogueVersion {
  version: string;
  architecture: string;
  /** Codenames whose indexes list it, in liste_dist order. */
  codenames: string[];
  /** Bytes of the pool file. */
  size?: number;
  sha256: string;
  poolPath: string;
  /** When the file entered the upstream channel (the upload), ms since epoch; on a channel without upstream, its own addedMs. */
  uploadedMs?: number;
  /** When the file entered the downstream channel (the promotion), ms since epoch, when known. */
  promotedMs?: number;
  /** The command that installs this version (the format's installCommand). */
  install: string;
}

/** One package name and every version the channel serves, newest first by the format's order; the summary and description are the newest version's. */
export interface CataloguePackage {
  name: string;
  summary: string;
  description: string;
  versions: CatalogueVersion[];
}

/**
 * A pool file a generation added or dropped compared with the generation before it: its package
 * when the served generation serves it, else only its file name.
 */
export type GenerationChangeEntry = { name: string; version: string; architecture: string } | { file: string };

/** One kept generation and what changed from the kept generation before it. */
export interface CatalogueGeneration {
  id: string;
  date: string;
  current: boolean;
  rolledBackFrom?: string;
  /** The change that published it (history record), when recorded. */
  change?: HistoryRecord;
  /**
   * Compared with the next older kept generation by the pool paths each lists (the channel's first
   * generation: everything it serves); undefined for the oldest kept one otherwise.
   */
  added?: GenerationChangeEntry[];
  removed?: GenerationChangeEntry[];
}

/** The whole catalogue of one channel. */
export interface CatalogueData {
  channel: string;
  description: string;
  /** The served generation it describes. */
  generation: { id: string; date: string };
  /** ISO time the catalogue was built. */
  builtAt: string;
  /** Codenames and architectures, as liste_dist and liste_arch give them. */
  codenames: string[];
  architectures: string[];
  packages: CataloguePackage[];
  /** The channel pair, when the other side is configured. */
  pair?: { upstream: string; downstream: string };
  /** On the downstream channel (prod): what its upstream serves that it does not (`apt-repo pending`). */
  pending?: { upstream: string; rows: PendingRow[]; problems: string[] };
  generations: CatalogueGeneration[];
  /** The newest history records first, at most HISTORY_SHOWN. */
  history: HistoryRecord[];
  /** Facts the catalogue could not gather (shown on its pages, never thrown). */
  problems: string[];
}

/** History records a catalogue shows (the newest). */
export const HISTORY_SHOWN = 500;

const key = (r: Pick<ServedRecord, 'poolPath' | 'sha256'>) => `${r.poolPath}\0${r.sha256}`;

/** The served records of the current generation of `ch` keyed by pool path and SHA256; undefined when unreadable. */
async function servedOf(ch: ChannelConfig): Promise<Map<string, ServedRecord> | undefined> {
  const id = await currentGeneration(ch);
  if (!id) return new Map();
  const rows = readServed(ch, id);
  return rows && new Map(rows.map((r) => [key(r), r]));
}

/**
 * Gathers the catalogue of `ch` for its served generation `generationId`. Throws AptRepoError naming
 * the file when the generation's served.json cannot be read. `entry(poolPath)` gives
 * the pool store's record of a file (control fields, size); `now` dates the build. The pair's other
 * side, the pending list and the history are read when they can be; what cannot is listed in
 * `problems`. `knownServed`: what the generation serves when the caller has it in memory (the
 * generation writer), instead of reading its served.json again.
 */
export async function gatherCatalogue(
  ch: ChannelConfig,
  generationId: string,
  entry: (poolPath: string) => CacheEntry | undefined,
  now: Date,
  knownServed?: ServedRecord[],
): Promise<CatalogueData> {
  const format = formatOf(ch);
  const problems: string[] = [];
  const served = knownServed ?? timed('catalogue: read served', () => readServed(ch, generationId));
  if (!served) throw new AptRepoError(`${ch.webRoot}/.generations/${generationId}/served.json: missing or not readable`);
  const gens = await timedAsync('catalogue: list generations', () => listGenerations(ch));
  const self = gens.find((g) => g.id === generationId);

  let pair: ChannelPair | undefined;
  try {
    pair = await resolveChannelPair(ch.root, ch);
  } catch {
    pair = undefined; // a channel without a pair: no pending view, no dates from the other side
  }
  const isDownstream = pair?.downstream.name === ch.name;
  let other: Map<string, ServedRecord> | undefined;
  if (pair) {
    try {
      other = await servedOf(isDownstream ? pair.upstream : pair.downstream);
      if (!other)
        problems.push(`${isDownstream ? pair.upstream.name : pair.downstream.name}: no served record to date uploads and promotions`);
    } catch (e) {
      problems.push(`${isDownstream ? pair.upstream.name : pair.downstream.name}: ${errText(e)}`);
    }
  }

  const byName = new Map<string, CataloguePackage>();
  const datesFrom = pair ? (isDownstream ? 'downstream' : 'upstream') : 'alone';
  for (const r of served) {
    const e = entry(r.poolPath);
    let pkg = byName.get(r.name);
    if (!pkg) {
      pkg = { name: r.name, summary: '', description: '', versions: [] };
      byName.set(r.name, pkg);
    }
    const twin = other?.get(key(r))?.addedMs;
    pkg.versions.push({
      version: r.version,
      architecture: r.architecture,
      codenames: routeCodenames(r.version, r.poolPath, ch),
      size: e?.size,
      sha256: r.sha256,
      poolPath: r.poolPath,
      uploadedMs: datesFrom === 'downstream' ? twin : r.addedMs,
      promotedMs: datesFrom === 'downstream' ? r.addedMs : twin,
      install: format.installCommand(r.name, r.version),
    });
  }
  const packages = timed('catalogue: sort', () => {
    const list = [...byName.values()].sort((a, b) => byteOrder(a.name, b.name));
    for (const p of list)
      if (p.versions.length > 1)
        p.versions.sort((a, b) => format.compareVersions(b.version, a.version) || byteOrder(a.architecture, b.architecture));
    return list;
  });
  // What the newest version says of the package (one control text parsed per name).
  for (const p of packages) {
    const e = entry(p.versions[0].poolPath);
    if (!e) continue;
    const d = format.describe(e.control);
    p.summary = d.summary;
    p.description = d.text;
  }

  let pending: CatalogueData['pending'];
  if (pair && isDownstream) {
    try {
      pending = { upstream: pair.upstream.name, ...(await timedAsync('catalogue: pending', () => pendingPackages(pair!))) };
    } catch (e) {
      problems.push(`pending: ${errText(e)}`);
    }
  }

  // What each kept generation changed, from the pool paths every generation.json lists (already
  // read by listGenerations): no other file is read. Named from what the served generation serves;
  // a file it no longer serves by its pool file name.
  const servedByPath = new Map(served.map((r) => [r.poolPath, r]));
  const entryOf = (p: string): GenerationChangeEntry => {
    const r = servedByPath.get(p);
    return r ? { name: r.name, version: r.version, architecture: r.architecture } : { file: p.slice(p.lastIndexOf('/') + 1) };
  };
  const generations: CatalogueGeneration[] = [];
  for (let i = 0; i < gens.length; i++) {
    const g = gens[i];
    const item: CatalogueGeneration = { id: g.id, date: g.date, current: g.id === generationId };
    if (g.rolledBackFrom) item.rolledBackFrom = g.rolledBackFrom;
    if (g.change && typeof g.change === 'object') item.change = g.change as HistoryRecord;
    const older = gens[i + 1];
    if (older || generationSequence(g.id) === 1) {
      // Without an older one, the channel's first publish: everything it serves was added.
      const had = new Set(older?.poolPaths ?? []);
      const has = new Set(g.poolPaths);
      item.added = g.poolPaths.filter((p) => !had.has(p)).map(entryOf);
      item.removed = (older?.poolPaths ?? []).filter((p) => !has.has(p)).map(entryOf);
    }
    generations.push(item);
  }

  let history: HistoryRecord[] = [];
  try {
    history = (await timedAsync('catalogue: history', () => readHistory(ch, { limit: HISTORY_SHOWN }))).reverse();
  } catch (e) {
    problems.push(`history: ${errText(e)}`);
  }

  return {
    channel: ch.name,
    description: ch.description,
    generation: { id: generationId, date: self?.date ?? '' },
    builtAt: now.toISOString(),
    codenames: ch.codenames,
    architectures: ch.architectures,
    packages,
    ...(pair ? { pair: { upstream: pair.upstream.name, downstream: pair.downstream.name } } : {}),
    ...(pending ? { pending } : {}),
    generations,
    history,
    problems,
  };
}
