import { execFileSync } from 'child_process';
import { UsageError } from './errors';
import { shellJoin, shellQuote } from './shellQuote';

// The hostile words of ops/shellQuote.test.ts cover the readable form; these cover `always`.
const WORDS = ['', 'plain', '/opt/apt-repo/prod/apt-repo.cjs', "it's", "'; rm -rf / #", '$(id)', 'a\nb', 'héllo ☃'];

describe('shellQuote', () => {
  test('always: every word is single-quoted, safe ones too, and reaches bash -c byte for byte', () => {
    expect(shellQuote('plain', { always: true })).toBe("'plain'");
    expect(shellQuote('', { always: true })).toBe("''");
    expect(shellQuote("it's", { always: true })).toBe(`'it'\\''s'`);
    const out = execFileSync('/bin/bash', ['-c', `printf '%s\\0' ${WORDS.map((w) => shellQuote(w, { always: true })).join(' ')}`])
      .toString('utf8')
      .split('\0');
    out.pop();
    expect(out).toEqual(WORDS);
  });

  test('by default a safe word stays bare, and shellJoin uses that form', () => {
    expect(shellQuote('--channel')).toBe('--channel');
    expect(shellJoin(['node', 'a b'])).toBe("node 'a b'");
  });

  test('a NUL byte is refused in both forms', () => {
    expect(() => shellQuote('a\0b')).toThrow(UsageError);
    expect(() => shellQuote('a\0b', { always: true })).toThrow(UsageError);
  });
});
