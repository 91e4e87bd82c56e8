/**
 * remove and gc. `remove` takes a version out of a channel: its pool files move to
 * `<stateDir>/trash/<poolPath>` (not deleted: a kept generation may still list them, and rollback
 * to that generation puts them back), then the channel is republished. `gc` deletes the trash files
 * that no kept generation references any more.
 */
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { AptRepoError, UnsafePathError, UsageError } from '../errors';
import { withChannelLock } from './lock';
import { isPoolPath, POOL_DIR_MODE, POOL_FILE_MODE, scanPool } from './pool';
import { publishLocked, PublishResult } from './publish';
import { currentGeneration, listGenerations } from './generations';
import { confine, Confined, unlinkConfined, errText, placeFile, SafeDir, sha256File, walkNoFollow } from './files';
import type { PackageSpec } from './promote';
import { beginIntent, recoverChannel } from './recover';
import type { ChannelConfig } from '../core/types';

/** `<stateDir>/trash`: removed pool files, at their pool path. */
export function trashDir(ch: ChannelConfig): string {
  return path.join(ch.stateDir, 'trash');
}

/** One pool file moved to the trash. */
export interface RemovedFile {
  name: string;
  version: string;
  architecture: string;
  poolPath: string;
  /** Absolute path in the trash. */
  trashPath: string;
}

/** Result of removePackage(). */
export interface RemoveResult {
  removed: RemovedFile[];
  publish: PublishResult;
}

/**
 * Removes every pool file of `spec.name` at version `spec.version` (all architectures) from `ch`
 * under its lock, then republishes. Throws UsageError when the version is absent, when no version
 * is given, or when `ch` has an upstream (prod: what is live there is what clients run) and
 * `force` is not set. If the publish fails before its new generation is served, the files are put
 * back; the error is rethrown. The moves are announced in the intent record first (repo/recover.ts):
 * a kill at any instant is completed by the next writing command of the channel.
 */
export async function removePackage(ch: ChannelConfig, spec: PackageSpec, opts: { force?: boolean; now?: Date } = {}): Promise<RemoveResult> {
  if (spec.version === undefined) throw new UsageError(`remove: give the version as ${spec.name}=<version>`);
  if (ch.upstream && !opts.force) {
    throw new UsageError(`channel ${ch.name} takes packages from ${ch.upstream}: removing ${spec.name}=${spec.version} unpublishes it for every client; add --force to do it anyway`);
  }
  return withChannelLock(ch, async () => {
    await recoverChannel(ch);
    const { packages } = await scanPool(ch);
    const matching = packages.filter((p) => p.name === spec.name && p.version === spec.version);
    if (matching.length === 0) {
      const others = packages.filter((p) => p.name === spec.name).map((p) => p.version);
      throw new UsageError(`${spec.name}=${spec.version} is not in ${ch.name}'s pool${others.length ? ` (versions there: ${[...new Set(others)].join(', ')})` : ''}`);
    }
    const removed: RemovedFile[] = [];
    const served = await currentGeneration(ch);
    // Announced before the first move: a kill from here on is completed (every file into the
    // trash, then published) by the next writer, never left half removed and still listed.
    const intent = await beginIntent(ch, 'remove');
    intent.record(...matching.map((p) => ({ op: 'trash' as const, poolPath: p.poolPath, sha256: p.digests.SHA256 })));
    try {
      for (const p of matching) {
        const trashPath = await moveToTrash(ch, p.poolPath);
        removed.push({ name: p.name, version: p.version, architecture: p.architecture, poolPath: p.poolPath, trashPath });
      }
      const publish = await publishLocked(ch, { now: opts.now });
      intent.clear();
      return { removed, publish };
    } catch (err) {
      // Once the new generation is served (a failure while pruning old ones), the removal stands:
      // putting the files back would make the next publish list the version again.
      if ((await currentGeneration(ch).catch(() => undefined)) === served) {
        const back = await restoreFromTrash(ch, removed.map((r) => r.poolPath)).then(() => true, () => false);
        // Undone: nothing is left for recovery. Otherwise the record makes the next writer complete the removal.
        if (back) intent.clear();
      } else {
        intent.clear(); // the removal is served
      }
      throw err;
    }
  });
}

/**
 * Moves `<webRoot>/<poolPath>` to `<trash>/<poolPath>` and resolves to the trash path. When the trash
 * already holds that path: same bytes → the pool file is just dropped; other bytes (removed, then a
 * different file re-uploaded under the same name and removed again) → the older trash file is kept
 * as `<path>.<ms>` so the newest removal is the one rollback restores. Both sides are confined
 * (the pool path is checked, no component followed): UnsafePathError otherwise.
 */
export async function moveToTrash(ch: ChannelConfig, poolPath: string): Promise<string> {
  checkPoolPath(poolPath);
  const src: Confined = { base: ch.webRoot, rel: poolPath };
  const dest: Confined = { base: trashDir(ch), rel: poolPath };
  fs.mkdirSync(trashDir(ch), { recursive: true });
  const destPath = confine(dest.base, dest.rel);
  const old = await fsp.lstat(destPath).catch(() => undefined);
  if (old) {
    if ((await sha256File(dest)) === (await sha256File(src))) {
      unlinkConfined(src);
      return destPath;
    }
    await placeFile(dest, { base: dest.base, rel: `${poolPath}.${Date.now()}` }, 'move');
  }
  await placeFile(src, dest, 'move', { dirMode: 0o755 });
  return destPath;
}

/**
 * Puts trash files back at their pool paths, for rollback. A pool path already present in the pool
 * is left alone. Resolves to what was (with dryRun: would be) restored and what is in neither the
 * pool nor the trash. Pool paths come from generation.json files: each is checked (isPoolPath) and
 * confined; UnsafePathError for one that is not. Caller holds the lock.
 */
export async function restoreFromTrash(ch: ChannelConfig, poolPaths: string[], opts: { dryRun?: boolean } = {}): Promise<{ restored: string[]; missing: string[] }> {
  const restored: string[] = [];
  const missing: string[] = [];
  for (const poolPath of poolPaths) {
    checkPoolPath(poolPath);
    if (await exists(confine(ch.webRoot, poolPath))) continue;
    if (!(await exists(confine(trashDir(ch), poolPath)))) {
      missing.push(poolPath);
      continue;
    }
    if (!opts.dryRun) await placeFile({ base: trashDir(ch), rel: poolPath }, { base: ch.webRoot, rel: poolPath }, 'move', { mode: POOL_FILE_MODE, dirMode: POOL_DIR_MODE });
    restored.push(poolPath);
  }
  return { restored, missing };
}

function checkPoolPath(poolPath: string): void {
  if (!isPoolPath(poolPath)) throw new UnsafePathError(JSON.stringify(poolPath), 'not a pool path (pool/…/<file>.deb, no .. or control character)');
}

/** Result of gc(): trash files deleted, and those kept because a kept generation lists them. */
export interface GcResult {
  deleted: string[];
  kept: string[];
}

/**
 * Deletes the trash files of `ch` that no kept generation (listGenerations) references (an older
 * `<poolPath>.<ms>` counts as referenced with its pool path), under the lock, and prunes empty
 * trash folders. Paths in the result are relative to the trash folder.
 */
export async function gc(ch: ChannelConfig): Promise<GcResult> {
  return withChannelLock(ch, async () => {
    // A removal cut short is completed (its files are in the trash and unlisted) before deciding what to delete.
    await recoverChannel(ch);
    const referenced = new Set<string>();
    for (const g of await listGenerations(ch)) for (const p of g.poolPaths) referenced.add(p);
    const result: GcResult = { deleted: [], kept: [] };
    const root = trashDir(ch);
    for (const rel of await walkFiles(root)) {
      // `<poolPath>.<ms>` holds earlier bytes of poolPath (see moveToTrash): the kept generation that
      // lists poolPath may mean those bytes.
      const aside = /^(.+\.deb)\.\d+$/.exec(rel);
      if (referenced.has(rel) || (aside && referenced.has(aside[1]))) {
        result.kept.push(rel);
        continue;
      }
      try {
        unlinkConfined({ base: root, rel });
      } catch (err) {
        throw new AptRepoError(`${path.join(root, rel)}: cannot delete: ${errText(err)}`);
      }
      result.deleted.push(rel);
    }
    await pruneEmptyDirs(root, false);
    return result;
  });
}

/** Every non-directory below `root`, as '/'-separated paths relative to it, sorted; folders are entered without following links; [] if root is missing. */
export async function walkFiles(root: string): Promise<string[]> {
  const links: string[] = [];
  const files = walkNoFollow(root, { onLink: (r) => links.push(r) });
  return [...files, ...links].sort();
}

async function pruneEmptyDirs(dir: string, removeSelf: boolean): Promise<void> {
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await pruneEmptyDirs(path.join(dir, e.name), true);
  if (removeSelf && (await fsp.readdir(dir)).length === 0) await fsp.rmdir(dir).catch(() => undefined);
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(() => true, () => false);
}
