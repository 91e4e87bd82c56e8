/**
 * files.ts: the one symlink policy of the writers. Every test plants what an uploader could plant
 * (a symlink on the way, at the final name, at a temp name) and checks that the victim it points at
 * is never written, and that the operation fails with UnsafePathError or EEXIST instead.
 */
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { UnsafePathError } from '../errors';
import { checkRelPath, confine, copyFdTo, moveEntry, placeFile, SafeDir, sha256File, walkNoFollow, writeFileAtomic } from './files';

let root: string;
let victimDir: string;
let victim: string;
beforeEach(() => {
  root = mkTemp('files-test');
  victimDir = path.join(root, 'victim');
  fs.mkdirSync(victimDir);
  victim = path.join(victimDir, 'key.asc');
  fs.writeFileSync(victim, 'PUBLIC KEY');
});
afterEach(() => rmTemp(root));

const victimUnchanged = () => {
  expect(fs.readFileSync(victim, 'utf8')).toBe('PUBLIC KEY');
  expect(fs.readdirSync(victimDir)).toEqual(['key.asc']);
};

describe('checkRelPath and confine', () => {
  test.each([
    ['', /empty path/],
    ['/etc/shadow', /absolute/],
    ['pool/../../prod/pool/x.deb', /'\.\.' segment/],
    ['pool/./x.deb', /'\.' segment/],
    ['pool//x.deb', /empty path segment/],
    ['pool/x.deb/', /empty path segment/],
    ['pool/x\u0000.deb', /control character/],
    ['pool/x\n.deb', /control character/],
  ])('refuses %j', (rel, reason) => {
    expect(() => checkRelPath(rel)).toThrow(UnsafePathError);
    expect(() => checkRelPath(rel)).toThrow(reason);
  });

  test('accepts a plain relative path and returns its segments', () => {
    expect(checkRelPath('pool/main/h/hello/hello_1.0_all.deb')).toEqual(['pool', 'main', 'h', 'hello', 'hello_1.0_all.deb']);
  });

  test('confine refuses a symlink anywhere below the base, and a file where a folder is needed', () => {
    fs.mkdirSync(path.join(root, 'web/pool/main'), { recursive: true });
    fs.symlinkSync(victimDir, path.join(root, 'web/pool/main/e'));
    expect(() => confine(path.join(root, 'web'), 'pool/main/e/key.asc')).toThrow(/pool\/main\/e: symbolic link/);
    fs.symlinkSync(victim, path.join(root, 'web/pool/main/f.deb'));
    expect(() => confine(path.join(root, 'web'), 'pool/main/f.deb')).toThrow(/symbolic link/);
    fs.writeFileSync(path.join(root, 'web/pool/file'), 'x');
    expect(() => confine(path.join(root, 'web'), 'pool/file/x.deb')).toThrow(/not a folder/);
    expect(confine(path.join(root, 'web'), 'pool/main/new/x.deb')).toBe(path.join(root, 'web/pool/main/new/x.deb'));
  });
});

describe('SafeDir', () => {
  test('open never follows a symlinked component below the base', () => {
    fs.mkdirSync(path.join(root, 'web/pool'), { recursive: true });
    fs.symlinkSync(victimDir, path.join(root, 'web/pool/main'));
    expect(() => SafeDir.open(path.join(root, 'web'), 'pool/main/x', { create: 0o755 })).toThrow(UnsafePathError);
    victimUnchanged();
  });

  test('creates missing folders with exactly the mode, keeping the setgid bit of the parent', () => {
    const base = path.join(root, 'web');
    fs.mkdirSync(base);
    fs.chmodSync(base, 0o2755);
    const old = process.umask(0o077);
    try {
      SafeDir.open(base, 'pool/main/h', { create: 0o755 }).close();
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(path.join(base, 'pool/main/h')).mode & 0o7777).toBe(0o2755);
  });

  test('owned refuses a folder of another user; createFile never writes through a planted symlink', () => {
    const dir = SafeDir.open(root, '');
    try {
      fs.symlinkSync(victim, path.join(root, 'x.reason'));
      expect(() => dir.createFile('x.reason', 'reason: pwned\n', 0o644)).toThrow(/EEXIST/);
      victimUnchanged();
      dir.createFile('y.reason', 'ok\n', 0o640);
      expect(fs.statSync(path.join(root, 'y.reason')).mode & 0o777).toBe(0o640);
    } finally {
      dir.close();
    }
    if (process.geteuid?.() === 0) {
      fs.mkdirSync(path.join(root, 'foreign'));
      fs.chownSync(path.join(root, 'foreign'), 65534, 65534);
      expect(() => SafeDir.openAbs(path.join(root, 'foreign'), { owned: true })).toThrow(/owned by uid 65534, not by the running user/);
    }
    fs.symlinkSync(victimDir, path.join(root, 'rejected'));
    expect(() => SafeDir.openAbs(path.join(root, 'rejected'), { create: 0o755, owned: true })).toThrow(/symbolic link/);
  });
});

describe('placeFile, copyFdTo, moveEntry', () => {
  test('never replaces an existing file; links share the inode; copies get the mode asked for', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'A');
    fs.writeFileSync(path.join(root, 'b'), 'B');
    const at = (rel: string) => ({ base: root, rel });
    await expect(placeFile(at('a'), at('b'), 'move')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(placeFile(at('a'), at('b'), 'copy')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(placeFile(at('a'), at('b'), 'link')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(path.join(root, 'b'), 'utf8')).toBe('B');
    expect(await placeFile(at('a'), at('c'), 'link')).toBe('linked');
    expect(fs.statSync(path.join(root, 'c')).ino).toBe(fs.statSync(path.join(root, 'a')).ino);
    expect(await placeFile(at('a'), at('sub/d'), 'copy', { mode: 0o664 })).toBe('copied');
    expect(fs.statSync(path.join(root, 'sub/d')).ino).not.toBe(fs.statSync(path.join(root, 'a')).ino);
    expect(fs.statSync(path.join(root, 'sub/d')).mode & 0o777).toBe(0o664);
    expect(await placeFile(at('sub/d'), at('e'), 'move')).toBe('renamed');
    expect(fs.existsSync(path.join(root, 'sub/d'))).toBe(false);
    expect(fs.readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  test('a planted symlink at the destination is refused, never written through nor replaced', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'EVIL');
    fs.symlinkSync(victim, path.join(root, 'dest'));
    for (const how of ['move', 'link', 'copy'] as const) {
      await expect(placeFile({ base: root, rel: 'a' }, { base: root, rel: 'dest' }, how)).rejects.toMatchObject({ code: 'EEXIST' });
    }
    expect(fs.lstatSync(path.join(root, 'dest')).isSymbolicLink()).toBe(true);
    victimUnchanged();
  });

  test('a symlink on the way to the destination or as the source is refused', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'EVIL');
    fs.mkdirSync(path.join(root, 'web/pool/main'), { recursive: true });
    fs.symlinkSync(victimDir, path.join(root, 'web/pool/main/e'));
    await expect(
      placeFile({ base: root, rel: 'a' }, { base: path.join(root, 'web'), rel: 'pool/main/e/evil/x.deb' }, 'copy'),
    ).rejects.toThrow(UnsafePathError);
    await expect(placeFile({ base: root, rel: 'a' }, { base: path.join(root, 'web'), rel: 'pool/main/e/x.deb' }, 'move')).rejects.toThrow(
      UnsafePathError,
    );
    fs.symlinkSync(victim, path.join(root, 'link'));
    await expect(placeFile({ base: root, rel: 'link' }, { base: root, rel: 'copy-of-link' }, 'copy')).rejects.toThrow(/symbolic link/);
    await expect(sha256File({ base: root, rel: 'link' })).rejects.toThrow(/symbolic link/);
    expect(fs.existsSync(path.join(root, 'copy-of-link'))).toBe(false);
    victimUnchanged();
  });

  test('copyFdTo copies from a descriptor and refuses an existing name', async () => {
    fs.writeFileSync(path.join(root, 'src'), 'bytes');
    const fd = fs.openSync(path.join(root, 'src'), 'r');
    try {
      await copyFdTo(fd, { base: root, rel: 'out/file' }, { mode: 0o664 });
      expect(fs.readFileSync(path.join(root, 'out/file'), 'utf8')).toBe('bytes');
      fs.symlinkSync(victim, path.join(root, 'out/planted'));
      await expect(copyFdTo(fd, { base: root, rel: 'out/planted' })).rejects.toMatchObject({ code: 'EEXIST' });
    } finally {
      fs.closeSync(fd);
    }
    victimUnchanged();
  });

  test('moveEntry moves a symlink as a link (its target untouched) and refuses a taken name', () => {
    fs.symlinkSync(victim, path.join(root, 'link.deb'));
    fs.mkdirSync(path.join(root, 'rejected'));
    const src = SafeDir.open(root, '');
    const dest = SafeDir.open(root, 'rejected');
    try {
      fs.writeFileSync(path.join(root, 'rejected/taken'), 'x');
      expect(() => moveEntry(src, 'link.deb', dest, 'taken')).toThrow(/EEXIST/);
      moveEntry(src, 'link.deb', dest, 'moved');
    } finally {
      src.close();
      dest.close();
    }
    expect(fs.readlinkSync(path.join(root, 'rejected/moved'))).toBe(victim);
    victimUnchanged();
  });
});

describe('writeFileAtomic and walkNoFollow', () => {
  test('writeFileAtomic replaces a symlink at the name instead of writing through it, and refuses a symlinked folder', () => {
    fs.symlinkSync(victim, path.join(root, 'state.json'));
    writeFileAtomic(path.join(root, 'state.json'), '{}', 0o600);
    expect(fs.lstatSync(path.join(root, 'state.json')).isFile()).toBe(true);
    expect(fs.statSync(path.join(root, 'state.json')).mode & 0o777).toBe(0o600);
    victimUnchanged();
    fs.symlinkSync(victimDir, path.join(root, 'state'));
    expect(() => writeFileAtomic(path.join(root, 'state/cache.json'), '{}')).toThrow(/symbolic link/);
    victimUnchanged();
  });

  test('walkNoFollow lists files, reports links apart and never enters a linked folder', () => {
    fs.mkdirSync(path.join(root, 'tree/a'), { recursive: true });
    fs.writeFileSync(path.join(root, 'tree/a/f.deb'), 'x');
    fs.symlinkSync(victimDir, path.join(root, 'tree/linked-folder'));
    fs.symlinkSync(victim, path.join(root, 'tree/a/linked.deb'));
    const links: string[] = [];
    expect(walkNoFollow(path.join(root, 'tree'), { onLink: (r) => links.push(r) })).toEqual(['a/f.deb']);
    expect(links.sort()).toEqual(['a/linked.deb', 'linked-folder']);
    expect(walkNoFollow(path.join(root, 'missing'))).toEqual([]);
  });
});
