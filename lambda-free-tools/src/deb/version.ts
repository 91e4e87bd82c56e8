/**
 * Debian version strings: parsing, validation and ordering, as Debian Policy §5.6.12 defines them
 * and as dpkg implements them (lib/dpkg/parsehelp.c `parseversion`, lib/dpkg/version.c
 * `verrevcmp`). A version is valid here exactly when `dpkg --compare-versions` accepts it without
 * an error or a warning (dpkg-deb --build refuses both); surrounding whitespace, which dpkg trims,
 * is refused too since control values are already trimmed.
 */
import { VersionError } from '../errors';

/** A parsed version: `[epoch:]upstream[-revision]`; epoch 0 and revision '' when absent. */
export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Largest epoch dpkg accepts (it parses it into a C int). */
const MAX_EPOCH = 2 ** 31 - 1;

/**
 * Parses `v` into epoch, upstream version and revision (Policy §5.6.12): the epoch is the part
 * before the first ':', the revision the part after the last '-'. Upstream must start with a digit
 * and hold only alphanumerics and `. + ~ - :`; the revision only alphanumerics and `. + ~`.
 * Throws VersionError with dpkg's reason (empty, embedded spaces, epoch not a number / empty / too
 * big, nothing after colon, revision empty, upstream empty or not starting with a digit, invalid
 * character).
 */
export function parseVersion(v: string): DebVersion {
  const fail = (reason: string): never => {
    throw new VersionError(v, reason);
  };
  if (v === '') fail('version string is empty');
  if (/\s/.test(v)) fail('version string contains whitespace');
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const e = v.slice(0, colon);
    if (e === '') fail('epoch in version is empty');
    if (!/^[0-9]+$/.test(e)) fail('epoch in version is not number');
    epoch = Number(e);
    if (epoch > MAX_EPOCH) fail('epoch in version is too big');
    rest = v.slice(colon + 1);
    if (rest === '') fail('nothing after colon in version number');
  }
  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision === '') fail('revision number is empty');
  }
  if (upstream === '') fail('version number is empty');
  if (!/^[0-9]/.test(upstream)) fail('version number does not start with digit');
  if (!/^[A-Za-z0-9.+~:-]*$/.test(upstream)) fail('invalid character in version number');
  if (!/^[A-Za-z0-9.+~]*$/.test(revision)) fail('invalid character in revision number');
  return { epoch, upstream, revision };
}

/** True when `v` parses with parseVersion (no error thrown). */
export function isValidVersion(v: string): boolean {
  try {
    parseVersion(v);
    return true;
  } catch (e) {
    if (e instanceof VersionError) return false;
    throw e;
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * Sort weight of one character in a non-digit run: '~' before the end of the string, the end
 * before letters, letters before everything else (dpkg's `order()`). `c` is -1 past the end.
 */
function order(c: number): number {
  if (c < 0 || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126 /* ~ */) return -1;
  return c + 256;
}

/**
 * Compares two upstream versions or two revisions with the Policy §5.6.12 algorithm: alternate
 * non-digit runs (compared character by character with `order`) and digit runs (compared
 * numerically, leading zeros ignored, so arbitrarily long numbers work).
 */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (s: string, k: number): number => (k < s.length ? s.charCodeAt(k) : -1);
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const d = order(at(a, i)) - order(at(b, j));
      if (d !== 0) return d;
      i++;
      j++;
    }
    while (at(a, i) === 48) i++;
    while (at(b, j) === 48) j++;
    let firstDiff = 0;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (firstDiff === 0) firstDiff = at(a, i) - at(b, j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/**
 * Compares two version strings in Debian order: epoch numerically, then upstream, then revision
 * (a missing revision sorts like '0'). Returns <0, 0 or >0 like `dpkg --compare-versions a lt|eq|gt
 * b`; '1.0' and '1.0-0', or '1.01' and '1.1', compare equal. Throws VersionError for an invalid
 * version (see parseVersion).
 */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  return Math.sign(compareFragment(va.upstream, vb.upstream)) || Math.sign(compareFragment(va.revision, vb.revision));
}
