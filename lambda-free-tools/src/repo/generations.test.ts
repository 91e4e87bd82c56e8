import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AptRepoError, UsageError } from '../errors';
import {
  currentGeneration,
  generationDir,
  listGenerations,
  newGenerationId,
  pruneGenerations,
  readServed,
  switchGeneration,
  writeGenerationInfo,
  writeServed,
} from './generations';

let webRoot: string;
beforeEach(() => {
  webRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'generations-test-'));
});
afterEach(() => fs.rmSync(webRoot, { recursive: true, force: true }));
const ch = () => ({ webRoot });

/** Makes a generation directory with a dists tree; complete ones get generation.json. */
function makeGeneration(date: Date, complete = true): string {
  const id = newGenerationId(ch(), date);
  fs.mkdirSync(path.join(generationDir(ch(), id), 'dists/bookworm'), { recursive: true });
  fs.writeFileSync(path.join(generationDir(ch(), id), 'dists/bookworm/Release'), `Codename: bookworm\n`);
  if (complete)
    writeGenerationInfo(ch(), { id, date: date.toISOString(), packages: { bookworm: 1 }, poolPaths: ['pool/main/d/demo/demo_1_all.deb'] });
  return id;
}

test('ids are sortable and numbered past every existing directory, even if the clock goes back', () => {
  const a = makeGeneration(new Date('2026-11-21T05:15:00.123Z'));
  expect(a).toBe('20261121T051500Z-000001');
  makeGeneration(new Date('2026-11-21T05:16:00Z'), false);
  const c = newGenerationId(ch(), new Date('2020-01-01T00:00:00Z'));
  expect(c).toBe('20200101T000000Z-000003');
});

test('switchGeneration flips a relative dists symlink; listGenerations marks current, newest first, ignores incomplete', async () => {
  expect(await currentGeneration(ch())).toBeUndefined();
  const a = makeGeneration(new Date('2026-11-21T05:00:00Z'));
  const b = makeGeneration(new Date('2026-11-21T06:00:00Z'));
  const broken = makeGeneration(new Date('2026-11-21T07:00:00Z'), false);
  await switchGeneration(ch(), a);
  expect(fs.readlinkSync(path.join(webRoot, 'dists'))).toBe(`.generations/${a}/dists`);
  expect(fs.readFileSync(path.join(webRoot, 'dists/bookworm/Release'), 'utf8')).toContain('bookworm');
  await switchGeneration(ch(), b);
  expect(await currentGeneration(ch())).toBe(b);
  const list = await listGenerations(ch());
  expect(list.map((g) => [g.id, g.current])).toEqual([
    [b, true],
    [a, false],
  ]);
  expect(list[0].packages).toEqual({ bookworm: 1 });
  await expect(switchGeneration(ch(), broken)).rejects.toBeInstanceOf(UsageError);
  await expect(switchGeneration(ch(), '20990101T000000Z-000099')).rejects.toBeInstanceOf(UsageError);
  await expect(switchGeneration(ch(), '../../etc')).rejects.toBeInstanceOf(UsageError);
  expect(await currentGeneration(ch())).toBe(b);
  expect(fs.readdirSync(webRoot).filter((n) => n.startsWith('.dists.tmp'))).toEqual([]);
});

test('pruneGenerations keeps the newest N and the current one, removes incomplete ones and leftovers', async () => {
  const ids = [1, 2, 3, 4, 5].map((h) => makeGeneration(new Date(Date.UTC(2026, 10, 21, h))));
  const incomplete = makeGeneration(new Date(Date.UTC(2026, 10, 21, 6)), false);
  await switchGeneration(ch(), ids[1]); // as after a rollback
  fs.symlinkSync('.generations/x/dists', path.join(webRoot, '.dists.tmp-123-abc'));
  fs.mkdirSync(path.join(webRoot, '.generations/.trash-20200101T000000Z-000000/dists'), { recursive: true });
  const removed = await pruneGenerations(ch(), 2);
  expect(removed.sort()).toEqual([ids[0], ids[2], incomplete].sort());
  expect(fs.readdirSync(path.join(webRoot, '.generations')).sort()).toEqual([ids[1], ids[3], ids[4]].sort());
  expect(fs.readdirSync(webRoot).filter((n) => n.startsWith('.dists.tmp'))).toEqual([]);
  expect(await currentGeneration(ch())).toBe(ids[1]);
});

test('a dists directory that is not a symlink is refused, not replaced', async () => {
  const a = makeGeneration(new Date());
  fs.mkdirSync(path.join(webRoot, 'dists'));
  await expect(currentGeneration(ch())).rejects.toBeInstanceOf(AptRepoError);
  await expect(switchGeneration(ch(), a)).rejects.toThrow(/not a symlink/);
  expect(fs.lstatSync(path.join(webRoot, 'dists')).isDirectory()).toBe(true);
});

test('served.json: written and read back; a name already there (a planted link) is never followed', () => {
  const id = makeGeneration(new Date('2026-11-21T05:15:00Z'));
  const rec = {
    poolPath: 'pool/main/d/demo/demo_1_all.deb',
    name: 'demo',
    version: '1',
    architecture: 'all',
    sha256: 'a'.repeat(64),
    addedMs: 5,
  };
  writeServed(ch(), id, [rec]);
  expect(readServed(ch(), id)).toEqual([rec]);

  const other = makeGeneration(new Date('2026-11-21T05:16:00Z'));
  const target = path.join(webRoot, 'elsewhere.txt');
  fs.writeFileSync(target, 'untouched\n');
  fs.symlinkSync(target, path.join(generationDir(ch(), other), 'served.json'));
  expect(() => writeServed(ch(), other, [rec])).toThrow(/EEXIST/);
  expect(fs.readFileSync(target, 'utf8')).toBe('untouched\n');
});
