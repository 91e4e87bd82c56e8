/**
 * Which package format a channel holds: the one place that decides (core/format.ts is the seam,
 * deb/format.ts the Debian implementation). Every channel module (ingest, pool, pending, promote,
 * versions, publish …) asks `formatOf(ch)` and never imports deb/ itself.
 */
import { debianFormat } from '../deb/format';
import type { PackageFormat } from '../core/format';
import type { ChannelConfig } from '../core/types';

export type { PackageFormat } from '../core/format';

/**
 * The package format of channel `ch`: `ch.format` when set (unit tests plug a test double in
 * there), else Debian, the only format the channels hold today (repo.yaml has no key for it).
 */
export function formatOf(ch: Pick<ChannelConfig, 'format'> = {}): PackageFormat {
  return ch.format ?? debianFormat;
}
