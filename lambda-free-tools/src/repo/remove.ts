/**
 * remove and gc. `remove` takes a version out of a channel: its pool files move to the trash
 * (repo/trash.ts; not deleted: a kept generation may still list them, and rollback to that
 * generation puts them back), then the channel is republished. `gc` deletes the trash files that
 * no kept generation references any more.
 */
import { UsageError } from '../errors';
import { withChannelLock } from './lock';
import { scanPool } from './pool';
import { publishLocked, PublishResult } from './generationWriter';
import { appendHistory, changeRecord, type HistoryOp } from './history';
import { currentGeneration, listGenerations } from './generations';
import type { PackageSpec } from './promote';
import { recoverChannel } from './recover';
import { beginIntent, settleFailedPublish } from './intent';
import { moveToTrash, restoreFromTrash, sweepTrash, type GcResult } from './trash';
import type { ChannelConfig, PoolPackage } from '../core/types';

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
export async function removePackage(
  ch: ChannelConfig,
  spec: PackageSpec,
  opts: { force?: boolean; now?: Date } = {},
): Promise<RemoveResult> {
  if (spec.version === undefined) throw new UsageError(`remove: give the version as ${spec.name}=<version>`);
  if (ch.upstream && !opts.force) {
    throw new UsageError(
      `channel ${ch.name} takes packages from ${ch.upstream}: removing ${spec.name}=${spec.version} unpublishes it for every client; add --force to do it anyway`,
    );
  }
  return withChannelLock(ch, async () => {
    await recoverChannel(ch);
    const { packages } = await scanPool(ch);
    const matching = packages.filter((p) => p.name === spec.name && p.version === spec.version);
    if (matching.length === 0) {
      const others = packages.filter((p) => p.name === spec.name).map((p) => p.version);
      throw new UsageError(
        `${spec.name}=${spec.version} is not in ${ch.name}'s pool${others.length ? ` (versions there: ${[...new Set(others)].join(', ')})` : ''}`,
      );
    }
    return withdrawLocked(ch, matching, { command: 'remove', op: 'remove', now: opts.now });
  });
}

/**
 * Withdraws `files` (pool packages of `ch`) from what it serves; the caller holds the lock and ran
 * recoverChannel. The moves are announced in the intent record (as `command`) before the first
 * one, so a kill at any instant is completed by the next writer (every file into the trash, then
 * published); then each file goes to the trash and one generation is published, recorded in the
 * history as `opts.op` (the files withdrawn, `opts.detail`). If that publish fails before its
 * generation serves, the files are put back and the record cleared; the error is rethrown.
 * Shared by remove and gc --policy.
 */
export async function withdrawLocked(
  ch: ChannelConfig,
  files: PoolPackage[],
  opts: { command: string; op: HistoryOp; detail?: string; now?: Date },
): Promise<RemoveResult> {
  const { command, now } = opts;
  const removed: RemovedFile[] = [];
  const served = await currentGeneration(ch);
  const intent = await beginIntent(ch, command);
  intent.record(...files.map((p) => ({ op: 'trash' as const, poolPath: p.poolPath, sha256: p.digests.SHA256 })));
  try {
    for (const p of files) {
      const trashPath = await moveToTrash(ch, p.poolPath);
      removed.push({ name: p.name, version: p.version, architecture: p.architecture, poolPath: p.poolPath, trashPath });
    }
    const change = changeRecord(opts.op, {
      removed: removed.map((r) => ({ name: r.name, version: r.version, architecture: r.architecture })),
      ...(opts.detail ? { detail: opts.detail } : {}),
    });
    const publish = await publishLocked(ch, { now, change });
    intent.clear();
    return { removed, publish };
  } catch (err) {
    // Once the new generation is served (a failure while pruning old ones), the removal stands:
    // putting the files back would make the next publish list the version again. Not undone
    // (restore failed): the record makes the next writer complete the removal.
    await settleFailedPublish(ch, intent, served, {
      unreadable: 'none',
      undo: () =>
        restoreFromTrash(
          ch,
          removed.map((r) => r.poolPath),
        ).then(
          () => true,
          () => false,
        ),
    });
    throw err;
  }
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
    const r = await sweepTrash(ch, referenced);
    if (r.deleted.length)
      appendHistory(
        ch,
        changeRecord('gc', { detail: `deleted ${r.deleted.length} trash file(s) no kept generation lists: ${r.deleted.join(', ')}` }),
      );
    return r;
  });
}
