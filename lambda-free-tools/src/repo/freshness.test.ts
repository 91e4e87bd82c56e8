import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../test/harness/cli';
import { formatReleaseDate, parseReleaseDate, releaseHeader } from '../index/release';
import { loadChannel } from './channel';
import { releaseFreshness } from './freshness';
import { buildDeb } from '../../../test/harness/debs';
import { currentGeneration, readGenerationInfo } from './generations';
import { publish } from './publish';
import { refreshChannel } from './resign';
import { rollback } from './rollback';

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2026, 10, 21, 12, 0, 0));

describe('parseReleaseDate and releaseHeader', () => {
  it('reads what formatReleaseDate writes, and the +0000 form of apt-ftparchive', () => {
    const d = new Date(Date.UTC(2026, 1, 3, 4, 5, 6));
    expect(parseReleaseDate(formatReleaseDate(d))?.getTime()).toBe(d.getTime());
    expect(parseReleaseDate('Tue, 03 Feb 2026 04:05:06 +0000')?.getTime()).toBe(d.getTime());
  });

  it('refuses another zone, a malformed value and an impossible day', () => {
    for (const bad of [
      'Tue, 03 Feb 2026 04:05:06 +0200',
      'yesterday',
      '',
      'Tue, 31 Feb 2026 04:05:06 UTC',
      'Tue, 03 Foo 2026 04:05:06 UTC',
    ]) {
      expect([bad, parseReleaseDate(bad)]).toEqual([bad, undefined]);
    }
  });

  it('takes the header fields only, not the checksum lines', () => {
    const h = releaseHeader('Origin: O\nValid-Until: X\nSHA256:\n abc 1 main/binary-amd64/Packages\nDate: late\n');
    expect([...h]).toEqual([
      ['Origin', 'O'],
      ['Valid-Until', 'X'],
    ]);
  });
});

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

describe("apt-repo publish --if-expiring (the refresh timer's command)", () => {
  let root: string;
  const webRoot = () => path.join(root, 'srv/apt/preprod');
  const keyring = () => path.join(webRoot(), 'epiconcept-preprod-archive-keyring.gpg');
  const field = (codename: string, name: string) =>
    releaseHeader(fs.readFileSync(path.join(webRoot(), 'dists', codename, 'Release'), 'utf8')).get(name)!;

  beforeAll(async () => {
    root = mkTemp('if-expiring');
    expect((await runCli(['--root', root, 'init', '--codenames', 'bookworm,trixie'])).code).toBe(0);
    expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
    fs.appendFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/repo.yaml'), 'validUntilDays: 3\n');
  });
  afterAll(() => rmTemp(root));

  it('re-signs a Release that expires within a day (a third of 3), with a fresh Date and Valid-Until; then leaves it alone', async () => {
    const ch = await loadChannel({ root, channel: 'preprod' });
    // Published 2.5 days ago: half a day of validity left.
    const old = await publish(ch, { now: new Date(Date.now() - 2.5 * DAY) });
    expect(parseReleaseDate(field('bookworm', 'Valid-Until'))!.getTime() - Date.now()).toBeLessThan(DAY);

    const before = Date.now();
    const r = await runCli(['--root', root, '--json', 'publish', '--if-expiring']);
    expect([r.code, r.stderr]).toEqual([
      0,
      expect.stringMatching(
        /^apt-repo: re-signed the served package set: (bookworm|trixie)'s Release expires at .*: less than a third of 3 day\(s\) left\n$/,
      ),
    ]);
    const out = JSON.parse(r.stdout) as { published: boolean; action: string; generation: string };
    expect([out.published, out.action]).toEqual([true, 'resigned']);
    expect(out.generation).not.toBe(old.generation);
    expect(await currentGeneration(ch)).toBe(out.generation);
    for (const c of ['bookworm', 'trixie']) {
      const date = parseReleaseDate(field(c, 'Date'))!.getTime();
      const validUntil = parseReleaseDate(field(c, 'Valid-Until'))!.getTime();
      // Release dates have whole seconds.
      expect(date).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(validUntil - date).toBe(3 * DAY);
      execFileSync('gpgv', ['--keyring', keyring(), path.join(webRoot(), 'dists', c, 'InRelease')], { stdio: 'pipe' });
    }

    // Fresh now: nothing published, the same generation serves.
    const again = await runCli(['--root', root, 'publish', '--if-expiring']);
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toMatch(/^fresh: every Release is valid until \S+ at least; re-signing from \S+\n$/);
    expect(await currentGeneration(ch)).toBe(out.generation);
    const json = JSON.parse((await runCli(['--root', root, '--json', 'publish', '--if-expiring'])).stdout) as Record<string, unknown>;
    expect(json).toEqual({
      channel: 'preprod',
      published: false,
      reason: expect.any(String),
      validUntil: expect.any(String),
      refreshAt: expect.any(String),
    });
    expect(Date.parse(json.refreshAt as string) - Date.parse(json.validUntil as string)).toBe(-DAY);
  });

  it('re-signs what is served, not the pool: after a rollback the version rolled back from stays unserved', async () => {
    const ch = await loadChannel({ root, channel: 'preprod' });
    const start = Date.now() - 2.5 * DAY;
    const at = (s: number) => new Date(start + s * 1000);
    const toPool = (version: string) => {
      const dir = path.join(webRoot(), 'pool/main/r/resign-demo');
      fs.mkdirSync(dir, { recursive: true });
      const deb = buildDeb(dir, { name: 'resign-demo', version });
      return path.relative(webRoot(), deb);
    };
    const good = toPool('1.0-1');
    await publish(ch, { now: at(0) });
    const bad = toPool('2.0-1');
    await publish(ch, { now: at(2) });
    const back = await rollback(ch, { now: at(4) });
    const served = () => fs.readFileSync(path.join(webRoot(), 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(served()).toContain(`Filename: ${good}\n`);
    expect(served()).not.toContain(`Filename: ${bad}\n`);

    // Half a day of validity left: the re-signing is due and keeps the rolled-back set.
    const r = await refreshChannel(ch);
    expect([r.action, r.freshness.kind]).toEqual(['resigned', 'expiring']);
    expect(await currentGeneration(ch)).toBe(r.generation);
    expect(served()).not.toContain(`Filename: ${bad}\n`);
    expect(served()).toContain(`Filename: ${good}\n`);
    expect(readGenerationInfo(ch, r.generation!)?.rolledBackFrom).toBe(back.rolledBackFrom);
    expect(parseReleaseDate(field('bookworm', 'Valid-Until'))!.getTime() - Date.now()).toBeGreaterThan(2.9 * DAY);
    execFileSync('gpgv', ['--keyring', keyring(), path.join(webRoot(), 'dists/bookworm/InRelease')], { stdio: 'pipe' });
    // Fresh again: nothing more.
    expect((await refreshChannel(ch)).action).toBe('none');
    // A plain publish would have served the pool, the version rolled back from included.
    await publish(ch);
    expect(served()).toContain(`Filename: ${bad}\n`);
  });

  it('publishes the pool when the served generation lacks a codename of liste_dist (the config changed)', async () => {
    fs.writeFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/liste_dist'), 'bookworm\ntrixie\nforky\n');
    const ch = await loadChannel({ root, channel: 'preprod' });
    const r = await refreshChannel(ch);
    expect([r.action, r.freshness.kind, r.freshness.reason]).toEqual([
      'published',
      'incomplete',
      expect.stringContaining('forky has no Release'),
    ]);
    expect(field('forky', 'Codename')).toBe('forky');
  });
});
