/**
 * The trash of a channel: `<stateDir>/trash/<poolPath>` holds pool files taken out by `remove`
 * (or by a rollback to an older package set) while a kept generation may still list them, so that
 * a rollback to that generation can put them back; `gc` deletes what no kept generation lists.
 * Every path is a checked pool path, confined under its base (no component followed).
 */
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { AptRepoError, UnsafePathError } from '../errors';
import { formatOf } from './format';
import { isPoolPath, POOL_DIR_MODE, POOL_FILE_MODE } from './pool';
import { confine, Confined, unlinkConfined, errText, placeFile, sha256File, walkNoFollow } from '../core/files';
import type { ChannelConfig } from '../core/types';

/** `<stateDir>/trash`: removed pool files, at their pool path. */
export function trashDir(ch: ChannelConfig): string {
  return path.join(ch.stateDir, 'trash');
}

/**
 * Moves `<webRoot>/<poolPath>` to `<trash>/<poolPath>` and resolves to the trash path. When the trash
 * already holds that path: same bytes → the pool file is just dropped; other bytes (removed, then a
 * different file re-uploaded under the same name and removed again) → the older trash file is kept
 * as `<path>.<ms>` so the newest removal is the one rollback restores. Both sides are confined
 * (the pool path is checked, no component followed): UnsafePathError otherwise.
 */
export async function moveToTrash(ch: ChannelConfig, poolPath: string): Promise<string> {
  checkPoolPath(ch, poolPath);
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
export async function restoreFromTrash(
  ch: ChannelConfig,
  poolPaths: string[],
  opts: { dryRun?: boolean } = {},
): Promise<{ restored: string[]; missing: string[] }> {
  const restored: string[] = [];
  const missing: string[] = [];
  for (const poolPath of poolPaths) {
    checkPoolPath(ch, poolPath);
    if (await exists(confine(ch.webRoot, poolPath))) continue;
    if (!(await exists(confine(trashDir(ch), poolPath)))) {
      missing.push(poolPath);
      continue;
    }
    if (!opts.dryRun)
      await placeFile({ base: trashDir(ch), rel: poolPath }, { base: ch.webRoot, rel: poolPath }, 'move', {
        mode: POOL_FILE_MODE,
        dirMode: POOL_DIR_MODE,
      });
    restored.push(poolPath);
  }
  return { restored, missing };
}

function checkPoolPath(ch: ChannelConfig, poolPath: string): void {
  if (!isPoolPath(poolPath, formatOf(ch)))
    throw new UnsafePathError(JSON.stringify(poolPath), 'not a pool path (pool/…/<file>.deb, no .. or control character)');
}

/** Result of gc(): trash files deleted, and those kept because a kept generation lists them. */
export interface GcResult {
  deleted: string[];
  kept: string[];
}

/**
 * Deletes the trash files of `ch` whose pool path is not in `referenced` (an older
 * `<poolPath>.<ms>` counts as referenced with its pool path) and prunes empty trash folders. Paths
 * in the result are relative to the trash folder. The caller holds the lock (see remove.ts gc).
 * Throws AptRepoError naming a file that cannot be deleted.
 */
export async function sweepTrash(ch: ChannelConfig, referenced: Set<string>): Promise<GcResult> {
  const extension = formatOf(ch).extension.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const asideRe = new RegExp(`^(.+${extension})\\.\\d+$`);
  const result: GcResult = { deleted: [], kept: [] };
  const root = trashDir(ch);
  for (const rel of walkFiles(root)) {
    // `<poolPath>.<ms>` holds earlier bytes of poolPath (see moveToTrash): the kept generation that
    // lists poolPath may mean those bytes.
    const aside = asideRe.exec(rel);
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
}

/** Every non-directory below `root`, as '/'-separated paths relative to it, sorted; folders are entered without following links; [] if root is missing. */
export function walkFiles(root: string): string[] {
  return walkNoFollow(root, { includeLinks: true });
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
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}
