import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PoolCache, readPoolStore } from './cache';
import { writeFileAtomic } from '../core/files';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const digests = { MD5sum: 'a', SHA1: 'b', SHA256: 'c' };

test('entries answer only while size, mtime and inode match', () => {
  const f = path.join(dir, 'x.deb');
  fs.writeFileSync(f, 'one');
  const st = fs.statSync(f);
  const c = PoolCache.load(dir);
  expect(c.get('pool/x.deb', st)).toBeUndefined();
  c.set('pool/x.deb', st, { control: [['Package', 'x']], digests });
  c.save();
  const again = PoolCache.load(dir);
  expect(again.get('pool/x.deb', st)).toMatchObject({ size: 3, control: [['Package', 'x']], digests });
  fs.writeFileSync(path.join(dir, 'y'), 'two');
  fs.renameSync(path.join(dir, 'y'), f); // same size, new inode
  expect(again.get('pool/x.deb', fs.statSync(f))).toBeUndefined();
});

test('a damaged cache file is ignored', () => {
  fs.writeFileSync(path.join(dir, 'cache.json'), '{ not json');
  const c = PoolCache.load(dir);
  expect(c.get('pool/x.deb', fs.statSync(dir))).toBeUndefined();
});

test('writeFileAtomic creates the file with the given mode and leaves no temp file', () => {
  const f = path.join(dir, 'secret');
  writeFileAtomic(f, 'data', 0o600);
  expect(fs.statSync(f).mode & 0o777).toBe(0o600);
  writeFileAtomic(f, 'new data', 0o600);
  expect(fs.readFileSync(f, 'utf8')).toBe('new data');
  expect(fs.readdirSync(dir)).toEqual(['secret']);
});

test('stored stanzas are kept for the same renderer key and dropped for another', () => {
  const f = path.join(dir, 'x.deb');
  fs.writeFileSync(f, 'one');
  const st = fs.statSync(f);
  const c = PoolCache.load(dir, 'k1');
  c.set('pool/x.deb', st, { control: [['Package', 'x']], digests });
  c.setStanza('pool/x.deb', 'Package: x\n');
  c.save();
  const same = PoolCache.load(dir, 'k1');
  expect(same.stanza('pool/x.deb')).toBeUndefined(); // not validated against the file yet
  same.get('pool/x.deb', st);
  expect(same.stanza('pool/x.deb')).toBe('Package: x\n');
  const keyless = PoolCache.load(dir);
  keyless.get('pool/x.deb', st);
  expect(keyless.stanza('pool/x.deb')).toBe('Package: x\n');
  const other = PoolCache.load(dir, 'k2');
  expect(other.get('pool/x.deb', st)).toMatchObject({ control: [['Package', 'x']] });
  expect(other.stanza('pool/x.deb')).toBeUndefined();
});

test('entries whose key is not a pool path are dropped on load (issue 8)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-keys-'));
  try {
    const entry = { size: 1, mtimeMs: 1, ino: 1, control: [], digests: { MD5sum: 'a', SHA1: 'b', SHA256: 'c' } };
    fs.writeFileSync(
      path.join(dir, 'cache.json'),
      JSON.stringify({
        version: 1,
        entries: { 'pool/main/a/a/a_1_all.deb': entry, '../../../etc/shadow': entry, 'pool/../../x.deb': entry },
      }),
    );
    const stat = { size: 1, mtimeMs: 1, ino: 1 } as fs.Stats;
    const cache = PoolCache.load(dir);
    expect(cache.get('pool/main/a/a/a_1_all.deb', stat)).toBeDefined();
    expect(cache.get('../../../etc/shadow', stat)).toBeUndefined();
    expect(cache.get('pool/../../x.deb', stat)).toBeUndefined();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('the store: a snapshot and a log of changes', () => {
  const st = (ino: number) => ({ size: 10, mtimeMs: 1000, ino });
  const poolPath = (i: number) => `pool/main/p/p${i}/p${i}_1.0_all.deb`;
  const entry = (i: number) => ({ control: [['Package', `p${i}`]] as [string, string][], digests: { ...digests, SHA256: `sha${i}` } });
  const log = () => fs.readFileSync(path.join(dir, 'cache.log'), 'utf8');
  const snapshot = () => fs.readFileSync(path.join(dir, 'cache.json'), 'utf8');

  /** A store of `n` entries, each with an upload time, saved as a snapshot (the first save). */
  function seed(n: number): void {
    const c = PoolCache.load(dir, 'k');
    for (let i = 0; i < n; i++) c.set(poolPath(i), st(i), entry(i));
    c.setAdded(Object.fromEntries(Array.from({ length: n }, (_, i) => [poolPath(i), i])));
    c.save();
  }

  test('a save appends what changed to the log; the snapshot is not rewritten; a load replays it', () => {
    seed(50);
    const snap = snapshot();
    expect(log().split('\n').filter(Boolean)).toHaveLength(1); // the header only
    const c = PoolCache.load(dir, 'k');
    c.set(poolPath(50), st(50), entry(50));
    c.setAdded({ [poolPath(50)]: 50 });
    c.save();
    expect(snapshot()).toBe(snap);
    expect(
      log()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as string[])[0]),
    ).toEqual(['log', 's', 'a']);
    const again = PoolCache.load(dir, 'k');
    expect(again.get(poolPath(50), st(50))).toMatchObject({ digests: { SHA256: 'sha50' } });
    expect(again.addedMs(poolPath(50))).toBe(50);
    expect(Object.keys(readPoolStore(dir).entries)).toHaveLength(51);
  });

  test('after a complete listing, files not seen are deleted with their upload times; without one nothing is', () => {
    seed(5);
    const partial = PoolCache.load(dir, 'k');
    partial.get(poolPath(0), st(0));
    partial.setAdded({ [poolPath(0)]: 99 });
    partial.save(); // no listing: the other entries stay
    expect(Object.keys(readPoolStore(dir).entries)).toHaveLength(5);
    const listed = PoolCache.load(dir, 'k');
    listed.get(poolPath(0), st(0));
    listed.get(poolPath(1), st(1));
    listed.markComplete();
    listed.save();
    const s = readPoolStore(dir);
    expect(Object.keys(s.entries)).toEqual([poolPath(0), poolPath(1)]);
    expect(s.added).toEqual({ [poolPath(0)]: 99, [poolPath(1)]: 1 });
  });

  test('the claim of markListed is its own last append, and a later change drops it', () => {
    seed(3);
    const c = PoolCache.load(dir, 'k');
    c.allEntries();
    c.set(poolPath(3), st(3), entry(3));
    c.save();
    c.markListed('G1');
    c.save();
    const lines = log().split('\n').filter(Boolean);
    expect(JSON.parse(lines[lines.length - 1])).toEqual(['l', 'G1']);
    expect(JSON.parse(lines[lines.length - 2])[0]).toBe('s');
    expect(PoolCache.load(dir, 'k').isListingOf('G1')).toBe(true);
    // Upload times alone do not change the pool: the claim stays.
    const t = PoolCache.load(dir, 'k');
    t.setAdded({ [poolPath(3)]: 7 });
    t.save();
    expect(PoolCache.load(dir, 'k').isListingOf('G1')).toBe(true);
    const other = PoolCache.load(dir, 'k');
    other.set(poolPath(4), st(4), entry(4));
    other.save();
    expect(PoolCache.load(dir, 'k').isListingOf('G1')).toBe(false);
  });

  test('a torn last line (a writer killed mid-append) is ignored, and cut off by the next save', () => {
    seed(3);
    const c = PoolCache.load(dir, 'k');
    c.allEntries();
    c.markListed('G1');
    c.save();
    const whole = log();
    // A kill in the middle of the next writer's append: its change is half on disk.
    fs.appendFileSync(path.join(dir, 'cache.log'), JSON.stringify(['s', poolPath(9), { size: 1 }]).slice(0, 20));
    const after = PoolCache.load(dir, 'k');
    expect(after.isListingOf('G1')).toBe(true);
    expect(after.recorded(poolPath(9))).toBeUndefined();
    after.setAdded({ [poolPath(1)]: 42 });
    after.save();
    expect(log()).toBe(`${whole}${JSON.stringify(['a', poolPath(1), 42])}\n`);
    expect(PoolCache.load(dir, 'k').addedMs(poolPath(1))).toBe(42);
  });

  test('a log that continues another snapshot is ignored (a kill between writing the snapshot and the new log)', () => {
    seed(2);
    const stale = log();
    const c = PoolCache.load(dir, 'k');
    c.set(poolPath(2), st(2), entry(2));
    c.save();
    // Put a log with another snapshot's id in place.
    fs.writeFileSync(
      path.join(dir, 'cache.log'),
      stale.replace(/"log","[0-9a-f]+"/, '"log","0000000000000000"') + log().split('\n').slice(1).join('\n'),
    );
    const loaded = PoolCache.load(dir, 'k');
    expect(loaded.recorded(poolPath(2))).toBeUndefined();
    expect(loaded.recorded(poolPath(1))).toBeDefined();
    // The next save writes a snapshot and a log of its own.
    loaded.setAdded({ [poolPath(0)]: 5 });
    loaded.save();
    const s = readPoolStore(dir);
    expect(s.added[poolPath(0)]).toBe(5);
    expect(JSON.parse(log().split('\n')[0])).toEqual(['log', (JSON.parse(snapshot()) as { logId: string }).logId]);
  });

  test('a log grown past a quarter of the snapshot (and 256 KiB) is folded into a new snapshot', () => {
    seed(200);
    let folded = false;
    for (let round = 0; round < 400 && !folded; round++) {
      const c = PoolCache.load(dir, 'k');
      c.get(poolPath(round % 200), st(round % 200));
      c.setStanza(poolPath(round % 200), `Package: p\nDescription: ${'x'.repeat(2000)} ${round}\n`);
      c.save();
      folded = log().split('\n').filter(Boolean).length === 1;
    }
    expect(folded).toBe(true);
    const s = readPoolStore(dir);
    expect(Object.keys(s.entries)).toHaveLength(200);
    expect(Object.keys(s.added)).toHaveLength(200);
  });

  test('a store of the earlier format (cache.json version 2, added.json) is read, then rewritten as a snapshot', () => {
    const e = { size: 10, mtimeMs: 1000, ino: 1, ...entry(1) };
    fs.writeFileSync(
      path.join(dir, 'cache.json'),
      JSON.stringify({ version: 2, stanzaKey: 'k', listedFor: 'G0', entries: { [poolPath(1)]: e } }),
    );
    fs.writeFileSync(path.join(dir, 'added.json'), JSON.stringify({ [poolPath(1)]: 123 }));
    const c = PoolCache.load(dir, 'k');
    expect(c.get(poolPath(1), st(1))).toMatchObject({ digests: { SHA256: 'sha1' } });
    expect(c.addedMs(poolPath(1))).toBe(123);
    expect(c.isListingOf('G0')).toBe(false); // a claim of the earlier format is not taken
    c.save();
    expect(JSON.parse(snapshot())).toMatchObject({ version: 4, added: { [poolPath(1)]: 123 } });
    expect(fs.existsSync(path.join(dir, 'added.json'))).toBe(false);
  });

  test('a store of format 3 (control fields as pairs) is read with its log and claim, then rewritten in format 4', () => {
    const full = (i: number): [string, string][] => [
      ['Package', `p${i}`],
      ['Version', '1.0'],
      ['Architecture', 'all'],
      ['Description', 'd'],
    ];
    const e = (i: number) => ({ size: 10, mtimeMs: 1000, ino: i, control: full(i), digests: { ...digests, SHA256: `sha${i}` } });
    fs.writeFileSync(
      path.join(dir, 'cache.json'),
      JSON.stringify({ version: 3, logId: 'L3', stanzaKey: 'k', entries: { [poolPath(1)]: e(1) }, added: { [poolPath(1)]: 5 } }),
    );
    const lines = [
      ['log', 'L3'],
      ['s', poolPath(2), e(2)],
      ['l', 'G3'],
    ];
    fs.writeFileSync(path.join(dir, 'cache.log'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const c = PoolCache.load(dir, 'k');
    expect(c.isListingOf('G3')).toBe(true);
    expect(c.get(poolPath(2), st(2))?.control).toEqual(full(2));
    c.allEntries();
    c.save();
    const snap = JSON.parse(snapshot());
    expect(snap.version).toBe(4);
    expect(Object.keys(snap.entries)).toEqual([poolPath(1), poolPath(2)]);
    // Control as JSON text, the identity beside it.
    expect(JSON.parse(snap.entries[poolPath(1)].controlJson)).toEqual(full(1));
    expect(snap.entries[poolPath(2)].id).toEqual(['p2', '1.0', 'all', 'p2']);
    expect(snap.listedFor).toBe('G3');
    const again = PoolCache.load(dir, 'k');
    expect(again.get(poolPath(1), st(1))?.control).toEqual(full(1));
    again.set(poolPath(3), st(3), { control: full(3), digests });
    again.save();
    const line = JSON.parse(log().trim().split('\n').pop()!);
    expect(line).toEqual([
      's',
      poolPath(3),
      { size: 10, mtimeMs: 1000, ino: 3, id: ['p3', '1.0', 'all', 'p3'], controlJson: JSON.stringify(full(3)), digests },
    ]);
    expect(readPoolStore(dir).entries[poolPath(3)]).toMatchObject({
      control: full(3),
      identity: { name: 'p3', version: '1.0', architecture: 'all', source: 'p3' },
    });
  });
});

test('the store is written in ASCII and gives back every character, a byte kept as a lone surrogate included', () => {
  const f = path.join(dir, 'x.deb');
  fs.writeFileSync(f, 'one');
  const st = fs.statSync(f);
  // A Latin-1 byte of a .deb is kept as a lone surrogate (deb/control.ts decodeControlBytes).
  const control = (who: string): [string, string][] => [
    ['Package', 'x'],
    ['Maintainer', `${who} <j@example.org> \udce9`],
    ['Description', 'snow ☃ and 🐧'],
  ];
  const saveAndCheck = (who: string, file: string) => {
    const c = PoolCache.load(dir);
    c.set('pool/x.deb', st, { control: control(who), digests });
    c.save();
    expect(fs.readFileSync(path.join(dir, file), 'utf8')).toContain(who.includes('é') ? '\\u00e9' : '\\u00fc');
    for (const name of ['cache.json', 'cache.log']) {
      const bytes = fs.readFileSync(path.join(dir, name));
      expect([name, bytes.every((b) => b < 0x80)]).toEqual([name, true]);
    }
    expect(PoolCache.load(dir).get('pool/x.deb', st)?.control).toEqual(control(who));
    expect(readPoolStore(dir).entries['pool/x.deb'].control).toEqual(control(who));
  };
  saveAndCheck('José', 'cache.json'); // the first save writes a snapshot
  saveAndCheck('Müller', 'cache.log'); // the next one appends to the log
});
