import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../../test/harness/cli';
import { buildDeb } from '../../../../test/harness/debs';
import { expectServingValid as expectServing } from '../../../../test/harness/published';

let root: string;
let debs: string;
const webRoot = () => path.join(root, 'srv/apt/preprod');

beforeAll(() => {
  debs = mkTemp('publish-cli-debs');
  // The crash test (SIGKILL during publish) is lambda-free-tools/test/publish-kill.e2e.test.ts.
  for (let i = 0; i < 3; i++) buildDeb(debs, { name: `pkg${String(i).padStart(3, '0')}`, version: `1.${i}-1`, compression: 'none' });
});
afterAll(() => rmTemp(debs));

beforeEach(async () => {
  root = mkTemp('publish-cli');
  expect((await runCli(['--root', root, 'init', '--codenames', 'bookworm,trixie', '--architectures', 'amd64,arm64'])).code).toBe(0);
  expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
});
afterEach(() => rmTemp(root));

/** Copies the i-th prebuilt package into the pool where ingest would put it. */
function addToPool(i: number): void {
  const name = `pkg${String(i).padStart(3, '0')}`;
  const dir = path.join(webRoot(), 'pool/main/p', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(debs, `${name}_1.${i}-1_all.deb`), path.join(dir, `${name}_1.${i}-1_all.deb`));
}

/** The shared check (test/harness/published.ts) for this test's preprod channel, codenames bookworm and trixie. */
const expectServingValid = (unpublished: string[] = []): Promise<string> => expectServing(root, ['bookworm', 'trixie'], unpublished);

test('publish end to end: table or JSON, invalid files (exit 1, or 0 with --skip-invalid), lock held (exit 3)', async () => {
  for (let i = 0; i < 3; i++) addToPool(i);
  const first = await runCli(['--root', root, 'publish', '--rescan']);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/^published generation \d{8}T\d{6}Z-000001$/m);
  expect(first.stdout).toMatch(/^bookworm\s+3$/m);
  await expectServingValid();

  const bad = path.join(webRoot(), 'pool/main/b/bad/bad_1.0_all.deb');
  fs.mkdirSync(path.dirname(bad), { recursive: true });
  fs.writeFileSync(bad, '!<arch>\ntruncated');
  const refused = await runCli(['--root', root, 'publish', '--rescan']);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(bad);
  expect(await expectServingValid([bad])).toMatch(/-000001$/);

  const skipped = await runCli(['--root', root, '--json', 'publish', '--rescan', '--skip-invalid']);
  expect(skipped.code).toBe(0);
  expect(skipped.stderr).toContain(`warning: skipped invalid pool file ${bad}`);
  const data = JSON.parse(skipped.stdout);
  expect(data).toMatchObject({ channel: 'preprod', packages: { bookworm: 3, trixie: 3 }, debsRead: 1 });
  expect(data.problems).toHaveLength(1);
  fs.rmSync(bad);

  fs.writeFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/repo.yaml'), 'lockTimeoutSeconds: 0\n');
  const lock = path.join(root, 'var/lib/apt-repo/preprod/lock');
  // This test process is alive: its lock is not stale.
  fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), start: null, since: 'now' }));
  const held = await runCli(['--root', root, 'publish', '--rescan']);
  expect(held.code).toBe(3);
  expect(held.stderr).toContain(lock);
  expect(held.stderr).toContain(`pid ${process.pid}`);
  fs.rmSync(lock);
});
