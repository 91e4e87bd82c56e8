/**
 * rollback: points a channel's `dists` back at an earlier kept generation (instant: the indexes are
 * already written and signed). The pool is not rolled back: files added since stay (unpublished)
 * and the next publish (ingest, promote, publish) lists them again, so remove a bad version before
 * the next publish. Files the target generation lists but that were removed since are restored
 * from the trash first, so every index entry of the target points at a real file.
 */
import { AptRepoError, UsageError } from '../errors';
import { withChannelLock } from './lock';
import { currentGeneration, listGenerations, switchGeneration } from './generations';
import { restoreFromTrash } from './remove';
import type { ChannelConfig } from './types';

/** Result of rollback(). */
export interface RollbackResult {
  /** Generation `dists` pointed at before (undefined if none). */
  from?: string;
  to: string;
  /** Pool paths put back from the trash. */
  restored: string[];
}

/**
 * Switches `ch`'s `dists` to generation `opts.to`, or to the one published just before the current
 * one, under the lock. Throws UsageError for an unknown id, the current id, or no earlier generation;
 * AptRepoError naming the pool files that are in neither the pool nor the trash (nothing switched).
 */
export async function rollback(ch: ChannelConfig, opts: { to?: string } = {}): Promise<RollbackResult> {
  return withChannelLock(ch, async () => {
    const gens = await listGenerations(ch);
    const current = (await currentGeneration(ch)) ?? gens.find((g) => g.current)?.id;
    let target;
    if (opts.to !== undefined) {
      target = gens.find((g) => g.id === opts.to);
      if (!target) throw new UsageError(`generation ${opts.to} is not kept in ${ch.webRoot}/.generations (kept: ${gens.map((g) => g.id).join(', ') || 'none'})`);
      if (target.id === current) throw new UsageError(`generation ${opts.to} is already the current one of ${ch.name}`);
    } else {
      const i = gens.findIndex((g) => g.id === current);
      target = i >= 0 ? gens[i + 1] : undefined;
      if (!target) throw new UsageError(`${ch.name} has no generation older than ${current ?? '(none)'} to roll back to (kept: ${gens.map((g) => g.id).join(', ') || 'none'})`);
    }
    // Check first, so a failed rollback leaves the pool as it was.
    const { missing } = await restoreFromTrash(ch, target.poolPaths, { dryRun: true });
    if (missing.length) {
      throw new AptRepoError(`cannot roll ${ch.name} back to ${target.id}: ${missing.length} pool file(s) it lists are in neither ${ch.webRoot} nor the trash: ${missing.join(', ')}`);
    }
    const { restored } = await restoreFromTrash(ch, target.poolPaths);
    await switchGeneration(ch, target.id);
    return { from: current, to: target.id, restored };
  });
}
