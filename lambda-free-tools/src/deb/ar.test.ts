/**
 * ArReader: member names in the dpkg, GNU and BSD styles, padding, any chunking of the input, and
 * the refused forms; checked against binutils `ar` on a real archive.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { arArchive } from '../../../test/harness/debs';
import { DebError } from '../errors';
import { ArReader } from './ar';

interface Seen {
  name: string;
  size: number;
  offset: number;
  data: string;
}

/** Feeds `archive` to an ArReader in chunks of `chunkSize` bytes and returns what it reported. */
function read(archive: Buffer, chunkSize = archive.length || 1): Seen[] {
  const seen: Seen[] = [];
  let parts: Buffer[] = [];
  const reader = new ArReader('test.a', {
    onMember: () => {
      parts = [];
    },
    onData: (c) => parts.push(Buffer.from(c)),
    onMemberEnd: (m) => seen.push({ name: m.name, size: m.size, offset: m.offset, data: Buffer.concat(parts).toString('latin1') }),
  });
  for (let off = 0; off < archive.length; off += chunkSize) reader.write(archive.subarray(off, off + chunkSize));
  reader.end();
  return seen;
}

const members: [string, string][] = [
  ['debian-binary', '2.0\n'],
  ['odd', 'abc'],
  ['empty', ''],
  ['a-rather-long-member-name.tar.zst', 'xyzw'],
];

describe('ArReader', () => {
  test.each(['dpkg', 'gnu', 'bsd'] as const)('reads %s-style names, odd sizes and padding, in any chunking', (style) => {
    // A name over 15 bytes only fits a BSD header.
    const expected = style === 'bsd' ? members : members.slice(0, 3);
    const input = arArchive(expected, style);
    const got = read(input);
    expect(got.map((m) => [m.name, m.size, m.data])).toEqual(expected.map(([n, d]) => [n, d.length, d]));
    for (const m of got) expect(input.subarray(m.offset, m.offset + m.size).toString('latin1')).toBe(m.data);
    for (const size of [1, 2, 7, 59, 60, 61]) expect(read(input, size)).toEqual(got);
  });

  test('agrees with binutils ar on an archive it wrote', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ar-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'one'), 'x'.repeat(101));
      fs.writeFileSync(path.join(dir, 'two.txt'), 'hello\n');
      execFileSync('ar', ['rc', 'lib.a', 'one', 'two.txt'], { cwd: dir });
      const got = read(fs.readFileSync(path.join(dir, 'lib.a')));
      const listed = execFileSync('ar', ['t', 'lib.a'], { cwd: dir, encoding: 'utf8' }).trim().split('\n');
      expect(got.map((m) => m.name)).toEqual(listed);
      expect(got.map((m) => m.data)).toEqual(['x'.repeat(101), 'hello\n']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('accepts a missing padding byte after the last member', () => {
    const archive = arArchive([['odd', 'abc']]);
    expect(read(archive.subarray(0, archive.length - 1)).map((m) => m.data)).toEqual(['abc']);
  });

  test('refuses what is not a complete ar archive, with DebError', () => {
    const good = arArchive([
      ['debian-binary', '2.0\n'],
      ['data', 'abcdef'],
    ]);
    const header2 = 8 + 60 + 4; // offset of the second member header
    const broken = Buffer.from(good);
    broken[header2 + 58] = 0x20;
    const badSize = Buffer.from(good);
    badSize.write('12x4      ', header2 + 48, 'latin1');
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(0), /empty file/],
      [Buffer.from('!<ar'), /not an ar archive \(file too short\)/],
      [Buffer.from('hello, world\n'), /not an ar archive \(no !<arch> header\)/],
      [Buffer.from('!<thin>\n'), /thin ar archives/],
      [good.subarray(0, header2 + 30), /truncated member header at offset 72/],
      [good.subarray(0, good.length - 2), /truncated member 'data': 4 of 6 bytes present/],
      [broken, /bad member header at offset 72 \(no terminator\)/],
      [badSize, /size '12x4' is not a number/],
      [arArchive([['toolong', 'x']], 'bsd').subarray(0, 8 + 60 + 3), /truncated member name/],
    ];
    for (const [archive, reason] of cases) {
      for (const chunk of [archive.length || 1, 5]) {
        expect(() => read(archive, chunk)).toThrow(DebError);
        expect(() => read(archive, chunk)).toThrow(reason);
      }
    }
  });
});
