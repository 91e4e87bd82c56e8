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

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DATE_RE = /^(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (UTC|GMT|Z|\+0000)$/;

/**
 * Parses a Release date field as formatReleaseDate writes it ('Sat, 21 Nov 2026 05:15:00 UTC'),
 * also with '+0000', 'GMT' or 'Z' for the zone (apt-ftparchive, RFC 1123). Returns undefined for
 * anything else (another zone, a malformed value): the caller treats it as expired.
 */
export function parseReleaseDate(text: string): Date | undefined {
  const m = DATE_RE.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]);
  if (month < 0) return undefined;
  const d = new Date(Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])));
  return Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[1]) ? undefined : d;
}

/** The single-line fields of a Release's header (up to its first checksum block), by name. */
export function releaseHeader(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') || line === '') continue;
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i);
    if (name === 'MD5Sum' || name === 'SHA1' || name === 'SHA256' || name === 'SHA512') break;
    out.set(name, line.slice(i + 1).trim());
  }
  return out;
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
export function releaseFreshness(ch: Pick<ChannelConfig, 'webRoot' | 'codenames' | 'validUntilDays'>, now: Date): ReleaseFreshness {
  if (!ch.validUntilDays) return { due: false, reason: 'validUntilDays is not set: the Releases never expire' };
  const validityMs = ch.validUntilDays * DAY_MS;
  const margin = validityMs / 3;
  const dists = path.join(ch.webRoot, 'dists');
  let earliest: { codename: string; expiry: Date; validUntil: Date } | undefined;
  for (const codename of ch.codenames) {
    const file = path.join(dists, codename, 'Release');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return {
        due: true,
        kind: 'incomplete',
        reason: fs.existsSync(dists) ? `${codename} has no Release in ${dists} yet` : `nothing is published in ${ch.webRoot} yet`,
      };
    }
    const fields = releaseHeader(text);
    const validUntilText = fields.get('Valid-Until');
    if (validUntilText === undefined)
      return { due: true, kind: 'incomplete', reason: `${file} has no Valid-Until (validUntilDays is ${ch.validUntilDays})` };
    const validUntil = parseReleaseDate(validUntilText);
    const date = parseReleaseDate(fields.get('Date') ?? '');
    if (!validUntil || !date)
      return { due: true, kind: 'incomplete', reason: `${file} has an unreadable ${validUntil ? 'Date' : 'Valid-Until'}` };
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
