/**
 * pending: what the upstream channel (preprod) serves that its downstream channel (prod) does not
 * serve, i.e. what `promote` can take. "Serves": listed by the channel's current generation
 * (generation.json poolPaths), not merely present in its pool: a file an interrupted writer left in
 * the pool is not offered, and a file in prod's pool that prod does not serve is still pending.
 * The served sets come from what each generation recorded (served.json: two small reads, whatever
 * the size of the pools); a generation without that record has its pool scanned instead.
 * Read-only: needs no lock, since pool files only ever appear by an atomic rename/link and are
 * never rewritten in place.
 */
import * as path from 'path';
import { ConfigError } from '../errors';
import type { ChannelPair } from './channel';
import { readPool } from './pool';
import { currentGeneration, readGenerationInfo, readServed } from './generations';
import { intentFile, readIntent } from './intent';
import { routeCodenames } from './routing';
import { keyOf } from './pool';
import { formatOf } from './format';
import type { ChannelConfig, PoolPackage } from '../core/types';
import { byteOrder } from '../core/order';

/** One package of the upstream pool missing from the downstream pool. */
export interface PendingRow {
  name: string;
  version: string;
  architecture: string;
  /** Codenames it would be published under in the downstream channel (its liste_dist and routing). */
  codenames: string[];
  /** Upload time into the upstream channel, ms since epoch. */
  addedMs: number;
  /** Pool path in the upstream channel. */
  poolPath: string;
  sha256: string;
  /** Set when the downstream pool has the same name, version and architecture with other content: promote will refuse it. */
  conflict?: string;
}

/** What diffPools reads of a package: a scanned pool package, or one built from a served record (servedRecordsOf). */
export type DiffedPackage = Pick<PoolPackage, 'name' | 'version' | 'architecture' | 'poolPath' | 'codenames' | 'addedMs'> & {
  digests: { SHA256: string };
};

/**
 * Compares two already scanned pools: every upstream package whose (name, version, architecture)
 * with the same SHA256 is absent downstream (at its pool path, or at another path covering every
 * codename it would get there). A downstream file of the same identity with other content at the
 * same path or in a common codename is flagged `conflict` (promote refuses it). Sorted by name, then
 * the format's version order (Debian: dpkg's; newest first), then architecture.
 */
export function diffPools(
  upstream: DiffedPackage[],
  downstream: DiffedPackage[],
  downstreamChannel: Pick<ChannelConfig, 'codenames' | 'routing' | 'format'>,
): PendingRow[] {
  const format = formatOf(downstreamChannel);
  const down = new Map<string, DiffedPackage[]>();
  for (const p of downstream) {
    const k = keyOf(p.name, p.version, p.architecture, format);
    down.set(k, [...(down.get(k) ?? []), p]);
  }
  const rows: PendingRow[] = [];
  for (const p of upstream) {
    const codenames = routeCodenames(p.version, p.poolPath, downstreamChannel);
    const same = down.get(keyOf(p.name, p.version, p.architecture, format)) ?? [];
    // Live already: the same bytes at the same pool path, or covering every codename it would get.
    if (
      same.some(
        (d) => d.digests.SHA256 === p.digests.SHA256 && (d.poolPath === p.poolPath || codenames.every((c) => d.codenames.includes(c))),
      )
    )
      continue;
    const clash = same.find(
      (d) => d.digests.SHA256 !== p.digests.SHA256 && (d.poolPath === p.poolPath || d.codenames.some((c) => codenames.includes(c))),
    );
    rows.push({
      name: p.name,
      version: p.version,
      architecture: p.architecture,
      codenames,
      addedMs: p.addedMs,
      poolPath: p.poolPath,
      sha256: p.digests.SHA256,
      ...(clash ? { conflict: clash.poolPath } : {}),
    });
  }
  return rows.sort((a, b) =>
    a.name !== b.name
      ? a.name < b.name
        ? -1
        : 1
      : format.compareVersions(b.version, a.version) || byteOrder(a.architecture, b.architecture),
  );
}

/**
 * The pool paths channel `ch` serves: those its current generation lists (generation.json
 * poolPaths); empty when nothing is published yet. Throws AptRepoError (from currentGeneration)
 * when `dists` is not a symlink into `.generations/`, and when the generation `dists` points at has
 * no readable generation.json.
 */
export async function servedPoolPaths(ch: Pick<ChannelConfig, 'webRoot'>): Promise<Set<string>> {
  const id = await currentGeneration(ch);
  if (id === undefined) return new Set();
  const info = readGenerationInfo(ch, id);
  if (!info)
    throw new ConfigError(
      path.join(ch.webRoot, '.generations', id, 'generation.json'),
      'missing or unreadable: cannot tell what the channel serves',
    );
  return new Set(info.poolPaths);
}

/** The packages of `pool` (a scan of `ch`'s pool) that `ch` serves (see servedPoolPaths). */
export async function servedPackages(ch: Pick<ChannelConfig, 'webRoot'>, pool: PoolPackage[]): Promise<PoolPackage[]> {
  const served = await servedPoolPaths(ch);
  return pool.filter((p) => served.has(p.poolPath));
}

/**
 * A warning when `ch` holds the intent record of an interrupted writer (its changes are not served
 * yet); undefined otherwise.
 */
export function interruptedWriter(ch: ChannelConfig): string | undefined {
  try {
    const r = readIntent(ch);
    if (!r) return undefined;
    return `${ch.name}: an interrupted ${r.header.command} (pid ${r.header.pid}, since ${r.header.since}) left changes that ${ch.name} does not serve yet; the next writing command of ${ch.name} finishes it (see ${intentFile(ch)})`;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * What channel `ch` serves, as its current generation recorded it (served.json), each package
 * routed by `ch`'s own liste_dist and routing as scanPool routes it; [] when nothing is published;
 * undefined when the generation has no valid record (written by an older apt-repo): the caller
 * scans the pool. Throws as currentGeneration does.
 */
export async function servedRecordsOf(ch: ChannelConfig): Promise<DiffedPackage[] | undefined> {
  const id = await currentGeneration(ch);
  if (id === undefined) return [];
  const records = readServed(ch, id);
  return records?.map((r) => ({
    name: r.name,
    version: r.version,
    architecture: r.architecture,
    poolPath: r.poolPath,
    codenames: routeCodenames(r.version, r.poolPath, ch),
    addedMs: r.addedMs,
    digests: { SHA256: r.sha256 },
  }));
}

/**
 * Lists the packages `pair.upstream` serves that `pair.downstream` does not serve (matched by
 * name, version, architecture and SHA256, see diffPools), from the served sets the two current
 * generations recorded (served.json), else from scans of both pools filtered by what each serves.
 * Pool problems (unreadable debs; only with the scans) and interrupted writers of either channel
 * are returned as problems, not thrown.
 */
export async function pendingPackages(pair: ChannelPair): Promise<{ rows: PendingRow[]; problems: string[] }> {
  const interrupted = () =>
    [interruptedWriter(pair.upstream), interruptedWriter(pair.downstream)].filter((w): w is string => w !== undefined);
  // The served sets as their generations recorded them: two small files, no pool scan. Not while
  // a writer of either channel was interrupted: its pool may lack files its generation serves.
  const problems = interrupted();
  if (problems.length === 0) {
    const [upRecorded, downRecorded] = await Promise.all([servedRecordsOf(pair.upstream), servedRecordsOf(pair.downstream)]);
    if (upRecorded && downRecorded) return { rows: diffPools(upRecorded, downRecorded, pair.downstream), problems };
  }
  const [up, down] = await Promise.all([readPool(pair.upstream), readPool(pair.downstream)]);
  const [upServed, downServed] = await Promise.all([
    servedPackages(pair.upstream, up.packages),
    servedPackages(pair.downstream, down.packages),
  ]);
  return {
    rows: diffPools(upServed, downServed, pair.downstream),
    problems: [...up.problems.map((e) => e.message), ...down.problems.map((e) => e.message), ...interrupted()],
  };
}
