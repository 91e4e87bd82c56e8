import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { UsageError } from '../errors';
import { splitPrefix } from './shellQuote';
import { shellJoin, shellQuote } from '../shellQuote';

// Strings a package spec, path or prefix could carry if someone tried to break out of the quoting.
const HOSTILE = [
  '',
  ' ',
  'plain',
  "it's",
  "'",
  "''",
  '"',
  '"$HOME"',
  '$(touch /tmp/pwned)',
  '`id`',
  '\\',
  "\\'",
  'a\nb',
  '\n',
  'tab\there',
  '*',
  '~',
  '~root',
  '!!',
  '#comment',
  'a;b',
  'a|b',
  'a&&b',
  '>out',
  '<in',
  '{a,b}',
  '-n',
  '--json',
  'pkg=1.0-1+deb12u1',
  'FOO=bar',
  'x\u0001y\u007f',
  'héllo ☃',
  "'; rm -rf / #",
];

/** Runs `printf '%s\0' <quoted words>` through `shell -c` and returns the words it received. */
function roundTrip(shell: string, words: string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${shellJoin(words)}`]);
  const parts = out.toString('utf8').split('\0');
  parts.pop();
  return parts;
}

describe('shellQuote', () => {
  const shells = ['/bin/sh', '/bin/dash', '/bin/bash'].filter((s) => fs.existsSync(s));

  test.each(shells)('every hostile word reaches %s -c byte for byte', (shell) => {
    expect(roundTrip(shell, HOSTILE)).toEqual(HOSTILE);
  });

  test('a word made only of safe characters stays bare; others are single-quoted', () => {
    expect(shellQuote('/opt/apt-repo/prod/apt-repo.cjs')).toBe('/opt/apt-repo/prod/apt-repo.cjs');
    expect(shellQuote('--channel')).toBe('--channel');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
  });

  test('a first word with = is quoted, so the shell runs it instead of assigning a variable', () => {
    const out = execFileSync('/bin/sh', ['-c', `${shellQuote('FOO=bar')} 2>&1; echo "rc=$?"`]).toString();
    expect(out).toMatch(/not found|No such file/);
    expect(out).toMatch(/rc=127/);
  });

  test('a NUL byte is refused', () => {
    expect(() => shellQuote('a\0b')).toThrow(UsageError);
  });
});

describe('splitPrefix', () => {
  test('splits on white space and keeps shell syntax literal (then quoted)', () => {
    expect(splitPrefix('')).toEqual([]);
    expect(splitPrefix('  sudo  -n\t-u aptrepo ')).toEqual(['sudo', '-n', '-u', 'aptrepo']);
    expect(splitPrefix('sudo;id')).toEqual(['sudo;id']);
    expect(shellJoin(splitPrefix('env;id'))).toBe("'env;id'");
  });
});
