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
  expect((await runCli(['--root', root, 'publish', '--rescan'])).code).toBe(0);
  buildDeb(path.join(pool, 'a/app'), { name: 'app', version: '1.1+deb12u1', compression: 'gzip' });
  expect((await runCli(['--root', root, 'publish', '--rescan'])).code).toBe(0);

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

test('after rollback, generations shows the new generation served and the one it rolled back to (human and --json)', async () => {
  const before = JSON.parse((await runCli(['--root', root, '--json', 'generations'])).stdout) as { id: string }[];
  const rb = await runCli(['--root', root, '--json', 'rollback']);
  expect(rb.code).toBe(0);
  const r = JSON.parse(rb.stdout);
  expect(r).toMatchObject({ from: before[0].id, to: before[1].id, rolledBackFrom: before[1].id });

  const list = JSON.parse((await runCli(['--root', root, '--json', 'generations'])).stdout);
  expect(list[0]).toEqual({
    id: r.generation,
    date: expect.any(String),
    current: true,
    rolledBackFrom: before[1].id,
    packages: { bullseye: 1, bookworm: 1 },
  });
  expect(list.slice(1).map((g: { id: string; current: boolean; rolledBackFrom?: string }) => [g.id, g.current, g.rolledBackFrom])).toEqual(
    before.map((g) => [g.id, false, undefined]),
  );
  const human = (await runCli(['--root', root, 'generations'])).stdout.split('\n');
  expect(human[1]).toMatch(new RegExp(`^\\*\\s+${r.generation}\\s+\\S+\\s+bullseye:1 bookworm:1\\s+rollback to ${before[1].id}$`));
  expect(human[2]).toMatch(new RegExp(`^\\s+${before[0].id}\\s+\\S+\\s+bullseye:1 bookworm:2$`));
  const text = await runCli(['--root', root, 'rollback', '--to', before[0].id]);
  expect(text.stdout).toMatch(
    new RegExp(`^preprod now serves generation \\S+-000004: the package set of ${before[0].id} \\(was ${r.generation}\\)$`, 'm'),
  );
});
