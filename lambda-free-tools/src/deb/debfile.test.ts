/**
 * readDeb against the Debian tools: packages built by dpkg-deb in every compression and real
 * packages from the archive (control equal to `dpkg-deb -f`, digests equal to md5sum/sha*sum), every
 * refused input (DebError naming the file, no open fd, no unhandled rejection), and a large package
 * read without holding it in memory.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tar from 'tar-stream';
import { arArchive, buildDeb, fetchRealDebs } from '../../../test/harness/debs';
import { DebError } from '../errors';
import { renderStanza } from './control';
import { readDeb } from './debfile';

let dir: string;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'debfile-test-'));
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  fs.rmSync(dir, { recursive: true, force: true });
});

const sum = (tool: string, file: string): string => execFileSync(tool, [file], { encoding: 'utf8' }).split(' ')[0];

/** Asserts readDeb's size, digests and control equal what the Debian tools say about `file`. */
async function expectLikeDebianTools(file: string): Promise<void> {
  const info = await readDeb(file, { digests: ['MD5sum', 'SHA1', 'SHA256', 'SHA512'] });
  expect(info.size).toBe(fs.statSync(file).size);
  expect(info.digests).toEqual({
    MD5sum: sum('md5sum', file),
    SHA1: sum('sha1sum', file),
    SHA256: sum('sha256sum', file),
    SHA512: sum('sha512sum', file),
  });
  // Without field names dpkg-deb -f prints the control file as it is.
  expect(renderStanza(info.control)).toBe(execFileSync('dpkg-deb', ['-f', file], { encoding: 'utf8' }));
  for (const field of ['Package', 'Version', 'Architecture', 'Description']) {
    expect(info.control.get(field) + '\n').toBe(execFileSync('dpkg-deb', ['-f', file, field], { encoding: 'utf8' }));
  }
}

describe('readDeb on packages built by dpkg-deb', () => {
  test.each(['gzip', 'xz', 'zstd', 'none'] as const)('compression %s', async (compression) => {
    const file = buildDeb(dir, {
      name: `pkg-${compression}`,
      version: '1:2.0~rc1-3+deb12u1',
      architecture: 'amd64',
      compression,
      depends: 'libc6 (>= 2.36), hello | cowsay',
      extraFields: { Section: 'misc', 'X-Epiconcept-Role': 'front' },
      description: 'synopsis line\n First paragraph.\n .\n  verbatim  line',
      payloadBytes: 100000,
    });
    expect(path.basename(file)).toBe(`pkg-${compression}_2.0~rc1-3+deb12u1_amd64.deb`);
    const suffix = { gzip: '.gz', xz: '.xz', zstd: '.zst', none: '' }[compression];
    expect(execFileSync('ar', ['t', file], { encoding: 'utf8' }).split('\n')[1]).toBe(`control.tar${suffix}`);
    await expectLikeDebianTools(file);
    const info = await readDeb(file);
    expect(Object.keys(info.digests)).toEqual(['MD5sum', 'SHA1', 'SHA256']);
    expect([...info.control.keys()]).toEqual([
      'Package',
      'Version',
      'Architecture',
      'Maintainer',
      'Depends',
      'Section',
      'X-Epiconcept-Role',
      'Description',
    ]);
  });
});

describe('readDeb on real packages from the Debian archive', () => {
  test('hello, tree, jq, libjq1, sl, cowsay', async () => {
    const files = fetchRealDebs(['hello', 'tree', 'jq', 'libjq1', 'sl', 'cowsay']);
    for (const file of files) await expectLikeDebianTools(file);
  }, 300000);
});

/** A control.tar holding `entries` ([path, content]); './control' by default. */
function controlTar(entries: [string, string][]): Promise<Buffer> {
  const pack = tar.pack();
  // A fixed mtime makes the tar, and so every test archive, the same bytes on every run.
  const mtime = new Date(1700000000000);
  pack.entry({ name: './', type: 'directory', mtime });
  for (const [name, content] of entries) pack.entry({ name, mode: 0o644, mtime }, content);
  pack.finalize();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    pack.on('data', (d: unknown) => parts.push(d as Buffer));
    pack.on('end', () => resolve(Buffer.concat(parts)));
    pack.on('error', reject);
  });
}

const CONTROL = 'Package: hand-made\nVersion: 1.0-1\nArchitecture: all\nMaintainer: x <x@y>\nDescription: d\n';

/** A hand-made .deb: ar of debian-binary, control.tar.gz (from `control`) and data.tar.gz. */
async function handMade(control: string, style: 'dpkg' | 'gnu' | 'bsd' = 'dpkg'): Promise<Buffer> {
  return arArchive(
    [
      ['debian-binary', '2.0\n'],
      ['control.tar.gz', zlib.gzipSync(await controlTar([['./control', control]]))],
      ['data.tar.gz', zlib.gzipSync(await controlTar([]))],
    ],
    style,
  );
}

describe('readDeb on hand-made archives', () => {
  test.each(['dpkg', 'gnu', 'bsd'] as const)('reads %s-style ar member names', async (style) => {
    const file = path.join(dir, `style-${style}.deb`);
    fs.writeFileSync(file, await handMade(CONTROL, style));
    const info = await readDeb(file);
    expect(renderStanza(info.control)).toBe(CONTROL);
    expect(info.size).toBe(fs.statSync(file).size);
  });

  test('accepts _-members between the standard ones and ignores trailing ones, as dpkg-deb does', async () => {
    const file = path.join(dir, 'extra.deb');
    const ctl = zlib.gzipSync(await controlTar([['./control', CONTROL]]));
    fs.writeFileSync(
      file,
      arArchive([
        ['debian-binary', '2.0\n'],
        ['_gpgorigin', 'sig'],
        ['control.tar.gz', ctl],
        ['data.tar.xz', 'x'],
        ['zz', 'y'],
      ]),
    );
    expect((await readDeb(file)).control.get('Package')).toBe('hand-made');
    expect(execFileSync('dpkg-deb', ['-f', file, 'Package'], { encoding: 'utf8' })).toBe('hand-made\n');
  });
});

describe('readDeb control fields that reach a path', () => {
  test('accepts Source as `name` or `name (version)` (Debian Policy §5.6.1)', async () => {
    for (const [i, source] of ['hello-src', 'hello-src (1:2.0-1~bpo1)', 'lib+x.y (2.0)'].entries()) {
      const file = path.join(dir, `source-ok-${i}.deb`);
      fs.writeFileSync(file, await handMade(`Package: hand-made\nSource: ${source}\nVersion: 1.0-1\nArchitecture: amd64\n`));
      expect((await readDeb(file)).control.get('Source')).toBe(source);
    }
  });

  test('reads from a descriptor the caller opened, and leaves it open', async () => {
    const file = path.join(dir, 'by-fd.deb');
    fs.writeFileSync(file, await handMade(CONTROL));
    const fd = fs.openSync(file, 'r');
    try {
      const info = await readDeb('shown-name.deb', { fd });
      expect(info.control.get('Package')).toBe('hand-made');
      expect(info.size).toBe(fs.statSync(file).size);
      expect(fs.fstatSync(fd).isFile()).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('readDeb refuses bad input', () => {
  test('every bad input gives DebError naming the file, leaves no fd open and no unhandled rejection', async () => {
    const good = fs.readFileSync(buildDeb(dir, { name: 'good', version: '1.0', compression: 'gzip', payloadBytes: 5000 }));
    const gz = async (control: string): Promise<Buffer> => zlib.gzipSync(await controlTar([['./control', control]]));
    const withControl = async (name: string, data: Buffer): Promise<Buffer> =>
      arArchive([
        ['debian-binary', '2.0\n'],
        [name, data],
        ['data.tar.gz', 'x'],
      ]);
    const tarOf = await controlTar([['./control', CONTROL]]);
    const compressWith = (tool: string): Buffer => execFileSync(tool, ['-c'], { input: tarOf });
    const corrupt = (b: Buffer): Buffer => {
      const c = Buffer.from(b);
      for (let k = Math.floor(c.length / 3); k < c.length; k += 7) c[k] ^= 0x55;
      return c;
    };
    const dirPath = path.join(dir, 'a-directory.deb');
    fs.mkdirSync(dirPath);
    const cases: [string, Buffer | null, RegExp][] = [
      ['missing.deb', null, /no such file/],
      ['empty.deb', Buffer.alloc(0), /empty file/],
      ['text.deb', Buffer.from('Package: x\n'), /not an ar archive/],
      ['cut-in-header.deb', good.subarray(0, 100), /truncated member header/],
      ['cut-in-control.deb', good.subarray(0, 200), /truncated member 'control.tar.gz'/],
      ['cut-in-data.deb', good.subarray(0, good.length - 10), /truncated member 'data.tar.gz'/],
      [
        'no-debian-binary.deb',
        arArchive([
          ['control.tar.gz', await gz(CONTROL)],
          ['data.tar.gz', 'x'],
        ]),
        /first member is 'control.tar.gz', expected 'debian-binary'/,
      ],
      [
        'format-3.deb',
        arArchive([
          ['debian-binary', '3.0\n'],
          ['control.tar.gz', await gz(CONTROL)],
        ]),
        /unsupported format version '3.0'/,
      ],
      ['only-debian-binary.deb', arArchive([['debian-binary', '2.0\n']]), /no control.tar member/],
      [
        'no-data.deb',
        arArchive([
          ['debian-binary', '2.0\n'],
          ['control.tar.gz', await gz(CONTROL)],
        ]),
        /no data.tar member/,
      ],
      [
        'data-first.deb',
        arArchive([
          ['debian-binary', '2.0\n'],
          ['data.tar.gz', 'x'],
        ]),
        /unexpected member 'data.tar.gz' where control.tar was expected/,
      ],
      [
        'bzip2.deb',
        await withControl('control.tar.bz2', Buffer.from('BZh')),
        /unsupported compression of control member 'control.tar.bz2'/,
      ],
      ['corrupt-gz.deb', await withControl('control.tar.gz', corrupt(await gz(CONTROL))), /corrupt control.tar.gz/],
      ['corrupt-xz.deb', await withControl('control.tar.xz', corrupt(compressWith('xz'))), /corrupt control.tar.xz/],
      [
        'corrupt-zst.deb',
        await withControl('control.tar.zst', Buffer.concat([Buffer.from('xx'), compressWith('zstd')])),
        /corrupt control.tar.zst/,
      ],
      // fzstd does not check the frame checksum: damaged blocks may decode to garbage that the tar
      // reader then refuses. Either way a DebError names the member.
      ['corrupt-zst-blocks.deb', await withControl('control.tar.zst', corrupt(compressWith('zstd'))), /corrupt (tar in )?control.tar.zst/],
      ['not-a-tar.deb', await withControl('control.tar', Buffer.alloc(1024, 'x')), /corrupt tar in control.tar/],
      [
        'no-control-file.deb',
        await withControl('control.tar.gz', zlib.gzipSync(await controlTar([['./md5sums', '']]))),
        /no .\/control file in control.tar.gz/,
      ],
      ['two-stanzas.deb', await withControl('control.tar.gz', await gz(CONTROL + '\nPackage: b\n')), /control file: 2 stanzas found/],
      ['comment.deb', await withControl('control.tar.gz', await gz('# hi\n' + CONTROL)), /control file: line 1: comment lines/],
      [
        'no-package.deb',
        await withControl('control.tar.gz', await gz('Version: 1\nArchitecture: all\n')),
        /control file has no Package field/,
      ],
      [
        'no-version.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nArchitecture: all\n')),
        /control file has no Version field/,
      ],
      ['no-arch.deb', await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1\n')), /control file has no Architecture field/],
      [
        'bad-version.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1_0\nArchitecture: all\n')),
        /invalid Version field "1_0": invalid character/,
      ],
      [
        'bad-name.deb',
        await withControl('control.tar.gz', await gz('Package: Big_Name\nVersion: 1\nArchitecture: all\n')),
        /invalid Package field "Big_Name"/,
      ],
      [
        'bad-arch.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1\nArchitecture: x86 64\n')),
        /invalid Architecture field "x86 64"/,
      ],
      // Hostile values that would reach a pool path or a file name (issue 8).
      [
        'source-dotdot.deb',
        await withControl(
          'control.tar.gz',
          await gz('Package: ab\nSource: ../../../prod/pool/main/e/evil\nVersion: 1\nArchitecture: all\n'),
        ),
        /invalid Source field "\.\.\/\.\.\/\.\.\/prod/,
      ],
      [
        'source-slash.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nSource: a/b\nVersion: 1\nArchitecture: all\n')),
        /invalid Source field "a\/b"/,
      ],
      [
        'source-bad-version.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nSource: ab (1/../2)\nVersion: 1\nArchitecture: all\n')),
        /invalid Source field "ab \(1\/\.\.\/2\)"/,
      ],
      [
        'source-newline.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nSource: ab\n ../x\nVersion: 1\nArchitecture: all\n')),
        /invalid Source field "ab\\n \.\.\/x"/,
      ],
      [
        'source-nul.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nSource: ab\u0000x\nVersion: 1\nArchitecture: all\n')),
        /invalid Source field "ab\\u0000x"/,
      ],
      [
        'source-trailing.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nSource: ab (1.0) x\nVersion: 1\nArchitecture: all\n')),
        /invalid Source field/,
      ],
      [
        'package-slash.deb',
        await withControl('control.tar.gz', await gz('Package: ../ab\nVersion: 1\nArchitecture: all\n')),
        /invalid Package field "\.\.\/ab"/,
      ],
      [
        'package-nul.deb',
        await withControl('control.tar.gz', await gz('Package: ab\u0000\nVersion: 1\nArchitecture: all\n')),
        /invalid Package field "ab\\u0000"/,
      ],
      [
        'version-slash.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1/../../x\nArchitecture: all\n')),
        /invalid Version field "1\/\.\.\/\.\.\/x"/,
      ],
      [
        'version-newline.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1\n x\nArchitecture: all\n')),
        /invalid Version field "1\\n x"/,
      ],
      [
        'arch-slash.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1\nArchitecture: ../amd64\n')),
        /invalid Architecture field "\.\.\/amd64"/,
      ],
      [
        'arch-newline.deb',
        await withControl('control.tar.gz', await gz('Package: ab\nVersion: 1\nArchitecture: amd64\n /x\n')),
        /invalid Architecture field "amd64\\n \/x"/,
      ],
      ['a-directory.deb', null, /is a directory/],
      ['a-symlink.deb', null, /symbolic link \(never followed\)/],
    ];
    fs.writeFileSync(path.join(dir, 'link-target.deb'), good);
    fs.symlinkSync(path.join(dir, 'link-target.deb'), path.join(dir, 'a-symlink.deb'));
    // Files of the test directory this process holds open (checked right after each read, before
    // a garbage collection could close a leaked handle).
    const openHere = (): string[] =>
      fs.readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(dir) ? [target] : [];
        } catch {
          return []; // closed meanwhile (the fd of readdirSync itself)
        }
      });
    for (const [name, content, reason] of cases) {
      const file = path.join(dir, name);
      if (content) fs.writeFileSync(file, content);
      let err: unknown;
      try {
        await readDeb(file);
      } catch (e) {
        err = e;
      }
      expect([name, err]).toEqual([name, expect.any(DebError)]);
      expect((err as DebError).file).toBe(file);
      expect([name, (err as DebError).message]).toEqual([name, expect.stringMatching(reason)]);
      expect((err as DebError).message.startsWith(`${file}: `)).toBe(true);
      expect([name, openHere()]).toEqual([name, []]);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
  });
});

describe('readDeb on a large package', () => {
  test('streams a 50 MiB package: digests right, memory growth far below the file size', async () => {
    const payload = 50 << 20;
    const file = buildDeb(dir, { name: 'big', version: '1.0', compression: 'none', payloadBytes: payload });
    expect(fs.statSync(file).size).toBeGreaterThan(payload);
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const info = await readDeb(file, { digests: ['SHA256'] });
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(info.digests.SHA256).toBe(sum('sha256sum', file));
    expect(info.control.get('Package')).toBe('big');
    // Holding the file would add 50 MiB; streaming through one reused buffer adds about 1 MiB.
    expect(peak - before).toBeLessThan(payload / 4);
  }, 120000);
});
