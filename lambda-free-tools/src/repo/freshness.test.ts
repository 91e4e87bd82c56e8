import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { formatReleaseDate } from '../index/release';
import { releaseFreshness } from './freshness';

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2026, 10, 21, 12, 0, 0));

describe('releaseFreshness on written Release files', () => {
  let webRoot: string;
  beforeEach(() => {
    webRoot = mkTemp('freshness');
  });
  afterEach(() => rmTemp(webRoot));

  /** Writes dists/<codename>/Release signed at `date`, valid until `validUntil` (omitted when undefined). */
  const release = (codename: string, date: Date, validUntil?: Date) => {
    const dir = path.join(webRoot, 'dists', codename);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'Release'),
      `Origin: Epiconcept\nCodename: ${codename}\nDate: ${formatReleaseDate(date)}\n` +
        (validUntil ? `Valid-Until: ${formatReleaseDate(validUntil)}\n` : '') +
        'SHA256:\n 00 1 main/binary-amd64/Packages\n',
    );
  };
  const ch = (validUntilDays?: number, codenames = ['bookworm', 'trixie']) => ({ webRoot, codenames, validUntilDays });

  it('re-signs a Release whose Valid-Until is within a third of the validity, not a fresh one', () => {
    // validUntilDays 30: a third is 10 days.
    release('bookworm', new Date(NOW.getTime() - 5 * DAY), new Date(NOW.getTime() + 25 * DAY));
    release('trixie', new Date(NOW.getTime() - 5 * DAY), new Date(NOW.getTime() + 25 * DAY));
    const fresh = releaseFreshness(ch(30), NOW);
    expect(fresh).toEqual({
      due: false,
      reason: expect.stringContaining('re-signing from 2026-12-06T12:00:00Z'),
      validUntil: new Date(NOW.getTime() + 25 * DAY),
      refreshAt: new Date(NOW.getTime() + 15 * DAY),
    });
    // One codename near its end decides for the channel.
    release('trixie', new Date(NOW.getTime() - 21 * DAY), new Date(NOW.getTime() + 9 * DAY));
    const near = releaseFreshness(ch(30), NOW);
    expect([near.due, near.kind]).toEqual([true, 'expiring']);
    expect(near.reason).toMatch(/^trixie's Release expires at 2026-11-30T12:00:00Z: less than a third of 30 day\(s\) left$/);
    // The boundary: exactly a third left is due, a second more is not.
    release('trixie', new Date(NOW.getTime() - 20 * DAY), new Date(NOW.getTime() + 10 * DAY));
    expect(releaseFreshness(ch(30), NOW).due).toBe(true);
    expect(releaseFreshness(ch(30), new Date(NOW.getTime() - 1000)).due).toBe(false);
  });

  it('counts a validity shortened since the Release was signed', () => {
    // Signed for 30 days 5 days ago; the config now says 7: it expires 2 days from now, due.
    release('bookworm', new Date(NOW.getTime() - 5 * DAY), new Date(NOW.getTime() + 25 * DAY));
    expect(releaseFreshness(ch(7, ['bookworm']), NOW).due).toBe(true);
    expect(releaseFreshness(ch(30, ['bookworm']), NOW).due).toBe(false);
  });

  it('is due when nothing is served, a codename has no Release, or a Release has no or an unreadable Valid-Until', () => {
    expect(releaseFreshness(ch(7), NOW)).toEqual({ due: true, kind: 'incomplete', reason: `nothing is published in ${webRoot} yet` });
    release('bookworm', NOW, new Date(NOW.getTime() + 7 * DAY));
    expect(releaseFreshness(ch(7), NOW)).toEqual({
      due: true,
      kind: 'incomplete',
      reason: `trixie has no Release in ${path.join(webRoot, 'dists')} yet`,
    });
    release('trixie', NOW);
    expect(releaseFreshness(ch(7), NOW).reason).toMatch(/trixie\/Release has no Valid-Until \(validUntilDays is 7\)$/);
    fs.writeFileSync(path.join(webRoot, 'dists/trixie/Release'), `Date: ${formatReleaseDate(NOW)}\nValid-Until: soon\n`);
    expect(releaseFreshness(ch(7), NOW)).toEqual({
      due: true,
      kind: 'incomplete',
      reason: expect.stringMatching(/unreadable Valid-Until$/),
    });
  });

  it('never asks for a publish without validUntilDays', () => {
    release('bookworm', new Date(NOW.getTime() - 400 * DAY), new Date(NOW.getTime() - 300 * DAY));
    expect(releaseFreshness(ch(undefined, ['bookworm']), NOW)).toEqual({
      due: false,
      reason: 'validUntilDays is not set: the Releases never expire',
    });
  });
});
