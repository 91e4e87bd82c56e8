/**
 * control.ts: parsing and rendering of deb822 stanzas, checked against Dpkg::Control (the parser
 * dpkg-scanpackages uses) on generated input, plus every refused form.
 */
import { execFileSync } from 'child_process';
import { DebError } from '../errors';
import {
  decodeControlBytes,
  encodeControlText,
  getField,
  isValidArchitecture,
  isValidPackageName,
  parseSourceField,
  parseStanza,
  parseStanzas,
  renderStanza,
  Stanza,
} from './control';
import { prng } from '../../../test/harness/prng';

describe('parseStanzas', () => {
  test('keeps names as written, file order, continuation lines verbatim', () => {
    const text =
      'Package: hello\nVersion: \r 2.10-3 \r\nDescription: example package\n It greets.\n .\n\t Indented  \nX-Odd-Name : v\n\n\n \t\nPackage: two\n';
    const [a, b, ...rest] = parseStanzas(text, 'Packages');
    expect(rest).toEqual([]);
    expect([...a.entries()]).toEqual([
      ['Package', 'hello'],
      ['Version', '2.10-3'],
      ['Description', 'example package\n It greets.\n .\n\t Indented'],
      ['X-Odd-Name', 'v'],
    ]);
    expect([...b.entries()]).toEqual([['Package', 'two']]);
    expect(getField(a, 'description')).toBe('example package\n It greets.\n .\n\t Indented');
    expect(getField(a, 'VERSION')).toBe('2.10-3');
    expect(getField(a, 'Depends')).toBeUndefined();
  });

  test('accepts a missing final newline, empty values and empty input', () => {
    expect([...parseStanza('Package: a\nConffiles:\n /etc/x 0123\nX-Empty:', 'c').entries()]).toEqual([
      ['Package', 'a'],
      ['Conffiles', '\n /etc/x 0123'],
      ['X-Empty', ''],
    ]);
    expect(parseStanzas('', 'c')).toEqual([]);
    expect(parseStanzas('\n\n', 'c')).toEqual([]);
  });

  test('refuses malformed input with DebError naming the source and line', () => {
    const bad: [string, RegExp][] = [
      ['Package: a\n# comment\n', /line 2: comment lines are not allowed/],
      [' cont\nPackage: a\n', /line 1: continuation line before any field/],
      ['Package: a\n\n more\n', /line 3: continuation line before any field/],
      ['Package: a\njunk\n', /line 2: expected 'Field: value'/],
      ['Package: a\npackage: b\n', /line 2: duplicate field 'package'/],
      ['Package: a\n-Foo: b\n', /line 2: field name '-Foo' cannot start with a hyphen/],
      ['Package: a\nX-Séb: b\n', /line 2: invalid field name/],
      [': v\n', /line 1: empty field name/],
    ];
    for (const [text, reason] of bad) {
      let err: unknown;
      try {
        parseStanzas(text, '/x/DEBIAN/control');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DebError);
      expect((err as DebError).file).toBe('/x/DEBIAN/control');
      expect((err as DebError).message).toMatch(reason);
    }
  });

  test('parseStanza wants exactly one stanza', () => {
    expect(() => parseStanza('\n', 'ctl')).toThrow(/ctl: no fields/);
    expect(() => parseStanza('A: 1\n\nB: 2\n', 'ctl')).toThrow(/ctl: 2 stanzas found/);
  });

  test('reads generated stanzas exactly as Dpkg::Control (dpkg-scanpackages) does', () => {
    const rand = prng(822);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const blanks = ['', ' ', '  ', '\t', ' \t'];
    const eol = (): string => pick(['', '', ' ', '\t', '\r', ' \r']) + '\n';
    const words = ['hello', 'a.b', 'x y', '1:2.3-4', '<x@y>', 'é', '(>= 1)', 'a, b | c', 'tail'];
    let text = '';
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(rand() * 6);
      for (let f = 0; f < n; f++) {
        const name = pick(['Package', 'Version', 'Depends', 'X-Custom', 'Description', 'Conffiles', 'a.B_c']) + f;
        const first = rand() < 0.15 ? '' : pick(words) + (rand() < 0.5 ? ' ' + pick(words) : '');
        text += `${name}${pick(['', ' ', '\t'])}:${pick(blanks)}${first}${eol()}`;
        const conts = rand() < 0.5 ? 0 : Math.floor(rand() * 4);
        // Where we keep lines verbatim and Dpkg::Control does not, the generator stays out: it
        // turns a tab that starts a continuation line into a space, and drops a final ' .' line.
        for (let c = 0; c < conts; c++) text += pick([' ', '  ', ' \t']) + pick(c === conts - 1 ? words : [...words, '.', '..']) + eol();
      }
      text += pick(['\n', '\n\n', ' \n', '\t\n', '\r\n']);
    }
    // Dpkg::Control leaves out fields whose value is empty and capitalises names when writing; so
    // does the comparison (names as written are checked in the tests above).
    const capitalise = (n: string): string =>
      n
        .split('-')
        .map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase())
        .join('-');
    const ours = parseStanzas(text, 'generated')
      .map((s) => renderStanza(new Map([...s].filter(([, v]) => v !== '').map(([k, v]) => [capitalise(k), v]))))
      .join('---\n');
    const perl = execFileSync(
      'perl',
      [
        '-MDpkg::Control',
        '-e',
        'my @o; while (1) { my $c = Dpkg::Control->new(type => CTRL_UNKNOWN); last unless $c->parse(\\*STDIN, "stdin"); push @o, $c->output } print join("---\\n", @o)',
      ],
      { input: text, encoding: 'utf8' },
    );
    expect(ours.split('\n')).toEqual(perl.split('\n'));
    expect(ours.length).toBeGreaterThan(5000);
  });
});

describe('renderStanza', () => {
  test('writes Name: value lines and round-trips through parseStanza', () => {
    const s: Stanza = new Map([
      ['Package', 'hello'],
      ['Description', 'short\n long\n .\n more'],
      ['SHA256', '\n abc 12 main/binary-amd64/Packages'],
      ['X-Empty', ''],
    ]);
    const text = renderStanza(s);
    expect(text).toBe('Package: hello\nDescription: short\n long\n .\n more\nSHA256:\n abc 12 main/binary-amd64/Packages\nX-Empty:\n');
    expect(parseStanza(text, 'rendered')).toEqual(s);
  });
});

describe('isValidPackageName', () => {
  test('follows Debian Policy §5.6.1', () => {
    for (const n of ['hello', 'libc6', 'g++', 'lib.x-y+z', '0ad', 'ab']) expect([n, isValidPackageName(n)]).toEqual([n, true]);
    for (const n of ['a', '', 'Hello', '-x', '.x', '+x', 'a_b', 'a b', 'é1', 'a:b']) expect([n, isValidPackageName(n)]).toEqual([n, false]);
  });
});

describe('fields that reach a path (issue 8)', () => {
  test('parseSourceField takes `name` and `name (version)` only', () => {
    expect(parseSourceField('hello')).toEqual({ name: 'hello' });
    expect(parseSourceField('hello (1:2.0-1)')).toEqual({ name: 'hello', version: '1:2.0-1' });
    for (const bad of [
      '../../../prod/pool/main/e/evil',
      'a/b',
      '..',
      'ab (1/2)',
      'ab (1.0',
      'ab (1.0) x',
      'ab\n ../x',
      'ab\u0000',
      'AB',
      'a',
      'ab (../1)',
      'ab ()',
      '',
    ]) {
      expect([bad, parseSourceField(bad)]).toEqual([bad, undefined]);
    }
  });

  test('isValidArchitecture: one architecture or all, never a path', () => {
    for (const ok of ['amd64', 'all', 'arm64', 'kfreebsd-amd64', 'x32']) expect([ok, isValidArchitecture(ok)]).toEqual([ok, true]);
    for (const bad of ['any', '../amd64', 'amd64/x', 'amd64 i386', 'amd64\n', '-amd64', 'amd64-', 'AMD64', '', 'a\u0000'])
      expect([bad, isValidArchitecture(bad)]).toEqual([bad, false]);
  });

  test('isValidPackageName refuses a path, NUL and newline', () => {
    for (const bad of ['../x', 'a/b', '..', 'ab\u0000', 'ab\ncd', '.ab']) expect([bad, isValidPackageName(bad)]).toEqual([bad, false]);
  });
});

describe('decodeControlBytes / encodeControlText keep every byte (dpkg treats control data as bytes)', () => {
  it('gives back the exact bytes of 3,000 random buffers, UTF-8 or not', () => {
    const rnd = prng(9);
    // Bytes drawn to hit every UTF-8 lead and continuation range, overlong forms and surrogates.
    const pool = [
      0x41, 0x20, 0x0a, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xdf, 0xe0, 0xe9, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
    ];
    for (let n = 0; n < 3000; n++) {
      const b = Buffer.from(
        Array.from({ length: Math.floor(rnd() * 24) }, () =>
          rnd() < 0.3 ? Math.floor(rnd() * 256) : pool[Math.floor(rnd() * pool.length)],
        ),
      );
      const text = decodeControlBytes(b);
      expect(encodeControlText(text).equals(b)).toBe(true);
      // Survives the pool cache (JSON) too.
      expect(encodeControlText(JSON.parse(JSON.stringify(text)) as string).equals(b)).toBe(true);
    }
  });

  it('decodes valid UTF-8 as UTF-8, and each other byte as one lone surrogate U+DC80..U+DCFF', () => {
    expect(decodeControlBytes(Buffer.from('Andr\u00e9 \u{1F600} \u00a0', 'utf8'))).toBe('Andr\u00e9 \u{1F600} \u00a0');
    expect(decodeControlBytes(Buffer.from([0x41, 0xe9, 0x42]))).toBe('A\udce9B');
    // Overlong '/' (C0 AF), an encoded surrogate (ED A0 80), a truncated sequence at the end.
    expect(decodeControlBytes(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82]))).toBe('\udcc0\udcaf\udced\udca0\udc80\udce2\udc82');
    expect(encodeControlText('caf\udce9 \u00e9').equals(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xc3, 0xa9]))).toBe(true);
    // A surrogate pair whose low half is in U+DC80..U+DCFF is a character, not an escaped byte.
    expect(encodeControlText('\u{10080}').equals(Buffer.from('\u{10080}', 'utf8'))).toBe(true);
  });
});
