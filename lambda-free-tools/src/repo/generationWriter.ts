/**
 * The generation writer: read the pool, route each package to its codenames, write a new signed
 * generation of `dists` through the channel format's index layout (core/format.ts IndexLayout; for
 * Debian: Packages, Packages.gz, Packages.xz, by-hash, Release, InRelease, Release.gpg per
 * codename), make it durable, flip `dists` to it, prune old generations. The caller holds the
 * channel lock (repo/publish.ts `publish`, every writing command, crash recovery).
 * Below repo/recover.ts in the import graph (recovery republishes with it).
 */
import * as fs from 'fs';
import * as path from 'path';
import { AptRepoError, ConfigError, ConflictError } from '../errors';
import type { ReleaseSigner } from '../sign/sign';
import {
  currentGeneration,
  generationDir,
  generationsDir,
  newGenerationId,
  pruneGenerations,
  switchGeneration,
  writeGenerationInfo,
  writeServed,
} from './generations';
import { PoolCache } from './cache';
import { errText, fsyncDir, mkdirWithMode, walkNoFollow } from '../core/files';
import { appendHistory, type HistoryRecord } from './history';
import { keyOf, scanPool } from './pool';
import { formatOf, type PackageFormat } from './format';
import { suffixCodenames } from './routing';
import type { ChannelConfig, GenerationInfo, PoolPackage, Progress, ServedRecord } from '../core/types';
import { timed, timedAsync } from '../core/timings';

/**
 * What a publish did. `packages`: entries per codename (one per name, version and architecture);
 * `problems`: warnings (packages routed nowhere, architectures not published, invalid files skipped
 * with --skip-invalid); `debsRead`: pool files actually read (the others came from the cache).
 */
export interface PublishResult {
  generation: string;
  packages: Record<string, number>;
  problems: string[];
  debsRead: number;
}

const identities = new WeakMap<PoolPackage, string>();
/**
 * The identity apt gives a binary package (pool.ts keyOf), memoised per scanned package (a scanned
 * package belongs to one channel, hence one format).
 */
function identity(p: PoolPackage, format: PackageFormat): string {
  let id = identities.get(p);
  if (id === undefined) {
    id = keyOf(p.name, p.version, p.architecture, format);
    identities.set(p, id);
  }
  return id;
}

/**
 * Finds files that claim the same name, version and architecture in a common codename with
 * different content (SHA256): apt would see two different packages under one identity and
 * fail with a hash mismatch, so publishing refuses instead of picking one.
 */
export function findConflicts(packages: PoolPackage[], webRoot: string, format: PackageFormat = formatOf()): string[] {
  const groups = new Map<string, PoolPackage[]>();
  for (const p of packages) {
    const k = identity(p, format);
    const g = groups.get(k);
    if (g) g.push(p);
    else groups.set(k, [p]);
  }
  const out: string[] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.length; i++) {
      for (let j = i + 1; j < g.length; j++) {
        const a = g[i];
        const b = g[j];
        if (a.digests.SHA256 === b.digests.SHA256) continue;
        const common = a.codenames.filter((c) => b.codenames.includes(c));
        if (common.length === 0) continue;
        out.push(
          `${path.join(webRoot, a.poolPath)} and ${path.join(webRoot, b.poolPath)}: both ${a.name} ${a.version} ${a.architecture} in ${common.join(', ')} with different content (SHA256 ${a.digests.SHA256.slice(0, 12)}… vs ${b.digests.SHA256.slice(0, 12)}…)`,
        );
      }
    }
  }
  return out;
}

/**
 * The channel's Release signer. With repo.yaml `signerSocket`: the signing service at that socket
 * (sign/client.ts), one connection per Release; the key file is never opened, and a service that
 * is down or refuses fails the publish with a SignerError naming the socket, before `dists` flips.
 * Without it: the key in `signingKeyFile`, loaded in this process.
 * @throws ConfigError when the key file is missing (run `apt-repo keygen`), unreadable or invalid.
 */
export async function channelSigner(ch: ChannelConfig): Promise<ReleaseSigner> {
  if (ch.signerSocket !== undefined) {
    const { socketSigner } = await import('../sign/client');
    return socketSigner(ch.signerSocket);
  }
  let armored: string;
  try {
    armored = fs.readFileSync(ch.signingKeyFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigError(ch.signingKeyFile, `no signing key: run \`apt-repo --channel ${ch.name} keygen\` first`);
    }
    throw new ConfigError(ch.signingKeyFile, `cannot read the signing key: ${(e as Error).message}`);
  }
  // Loaded here, not at the top: openpgp is the largest module, and only commands that sign need it.
  const { loadSigner } = await import('../sign/sign');
  return loadSigner(armored, undefined, ch.signingKeyFile);
}

/** The inodes of every file under `dir` (none when it does not exist; walkNoFollow). */
function inodesUnder(dir: string | undefined, out = new Set<number>()): Set<number> {
  if (!dir) return out;
  let files: string[];
  try {
    files = walkNoFollow(dir);
  } catch {
    return out;
  }
  for (const rel of files) {
    const st = fs.lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
    if (st?.isFile()) out.add(st.ino);
  }
  return out;
}

/**
 * fsyncs every file and directory under `dir` (and makes each directory 0755), so the generation is
 * on disk before generation.json marks it complete. Files in `durable` (inodes hard-linked from
 * the previous generation, fsynced when that one was written) are skipped: their new names are
 * made durable by their directory's fsync. The fsyncs run concurrently (libuv's thread pool):
 * their order does not matter, only that all are done before the caller goes on.
 */
async function fsyncTree(dir: string, durable: Set<number>): Promise<void> {
  const targets: string[] = [];
  const files = walkNoFollow(dir, {
    onDir: (rel) => {
      const d = rel ? path.join(dir, rel) : dir;
      targets.push(d);
      // Served by nginx: whatever the umask of the publishing shell, the tree must be readable.
      if ((fs.statSync(d).mode & 0o755) !== 0o755) fs.chmodSync(d, 0o755);
    },
  });
  targets.push(...files.map((f) => path.join(dir, f)));
  await Promise.all(
    targets.map(async (p) => {
      const fh = await fs.promises.open(p, 'r');
      try {
        // `durable` holds file inodes only, so every directory is synced.
        if (!durable.has((await fh.stat()).ino)) await fh.sync();
      } finally {
        await fh.close();
      }
    }),
  );
}

/**
 * What a new generation serves: `indexes` maps codename → architecture → Packages text (every
 * codename of liste_dist, every architecture of liste_arch); `packages` and `poolPaths` are recorded
 * in generation.json (entries per codename; pool paths the indexes list, sorted); `rolledBackFrom`
 * marks a rollback (see GenerationInfo).
 */
export interface GenerationContent {
  indexes: Map<string, Map<string, string>>;
  packages: Record<string, number>;
  poolPaths: string[];
  rolledBackFrom?: string;
  /** What the generation serves, for pending (served.json); none: pending scans the pool instead. */
  served?: ServedRecord[];
  /** The change that publishes it, recorded in generation.json and, after the flip, in the history (repo/history.ts). */
  change?: HistoryRecord;
  /** Entries and package names per codename and architecture (GenerationInfo.counts). */
  counts?: GenerationInfo['counts'];
}

/**
 * Writes `content` as a new generation and serves it; the caller holds the channel lock. The one
 * writer of generations, shared by publish and rollback: every codename's indexes written by the
 * format's layout (IndexLayout.write: Date `now`, Valid-Until `now` + validUntilDays when set, by-hash files of the
 * current generation carried over, signed by `signer`), fsynced, marked complete by
 * generation.json, then `dists` flipped and old generations pruned; then the change appended to the
 * history and, with `ch.catalogue`, the web catalogue rebuilt (catalogue/write.ts; from
 * `opts.cache`, the pool store the caller loaded, if any). Resolves to the new id.
 * Throws (signer, file system, the layout's ConfigError) leaving the current generation
 * serving and no partial generation behind.
 */
export async function writeGenerationLocked(
  ch: ChannelConfig,
  content: GenerationContent,
  signer: ReleaseSigner,
  now: Date,
  opts: { cache?: PoolCache } = {},
): Promise<string> {
  const previous = await currentGeneration(ch);
  const id = newGenerationId(ch, now);
  const genDir = generationDir(ch, id);
  const distsDir = path.join(genDir, 'dists');
  mkdirWithMode(distsDir, 0o755);
  try {
    const previousDistsDir = previous ? path.join(generationDir(ch, previous), 'dists') : undefined;
    const validUntil = ch.validUntilDays ? new Date(now.getTime() + ch.validUntilDays * 86_400_000) : undefined;
    const layout = formatOf(ch).indexes;
    await timedAsync('write indexes (compress, sign)', () =>
      Promise.all(
        ch.codenames.map((codename) =>
          layout.write(
            distsDir,
            {
              codename,
              component: ch.component,
              architectures: ch.architectures,
              indexes: content.indexes.get(codename) ?? new Map(),
              meta: { origin: ch.origin, label: ch.label, description: ch.description, date: now, validUntil },
            },
            signer,
            { previousDistsDir },
          ),
        ),
      ),
    );
    if (content.served) writeServed(ch, id, content.served);
    await timedAsync('fsync generation', () => fsyncTree(genDir, inodesUnder(previousDistsDir)));
    writeGenerationInfo(ch, {
      id,
      date: now.toISOString(),
      packages: content.packages,
      counts: content.counts,
      poolPaths: content.poolPaths,
      rolledBackFrom: content.rolledBackFrom,
      change: content.change,
    });
    // The generation's own entry in .generations (and, on a first publish, .generations' entry in
    // the web root): without them on disk, a crash after the flip could leave `dists` pointing at a
    // directory that never reached the disk.
    fsyncDir(generationsDir(ch));
    if (!previous) fsyncDir(ch.webRoot);
  } catch (e) {
    // An incomplete generation is harmless (never pointed at), but do not leave it behind.
    fs.rmSync(genDir, { recursive: true, force: true });
    throw e;
  }
  await timedAsync('flip and prune', async () => {
    await switchGeneration(ch, id);
    await pruneGenerations(ch, ch.generationsKeep);
  });
  if (content.change) {
    try {
      appendHistory(ch, { ...content.change, generation: id });
    } catch (e) {
      // The generation serves and carries the record: the next writer appends it (healHistory).
      process.stderr.write(`apt-repo: warning: ${ch.name}: history not written (${errText(e)}); the next writing command adds it\n`);
    }
  }
  if (ch.catalogue) {
    try {
      const { writeCatalogueLocked } = await import('../catalogue/write');
      await writeCatalogueLocked(ch, {
        cache: opts.cache,
        now,
        ...(content.served ? { served: { generation: id, records: content.served } } : {}),
      });
    } catch (e) {
      // The generation serves: the catalogue is derived from it, and the next writer rebuilds it (healCatalogue).
      process.stderr.write(`apt-repo: warning: ${ch.name}: catalogue not written (${errText(e)}); the next writing command rebuilds it\n`);
    }
  }
  return id;
}

/**
 * GenerationInfo.counts of what the indexes list: per codename and architecture, the entries whose
 * architecture is that one or `all` (`versions`) and their distinct names (`packages`).
 */
export function indexCounts(perCodename: Map<string, PoolPackage[]>, architectures: string[]): NonNullable<GenerationInfo['counts']> {
  const out: NonNullable<GenerationInfo['counts']> = {};
  for (const [codename, list] of perCodename) {
    const per: Record<string, { packages: number; versions: number }> = {};
    for (const arch of architectures) {
      const names = new Set<string>();
      let versions = 0;
      for (const p of list) {
        if (p.architecture !== arch && p.architecture !== 'all') continue;
        versions++;
        names.add(p.name);
      }
      per[arch] = { packages: names.size, versions };
    }
    out[codename] = per;
  }
  return out;
}

/**
 * Publishes channel `ch`; the caller holds the channel lock (see publish).
 * For every codename of liste_dist and every architecture of liste_arch, the Packages index lists
 * every version of every package routed to that codename whose Architecture is that architecture
 * or `all` (no binary-all index: apt < 1.1 ignores it). Suite = codename. Identical files (same
 * SHA256) under the same identity are listed once.
 * Steps, each crash-safe: the new generation is written under `.generations/<id>/`, fsynced,
 * marked complete by generation.json, then `dists` is flipped and old generations are pruned.
 * Throws, leaving the current generation serving:
 * - AptRepoError listing every invalid pool file (unless opts.skipInvalid: then they are skipped
 *   and reported in `problems`);
 * - ConflictError naming both files of every conflict (see findConflicts);
 * - ConfigError when the signing key is missing or bad.
 * `opts.cache`: a PoolCache the caller loaded with PoolCache.forChannel and filled (ingest: the files it has
 * just read), so they are not read again; saved by publishLocked once rendered, and again after
 * the flip, marked as the pool of the new generation, when the scan found no problem
 * (PoolCache.markListed).
 * `opts.trustCache` (ingest, promote and publish without --rescan, holding the lock): when the
 * cache is marked as the pool of the generation served now, the pool is taken from it (plus what
 * the caller set in it) instead of listed and stat-ed; otherwise (recovery, remove, import,
 * publish --rescan) the pool is listed.
 */
export async function publishLocked(
  ch: ChannelConfig,
  opts: { skipInvalid?: boolean; now?: Date; progress?: Progress; cache?: PoolCache; trustCache?: boolean; change?: HistoryRecord } = {},
): Promise<PublishResult> {
  const now = opts.now ?? new Date();
  const cache = opts.cache ?? PoolCache.forChannel(ch);
  const scan = await timedAsync('pool scan', () => scanPool(ch, { progress: opts.progress, cache, trustCache: opts.trustCache }));
  const problems: string[] = [];
  if (scan.problems.length > 0) {
    if (!opts.skipInvalid) {
      cache.save(); // what was read stays read for the retry
      throw new AptRepoError(
        `${scan.problems.length} invalid pool file(s); nothing published (remove or replace them, or publish --skip-invalid):\n  ` +
          scan.problems.map((e) => e.message).join('\n  '),
      );
    }
    for (const e of scan.problems) problems.push(`skipped invalid pool file ${e.message}`);
  }
  const conflicts = findConflicts(scan.packages, ch.webRoot, formatOf(ch));
  if (conflicts.length > 0) {
    cache.save();
    const first = conflicts[0];
    throw new ConflictError(
      first.slice(0, first.indexOf(' and ')),
      `${conflicts.length} conflict(s); nothing published:\n  ${conflicts.join('\n  ')}`,
    );
  }
  const published = new Set(ch.architectures);
  for (const p of scan.packages) {
    // Built only for a problem: path.join of every pool path costs ~2 ms per 1,000 packages.
    const file = () => path.join(ch.webRoot, p.poolPath);
    if (p.codenames.length === 0) {
      const wanted = suffixCodenames(p.version, ch.routing) ?? [];
      problems.push(
        `${file()}: version ${p.version} routes to ${wanted.join(', ') || 'no known codename'}, not in liste_dist; not published`,
      );
    } else if (p.architecture !== 'all' && !published.has(p.architecture)) {
      problems.push(`${file()}: architecture ${p.architecture} is not in liste_arch; not published`);
    }
  }

  let signer: ReleaseSigner;
  try {
    signer = await channelSigner(ch);
  } catch (e) {
    cache.save();
    throw e;
  }
  const format = formatOf(ch);
  const byIdentity = new Map<string, Map<string, PoolPackage>>();
  for (const c of ch.codenames) byIdentity.set(c, new Map());
  for (const p of scan.packages) {
    if (p.architecture !== 'all' && !published.has(p.architecture)) continue;
    const k = identity(p, format);
    for (const c of p.codenames) {
      const m = byIdentity.get(c)!;
      // Same identity and same content (copies, hard links): keep the first pool path in sort order.
      if (!m.has(k)) m.set(k, p);
    }
  }
  const perCodename = new Map<string, PoolPackage[]>([...byIdentity].map(([c, m]) => [c, [...m.values()]]));
  const indexes = timed('render', () => format.indexes.render(perCodename, ch.architectures, cache));
  cache.save(); // what was read and rendered stays, whatever happens next (a killed run included)

  const packages: Record<string, number> = {};
  const served = new Map<string, ServedRecord>();
  for (const codename of ch.codenames) {
    const pkgs = perCodename.get(codename)!;
    packages[codename] = pkgs.length;
    for (const p of pkgs) {
      if (!served.has(p.poolPath))
        served.set(p.poolPath, {
          poolPath: p.poolPath,
          name: p.name,
          version: p.version,
          architecture: p.architecture,
          sha256: p.digests.SHA256,
          addedMs: p.addedMs,
        });
    }
  }
  const poolPaths = [...served.keys()].sort();
  const content = {
    indexes,
    packages,
    counts: indexCounts(perCodename, ch.architectures),
    poolPaths,
    served: poolPaths.map((p) => served.get(p)!),
    change: opts.change,
  };
  const id = await writeGenerationLocked(ch, content, signer, now, { cache });
  // After the flip: with a scan without problems the cache is the pool this generation publishes,
  // which the channel's next writer may take instead of listing it (saved again with that mark).
  if (scan.problems.length === 0) {
    cache.markListed(id);
    cache.save();
  }
  return { generation: id, packages, problems, debsRead: scan.debsRead };
}
