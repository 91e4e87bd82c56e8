import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PoolCache } from './cache';
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
