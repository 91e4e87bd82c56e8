/**
 * Control stanzas (deb822): DEBIAN/control, Packages and Release files. Follows deb822(5) and
 * Debian Policy §5.1, and reads values the way dpkg-scanpackages (Dpkg::Control) does, so that an
 * index written from them matches the one the Debian tools write:
 * - the first line of a value loses its surrounding blanks; continuation lines (starting with a
 *   space or tab) are kept verbatim, leading blanks and ' .' lines included, minus trailing blanks;
 * - a line of blanks separates stanzas, like an empty line (deb822(5) allows it);
 * - CR before LF is tolerated (it is trailing whitespace);
 * - comment lines ('#' in column 1) are refused: deb822(5) allows them only in debian/control
 *   (source packages), and dpkg-deb refuses them in DEBIAN/control.
 */
import { DebError } from '../errors';
import { isValidVersion } from './version';

/**
 * Decodes the bytes of a control file into text without losing any byte. dpkg and
 * dpkg-scanpackages treat control data as bytes (Dpkg::Control reads it without decoding), so a
 * Latin-1 byte in a Description must reach Packages unchanged, where a plain UTF-8 decode turns
 * it into U+FFFD. Valid UTF-8 decodes as usual; each byte that is not part of a valid UTF-8
 * sequence (RFC 3629: no overlong form, no surrogate, nothing above U+10FFFF) becomes the lone
 * surrogate U+DC00 + byte (U+DC80..U+DCFF), which no valid UTF-8 text can hold, so
 * encodeControlText gives the exact bytes back. Lone surrogates survive JSON.stringify/parse (the
 * pool cache) and structured clone (worker threads); a terminal shows them as U+FFFD.
 */
export function decodeControlBytes(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(b)) return b.toString('utf8');
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < b.length) {
    const n = utf8SequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (start < i) parts.push(b.toString('utf8', start, i));
    parts.push(String.fromCharCode(0xdc00 + b[i]));
    i += 1;
    start = i;
  }
  if (start < b.length) parts.push(b.toString('utf8', start));
  return parts.join('');
}

/** Lone surrogates U+DC80..U+DCFF: the escaped bytes of decodeControlBytes (a surrogate pair never matches with the u flag). */
const ESCAPED_BYTE = /[\udc80-\udcff]/u;
const ESCAPED_BYTES = /[\udc80-\udcff]/gu;

/**
 * The bytes of control text from decodeControlBytes (or any string): UTF-8, except that each lone
 * surrogate U+DC80..U+DCFF is written as the single byte it stands for. What a Packages index is
 * written with, so that its bytes are the .deb's control bytes, as dpkg-scanpackages writes them.
 */
export function encodeControlText(text: string): Buffer {
  if (!ESCAPED_BYTE.test(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(ESCAPED_BYTES)) {
    parts.push(Buffer.from(text.slice(last, m.index), 'utf8'), Buffer.of(text.charCodeAt(m.index!) - 0xdc00));
    last = m.index! + 1;
  }
  parts.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

/** True when `b` is valid UTF-8 (node's buffer.isUtf8 where it exists: node >= 18.14). */
function isUtf8(b: Buffer): boolean {
  const native = (require('buffer') as { isUtf8?: (x: Uint8Array) => boolean }).isUtf8;
  if (native) return native(b);
  for (let i = 0; i < b.length;) {
    const n = utf8SequenceLength(b, i);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/** Length of the valid UTF-8 sequence starting at b[i] (RFC 3629 §4 table), 0 when there is none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** One stanza: field names as written, in file order; values as described in the module comment. */
export type Stanza = Map<string, string>;

/** deb822(5): a field name is US-ASCII '!'..'9' and ';'..'~', not starting with '#' or '-'. */
const FIELD_NAME = /^[!-9;-~]+$/;

/**
 * Parses every stanza of `text` (empty stanzas between repeated blank lines are skipped).
 * `source` names the file in errors. Throws DebError(source, 'line N: reason') for a comment line,
 * a continuation line before any field, a line without a colon, an empty or invalid field name
 * (deb822(5) charset, no leading '-'), or a field repeated in one stanza (names compared
 * case-insensitively, as fields are).
 */
export function parseStanzas(text: string, source: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza | undefined;
  let seen = new Set<string>();
  let field: string | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, k) => {
    const fail = (reason: string): never => {
      throw new DebError(source, `line ${k + 1}: ${reason}`);
    };
    const line = raw.replace(/[ \t\r\n\f\v]+$/, '');
    if (line === '') {
      current = undefined;
      field = undefined;
      return;
    }
    if (line.startsWith('#')) fail('comment lines are not allowed here (deb822(5): only in debian/control)');
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current || field === undefined) fail('continuation line before any field');
      current!.set(field!, current!.get(field!) + '\n' + line);
      return;
    }
    const colon = line.indexOf(':');
    if (colon < 0) fail(`expected 'Field: value', got '${line.slice(0, 40)}'`);
    const name = line.slice(0, colon).replace(/[ \t]+$/, '');
    if (name === '') fail('empty field name');
    if (!FIELD_NAME.test(name)) fail(`invalid field name '${name}' (deb822(5): printable US-ASCII, no space or colon)`);
    if (name.startsWith('-')) fail(`field name '${name}' cannot start with a hyphen`);
    if (!current) {
      current = new Map();
      seen = new Set();
      stanzas.push(current);
    }
    if (seen.has(name.toLowerCase())) fail(`duplicate field '${name}'`);
    seen.add(name.toLowerCase());
    current.set(name, line.slice(colon + 1).replace(/^[ \t\r\f\v]+/, ''));
    field = name;
  });
  return stanzas;
}

/**
 * Parses text that must hold exactly one stanza (DEBIAN/control). Throws DebError(source, reason)
 * for anything parseStanzas refuses, for no stanza at all, or for more than one.
 */
export function parseStanza(text: string, source: string): Stanza {
  const stanzas = parseStanzas(text, source);
  if (stanzas.length === 0) throw new DebError(source, 'no fields (empty control data)');
  if (stanzas.length > 1) throw new DebError(source, `${stanzas.length} stanzas found, only one allowed`);
  return stanzas[0];
}

/**
 * Renders a stanza as `Name: value\n` per field, in map order, with no trailing blank line. A value
 * whose first line is empty (e.g. Conffiles, or a Release checksum list) is written `Name:` directly
 * followed by its continuation lines.
 */
export function renderStanza(s: Stanza): string {
  let out = '';
  for (const [name, value] of s) out += value === '' || value.startsWith('\n') ? `${name}:${value}\n` : `${name}: ${value}\n`;
  return out;
}

/**
 * The value of field `name` in a stanza or in [name, value] pairs (control data read back from a
 * cache), matched case-insensitively (deb822(5)); undefined when absent. The one field lookup of
 * the project: names are nearly always written as asked, so the exact name is tried first (this
 * runs for every pool file of every scan).
 */
export function getField(s: Stanza | readonly [string, string][], name: string): string | undefined {
  if (s instanceof Map) {
    const v = s.get(name);
    if (v !== undefined) return v;
  } else {
    for (const [k, v] of s) if (k === name) return v;
  }
  const lower = name.toLowerCase();
  for (const [k, value] of s) if (k.toLowerCase() === lower) return value;
  return undefined;
}

/**
 * True for a valid package name (Debian Policy §5.6.1): at least two characters, lower case
 * letters, digits, '+', '-' and '.', starting with a letter or digit.
 */
export function isValidPackageName(n: string): boolean {
  return /^[a-z0-9][a-z0-9+.-]+$/.test(n);
}

/**
 * Splits a binary package's Source field (Debian Policy §5.6.1: `name` or `name (version)`, the
 * version being the source's when it differs from the binary's) into its name and optional
 * version. Returns undefined for anything else: a name that isValidPackageName refuses, a version
 * that is not valid (§5.6.12: no `/`, whitespace or control character), text after the version,
 * or a second line.
 */
export function parseSourceField(value: string): { name: string; version?: string } | undefined {
  const m = /^([^\s()]+)(?:[ \t]+\(([^()\s]+)\))?$/.exec(value);
  if (!m || !isValidPackageName(m[1])) return undefined;
  if (m[2] !== undefined && !isValidVersion(m[2])) return undefined;
  return m[2] === undefined ? { name: m[1] } : { name: m[1], version: m[2] };
}

/**
 * True for the Architecture of one binary package (Debian Policy §5.6.8): `all`, or one Debian
 * architecture name as dpkg-architecture(1) spells them (`amd64`, `arm64`, `kfreebsd-amd64` …:
 * lower-case letters and digits, '-' inside). `any` and lists are for source packages only.
 */
export function isValidArchitecture(a: string): boolean {
  return a !== 'any' && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(a);
}
