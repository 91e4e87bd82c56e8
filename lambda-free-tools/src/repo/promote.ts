/**
 * promote: makes chosen packages of the upstream channel (preprod) live in its downstream channel
 * (prod). Each pool file is hard-linked to the same pool path in prod (one inode, no duplicate
 * bytes), then prod is published once, all under prod's lock.
 *
 * Why no preprod lock: promote only reads preprod's pool, and a pool file is immutable once in
 * place (it arrives by an atomic rename/link, a same-name different-content file is refused, and
 * remove moves it away whole). So the scan sees every file either complete or not at all; a file
 * removed between the scan and the link makes the link fail with a clear error, and the link
 * (same inode) or the hash check of a copy guarantees prod gets exactly the bytes that were scanned.
 *
 * What is compared is what each channel SERVES (its current generation's pool paths), not its pool:
 * a file in preprod's pool that preprod does not serve (an interrupted ingest there) is not
 * promotable, and a file in prod's pool that prod does not serve is still pending.
 */
import { promises as fsp, type Stats } from 'fs';
import * as path from 'path';
import { AptRepoError, ConflictError, UnsafePathError, UsageError } from '../errors';
import { formatOf, type PackageFormat } from './format';
import { withChannelLock } from './lock';
import { isPoolPath, POOL_DIR_MODE, POOL_FILE_MODE, recordAdded, scanPool } from './pool';
import { publishLocked, PublishResult } from './generationWriter';
import { changeRecord } from './history';
import { PoolCache } from './cache';
import { currentGeneration } from './generations';
import { routeCodenames } from './routing';
import { diffPools, interruptedWriter, PendingRow, servedPackages, servedRecordsOf, type DiffedPackage } from './pending';
import type { ChannelPair } from './channel';
import { recoverChannel } from './recover';
import { beginIntent, settleFailedPublish } from './intent';
import { confine, Confined, errText, placeFile, sha256File } from '../core/files';
import type { PoolPackage, Progress } from '../core/types';
import { byteOrder } from '../core/order';

/** A package named on the command line: `name` or `name=version`. */
export interface PackageSpec {
  name: string;
  version?: string;
}

/**
 * Parses `name[=version]`, names and versions checked by `format` (Debian: Policy §5.6.1 names,
 * §5.6.12 versions).
 * Throws UsageError for a bad name or version, or a missing version when `requireVersion`.
 */
export function parsePackageSpec(spec: string, requireVersion = false, format: PackageFormat = formatOf()): PackageSpec {
  const eq = spec.indexOf('=');
  const name = eq < 0 ? spec : spec.slice(0, eq);
  const version = eq < 0 ? undefined : spec.slice(eq + 1);
  if (!format.isValidName(name)) throw new UsageError(`'${spec}': '${name}' is not a valid package name (${format.nameRule})`);
  if (version !== undefined && !format.isValidVersion(version))
    throw new UsageError(`'${spec}': '${version}' is not a valid ${format.versionKind} version (${format.versionRule})`);
  if (requireVersion && version === undefined) throw new UsageError(`'${spec}': give the version as ${name}=<version>`);
  return version === undefined ? { name } : { name, version };
}

/** One pool file made live (or, with dryRun, that would be). */
export interface PromotedItem {
  name: string;
  version: string;
  architecture: string;
  /** Codenames it is published under in the downstream channel. */
  codenames: string[];
  poolPath: string;
  /** 'linked' (hard link), 'copied' (other filesystem), 'present' (already there, same content), 'planned' (dry run). */
  how: 'linked' | 'copied' | 'present' | 'planned';
}

/** Result of promote(). `publish` is unset when nothing changed (dry run or all present). */
export interface PromoteResult {
  promoted: PromotedItem[];
  dryRun: boolean;
  warnings: string[];
  publish?: PublishResult;
}

/** Options of promote(). */
export interface PromoteOptions {
  /** Every pending package (combined with the named ones). */
  allPending?: boolean;
  /** Only packages routed to this codename of the downstream channel. */
  codename?: string;
  dryRun?: boolean;
  progress?: Progress;
  now?: Date;
  /** Where warnings go as they happen (default: stderr). */
  warn?: (msg: string) => void;
}

/**
 * Promotes `specs` (and every pending package with allPending) from pair.upstream to pair.downstream.
 * A spec without version takes the newest pending version (Debian order), every architecture of it.
 * Selection errors are UsageError and nothing is changed: no spec and no allPending, a package or
 * version absent from the upstream pool, a codename the downstream channel does not publish, a named
 * version not routed to --codename (or, without it, to no codename of the downstream channel; with
 * allPending such packages are skipped with a warning). Same name/version/architecture with other content downstream:
 * ConflictError, nothing changed. Links are undone when the publish fails before its new generation
 * is served (the error is rethrown).
 */
export async function promote(pair: ChannelPair, specs: PackageSpec[], opts: PromoteOptions = {}): Promise<PromoteResult> {
  const { upstream, downstream } = pair;
  if (specs.length === 0 && !opts.allPending) throw new UsageError('promote: name packages (pkg or pkg=version) or give --all-pending');
  if (opts.codename !== undefined && !downstream.codenames.includes(opts.codename)) {
    throw new UsageError(
      `--codename ${opts.codename}: channel ${downstream.name} does not publish it (liste_dist: ${downstream.codenames.join(', ')})`,
    );
  }
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`apt-repo: warning: ${m}\n`));
  return withChannelLock(downstream, async () => {
    await recoverChannel(downstream, { progress: opts.progress });
    // The downstream channel's pool may come from its store (we hold its lock), see scanPool.
    const downCache = PoolCache.forChannel(downstream);
    const down = await scanPool(downstream, { cache: downCache, trustCache: true });
    // Promote cannot finish the upstream channel's interrupted writer (that needs its lock): say so.
    // Its pool may then lack files its generation still serves (a remove cut short): only what is
    // both served and in the pool is promotable, so the pool is listed.
    const upstreamInterrupted = interruptedWriter(upstream);
    // What the upstream channel serves, as its generation recorded it: nothing of its pool is read
    // unless that record is missing, an error message needs the pool, or many files are promoted.
    let upScan: { store: PoolCache; packages: PoolPackage[] } | undefined;
    const upPool = async () => {
      if (!upScan) {
        const store = PoolCache.load(upstream.stateDir, undefined, formatOf(upstream));
        // As readPool: listed while an interrupted writer of the upstream channel is unfinished.
        upScan = { store, packages: (await scanPool(upstream, { cache: store, trustCache: !upstreamInterrupted })).packages };
      }
      return upScan.packages;
    };
    const recorded = upstreamInterrupted ? undefined : await servedRecordsOf(upstream);
    const [upServed, downServed] = await Promise.all([
      recorded ?? upPool().then((pkgs) => servedPackages(upstream, pkgs)),
      servedPackages(downstream, down.packages),
    ]);
    const pending = diffPools(upServed, downServed, downstream);
    const notes: string[] = [];
    if (upstreamInterrupted) notes.push(upstreamInterrupted);
    const chosen = await select(pair, upServed, upPool, pending, specs, opts, notes);
    const conflicts = chosen.filter((r) => r.conflict);
    if (conflicts.length) {
      throw new ConflictError(
        path.join(downstream.webRoot, conflicts[0].conflict!),
        `${downstream.name} already has ${conflicts.map((c) => `${c.name} ${c.version} ${c.architecture}`).join(', ')} with different content than ${upstream.name}; nothing promoted`,
      );
    }
    const result: PromoteResult = { promoted: [], dryRun: Boolean(opts.dryRun), warnings: [] };
    for (const n of notes) {
      result.warnings.push(n);
      warn(n);
    }
    if (opts.dryRun) {
      downCache.save();
      result.promoted = chosen.map((r) => item(r, 'planned'));
      return result;
    }
    // Many files: the upstream store gives what each holds (checked by stat) rather than reading them all.
    if (chosen.filter((r) => !r.live).length > READ_AT_MOST) await upPool();
    const made: string[] = [];
    const placed: Chosen[] = [];
    const added: Record<string, number> = {};
    const served = await currentGeneration(downstream);
    let copyWarned = false;
    // Every pool file this run may place is announced before the first link: a kill from here on
    // is finished (linked or verified copies published) or undone by the next writer of prod.
    const intent = await beginIntent(downstream, 'promote');
    const at = Date.now();
    intent.record(
      ...chosen
        .filter((r) => !r.live)
        .map((r) => ({
          op: 'add' as const,
          poolPath: r.poolPath,
          sha256: r.sha256,
          at,
          from: { kind: 'upstream' as const, webRoot: upstream.webRoot },
        })),
    );
    try {
      opts.progress?.start(chosen.length, 'promote');
      for (const r of chosen) {
        opts.progress?.tick();
        const how = r.live ? 'present' : await linkOne(pair, r);
        if (how === 'copied' && !copyWarned) {
          // Once per run: every file of this run is in the same situation.
          copyWarned = true;
          const m = `copied, not hard-linked, into ${downstream.webRoot}/pool (${upstream.webRoot} and ${downstream.webRoot} are on different filesystems, or fs.protected_hardlinks refused the link: pool files must be mode 0664 in the shared pool group): the bytes are stored twice`;
          result.warnings.push(m);
          warn(m);
        }
        if (how !== 'present') {
          const dest = confine(downstream.webRoot, r.poolPath);
          made.push(dest);
          added[r.poolPath] = at;
          placed.push(r);
        } else if (!r.live && !downCache.recorded(r.poolPath)) {
          // Already in the downstream pool but not in its store (put there by hand): described too,
          // or the publish, which takes the pool from the store, would leave it out.
          placed.push(r);
        }
        result.promoted.push(item(r, how));
      }
      opts.progress?.stop();
      // The publish takes the downstream pool from its store: each placed file goes in, with what it holds.
      await describePlaced(pair, placed, downCache, upScan?.store);
      // Pending rows are not served downstream, even when their file is already in its pool.
      if (!chosen.some((r) => !r.live)) {
        downCache.save();
        intent.clear();
        return result;
      }
      if (made.length) await recordAdded(downstream, added, downCache);
      const change = changeRecord('promote', {
        added: result.promoted
          .filter((p) => p.how !== 'present')
          .map((p) => ({ name: p.name, version: p.version, architecture: p.architecture })),
        detail: `from ${upstream.name}`,
      });
      result.publish = await publishLocked(downstream, {
        now: opts.now,
        progress: opts.progress,
        cache: downCache,
        trustCache: true,
        change,
      });
      intent.clear();
      return result;
    } catch (err) {
      opts.progress?.stop();
      // A failure after the switch (pruning old generations) leaves the new generation live: its
      // indexes list these files, so they must stay. Undone, or served: nothing is left for recovery.
      await settleFailedPublish(downstream, intent, served, {
        unreadable: 'none',
        undo: async () => {
          for (const f of made) await fsp.rm(f, { force: true });
          return true;
        },
      });
      throw err;
    }
  });
}

function item(r: PendingRow, how: PromotedItem['how']): PromotedItem {
  return { name: r.name, version: r.version, architecture: r.architecture, codenames: r.codenames, poolPath: r.poolPath, how };
}

type Chosen = PendingRow & { live?: boolean };

/**
 * Turns specs into pool rows to promote; UsageError for anything absent. `up`: what the upstream
 * channel serves; `upPool`: its whole pool, read on demand (to say why a file there is not promotable).
 */
async function select(
  pair: ChannelPair,
  up: DiffedPackage[],
  upPool: () => Promise<PoolPackage[]>,
  pending: PendingRow[],
  specs: PackageSpec[],
  opts: PromoteOptions,
  notes: string[],
): Promise<Chosen[]> {
  const { upstream, downstream } = pair;
  const { compareVersions } = formatOf(upstream);
  const routed = (r: { version: string; poolPath: string }) => routeCodenames(r.version, r.poolPath, downstream);
  // A package routed to no codename the downstream channel publishes would sit in its pool unseen.
  const inCodename = (r: { version: string; poolPath: string }) =>
    opts.codename === undefined ? routed(r).length > 0 : routed(r).includes(opts.codename);
  const where = opts.codename ?? `any codename of ${downstream.name} (liste_dist: ${downstream.codenames.join(', ')})`;
  // Not pending = already live downstream with the same bytes (maybe at another pool path).
  const rowOf = (p: DiffedPackage): Chosen => ({
    live: true,
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    codenames: routed(p),
    addedMs: p.addedMs,
    poolPath: p.poolPath,
    sha256: p.digests.SHA256,
  });
  const out = new Map<string, Chosen>();
  const add = (r: Chosen) => out.set(r.poolPath, r);
  if (opts.allPending) {
    for (const r of pending) {
      if (inCodename(r)) add(r);
      else if (opts.codename === undefined)
        notes.push(`${r.name} ${r.version} ${r.architecture}: routed to no codename of ${downstream.name}; left in ${upstream.name}`);
    }
  }
  for (const s of specs) {
    const all = up.filter((p) => p.name === s.name);
    if (all.length === 0) {
      if ((await upPool()).some((p) => p.name === s.name)) {
        throw new UsageError(
          `package ${s.name} is in ${upstream.name}'s pool but ${upstream.name} does not serve it (an interrupted writer there: the next writing command of ${upstream.name} publishes it)`,
        );
      }
      throw new UsageError(`package ${s.name} is not in ${upstream.name}'s pool`);
    }
    const known = [...new Set(all.map((p) => p.version))].sort((a, b) => compareVersions(b, a));
    if (s.version !== undefined) {
      const wanted = all.filter((p) => p.version === s.version);
      if (wanted.length === 0) {
        const unserved = (await upPool()).some((p) => p.name === s.name && p.version === s.version);
        throw new UsageError(
          `${s.name}=${s.version} is not ${unserved ? `served by ${upstream.name} (it is in its pool only: the next writing command of ${upstream.name} publishes it)` : `in ${upstream.name}'s pool`} (versions there: ${known.join(', ')})`,
        );
      }
      const inC = wanted.filter(inCodename);
      if (inC.length === 0)
        throw new UsageError(`${s.name}=${s.version} is not routed to ${where} (routed to: ${routed(wanted[0]).join(', ') || 'none'})`);
      for (const p of inC) {
        const pend = pending.find((r) => r.poolPath === p.poolPath);
        // Already live with the same bytes: reported as present, so promote is idempotent.
        add(pend ?? rowOf(p));
      }
      continue;
    }
    const pend = pending.filter((r) => r.name === s.name && inCodename(r));
    if (pend.length === 0) {
      // Nothing pending: the newest version is already live; report it as present rather than fail.
      const cands = all.filter(inCodename);
      if (cands.length === 0) throw new UsageError(`${s.name} has no version routed to ${where}`);
      const top = cands.reduce((m, p) => (compareVersions(p.version, m) > 0 ? p.version : m), cands[0].version);
      cands.filter((p) => p.version === top).forEach((p) => add(rowOf(p)));
      continue;
    }
    const newest = pend.reduce((m, r) => (compareVersions(r.version, m) > 0 ? r.version : m), pend[0].version);
    pend.filter((r) => r.version === newest).forEach(add);
  }
  return [...out.values()].sort((a, b) => byteOrder(a.poolPath, b.poolPath));
}

/** Above this many files to place, promote loads the upstream store instead of reading each file. */
const READ_AT_MOST = 64;

/**
 * Puts what each placed file holds into the downstream store `downCache` (set with the file's stat):
 * from `upStore` (the upstream store, when promote loaded it) if the file's stat is the one recorded
 * there (a hard link is the upstream inode; a copy never matches), else read from the file itself
 * (the format's readMany). Either way the SHA256 must be the one the upstream channel serves: a file
 * replaced behind the indexer's back since it was indexed, or unreadable, throws AptRepoError (the
 * caller undoes what it placed).
 */
async function describePlaced(pair: ChannelPair, placed: Chosen[], downCache: PoolCache, upStore?: PoolCache): Promise<void> {
  const format = formatOf(pair.downstream);
  const toRead: { r: Chosen; file: string; st: Stats }[] = [];
  for (const r of placed) {
    const file = confine(pair.downstream.webRoot, r.poolPath);
    const st = await fsp.lstat(file);
    const e = upStore?.recorded(r.poolPath);
    if (e && e.size === st.size && e.mtimeMs === st.mtimeMs && e.ino === st.ino && e.digests.SHA256 === r.sha256)
      downCache.set(r.poolPath, st, { control: e.control, digests: e.digests });
    else toRead.push({ r, file, st });
  }
  const failures: string[] = [];
  await format.readMany(
    toRead.map((t) => t.file),
    {
      onResult: (i, got) => {
        const { r, file, st } = toRead[i];
        if (got instanceof Error) failures.push(`${file}: cannot be read (${got.message})`);
        else if (got.digests.SHA256 !== r.sha256)
          failures.push(
            `${file}: the upstream file changed since it was indexed (SHA256 ${got.digests.SHA256}, indexed ${r.sha256}); not promoted: publish the upstream channel first`,
          );
        else downCache.set(r.poolPath, st, { control: got.control, digests: got.digests });
      },
    },
  );
  if (failures.length) throw new AptRepoError(failures.join('\n'));
}

/**
 * Hard-links (or copies) one upstream pool file into the downstream pool. Both paths are confined
 * under their web roots (the pool path is checked, no component followed); a copy is hash-checked.
 * Resolves to what was done.
 */
async function linkOne(pair: ChannelPair, r: PendingRow): Promise<PromotedItem['how']> {
  if (!isPoolPath(r.poolPath, formatOf(pair.upstream))) throw new UnsafePathError(JSON.stringify(r.poolPath), 'not a pool path');
  const srcC: Confined = { base: pair.upstream.webRoot, rel: r.poolPath };
  const destC: Confined = { base: pair.downstream.webRoot, rel: r.poolPath };
  const src = confine(srcC.base, srcC.rel);
  const dest = confine(destC.base, destC.rel);
  const [sst, dst] = await Promise.all([fsp.lstat(src).catch(() => undefined), fsp.lstat(dest).catch(() => undefined)]);
  if (!sst)
    throw new AptRepoError(`${src}: vanished from ${pair.upstream.name}'s pool while promoting (removed?); nothing promoted, try again`);
  if (dst) {
    if (dst.ino === sst.ino && dst.dev === sst.dev) return 'present';
    const sha = await sha256File(destC);
    if (sha === r.sha256) return 'present';
    throw new ConflictError(dest, `exists in ${pair.downstream.name}'s pool with other content than ${src}`);
  }
  let how: 'linked' | 'renamed' | 'copied';
  try {
    how = await placeFile(srcC, destC, 'link', { mode: POOL_FILE_MODE, dirMode: POOL_DIR_MODE });
  } catch (err) {
    throw new AptRepoError(`${dest}: cannot link from ${src}: ${errText(err)}`);
  }
  if (how === 'linked') return 'linked';
  const sha = await sha256File(destC);
  if (sha !== r.sha256) {
    await fsp.rm(dest, { force: true });
    throw new AptRepoError(`${src}: changed while being copied to ${dest} (SHA256 ${sha}, scanned ${r.sha256})`);
  }
  return 'copied';
}
