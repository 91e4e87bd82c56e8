import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../../test/harness/cli';
import { buildDeb } from '../../../../test/harness/debs';

let root: string;
beforeAll(async () => {
  root = mkTemp('generations-cli');
  expect((await runCli(['--root', root, 'init', '--codenames', 'bullseye,bookworm'])).code).toBe(0);
  expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
});
afterAll(() => rmTemp(root));

test('generations lists every kept generation, newest first, with the current one marked and package counts', async () => {
  const empty = await runCli(['--root', root, 'generations']);
  expect(empty.code).toBe(0);
  expect(empty.stdout).toMatch(/no generation published yet/);
  const pool = path.join(root, 'srv/apt/preprod/pool/main');
  buildDeb(path.join(pool, 'a/app'), { name: 'app', version: '1.0', compression: 'gzip' });
  expect((await runCli(['--root', root, 'publish'])).code).toBe(0);
  buildDeb(path.join(pool, 'a/app'), { name: 'app', version: '1.1+deb12u1', compression: 'gzip' });
  expect((await runCli(['--root', root, 'publish'])).code).toBe(0);

  const json = await runCli(['--root', root, '--json', 'generations']);
  expect(json.code).toBe(0);
  const list = JSON.parse(json.stdout);
  expect(list.map((g: { id: string }) => g.id.slice(-6))).toEqual(['000002', '000001']);
  expect(list.map((g: { current: boolean }) => g.current)).toEqual([true, false]);
  expect(list[0].packages).toEqual({ bullseye: 1, bookworm: 2 });
  expect(list[1].packages).toEqual({ bullseye: 1, bookworm: 1 });

  const human = await runCli(['--root', root, 'generations']);
  expect(human.stdout.split('\n')[1]).toMatch(/^\*\s+\d{8}T\d{6}Z-000002\s+\S+\s+bullseye:1 bookworm:2$/);
});
