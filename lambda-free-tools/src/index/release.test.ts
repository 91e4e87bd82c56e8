import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { randomBytes } from 'crypto';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseStanza } from '../deb/control';
import { digestFile } from '../core/digests';
import { formatReleaseDate, IndexFileEntry, parseReleaseDate, parseReleaseFiles, releaseHeader, renderRelease } from './release';

const META = {
  origin: 'Epiconcept',
  label: 'Epiconcept preprod',
  suite: 'bookworm',
  codename: 'bookworm',
  description: 'Epiconcept preprod packages',
  date: new Date(Date.UTC(2026, 10, 21, 5, 15, 0)),
  validUntil: new Date(Date.UTC(2026, 10, 28, 5, 15, 0)),
  architectures: ['amd64', 'arm64'],
  components: ['main'],
};

/** The checksum blocks of a Release text (everything from the first block header on). */
const blocks = (release: string) => release.slice(release.indexOf('MD5Sum:\n'));

describe('renderRelease against apt-ftparchive release', () => {
  let dir: string;
  let entries: IndexFileEntry[];
  let theirs: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'release-'));
    const paths: string[] = [];
    for (const arch of META.architectures) {
      const d = join(dir, 'main', `binary-${arch}`);
      mkdirSync(d, { recursive: true });
      // Sizes of 0, 1, and many digits exercise the right alignment of the size column.
      writeFileSync(join(d, 'Packages'), arch === 'amd64' ? randomBytes(123_456) : '');
      writeFileSync(join(d, 'Packages.gz'), randomBytes(7));
      writeFileSync(join(d, 'Packages.xz'), randomBytes(12_345_678 % 99_999));
      paths.push(`main/binary-${arch}/Packages`, `main/binary-${arch}/Packages.gz`, `main/binary-${arch}/Packages.xz`);
    }
    entries = await Promise.all(paths.map(async (path) => ({ path, ...(await digestFile(join(dir, path))) })));
    theirs = execFileSync('apt-ftparchive', ['release', '.'], { cwd: dir, encoding: 'utf8' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the MD5Sum, SHA1, SHA256, SHA512 blocks byte for byte as apt-ftparchive', () => {
    // apt-ftparchive lists files in directory-walk order; renderRelease sorts by path: compare each block as a sorted set of lines.
    const split = (text: string) =>
      blocks(text)
        .split(/^(?=\S)/m)
        .map((b) => {
          const [head, ...lines] = b.trimEnd().split('\n');
          return [head, lines.sort()];
        });
    expect(split(renderRelease(META, [...entries].reverse()))).toEqual(split(theirs));
  });

  it('writes the fields in the Debian archive order, dates in RFC 2822 UTC', () => {
    const text = renderRelease(META, entries);
    const head = parseStanza(text.slice(0, text.indexOf('MD5Sum:')), 'Release');
    expect([...head.entries()]).toEqual([
      ['Origin', 'Epiconcept'],
      ['Label', 'Epiconcept preprod'],
      ['Suite', 'bookworm'],
      ['Codename', 'bookworm'],
      ['Date', 'Sat, 21 Nov 2026 05:15:00 UTC'],
      ['Valid-Until', 'Sat, 28 Nov 2026 05:15:00 UTC'],
      ['Acquire-By-Hash', 'yes'],
      ['No-Support-for-Architecture-all', 'Packages'],
      ['Architectures', 'amd64 arm64'],
      ['Components', 'main'],
      ['Description', 'Epiconcept preprod packages'],
    ]);
    // The same fields apt-ftparchive writes, whatever its order and date spelling.
    const ftp = parseStanza(theirs.slice(0, theirs.indexOf('MD5Sum:')), 'apt-ftparchive');
    for (const name of ftp.keys()) expect(head.has(name)).toBe(true);
  });

  it('leaves out Valid-Until and Description when not given', () => {
    const text = renderRelease({ ...META, validUntil: undefined, description: undefined }, entries);
    expect(text).not.toMatch(/^Valid-Until:|^Description:/m);
  });

  it('formats single-digit days and midnight with leading zeros', () => {
    expect(formatReleaseDate(new Date(Date.UTC(2027, 0, 3, 0, 0, 9)))).toBe('Sun, 03 Jan 2027 00:00:09 UTC');
  });

  it('reads its own checksum blocks back', () => {
    const back = parseReleaseFiles(renderRelease(META, entries));
    const sorted = (l: IndexFileEntry[]) => [...l].sort((a, b) => a.path.localeCompare(b.path));
    expect(sorted(back)).toEqual(sorted(entries));
  });

  it('refuses values that would corrupt the file', () => {
    expect(() => renderRelease({ ...META, description: 'a\nb' }, entries)).toThrow(/Description/);
    expect(() => renderRelease(META, [{ ...entries[0], path: 'a b' }])).toThrow(/path/);
  });
});

describe('parseReleaseDate and releaseHeader', () => {
  it('reads what formatReleaseDate writes, and the +0000 form of apt-ftparchive', () => {
    const d = new Date(Date.UTC(2026, 1, 3, 4, 5, 6));
    expect(parseReleaseDate(formatReleaseDate(d))?.getTime()).toBe(d.getTime());
    expect(parseReleaseDate('Tue, 03 Feb 2026 04:05:06 +0000')?.getTime()).toBe(d.getTime());
  });

  it('refuses another zone, a malformed value and an impossible day', () => {
    for (const bad of [
      'Tue, 03 Feb 2026 04:05:06 +0200',
      'yesterday',
      '',
      'Tue, 31 Feb 2026 04:05:06 UTC',
      'Tue, 03 Foo 2026 04:05:06 UTC',
    ]) {
      expect([bad, parseReleaseDate(bad)]).toEqual([bad, undefined]);
    }
  });

  it('takes the header fields only, not the checksum lines', () => {
    const h = releaseHeader('Origin: O\nValid-Until: X\nSHA256:\n abc 1 main/binary-amd64/Packages\nDate: late\n');
    expect([...h]).toEqual([
      ['Origin', 'O'],
      ['Valid-Until', 'X'],
    ]);
  });
});
