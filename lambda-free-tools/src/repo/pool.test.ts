import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { VersionError } from '../errors';
import { initChannel } from './channel';
import { isPoolPath, listPoolEntries, listPoolFiles, poolNameProblem, poolPathFor, readAdded, recordAdded, scanPool } from './pool';
import { poolPrefix, sourceName } from '../deb/format';
import { PoolCache, readPoolStore } from './cache';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-test-'));
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bullseye', 'bookworm'] });
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** A scan as a writer holding the lock makes it: with the channel's store, saved after. */
async function writerScan(): Promise<Awaited<ReturnType<typeof scanPool>>> {
  const cache = PoolCache.forChannel(ch);
  const scan = await scanPool(ch, { cache });
  cache.save();
  return scan;
}

function place(spec: Parameters<typeof buildDeb>[1], poolPath: string): string {
  const dest = path.join(ch.webRoot, poolPath);
  const built = buildDeb(path.dirname(dest), { compression: 'gzip', ...spec });
  if (built !== dest) fs.renameSync(built, dest);
  return poolPath;
}

test('poolPathFor follows the Debian pool layout', () => {
  expect(poolPathFor({ name: 'hello', version: '2.10-3', architecture: 'amd64', source: 'hello' }, 'main')).toBe(
    'pool/main/h/hello/hello_2.10-3_amd64.deb',
  );
  expect(poolPathFor({ name: 'libfoo1', version: '1:1.2', architecture: 'arm64', source: 'libfoo' }, 'main')).toBe(
    'pool/main/libf/libfoo/libfoo1_1.2_arm64.deb',
  );
  expect(poolPathFor({ name: 'demo', version: '1.0+deb12u1', architecture: 'all', source: 'demo' }, 'main', 'bookworm')).toBe(
    'pool/main/d/demo/bookworm/demo_1.0+deb12u1_all.deb',
  );
  expect(poolPrefix('lib')).toBe('l');
  expect(() => poolPathFor({ name: 'xx', version: 'not a version', architecture: 'all', source: 'xx' }, 'main')).toThrow(VersionError);
});

test('scanPool reads control, size and digests, routes, reports bad files, and then serves from the cache', async () => {
  place({ name: 'demo', version: '1.0', extraFields: { Source: 'demo-src (0.9)' } }, 'pool/main/d/demo-src/demo_1.0_all.deb');
  place({ name: 'php-app', version: '2.0+deb11u1' }, 'pool/main/p/php-app/php-app_2.0+deb11u1_all.deb');
  place({ name: 'folder', version: '3.0' }, 'pool/main/f/folder/bookworm/folder_3.0_all.deb');
  fs.writeFileSync(path.join(ch.webRoot, 'pool/main/d/demo-src/broken_1.0_all.deb'), 'garbage');
  fs.writeFileSync(path.join(ch.webRoot, 'pool/main/d/demo-src/.demo_2.0_all.deb.tmp'), 'in flight');
  fs.writeFileSync(path.join(ch.webRoot, 'pool/main/d/demo-src/README'), 'not a deb');

  const first = await writerScan();
  expect(first.debsRead).toBe(4);
  expect(first.problems.map((p) => p.file)).toEqual([path.join(ch.webRoot, 'pool/main/d/demo-src/broken_1.0_all.deb')]);
  const byName = new Map(first.packages.map((p) => [p.name, p]));
  const demo = byName.get('demo')!;
  expect(demo).toMatchObject({ version: '1.0', architecture: 'all', source: 'demo-src', codenames: ['bullseye', 'bookworm'] });
  expect(demo.size).toBe(fs.statSync(path.join(ch.webRoot, demo.poolPath)).size);
  expect(demo.digests.SHA256).toMatch(/^[0-9a-f]{64}$/);
  expect(demo.control[0]).toEqual(['Package', 'demo']);
  expect(byName.get('php-app')!.codenames).toEqual(['bullseye']);
  expect(byName.get('folder')!.codenames).toEqual(['bookworm']);

  const second = await writerScan();
  expect(second.debsRead).toBe(1); // only the broken file, which is never cached
  expect(second.packages).toEqual(first.packages);
  // A scan without the writer's store reads the store and never writes it.
  const before = fs.readdirSync(ch.stateDir).map((f) => [f, fs.statSync(path.join(ch.stateDir, f)).mtimeMs]);
  fs.utimesSync(path.join(ch.webRoot, demo.poolPath), new Date(), new Date(Date.now() + 5000));
  const reader = await scanPool(ch);
  expect(reader.debsRead).toBe(2);
  expect(reader.packages.map((p) => p.name)).toEqual(first.packages.map((p) => p.name));
  expect(fs.readdirSync(ch.stateDir).map((f) => [f, fs.statSync(path.join(ch.stateDir, f)).mtimeMs])).toEqual(before);
});

test('a file whose mtime changes is read again; a removed file drops out of the cache', async () => {
  const p = place({ name: 'demo', version: '1.0' }, 'pool/main/d/demo/demo_1.0_all.deb');
  const q = place({ name: 'other', version: '1.0' }, 'pool/main/o/other/other_1.0_all.deb');
  await writerScan();
  fs.utimesSync(path.join(ch.webRoot, p), new Date(), new Date(Date.now() + 5000));
  expect((await writerScan()).debsRead).toBe(1);
  fs.rmSync(path.join(ch.webRoot, q));
  await writerScan();
  expect(Object.keys(readPoolStore(ch.stateDir).entries)).toEqual([p]);
});

test('recordAdded times feed addedMs; the file mtime is the fallback', async () => {
  const p = place({ name: 'demo', version: '1.0' }, 'pool/main/d/demo/demo_1.0_all.deb');
  const q = place({ name: 'other', version: '1.0' }, 'pool/main/o/other/other_1.0_all.deb');
  await recordAdded(ch, { [p]: 1234567890000, 'pool/main/g/gone/gone_1_all.deb': 1 });
  expect(Object.keys(readAdded(ch)).sort()).toEqual([p, 'pool/main/g/gone/gone_1_all.deb']);
  const { packages } = await writerScan();
  expect(packages.find((x) => x.poolPath === p)!.addedMs).toBe(1234567890000);
  expect(packages.find((x) => x.poolPath === q)!.addedMs).toBe(Math.round(fs.statSync(path.join(ch.webRoot, q)).mtimeMs));
  // The listing found no file at the other path: its time is dropped.
  expect(Object.keys(readAdded(ch))).toEqual([p]);
});

test('listPoolFiles on a channel without a pool is empty', () => {
  fs.rmSync(path.join(ch.webRoot, 'pool'), { recursive: true });
  expect(listPoolFiles(ch.webRoot)).toEqual([]);
});

describe('hostile data never becomes a path (issue 8)', () => {
  test('poolPathFor refuses a name, source, architecture or codename that is not a plain name', () => {
    const ok = { name: 'evil', version: '1.0', architecture: 'all', source: 'evil' };
    expect(() => poolPathFor({ ...ok, source: '../../../prod/pool/main/e/evil' }, 'main')).toThrow(/invalid source package name/);
    expect(() => poolPathFor({ ...ok, name: 'a/../../b' }, 'main')).toThrow(/invalid package name/);
    expect(() => poolPathFor({ ...ok, architecture: '../x' }, 'main')).toThrow(/invalid architecture/);
    expect(() => poolPathFor({ ...ok, version: '1/../../x' }, 'main')).toThrow(VersionError);
    expect(() => poolPathFor(ok, 'main', '..')).toThrow(/invalid codename folder/);
    expect(() => poolPathFor(ok, '../main')).toThrow(/invalid component/);
  });

  test('sourceName refuses a Source field that is not `name [(version)]`', () => {
    expect(sourceName(undefined, 'bin')).toBe('bin');
    expect(sourceName('src (1.0-1)', 'bin')).toBe('src');
    expect(() => sourceName('../../x', 'bin')).toThrow(/invalid Source field/);
    expect(() => sourceName('src\n ../x', 'bin')).toThrow(/invalid Source field/);
  });

  test('isPoolPath accepts only pool/…/*.deb without .., control characters or whitespace', () => {
    expect(isPoolPath('pool/main/h/hello/hello_1.0_all.deb')).toBe(true);
    for (const bad of [
      '../x.deb',
      'pool/../../x.deb',
      '/pool/x.deb',
      'pool/x .deb',
      'pool/x\u0000.deb',
      'pool//x.deb',
      'dists/x.deb',
      'pool/x.txt',
      42,
    ]) {
      expect([bad, isPoolPath(bad)]).toEqual([bad, false]);
    }
  });

  test('symlinks in the pool are listed apart and become problems, their target never read', async () => {
    const p = place({ name: 'demo', version: '1.0' }, 'pool/main/d/demo/demo_1.0_all.deb');
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    const target = buildDeb(outside, { name: 'outside', version: '1.0', compression: 'gzip' });
    fs.symlinkSync(target, path.join(ch.webRoot, 'pool/main/d/demo/outside_1.0_all.deb'));
    fs.symlinkSync(outside, path.join(ch.webRoot, 'pool/main/o'));
    expect(listPoolEntries(ch.webRoot)).toEqual({ files: [p], links: ['pool/main/d/demo/outside_1.0_all.deb', 'pool/main/o'] });
    const scan = await scanPool(ch);
    expect(scan.packages.map((x) => x.name)).toEqual(['demo']);
    expect(scan.problems.map((e) => e.message)).toEqual([
      `${path.join(ch.webRoot, 'pool/main/d/demo/outside_1.0_all.deb')}: symbolic link in the pool (never followed nor published; remove it)`,
      `${path.join(ch.webRoot, 'pool/main/o')}: symbolic link in the pool (never followed nor published; remove it)`,
    ]);
  });

  test('paths and control fields read back from added.json and cache.json are checked', async () => {
    const p = place({ name: 'demo', version: '1.0' }, 'pool/main/d/demo/demo_1.0_all.deb');
    fs.writeFileSync(path.join(ch.stateDir, 'added.json'), JSON.stringify({ [p]: 5, '../../../etc/x.deb': 6, 'pool/../x.deb': 7 }));
    expect(readAdded(ch)).toEqual({ [p]: 5 });
    await writerScan();
    const cacheFile = path.join(ch.stateDir, 'cache.json');
    const saved = fs.readFileSync(cacheFile, 'utf8');
    const evil = (v: string, k: string) => (k === 'Package' ? '../../evil' : v);
    // The stored identity, then the control fields of an entry without one: each checked again.
    for (const tamper of [
      (e: { id: string[] }) => (e.id[0] = '../../evil'),
      (e: { id?: string[]; controlJson: string }) => {
        delete e.id;
        e.controlJson = JSON.stringify((JSON.parse(e.controlJson) as [string, string][]).map(([k, v]) => [k, evil(v, k)]));
      },
    ]) {
      const cache = JSON.parse(saved);
      tamper(cache.entries[p]);
      fs.writeFileSync(cacheFile, JSON.stringify(cache));
      const scan = await scanPool(ch);
      expect(scan.packages).toEqual([]);
      expect(scan.problems[0].message).toMatch(/invalid Package field "..\/..\/evil" \(Debian Policy §5.6.1\)/);
    }
  });
});

describe('poolNameProblem: pool file names that cannot be a Filename', () => {
  test('names poolPathFor writes pass', () => {
    for (const p of [
      'pool/main/h/hello/hello_2.10-3_amd64.deb',
      'pool/main/libf/libfoo/bookworm/libfoo1_1:2.0~rc1+deb12u1_arm64.deb',
      'pool/main/p/php8.2/php8.2-cli_8.2.7-1~deb12u1_all.deb',
    ]) {
      expect([p, poolNameProblem(p)]).toEqual([p, undefined]);
    }
  });
  test.each([
    ['pool/main/h/hello/hello world.deb', '" "'],
    ["pool/main/h/hello/it's_1.0_all.deb", `"'"`],
    ['pool/main/h/hello/a;b$(c)`d`.deb', '";" "$" "(" ")" "`"'],
    ['pool/main/h/he llo/hello_1.0_all.deb', '" "'],
    ['pool/main/h/hello/x\u0001y.deb', '"\\u0001"'],
    ['pool/main/h/hello/_x.deb', '"_"'],
  ])('%j: the reason names %s', (p, chars) => {
    expect(poolNameProblem(p)).toBe(
      `file name holds ${chars}: a pool path has only letters, digits and . _ + ~ : - (ingest names a file ` +
        '<package>_<version>_<architecture>.deb), so it cannot be a Filename in Packages; rename or remove it (publish --skip-invalid publishes the rest)',
    );
  });
});
