/** `apt-repo publish --if-expiring` through the bundled CLI (child processes): the refresh timer's command. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../test/harness/cli';
import { parseReleaseDate, releaseHeader } from '../index/release';
import { loadChannel } from './channel';
import { buildDeb } from '../../../test/harness/debs';
import { currentGeneration, readGenerationInfo } from './generations';
import { publish } from './publish';
import { refreshChannel } from './resign';
import { rollback } from './rollback';

const DAY = 86_400_000;

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
