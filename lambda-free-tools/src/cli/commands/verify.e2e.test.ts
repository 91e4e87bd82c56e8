import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../../test/harness/cli';
import { buildDeb } from '../../../../test/harness/debs';

let root: string;
beforeAll(async () => {
  root = mkTemp('verify-cli');
  expect((await runCli(['--root', root, 'init'])).code).toBe(0);
  expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
  buildDeb(path.join(root, 'srv/apt/preprod/pool/main/d/demo'), { name: 'demo', version: '1.0', compression: 'gzip' });
});
afterAll(() => rmTemp(root));

test('verify before any publish fails and says so', async () => {
  const r = await runCli(['--root', root, 'verify']);
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/nothing published yet/);
});

test('verify is clean after publish, and lists problems with exit 1 after tampering', async () => {
  expect((await runCli(['--root', root, 'publish'])).code).toBe(0);
  const ok = await runCli(['--root', root, '--json', 'verify']);
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, problems: [] });

  const deb = path.join(root, 'srv/apt/preprod/pool/main/d/demo/demo_1.0_all.deb');
  fs.appendFileSync(deb, 'x');
  const bad = await runCli(['--root', root, '--json', 'verify']);
  expect(bad.code).toBe(1);
  const data = JSON.parse(bad.stdout);
  expect(data.ok).toBe(false);
  expect(data.problems).toContainEqual(expect.stringMatching(new RegExp(`^${deb.replace(/[.+]/g, '\\$&')} \\(named by .*\\): size`)));
  const human = await runCli(['--root', root, 'verify']);
  expect(human.code).toBe(1);
  expect(human.stdout).toContain(deb);
});
