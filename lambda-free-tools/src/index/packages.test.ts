import { execFileSync } from 'child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, relative } from 'path';
import { fetchRealDebs } from '../../../test/harness/debs';
import { parseStanza, parseStanzas } from '../deb/control';
import { readDeb } from '../deb/debfile';
import { digestFile } from '../core/digests';
import { canonicalFieldName, PackagesEntry, renderPackagesIndex, renderPackagesIndexes, renderPackagesStanza } from './packages';
import type { PoolPackage } from '../core/types';

/** Builds a real .deb with dpkg-deb from a raw control file text; returns its path. */
function buildDeb(outDir: string, control: string, fileName: string): string {
  const root = mkdtempSync(join(tmpdir(), 'pkgroot-'));
  try {
    mkdirSync(join(root, 'DEBIAN'));
    writeFileSync(join(root, 'DEBIAN', 'control'), control);
    mkdirSync(join(root, 'usr', 'share', 'doc'), { recursive: true });
    writeFileSync(join(root, 'usr', 'share', 'doc', 'README'), `payload of ${fileName}\n`);
    const out = join(outDir, fileName);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], { stdio: 'pipe' });
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Reads a .deb the way the indexer does: control stanza from `dpkg-deb -I`, size and digests from the file. */
async function entryFor(repo: string, deb: string): Promise<PackagesEntry> {
  const control = parseStanza(execFileSync('dpkg-deb', ['-I', deb, 'control'], { encoding: 'utf8' }), deb);
  const { size, digests } = await digestFile(deb);
  delete digests.SHA512; // dpkg-scanpackages writes MD5sum, SHA1, SHA256 only
  return { control, filename: relative(repo, deb), size, digests };
}

function scanpackages(repo: string): string {
  return execFileSync('dpkg-scanpackages', ['-m', 'pool'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const RICH = [
  'Package: epi-rich',
  'Version: 2:1.4-2+deb12u1',
  'Architecture: amd64',
  'Maintainer: Epiconcept Ops <ops@epiconcept.fr>',
  'installed-size: 123', // lower case: dpkg capitalises it
  'Depends: libc6 (>= 2.36), php8.2-cli | php-cli,',
  '  voozanoo4 (>= 4.2)', // a multi-line relationship field
  'Pre-Depends: dpkg (>= 1.19)',
  'Breaks: epi-old (<< 1.0)',
  'Section: web',
  'Priority: optional',
  'Homepage: https://www.epiconcept.fr/',
  'Multi-Arch: foreign',
  'Source: epi-src (1.4-1)',
  'X-Epiconcept-Role: front',
  'Original-Maintainer: Someone <someone@example.org>',
  'Essential: no',
  'Description: rich test package   ',
  ' A long description over several lines, with trailing blanks   ',
  ' .',
  '  an indented verbatim line',
  '\ta tab-led line',
  ' ..',
  ' last line',
  '',
].join('\n');

describe('renderPackagesStanza / renderPackagesIndex against dpkg-scanpackages -m', () => {
  let repo: string;
  let entries: PackagesEntry[];
  let expected: string;

  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'pkgidx-'));
    const pool = join(repo, 'pool', 'main', 'e');
    mkdirSync(pool, { recursive: true });
    const debs = [
      buildDeb(pool, RICH, 'epi-rich_1.4-2+deb12u1_amd64.deb'),
      buildDeb(pool, 'Package: zeta\nVersion: 1.0-1\nArchitecture: all\nMaintainer: A <a@b.c>\nDescription: z\n', 'zeta_1.0-1_all.deb'),
      buildDeb(
        pool,
        'Package: alpha\nVersion: 1.2-1\nArchitecture: all\nMaintainer: A <a@b.c>\nDescription: a two\n',
        'alpha_1.2-1_all.deb',
      ),
      buildDeb(
        pool,
        'Package: alpha\nVersion: 1.0-1\nArchitecture: all\nMaintainer: A <a@b.c>\nDescription: a one\n',
        'alpha_1.0-1_all.deb',
      ),
      buildDeb(
        pool,
        'Package: beta\nVersion: 3.0\nArchitecture: arm64\nMaintainer: A <a@b.c>\nBuilt-Using: gcc-12 (= 12.2.0-14)\nTag: role::program\nDescription: b\n',
        'beta_3.0_arm64.deb',
      ),
    ];
    entries = await Promise.all(debs.map((d) => entryFor(repo, d)));
    expected = scanpackages(repo);
  });
  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('renders each stanza field for field, in the same order, as dpkg-scanpackages', () => {
    const theirs = parseStanzas(expected, 'dpkg-scanpackages');
    expect(theirs).toHaveLength(entries.length);
    for (const e of entries) {
      const name = e.control instanceof Map ? e.control.get('Package') : undefined;
      const version = e.control instanceof Map ? e.control.get('Version') : undefined;
      const mine = renderPackagesStanza(e);
      const match = theirs.find((s) => s.get('Package') === name && s.get('Version') === version)!;
      expect(match).toBeDefined();
      // Text equality proves names, order, values and continuation-line spelling; the field list makes failures readable.
      expect([...parseStanza(mine, 'mine').keys()]).toEqual([...match.keys()]);
      expect(mine + '\n').toBe(
        expected
          .split('\n\n')
          .map((s) => s + '\n\n')
          .find((s) => s.startsWith(`Package: ${name}\n`) && s.includes(`\nVersion: ${version}\n`)),
      );
    }
  });

  it('renders the whole index byte for byte (versions whose string and Debian orders agree)', () => {
    expect(renderPackagesIndex([...entries].reverse())).toBe(expected);
  });

  it('places SHA512 right after SHA256 (a documented difference: dpkg-scanpackages writes none)', () => {
    const e = { ...entries[1], digests: { ...entries[1].digests, SHA512: 'f'.repeat(128) } };
    const names = [...parseStanza(renderPackagesStanza(e), 'x').keys()];
    expect(names.slice(names.indexOf('SHA256'), names.indexOf('SHA256') + 2)).toEqual(['SHA256', 'SHA512']);
  });

  it("drops a control file's own Filename/Size/checksums and whitespace-only fields", () => {
    const control: [string, string][] = [
      ['Package', 'p'],
      ['Version', '1'],
      ['Architecture', 'all'],
      ['Filename', 'evil'],
      ['size', '1'],
      ['X-Empty', '  '],
      ['Description', 'd'],
    ];
    const out = renderPackagesStanza({
      control,
      filename: 'pool/main/p/p_1_all.deb',
      size: 42,
      digests: { MD5sum: 'a', SHA1: 'b', SHA256: 'c' },
    });
    expect(out).toBe(
      'Package: p\nVersion: 1\nArchitecture: all\nFilename: pool/main/p/p_1_all.deb\nSize: 42\nMD5sum: a\nSHA1: b\nSHA256: c\nDescription: d\n',
    );
  });

  it('sorts by Debian version order, where dpkg-scanpackages compares strings, then by architecture', () => {
    const mk = (version: string, arch: string): PackagesEntry => ({
      control: [
        ['Package', 'p'],
        ['Version', version],
        ['Architecture', arch],
      ],
      filename: `pool/p_${version}_${arch}.deb`,
      size: 1,
      digests: { MD5sum: 'a', SHA1: 'b', SHA256: 'c' },
    });
    const index = renderPackagesIndex([mk('1.10', 'amd64'), mk('1.9', 'arm64'), mk('1.9', 'amd64'), mk('1:0.1', 'all')]);
    const order = parseStanzas(index, 'x').map((s) => `${s.get('Version')} ${s.get('Architecture')}`);
    expect(order).toEqual(['1.9 amd64', '1.9 arm64', '1.10 amd64', '1:0.1 all']);
    expect(index.endsWith('\n\n')).toBe(true);
    expect(renderPackagesIndex([])).toBe('');
  });

  it('capitalises field names as dpkg does', () => {
    expect(canonicalFieldName('installed-size')).toBe('Installed-Size');
    expect(canonicalFieldName('md5SUM')).toBe('MD5sum');
    expect(canonicalFieldName('x-epiconcept-role')).toBe('X-Epiconcept-Role');
  });

  it('rejects a Filename that would corrupt the index', () => {
    expect(() => renderPackagesStanza({ ...entries[0], filename: 'pool/a b.deb' })).toThrow(/Filename/);
    // A path that leaves the repository root or hides a control character (issue 8).
    for (const filename of [
      '/etc/shadow',
      'pool/../../prod/x.deb',
      'pool/./x.deb',
      'pool//x.deb',
      'pool/x\u0000.deb',
      'pool/x\u001b.deb',
    ]) {
      expect(() => renderPackagesStanza({ ...entries[0], filename })).toThrow(/invalid Filename/);
    }
  });
});

describe('renderPackagesIndex on real Debian packages read by readDeb', () => {
  it('matches dpkg-scanpackages -m byte for byte', async () => {
    // Real control files: Source with a version (sl, a binNMU), Multi-Arch, Protected/Essential, Pre-Depends, Breaks, Provides, Homepage.
    const debs = fetchRealDebs(['hello', 'sl', 'libgcc-s1', 'dpkg', 'libzstd1', 'dpkg-dev']);
    const repo = mkdtempSync(join(tmpdir(), 'pkgreal-'));
    try {
      const pool = join(repo, 'pool', 'main');
      mkdirSync(pool, { recursive: true });
      const entries: PackagesEntry[] = [];
      for (const deb of debs) {
        const copy = join(pool, deb.split('/').pop()!);
        copyFileSync(deb, copy);
        const info = await readDeb(copy);
        entries.push({ control: info.control, filename: relative(repo, copy), size: info.size, digests: info.digests });
      }
      const expected = scanpackages(repo);
      expect(expected).toMatch(/^Source: sl \(/m); // the case under test is really there
      expect(renderPackagesIndex(entries)).toBe(expected);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});

test('renderPackagesIndexes gives the same bytes as renderPackagesIndex on each index', () => {
  const mk = (name: string, version: string, architecture: string, extra: [string, string][] = []): PoolPackage => ({
    poolPath: `pool/main/${name[0]}/${name}/${name}_${version}_${architecture}.deb`,
    name,
    version,
    architecture,
    source: name,
    control: [
      ['Package', name],
      ['Version', version],
      ['Architecture', architecture],
      ['Maintainer', 'M <m@example.org>'],
      ...extra,
      ['Description', 'd\n more'],
    ],
    size: 100 + version.length,
    digests: { MD5sum: 'a'.repeat(32), SHA1: 'b'.repeat(40), SHA256: 'c'.repeat(64) },
    codenames: [],
    addedMs: 0,
  });
  const all = [
    mk('zeta', '1.10', 'all'),
    mk('zeta', '1.9', 'all'),
    mk('alpha', '1.0', 'amd64'),
    mk('alpha', '1.0~rc1', 'amd64'),
    mk('alpha', '1.0', 'arm64'),
    mk('Beta', '2:0.1', 'all', [['Depends', 'alpha']]),
    mk('alpha', '1:0.5', 'amd64'),
  ];
  const perCodename = new Map([
    ['bookworm', all],
    ['bullseye', all.slice(2)],
  ]);
  const out = renderPackagesIndexes(perCodename, ['amd64', 'arm64']);
  for (const [codename, list] of perCodename) {
    for (const arch of ['amd64', 'arm64']) {
      const entries = list
        .filter((p) => p.architecture === arch || p.architecture === 'all')
        .map((p) => ({ control: p.control, filename: p.poolPath, size: p.size, digests: p.digests }));
      expect(out.get(codename)!.get(arch)).toBe(renderPackagesIndex(entries));
    }
  }
  expect(out.get('bullseye')!.get('arm64')).toMatch(/^Package: Beta\n/);
});
