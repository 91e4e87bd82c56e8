/**
 * Re-signing what a channel serves: the current generation's package set (its Packages texts,
 * exactly as served) written as a new generation with a fresh Date and Valid-Until, through the one
 * generation writer (publish.ts writeGenerationLocked), so Releases never expire (validUntilDays).
 *
 * Why not a plain publish: publish lists the whole pool, and after a rollback the pool still holds
 * the versions rolled back from (unserved on purpose, rollback.ts). An unattended re-signing must
 * not serve them again; it keeps the served set, and a rollback generation's `rolledBackFrom`.
 * Release format: https://wiki.debian.org/DebianRepository/Format (Date, Valid-Until).
 */
import { AptRepoError } from '../errors';
import { releaseFreshness, type ReleaseFreshness } from './freshness';
import { currentGeneration, listGenerations } from './generations';
import { withChannelLock } from './lock';
import { channelSigner, publishLocked, writeGenerationLocked } from './generationWriter';
import { changeRecord } from './history';
import { recoverChannel } from './recover';
import { beginIntent, settleFailedPublish } from './intent';
import { readServedIndexes, servedOf } from './rollback';
import type { ChannelConfig, Progress } from '../core/types';

/** What refreshChannel did. */
export interface RefreshResult {
  /** The freshness seen under the lock (after recovery). */
  freshness: ReleaseFreshness;
  /** 'none': still fresh; 'resigned': the served set re-signed; 'published': a full publish (nothing or not every codename served). */
  action: 'none' | 'resigned' | 'published';
  /** The new generation (action other than 'none'). */
  generation?: string;
  /** Warnings of a full publish (packages routed nowhere …). */
  problems: string[];
}

/**
 * Under the channel lock, after recoverChannel: decides with releaseFreshness at `opts.now`
 * (default the clock) and
 * - when fresh, does nothing;
 * - when 'expiring', re-signs the served set: the current generation's indexes (rollback.ts
 *   readServedIndexes, checked against its Release), packages, pool paths and rolledBackFrom, as a
 *   new generation dated `now` (moved to one second after the current generation's when not later:
 *   apt keeps a Release newer than the one offered);
 * - when 'incomplete' (nothing served, a codename of liste_dist without Release, no Valid-Until:
 *   the configuration changed since), or when the served generation cannot be read back for the
 *   current liste_dist and liste_arch, publishes the pool (publishLocked).
 * Throws as publishLocked and writeGenerationLocked do (signer, key, invalid pool files), leaving
 * the current generation serving.
 */
export async function refreshChannel(ch: ChannelConfig, opts: { now?: Date; progress?: Progress } = {}): Promise<RefreshResult> {
  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    const now = opts.now ?? new Date();
    const freshness = releaseFreshness(ch, now);
    if (!freshness.due) return { freshness, action: 'none', problems: [] };
    // As publish: a generation completed but never served (killed before the flip) is removed by the next writer.
    const intent = await beginIntent(ch, 'resign');
    intent.mark();
    const served = await currentGeneration(ch);
    try {
      const r = await refreshDue(ch, freshness, now, opts);
      intent.clear();
      return r;
    } catch (e) {
      await settleFailedPublish(ch, intent, served, { unreadable: 'previous', undo: async () => true });
      throw e;
    }
  });
}

/** refreshChannel's work once a publish is due; the caller holds the lock and the intent record. */
async function refreshDue(
  ch: ChannelConfig,
  freshness: ReleaseFreshness,
  now: Date,
  opts: { progress?: Progress },
): Promise<RefreshResult> {
  const currentId = await currentGeneration(ch);
  const current = currentId ? (await listGenerations(ch)).find((g) => g.id === currentId) : undefined;
  if (freshness.kind === 'expiring' && current) {
    let indexes: Map<string, Map<string, string>> | undefined;
    try {
      indexes = await readServedIndexes(ch, current.id);
    } catch (e) {
      if (!(e instanceof AptRepoError)) throw e;
    }
    if (indexes) {
      const signer = await channelSigner(ch);
      const currentDate = Date.parse(current.date);
      // Release's Date has whole seconds.
      if (!Number.isNaN(currentDate) && Math.floor(now.getTime() / 1000) <= Math.floor(currentDate / 1000)) {
        now = new Date((Math.floor(currentDate / 1000) + 1) * 1000);
      }
      const generation = await writeGenerationLocked(
        ch,
        {
          indexes,
          packages: current.packages,
          poolPaths: current.poolPaths,
          ...(current.rolledBackFrom ? { rolledBackFrom: current.rolledBackFrom } : {}),
          served: servedOf(ch, current.id, current.poolPaths),
          ...(current.counts ? { counts: current.counts } : {}),
          change: changeRecord('resign', { detail: `re-signed generation ${current.id} (Valid-Until)` }),
        },
        signer,
        now,
      );
      return { freshness, action: 'resigned', generation, problems: [] };
    }
  }
  const r = await publishLocked(ch, {
    now,
    progress: opts.progress,
    change: changeRecord('resign', { detail: `published again (${freshness.kind})` }),
  });
  return { freshness, action: 'published', generation: r.generation, problems: r.problems };
}
