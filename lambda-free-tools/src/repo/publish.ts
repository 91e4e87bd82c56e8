/**
 * Publishing a channel: read the pool, route each package to its codenames, write a new signed
 * generation of `dists` (Packages, Packages.gz, Packages.xz, by-hash, Release, InRelease,
 * Release.gpg per codename), make it durable, flip `dists` to it, prune old generations.
 * Layout and Release contents: https://wiki.debian.org/DebianRepository/Format.
 */
import { withChannelLock } from './lock';
import { recoverChannel } from './recover';
import { publishLocked, type PublishResult } from './generationWriter';
import { changeRecord } from './history';
import { beginIntent, settleFailedPublish } from './intent';
import { currentGeneration } from './generations';
import type { ChannelConfig, Progress } from '../core/types';

/**
 * Takes the channel lock (see withChannelLock), finishes or undoes an interrupted writer
 * (recoverChannel, which may publish by itself) and publishes (see publishLocked). The pool comes
 * from the channel's store when that is the pool served now (what every writer keeps up to date),
 * else from a listing; `opts.rescan` always lists, stats and checks every pool file (what to run
 * after putting a file into the pool by hand, or when the store is in doubt).
 */
export async function publish(
  ch: ChannelConfig,
  opts: { skipInvalid?: boolean; now?: Date; progress?: Progress; rescan?: boolean } = {},
): Promise<PublishResult> {
  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    const { rescan, ...rest } = opts;
    // Recorded so that a generation completed but never served (killed before the flip) is removed by the next writer.
    const intent = await beginIntent(ch, 'publish');
    intent.mark();
    const served = await currentGeneration(ch);
    try {
      const r = await publishLocked(ch, {
        ...rest,
        trustCache: !rescan,
        change: changeRecord('publish', rescan ? { detail: 'with --rescan' } : {}),
      });
      intent.clear();
      return r;
    } catch (e) {
      // Nothing to undo: the generation writer removed its folder; a failure after the flip leaves the record for the pruning.
      await settleFailedPublish(ch, intent, served, { unreadable: 'previous', undo: async () => true });
      throw e;
    }
  });
}
