/**
 * Freshness of the served Releases: whether a channel with `validUntilDays` must publish again
 * (a new generation, fresh Date and Valid-Until) before apt starts refusing its indexes.
 *
 * apt refuses a Release whose Valid-Until has passed ("Release file … is expired", apt.conf(5)
 * Acquire::Check-Valid-Until), so the re-signing must happen well before: the rule here is "when a
 * third of the validity remains" (validity = validUntilDays), checked hourly by the refresh timer
 * (infra/systemd.ts) through `apt-repo publish --if-expiring`. Dates are the Release's own Date and
 * Valid-Until fields (RFC 2822 in UTC, index/release.ts formatReleaseDate; Debian wiki
 * "DebianRepository/Format", Date and Valid-Until).
 */
import * as fs from 'fs';
import * as path from 'path';
import { formatOf } from './format';
import type { ChannelConfig } from '../core/types';

/** What releaseFreshness found. */
export interface ReleaseFreshness {
  /** True when the channel should publish now. */
  due: boolean;
  /**
   * Why it is due: 'expiring' (every codename's Release is served, with a Valid-Until, and the
   * earliest is near: re-signing what is served is enough) or 'incomplete' (nothing served, a
   * codename without Release, a Release without or with an unreadable Valid-Until or Date: the config
   * changed since, a full publish is needed). Undefined when not due.
   */
  kind?: 'expiring' | 'incomplete';
  /** Why, in one line ('bookworm's Release is valid until … (less than a third of 30 days left)'). */
  reason: string;
  /** The Valid-Until of the Release that expires first (when every served Release has a readable one). */
  validUntil?: Date;
  /** When a publish becomes due: the earliest expiry minus a third of the validity. */
  refreshAt?: Date;
}

const DAY_MS = 86_400_000;
const fmt = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Decides whether channel `ch` must publish at `now` so that no served Release expires:
 * - validUntilDays unset: never due (the Releases carry no Valid-Until);
 * - due when `<webRoot>/dists` serves nothing, when a codename of liste_dist has no Release there,
 *   or when a Release has no Valid-Until or an unreadable Date or Valid-Until;
 * - otherwise each Release expires at the earlier of its Valid-Until and Date + validUntilDays
 *   (a validity shortened since it was signed counts), and a publish is due once less than a third
 *   of validUntilDays remains before the earliest expiry: now >= expiry - validUntilDays / 3.
 * Reads only the Release files (through the `dists` symlink). Throws the fs error for anything but
 * a missing file (EACCES on the web root, say).
 */
export function releaseFreshness(
  ch: Pick<ChannelConfig, 'webRoot' | 'codenames' | 'validUntilDays' | 'format'>,
  now: Date,
): ReleaseFreshness {
  if (!ch.validUntilDays) return { due: false, reason: 'validUntilDays is not set: the Releases never expire' };
  const validityMs = ch.validUntilDays * DAY_MS;
  const margin = validityMs / 3;
  const dists = path.join(ch.webRoot, 'dists');
  const layout = formatOf(ch).indexes;
  let earliest: { codename: string; expiry: Date; validUntil: Date } | undefined;
  for (const codename of ch.codenames) {
    const m = layout.manifestDates(dists, codename);
    if (!m.found)
      return {
        due: true,
        kind: 'incomplete',
        reason: fs.existsSync(dists) ? `${codename} has no Release in ${dists} yet` : `nothing is published in ${ch.webRoot} yet`,
      };
    const { file, date, validUntil } = m;
    if (validUntil === undefined)
      return { due: true, kind: 'incomplete', reason: `${file} has no Valid-Until (validUntilDays is ${ch.validUntilDays})` };
    if (validUntil === 'unreadable' || date === 'unreadable')
      return { due: true, kind: 'incomplete', reason: `${file} has an unreadable ${validUntil === 'unreadable' ? 'Valid-Until' : 'Date'}` };
    const expiry = new Date(Math.min(validUntil.getTime(), date.getTime() + validityMs));
    if (!earliest || expiry < earliest.expiry) earliest = { codename, expiry, validUntil };
  }
  if (!earliest) return { due: true, kind: 'incomplete', reason: 'liste_dist lists no codename' };
  const refreshAt = new Date(earliest.expiry.getTime() - margin);
  const due = now.getTime() >= refreshAt.getTime();
  const reason = due
    ? `${earliest.codename}'s Release expires at ${fmt(earliest.expiry)}: less than a third of ${ch.validUntilDays} day(s) left`
    : `every Release is valid until ${fmt(earliest.expiry)} at least; re-signing from ${fmt(refreshAt)}`;
  return { due, ...(due ? { kind: 'expiring' as const } : {}), reason, validUntil: earliest.validUntil, refreshAt };
}
