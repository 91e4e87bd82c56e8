/**
 * Rebuilding a channel's catalogue on demand (`apt-repo catalogue`, the channel's timer), apart
 * from catalogue/write.ts because it takes the lock and runs recovery: the generation writer and
 * recovery call write.ts, and this module calls them.
 */
import { UsageError } from '../errors';
import { withChannelLock } from '../repo/lock';
import { recoverChannel } from '../repo/recover';
import type { ChannelConfig } from '../core/types';
import type { CatalogueMarker } from './pages';
import { servedCatalogue, writeCatalogueLocked } from './write';

/**
 * `apt-repo catalogue`: takes the channel lock, finishes or undoes an interrupted writer
 * (recoverChannel) and rebuilds the catalogue of the served generation, so that what it shows
 * from other sources (the upstream's pending packages, the history) is current: the channel's
 * timer runs it. Resolves to the generation described and the build's marker, undefined when
 * nothing is published. Throws UsageError when the channel has the catalogue off
 * (repo.yaml `catalogue: false`), LockError, and writeCatalogueLocked's errors.
 */
export async function refreshCatalogue(ch: ChannelConfig, opts: { now?: Date } = {}): Promise<CatalogueMarker | undefined> {
  if (!ch.catalogue) throw new UsageError(`channel ${ch.name} has the catalogue off (repo.yaml catalogue: false)`);
  return withChannelLock(ch, async () => {
    await recoverChannel(ch);
    const id = await writeCatalogueLocked(ch, opts);
    return id ? servedCatalogue(ch) : undefined;
  });
}
