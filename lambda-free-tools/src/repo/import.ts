/**
 * import: brings the packages of today's flat repository (one pool, `dists/*` holding copies of one
 * Packages file) into a channel. Every `.deb` below the folder is read; identical files (same
 * SHA256) are taken once; two different files claiming the same package, version and architecture
 * are both skipped and reported (nobody can tell which one clients got); the rest is copied into the
 * pool at its canonical path (no codename folder: routing by version suffix applies at publish) and
 * published once. Idempotent: a second run finds everything present and publishes nothing.
 */
import { promises as fsp, Stats } from 'fs';
import * as path from 'path';
import { AptRepoError, UsageError } from '../errors';
import { withChannelLock } from './lock';
import { POOL_DIR_MODE, POOL_FILE_MODE, poolPathFor, recordAdded, scanPool } from './pool';
import { publishLocked, PublishResult } from './generationWriter';
import { changeRecord } from './history';
import { confine, Confined, errText, placeFile, sha256File, walkNoFollow } from '../core/files';
import { keyOf } from './pool';
import { formatOf } from './format';
import { recoverChannel } from './recover';
import { beginIntent } from './intent';
import type { ChannelConfig, Progress } from '../core/types';
import { byteOrder } from '../core/order';

/** What happened to one package identity (or one unreadable file) of the imported folder. */
export interface ImportEntry {
  status: 'imported' | 'present' | 'conflict' | 'invalid';
  /** Files (relative to the imported folder) that carry this identity, or the invalid file. */
  files: string[];
  package?: string;
  version?: string;
  architecture?: string;
  poolPath?: string;
  reason?: string;
}

/** Result of importRepository(). */
export interface ImportResult {
  entries: ImportEntry[];
  publish?: PublishResult;
}

/** Exit code of an import: 1 when a conflict or an unreadable .deb was found, else 0. */
export function importExitCode(r: ImportResult): number {
  return r.entries.some((e) => e.status === 'conflict' || e.status === 'invalid') ? 1 : 0;
}

interface Found {
  rel: string;
  abs: string;
  stat: Stats;
  name: string;
  version: string;
  architecture: string;
  source: string;
  sha256: string;
}

/**
 * Imports every `.deb` below `dir` (recursively; symlinks are reported invalid and never followed,
 * symlinked folders are not entered, hidden names are skipped) into `ch`, under the channel lock, then publishes once if
 * anything was copied. Upload time recorded = the source file's mtime (keeps history for `pending`).
 * Throws UsageError when `dir` is not a folder or lies inside the channel's web root, AptRepoError
 * when the publish fails (the copied files stay in the pool; the message says to run publish).
 */
export async function importRepository(
  ch: ChannelConfig,
  dir: string,
  opts: { progress?: Progress; now?: Date } = {},
): Promise<ImportResult> {
  const from = path.resolve(dir);
  const st = await fsp.stat(from).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`import ${dir}: not a folder`);
  const rel = path.relative(path.resolve(ch.webRoot), from);
  if (!rel.startsWith('..') && !path.isAbsolute(rel))
    throw new UsageError(`import ${dir}: inside the channel's own web root ${ch.webRoot}`);

  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    const intent = await beginIntent(ch, 'import');
    const format = formatOf(ch);
    const files = await findDebs(from, format.extension);
    const entries: ImportEntry[] = [];
    const groups = new Map<string, Found[]>();
    opts.progress?.start(files.length, 'import: reading');
    for (const f of files) {
      opts.progress?.tick();
      const abs = path.join(from, f);
      try {
        // Never through a link (a link's target is not this repository's file); a FIFO would block
        // readDeb, and a folder named *.deb is not a package.
        const stat = await fsp.lstat(confine(from, f));
        if (!stat.isFile()) throw new Error('not a regular file');
        const info = await format.read(abs);
        const id = format.identify(info.control);
        if (typeof id === 'string') throw new Error(id);
        const { name, version, architecture } = id;
        const found: Found = { rel: f, abs, stat, ...id, sha256: info.digests.SHA256 };
        const k = keyOf(name, version, architecture, format);
        groups.set(k, [...(groups.get(k) ?? []), found]);
      } catch (err) {
        entries.push({ status: 'invalid', files: [f], reason: errText(err) });
      }
    }
    opts.progress?.stop();

    const pool = await scanPool(ch);
    const inPool = new Map<string, { poolPath: string; sha256: string }[]>();
    for (const p of pool.packages) {
      const k = keyOf(p.name, p.version, p.architecture, format);
      inPool.set(k, [...(inPool.get(k) ?? []), { poolPath: p.poolPath, sha256: p.digests.SHA256 }]);
    }
    const added: Record<string, number> = {};
    for (const [k, group] of [...groups.entries()].sort((a, b) => byteOrder(a[0], b[0]))) {
      const first = group[0];
      const base = { files: group.map((g) => g.rel).sort(), package: first.name, version: first.version, architecture: first.architecture };
      const shas = [...new Set(group.map((g) => g.sha256))];
      if (shas.length > 1) {
        entries.push({
          ...base,
          status: 'conflict',
          reason: `${shas.length} different files (SHA256 ${shas.map((s) => s.slice(0, 12)).join(', ')}) claim ${first.name} ${first.version} ${first.architecture}; none imported`,
        });
        continue;
      }
      let poolPath: string;
      try {
        poolPath = poolPathFor(first, ch.component, undefined, format);
      } catch (err) {
        entries.push({ ...base, status: 'invalid', reason: errText(err) });
        continue;
      }
      const existing = inPool.get(k) ?? [];
      const other = existing.find((e) => e.sha256 !== first.sha256);
      if (other) {
        entries.push({
          ...base,
          status: 'conflict',
          poolPath: other.poolPath,
          reason: `pool file ${other.poolPath} has the same package, version and architecture with different content; not imported`,
        });
        continue;
      }
      const same = existing.find((e) => e.sha256 === first.sha256);
      if (same) {
        entries.push({ ...base, status: 'present', poolPath: same.poolPath });
        continue;
      }
      const dest: Confined = { base: ch.webRoot, rel: poolPath };
      const there = await sha256File(dest).catch(() => undefined);
      if (there !== undefined) {
        // An unreadable file sits at the path (scanPool could not list it): never overwrite it.
        entries.push({
          ...base,
          status: there === first.sha256 ? 'present' : 'conflict',
          poolPath,
          reason: there === first.sha256 ? undefined : `pool file ${poolPath} exists with other content`,
        });
        continue;
      }
      // Announced first: a copy cut short (other bytes, or none) is removed by the next writer, a complete one published.
      intent.record({
        op: 'add',
        poolPath,
        sha256: first.sha256,
        at: Math.round(first.stat.mtimeMs),
        from: { kind: 'copy', file: first.abs },
      });
      await placeFile({ base: from, rel: first.rel }, dest, 'copy', { mode: POOL_FILE_MODE, dirMode: POOL_DIR_MODE });
      if ((await sha256File(dest)) !== first.sha256) {
        await fsp.rm(confine(dest.base, dest.rel), { force: true });
        entries.push({ ...base, status: 'invalid', reason: `${first.rel} changed while being copied; not imported` });
        continue;
      }
      added[poolPath] = Math.round(first.stat.mtimeMs);
      entries.push({ ...base, status: 'imported', poolPath });
    }
    const result: ImportResult = { entries };
    const copied = Object.keys(added).length;
    if (copied) {
      await recordAdded(ch, added);
      try {
        result.publish = await publishLocked(ch, {
          now: opts.now,
          progress: opts.progress,
          change: changeRecord('import', {
            added: entries
              .filter((e) => e.status === 'imported' && e.package && e.version && e.architecture)
              .map((e) => ({ name: e.package!, version: e.version!, architecture: e.architecture! })),
          }),
        });
      } catch (err) {
        // The files are in the pool now, and the intent record stays: the next writing command of
        // the channel (a second import included) publishes them.
        throw new AptRepoError(
          `${copied} file(s) were copied into ${ch.webRoot}/pool but publishing failed: ${errText(err)}; fix the cause, then run \`apt-repo --channel ${ch.name} publish\` (or any writing command of ${ch.name}: each publishes them first)`,
        );
      }
    }
    intent.clear();
    return result;
  });
}

/**
 * Every package file (`*.deb`: names ending in `extension`) below `root` ('/'-separated relative
 * paths, sorted; hidden names skipped), symlinks included (importRepository reports them as
 * invalid: never followed); symlinked folders are not entered.
 */
async function findDebs(root: string, extension: string): Promise<string[]> {
  const links: string[] = [];
  const files = walkNoFollow(root, { skip: (n) => n.startsWith('.'), onLink: (r) => links.push(r) });
  return [...files, ...links].filter((r) => r.endsWith(extension)).sort();
}
