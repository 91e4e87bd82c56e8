/**
 * Publishing a channel: read the pool, route each package to its codenames, write a new signed
 * generation of `dists` (Packages, Packages.gz, Packages.xz, by-hash, Release, InRelease,
 * Release.gpg per codename), make it durable, flip `dists` to it, prune old generations.
 * Layout and Release contents: https://wiki.debian.org/DebianRepository/Format.
 */
import { withChannelLock } from './lock';
import { recoverChannel } from './recover';
import { publishLocked, type PublishResult } from './generationWriter';
import type { ChannelConfig, Progress } from '../core/types';

/**
 * Takes the channel lock (see withChannelLock), finishes or undoes an interrupted writer
 * (recoverChannel, which may publish by itself) and publishes (see publishLocked).
 */
export async function publish(
  ch: ChannelConfig,
  opts: { skipInvalid?: boolean; now?: Date; progress?: Progress } = {},
): Promise<PublishResult> {
  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    return publishLocked(ch, opts);
  });
}
