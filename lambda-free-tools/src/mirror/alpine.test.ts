import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { MirrorError } from '../errors';
import { apkChecksum, apkFileName, readApkIndex, readChecksumFile, readLatestReleases, verifyApk, type ApkIndexEntry } from './alpine';
import {
  alpineKey,
  apkIndexText,
  apkMembers,
  gzip9,
  signatureMember,
  tarBytes,
  unsignedApkIndex,
  writeAlpineTree,
  writeApk,
  type AlpineKey,
} from '../../../test/harness/alpine';

let tmp: string;
let key: AlpineKey;
let other: AlpineKey;
let tree: { files: string[]; indexes: Record<string, ApkIndexEntry[]> };
const trusted = () => new Map([[key.name, key.publicPem]]);
const root = () => path.join(tmp, 'tree');

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alpine-'));
  key = alpineKey();
  other = alpineKey('other@fixture');
  tree = await writeAlpineTree(root(), { branch: '3.15', version: '3.15.4', arch: 'x86_64', key });
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The MirrorError `p` rejects (or `f` throws) with; fails the test when there is none. */
async function refusal(p: Promise<unknown> | (() => unknown)): Promise<MirrorError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(MirrorError);
    return e as MirrorError;
  }
  throw new Error('expected a MirrorError, got none');
}

/** A signed index of `text` (the whole APKINDEX), signed with `signer`, as bytes. */
async function signedIndex(text: string, signer: AlpineKey = key): Promise<Buffer> {
  const unsigned = await unsignedApkIndex(text, 'v3.15.4');
  return Buffer.concat([await signatureMember(unsigned, signer), unsigned]);
}

const entry = (over: Partial<ApkIndexEntry> = {}): ApkIndexEntry => ({
  name: 'musl',
  version: '1.2.2-r7',
  arch: 'x86_64',
  size: 1234,
  checksum: `Q1${Buffer.alloc(20, 7).toString('base64')}`,
  ...over,
});

describe('a generated tree reads back', () => {
  test('the tree has main, community and releases', () => {
    expect(Object.keys(tree.indexes).sort()).toEqual(['v3.15/community/x86_64', 'v3.15/main/x86_64']);
    expect(tree.files).toContain('v3.15/main/x86_64/APKINDEX.tar.gz');
    expect(tree.files).toContain('v3.15/releases/x86_64/latest-releases.yaml');
    for (const f of tree.files) expect(fs.statSync(path.join(root(), f)).isFile()).toBe(true);
  });

  test('readApkIndex with the fixture key gives the entries, the description and the key', async () => {
    for (const [folder, entries] of Object.entries(tree.indexes)) {
      const index = await readApkIndex(folder, fs.readFileSync(path.join(root(), folder, 'APKINDEX.tar.gz')), trusted());
      expect(index).toEqual({ description: 'v3.15.4', entries, signedBy: key.name });
    }
  });

  test('without trusted keys the structure is read and signedBy is undefined', async () => {
    const folder = 'v3.15/main/x86_64';
    const bytes = fs.readFileSync(path.join(root(), folder, 'APKINDEX.tar.gz'));
    for (const keys of [undefined, new Map<string, string>()]) {
      const index = await readApkIndex(folder, bytes, keys);
      expect(index.signedBy).toBeUndefined();
      expect(index.entries).toEqual(tree.indexes[folder]);
    }
  });

  test("apkChecksum of each .apk equals its entry's C:, whatever the read size; S: is its size", async () => {
    for (const [folder, entries] of Object.entries(tree.indexes)) {
      for (const e of entries) {
        const file = path.join(root(), folder, apkFileName(e));
        expect(fs.statSync(file).size).toBe(e.size);
        // Read sizes of 1 and 7 put every member boundary (header, deflate end, trailer) inside or at the edge of a chunk.
        for (const chunk of [1, 7, 512, undefined]) expect(await apkChecksum(file, chunk)).toBe(e.checksum);
      }
    }
  });

  test('apkChecksum reads past a gzip header with FEXTRA, FNAME, FCOMMENT and FHCRC (one written by the gzip tool too)', async () => {
    const m = await apkMembers({ name: 'hdr', version: '1.0-r0' }, key, 'x86_64');
    // A control member rewritten with every optional header field: same deflate data and trailer.
    const inner = zlib.gunzipSync(m.control);
    const deflate = zlib.deflateRawSync(inner, { level: 9 });
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc32Slow(inner), 0);
    trailer.writeUInt32LE(inner.length, 4);
    const head = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 4 | 8 | 16 | 2, 0, 0, 0, 0, 2, 3]),
      Buffer.from([5, 0]),
      Buffer.from('extra'),
      Buffer.from('control.tar\0comment\0'),
    ]);
    const hcrc = Buffer.alloc(2);
    hcrc.writeUInt16LE(crc32Slow(head) & 0xffff);
    const control = Buffer.concat([head, hcrc, deflate, trailer]);
    const file = path.join(tmp, 'hdr-1.0-r0.apk');
    fs.writeFileSync(file, Buffer.concat([m.signature, control, m.data]));
    for (const chunk of [1, 3, undefined]) expect(await apkChecksum(file, chunk)).toBe(`Q1${sha1(control).toString('base64')}`);

    // gzip(1) without -n stores the file name (FNAME).
    const dir = fs.mkdtempSync(path.join(tmp, 'gz-'));
    fs.writeFileSync(path.join(dir, 'control.tar'), inner);
    execFileSync('gzip', ['-9', path.join(dir, 'control.tar')]);
    const byTool = fs.readFileSync(path.join(dir, 'control.tar.gz'));
    expect(byTool[3] & 8).toBe(8);
    fs.writeFileSync(file, Buffer.concat([m.signature, byTool, m.data]));
    expect(await apkChecksum(file, 5)).toBe(`Q1${sha1(byTool).toString('base64')}`);
  });

  test('apkChecksum stops at the end of the control member (the data member is never parsed), and follows a control member across many reads', async () => {
    const m = await apkMembers({ name: 'big', version: '1.0-r0' }, key, 'x86_64');
    // An incompressible 300 kB control member: five 64 KiB reads by default.
    const big = gzip9(await tarBytes([{ name: '.post-install', data: crypto.randomBytes(300_000) }], true));
    const file = path.join(tmp, 'big-1.0-r0.apk');
    fs.writeFileSync(file, Buffer.concat([m.signature, big, Buffer.from('the data member is not gzip: never parsed')]));
    for (const chunk of [undefined, 4096, 65_537]) expect(await apkChecksum(file, chunk)).toBe(`Q1${sha1(big).toString('base64')}`);
  });

  test('apkFileName is <name>-<version>.apk and the file is there', () => {
    for (const [folder, entries] of Object.entries(tree.indexes))
      for (const e of entries) expect(tree.files).toContain(`${folder}/${e.name}-${e.version}.apk`);
  });

  test('latest-releases.yaml and the .sha256 files describe the images as written', () => {
    const dir = path.join(root(), 'v3.15/releases/x86_64');
    const images = readLatestReleases('latest-releases.yaml', fs.readFileSync(path.join(dir, 'latest-releases.yaml'), 'utf8'));
    expect(images.map((i) => [i.file, i.version, i.flavor])).toEqual([
      ['alpine-standard-3.15.4-x86_64.iso', '3.15.4', 'alpine-standard'],
      ['alpine-minirootfs-3.15.4-x86_64.tar.gz', '3.15.4', 'alpine-minirootfs'],
    ]);
    for (const im of images) {
      const bytes = fs.readFileSync(path.join(dir, im.file));
      expect(im.size).toBe(bytes.length);
      expect(im.sha256).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
      expect(im.sha512).toBe(crypto.createHash('sha512').update(bytes).digest('hex'));
      const sum = readChecksumFile(`${im.file}.sha256`, fs.readFileSync(path.join(dir, `${im.file}.sha256`), 'utf8'));
      expect(sum).toEqual({ digest: im.sha256, fileName: im.file, algorithm: 'sha256' });
    }
  });

  test('the same inputs and key give the same bytes', async () => {
    const again = path.join(tmp, 'again');
    const second = await writeAlpineTree(again, { branch: '3.15', version: '3.15.4', arch: 'x86_64', key });
    expect(second.files).toEqual(tree.files);
    for (const f of tree.files) expect(fs.readFileSync(path.join(again, f)).equals(fs.readFileSync(path.join(root(), f)))).toBe(true);
    const apk = await writeApk(path.join(tmp, 'one'), { name: 'musl', version: '1.2.2-r7' }, key, 'x86_64');
    expect(fs.readFileSync(apk.file).equals(fs.readFileSync(path.join(root(), 'v3.15/main/x86_64/musl-1.2.2-r7.apk')))).toBe(true);
  });
});

describe('independent checks with gzip, GNU tar and openssl', () => {
  const folder = 'v3.15/main/x86_64';
  const indexFile = () => path.join(root(), folder, 'APKINDEX.tar.gz');

  test('gzip -t accepts every index and package', () => {
    for (const f of tree.files.filter((f) => f.endsWith('.apk') || f.endsWith('APKINDEX.tar.gz')))
      execFileSync('gzip', ['-t', path.join(root(), f)]);
  });

  test('tar -tzf lists .SIGN.RSA.<key> then DESCRIPTION and APKINDEX; a package lists .SIGN, .PKGINFO, its data', () => {
    const list = (f: string) => execFileSync('tar', ['-tzf', f], { encoding: 'utf8' }).trim().split('\n');
    expect(list(indexFile())).toEqual([`.SIGN.RSA.${key.name}`, 'DESCRIPTION', 'APKINDEX']);
    expect(list(path.join(root(), folder, 'musl-1.2.2-r7.apk'))).toEqual([`.SIGN.RSA.${key.name}`, '.PKGINFO', 'usr/share/musl/payload']);
  });

  test('openssl verifies the index signature (extracted by tar) over the bytes after the signature member', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ossl-'));
    execFileSync('tar', ['-xzf', indexFile(), '-C', dir]);
    // The unsigned index as the harness builds it (not found by our member splitter): the file must end with it.
    const unsigned = await unsignedApkIndex(apkIndexText(tree.indexes[folder]), 'v3.15.4');
    const file = fs.readFileSync(indexFile());
    expect(file.subarray(file.length - unsigned.length).equals(unsigned)).toBe(true);
    fs.writeFileSync(path.join(dir, 'unsigned'), unsigned);
    fs.writeFileSync(path.join(dir, key.name), key.publicPem);
    const verify = (data: string) =>
      execFileSync(
        'openssl',
        ['dgst', '-sha1', '-verify', path.join(dir, key.name), '-signature', path.join(dir, `.SIGN.RSA.${key.name}`), data],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    expect(verify(path.join(dir, 'unsigned'))).toContain('Verified OK');
    const tampered = Buffer.from(unsigned);
    tampered[tampered.length >> 1] ^= 1;
    fs.writeFileSync(path.join(dir, 'tampered'), tampered);
    expect(() => verify(path.join(dir, 'tampered'))).toThrow();
    expect(fs.readFileSync(path.join(dir, 'APKINDEX'), 'utf8')).toBe(apkIndexText(tree.indexes[folder]));
  });

  test("openssl verifies a package's signature over its control member, whose SHA-1 is the C: apkChecksum gives", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ossl-apk-'));
    const apk = path.join(root(), folder, 'busybox-1.34.1-r5.apk');
    const m = await apkMembers({ name: 'busybox', version: '1.34.1-r5' }, key, 'x86_64');
    expect(fs.readFileSync(apk).equals(Buffer.concat([m.signature, m.control, m.data]))).toBe(true);
    fs.writeFileSync(path.join(dir, 'control.tar.gz'), m.control);
    fs.writeFileSync(path.join(dir, key.name), key.publicPem);
    execFileSync('tar', ['-xzf', apk, '-C', dir]);
    const out = execFileSync(
      'openssl',
      [
        'dgst',
        '-sha1',
        '-verify',
        path.join(dir, key.name),
        '-signature',
        path.join(dir, `.SIGN.RSA.${key.name}`),
        path.join(dir, 'control.tar.gz'),
      ],
      { encoding: 'utf8' },
    );
    expect(out).toContain('Verified OK');
    const sha1ByOpenssl = execFileSync('openssl', ['dgst', '-sha1', '-binary', path.join(dir, 'control.tar.gz')]);
    expect(await apkChecksum(apk)).toBe(`Q1${sha1ByOpenssl.toString('base64')}`);
    const pkginfo = fs.readFileSync(path.join(dir, '.PKGINFO'), 'utf8');
    expect(pkginfo).toContain(`datahash = ${crypto.createHash('sha256').update(m.data).digest('hex')}`);
  });
});

describe('readApkIndex refuses, naming the file and the reason', () => {
  const text = apkIndexText([entry(), entry({ name: 'busybox', version: '1.34.1-r5' })]);

  test('a good hand-built index reads (the base the refusals below alter)', async () => {
    const index = await readApkIndex('idx', await signedIndex(text), trusted());
    expect(index.entries.map((e) => e.name)).toEqual(['musl', 'busybox']);
  });

  test('one byte changed in the index member: signature mismatch', async () => {
    const bytes = await signedIndex(text);
    const sigLen = (await signatureMember(await unsignedApkIndex(text, 'v3.15.4'), key)).length;
    for (const at of [sigLen + 5 /* member 2's gzip mtime */, sigLen + ((bytes.length - sigLen) >> 1), bytes.length - 3 /* ISIZE */]) {
      const tampered = Buffer.from(bytes);
      tampered[at] ^= 0x20;
      const e = await refusal(readApkIndex('v3.15/main/x86_64/APKINDEX.tar.gz', tampered, trusted()));
      expect(e.file).toBe('v3.15/main/x86_64/APKINDEX.tar.gz');
      expect(e.reason).toMatch(/^signature mismatch: \.SIGN\.RSA\.test@fixture-5f000000\.rsa\.pub does not verify/);
      expect(e.message).toBe(`${e.file}: ${e.reason}`);
    }
  });

  test('an index signed by another key: no signature by a trusted key, naming both key files', async () => {
    const e = await refusal(readApkIndex('idx', await signedIndex(text, other), trusted()));
    expect(e.reason).toContain('no signature by a trusted key');
    expect(e.reason).toContain(`.SIGN.RSA.${other.name}`);
    expect(e.reason).toContain(key.name);
  });

  test('several signatures: the trusted one verifies; RSA256 and RSA512 verify too', async () => {
    const unsigned = await unsignedApkIndex(text);
    const two = Buffer.concat([
      zlib.gzipSync(
        await tarBytes(
          [
            { name: `.SIGN.RSA.${other.name}`, data: crypto.sign('sha1', unsigned, other.privatePem) },
            { name: `.SIGN.RSA256.${key.name}`, data: crypto.sign('sha256', unsigned, key.privatePem) },
          ],
          true,
        ),
      ),
      unsigned,
    ]);
    expect((await readApkIndex('idx', two, trusted())).signedBy).toBe(key.name);
    const rsa512 = Buffer.concat([await signatureMember(unsigned, key, 'RSA512'), unsigned]);
    expect((await readApkIndex('idx', rsa512, trusted())).signedBy).toBe(key.name);
  });

  test('a trusted key that is no PEM public key', async () => {
    const e = await refusal(readApkIndex('idx', await signedIndex(text), new Map([[key.name, 'not a key']])));
    expect(e.reason).toContain(`trusted key ${key.name} is not a readable public key`);
  });

  test('two gzip members after the signature, though the signature covers both', async () => {
    const unsigned = await unsignedApkIndex(text);
    const after = Buffer.concat([unsigned, gzip9(Buffer.from('extra'))]);
    const e = await refusal(readApkIndex('idx', Buffer.concat([await signatureMember(after, key), after]), trusted()));
    expect(e.reason).toMatch(/more than one gzip member after the signature/);
  });

  test('bytes after the index member', async () => {
    const unsigned = Buffer.concat([await unsignedApkIndex(text), Buffer.from('junk')]);
    const e = await refusal(readApkIndex('idx', Buffer.concat([await signatureMember(unsigned, key), unsigned]), trusted()));
    expect(e.reason).toMatch(/trailing/);
  });

  test('an entry other than .SIGN.* in the signature member', async () => {
    const unsigned = await unsignedApkIndex(text);
    const sig = crypto.sign('sha1', unsigned, key.privatePem);
    const member = gzip9(
      await tarBytes(
        [
          { name: `.SIGN.RSA.${key.name}`, data: sig },
          { name: 'etc/passwd', data: Buffer.from('x') },
        ],
        true,
      ),
    );
    const e = await refusal(readApkIndex('idx', Buffer.concat([member, unsigned]), trusted()));
    expect(e.reason).toBe('entry "etc/passwd" in the signature member is not a .SIGN.* file');
  });

  test('an unsigned index, a file that is not gzip, a truncated one', async () => {
    const unsigned = await unsignedApkIndex(text);
    expect((await refusal(readApkIndex('idx', unsigned, trusted()))).reason).toMatch(/no signature member/);
    expect((await refusal(readApkIndex('idx', Buffer.from('<html>404</html>'), trusted()))).reason).toBe('not gzip (bad magic)');
    const signed = await signedIndex(text);
    const cut = await refusal(readApkIndex('idx', signed.subarray(0, signed.length - 20)));
    expect(cut.reason).toMatch(/^gzip member 2 \(at byte \d+\): (truncated|corrupt)/);
    // A signature member whose first member is fine but the second is not gzip at all.
    const notGz = Buffer.concat([await signatureMember(Buffer.from('plain'), key), Buffer.from('plain')]);
    expect((await refusal(readApkIndex('idx', notGz))).reason).toMatch(/gzip member 2 \(at byte \d+\): not gzip/);
  });

  test('an index tar without APKINDEX, or with data after its end-of-archive', async () => {
    const noIndex = gzip9(await tarBytes([{ name: 'DESCRIPTION', data: Buffer.from('v3.15.4') }], false));
    const e = await refusal(readApkIndex('idx', Buffer.concat([await signatureMember(noIndex, key), noIndex]), trusted()));
    expect(e.reason).toBe('no APKINDEX in the index tar');
    const hidden = gzip9(
      Buffer.concat([
        await tarBytes([{ name: 'APKINDEX', data: Buffer.from(text) }], false),
        await tarBytes([{ name: 'APKINDEX', data: Buffer.from('P:evil') }], false),
      ]),
    );
    const h = await refusal(readApkIndex('idx', Buffer.concat([await signatureMember(hidden, key), hidden]), trusted()));
    expect(h.reason).toMatch(/^index tar: data after the tar end-of-archive block/);
  });

  const stanza = async (t: string) =>
    (await refusal(readApkIndex('v3.15/main/x86_64/APKINDEX.tar.gz', await signedIndex(t), trusted()))).reason;

  test('hostile names: a path, a newline, a leading dot', async () => {
    expect(await stanza(apkIndexText([entry({ name: '../x' })]))).toBe('APKINDEX stanza at line 1: invalid package name P:"../x"');
    expect(await stanza(apkIndexText([entry({ name: 'a\nb' })]))).toBe('APKINDEX line 3 is not a field (X:value): "b"');
    expect(await stanza(apkIndexText([entry({ name: 'a\nP:b' })]))).toMatch(/field P: appears twice/);
    expect(await stanza(apkIndexText([entry({ name: '.hidden' })]))).toMatch(/invalid package name/);
    expect(await stanza(apkIndexText([entry({ name: 'a\0b' })]))).toMatch(/invalid package name P:"a\\u0000b"/);
  });

  test('bad versions, architectures, checksums and sizes; missing fields; duplicates', async () => {
    expect(await stanza(apkIndexText([entry({ version: '1.0/../../x' })]))).toMatch(/invalid version V:"1.0\/..\/..\/x" for musl/);
    expect(await stanza(apkIndexText([entry({ version: '1.0-r1 ' })]))).toMatch(/invalid version/);
    expect(await stanza(apkIndexText([entry({ arch: '../..' })]))).toMatch(/invalid architecture A:"..\/.."/);
    expect(await stanza(apkIndexText([entry({ checksum: 'Q1short=' })]))).toMatch(/invalid checksum C:"Q1short="/);
    expect(await stanza(apkIndexText([entry({ checksum: `Q1${'A'.repeat(26)}/.=` })]))).toMatch(/invalid checksum/);
    expect(await stanza(apkIndexText([entry({ checksum: 'd41d8cd98f00b204e9800998ecf8427e' })]))).toMatch(/invalid checksum/);
    for (const s of ['-1', '1.5', '1e3', '', ' 1'])
      expect(await stanza(`C:${entry().checksum}\nP:musl\nV:1.0-r0\nS:${s}\n\n`)).toMatch(
        s === '' ? /no S:/ : /is not a non-negative integer/,
      );
    expect(await stanza(`P:musl\nV:1.0-r0\nS:1\n\n`)).toBe('APKINDEX stanza at line 1: no C: (checksum) field');
    expect(await stanza(`C:${entry().checksum}\nV:1.0-r0\nS:1\n\n`)).toMatch(/no P: \(name\) field/);
    expect(await stanza(apkIndexText([entry(), entry()]))).toMatch(/^APKINDEX stanza at line 12: package musl-1.2.2-r7 is listed twice/);
  });

  test('valid apk versions read: letters, suffixes, hashes, revisions', async () => {
    const versions = ['1.1.1l-r0', '2.3_p20200608-r0', '1.0_alpha1_pre2-r3', '0_git20220101-r1', '3.2a', '1.0~abc123-r0'];
    const index = await readApkIndex('idx', await signedIndex(apkIndexText(versions.map((version) => entry({ version })))), trusted());
    expect(index.entries.map((e) => e.version)).toEqual(versions);
  });
});

describe('apkChecksum and apkFileName refuse', () => {
  test('a .apk with one gzip member, a file that is not gzip, a truncated one, a bad CRC', async () => {
    const one = path.join(tmp, 'one-1.0-r0.apk');
    fs.writeFileSync(one, gzip9(Buffer.from('only one')));
    const e = await refusal(apkChecksum(one));
    expect(e.file).toBe(one);
    expect(e.reason).toMatch(/^1 gzip member\(s\): an \.apk has at least 2/);

    fs.writeFileSync(one, 'not gzip');
    expect((await refusal(apkChecksum(one))).reason).toBe('gzip member 1 (at byte 0): not gzip (bad magic)');

    const m = await apkMembers({ name: 'cut', version: '1.0-r0' }, key, 'x86_64');
    fs.writeFileSync(one, Buffer.concat([m.signature, m.control.subarray(0, m.control.length - 4)]));
    expect((await refusal(apkChecksum(one))).reason).toMatch(/^gzip member 2 \(at byte \d+\): truncated/);

    const badCrc = Buffer.from(m.control);
    badCrc[badCrc.length - 8] ^= 1;
    fs.writeFileSync(one, Buffer.concat([m.signature, badCrc, m.data]));
    expect((await refusal(apkChecksum(one))).reason).toBe(`gzip member 2 (at byte ${m.signature.length}): CRC-32 mismatch`);
  });

  test('a missing file is an fs error, not a MirrorError', async () => {
    await expect(apkChecksum(path.join(tmp, 'nope.apk'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('apkFileName refuses names and versions that would not be one path segment', async () => {
    expect(apkFileName(entry())).toBe('musl-1.2.2-r7.apk');
    expect((await refusal(() => apkFileName(entry({ name: '../../etc/x' })))).reason).toMatch(/invalid package name/);
    expect((await refusal(() => apkFileName(entry({ version: '1/../../x' })))).reason).toMatch(/invalid package version/);
  });
});

describe('releases/: latest-releases.yaml and checksum files', () => {
  const sha = 'ab'.repeat(32);
  const item = (fields: Record<string, string>) =>
    `---\n-\n${Object.entries(fields)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join('\n')}\n`;

  test('every scalar stays a string: version 3.10 is not 3.1; unknown keys are ignored', () => {
    expect(
      readLatestReleases(
        'y',
        item({
          version: '3.10',
          file: 'alpine-virt-3.10-x86.iso',
          sha256: sha.toUpperCase(),
          size: '42',
          title: 'Virtual',
          time: '10:21:00',
        }),
      ),
    ).toEqual([{ file: 'alpine-virt-3.10-x86.iso', version: '3.10', sha256: sha, size: 42 }]);
  });

  test('refuses a path as file, a bad sha256, a bad size, a missing field, a non-list, an empty list', async () => {
    const r = async (text: string) => (await refusal(() => readLatestReleases('v3.15/releases/x86_64/latest-releases.yaml', text))).reason;
    expect(await r(item({ version: '3.15.4', file: '../../etc/passwd', sha256: sha }))).toBe(
      'item 1: file "../../etc/passwd" is not one plain file name',
    );
    expect(await r(item({ version: '3.15.4', file: 'a/b.iso', sha256: sha }))).toMatch(/is not one plain file name/);
    expect(await r(item({ version: '3.15.4', file: 'a.iso', sha256: 'abc' }))).toBe('item 1 (a.iso): sha256 "abc" is not 64 hex digits');
    expect(await r(item({ version: '3.15.4', file: 'a.iso', sha256: `${sha.slice(1)}g` }))).toMatch(/not 64 hex digits/);
    expect(await r(item({ version: '3.15.4', file: 'a.iso' }))).toMatch(/sha256 missing/);
    expect(await r(item({ version: '3.15.4', file: 'a.iso', sha256: sha, sha512: 'ab' }))).toMatch(/sha512 "ab" is not 128 hex digits/);
    expect(await r(item({ version: '3.15.4', file: 'a.iso', sha256: sha, size: '-1' }))).toMatch(/size "-1" is not a non-negative integer/);
    expect(await r(item({ file: 'a.iso', sha256: sha }))).toMatch(/version missing/);
    expect(await r(item({ version: '3.15.4', sha256: sha }))).toBe('item 1 has no file');
    expect(await r('file: a.iso\n')).toBe('not a YAML list of images');
    expect(await r('[]\n')).toBe('lists no image');
    expect(await r('- [unclosed\n')).toMatch(/^not valid YAML/);
    const twice = item({ version: '1', file: 'a.iso', sha256: sha }) + item({ version: '1', file: 'a.iso', sha256: sha }).slice(4);
    expect(await r(twice)).toMatch(/file a.iso is listed twice/);
  });

  test('checksum files: sha256 and sha512, binary-mode star, a path before the name', () => {
    expect(readChecksumFile('s', `${sha.toUpperCase()}  alpine.iso\n`)).toEqual({
      digest: sha,
      fileName: 'alpine.iso',
      algorithm: 'sha256',
    });
    const sha512 = 'cd'.repeat(64);
    expect(readChecksumFile('s', `${sha512} *out/alpine.iso`)).toEqual({ digest: sha512, fileName: 'alpine.iso', algorithm: 'sha512' });
  });

  test('checksum files: bad hex, a wrong length, two lines, no name', async () => {
    const r = async (text: string) => {
      const e = await refusal(() => readChecksumFile('alpine.iso.sha256', text));
      expect(e.file).toBe('alpine.iso.sha256');
      return e.reason;
    };
    expect(await r(`${sha.slice(1)}z  alpine.iso\n`)).toMatch(/is not hexadecimal/);
    expect(await r(`${sha.slice(2)}  alpine.iso\n`)).toBe('digest has 62 hex digits: neither SHA-256 (64) nor SHA-512 (128)');
    expect(await r(`${sha}  a.iso\n${sha}  b.iso\n`)).toMatch(/expected one .* line, found 2/);
    expect(await r(`${sha}\n`)).toMatch(/not a "<hex> {2}<file name>" line/);
    expect(await r('')).toMatch(/found 0/);
    expect(await r(`${sha}  dir/..\n`)).toMatch(/is not a file name/);
  });
});

function sha1(b: Buffer): Buffer {
  return crypto.createHash('sha1').update(b).digest();
}

/** CRC-32 bit by bit (RFC 1952 §8), independent of the code under test. */
function crc32Slow(b: Buffer): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('verifyApk: the whole file against its index entry', () => {
  test('a package as written passes; one changed byte of its data, or another checksum, is refused with both values', async () => {
    const apk = await writeApk(path.join(tmp, 'verify'), { name: 'busybox', version: '1.34.1-r1', payload: 'busybox data' }, key, 'x86_64');
    await expect(verifyApk(apk.file, apk.entry.checksum)).resolves.toBe(apk.entry.checksum);
    const bytes = fs.readFileSync(apk.file);
    // The last byte is the data member's ISIZE: change one inside its deflate data instead.
    const damaged = path.join(tmp, 'verify', 'damaged.apk');
    const copy = Buffer.from(bytes);
    copy[copy.length - 12] ^= 0x01;
    fs.writeFileSync(damaged, copy);
    const e = await refusal(verifyApk(damaged, apk.entry.checksum));
    expect(e.message).toMatch(/^\S+damaged\.apk: data SHA-256 [0-9a-f]{64}, but its \.PKGINFO says [0-9a-f]{64}; not kept$/);
    const other = `Q1${Buffer.alloc(20, 9).toString('base64')}`;
    const wrong = await refusal(verifyApk(apk.file, other));
    expect(wrong.message).toContain(`checksum ${apk.entry.checksum}, but the index lists ${other}`);
  });
});
