import type { Digests } from '../core/types';
import { byteOrder } from '../core/order';

/**
 * The Release fields of one distribution (Debian wiki "DebianRepository/Format", section
 * Release; apt-ftparchive(1) `release`).
 */
export interface ReleaseMeta {
  origin: string;
  label: string;
  suite: string;
  codename: string;
  description?: string;
  date: Date;
  validUntil?: Date;
  /** Binary architectures, without `all` (arch-all packages are in every binary-<arch>). */
  architectures: string[];
  components: string[];
}

/** One file a Release lists; `path` is relative to dists/<codename>/, '/'-separated. */
export interface IndexFileEntry {
  path: string;
  size: number;
  digests: Digests;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Formats a date as the Release Date and Valid-Until fields want it: RFC 2822 in UTC,
 * 'Sat, 21 Nov 2026 05:15:00 UTC' (the form the Debian archive writes; apt's
 * RFC1123StrToTime reads it in every version back to jessie). apt-ftparchive 2.x writes
 * '+0000' instead of 'UTC'; both mean the same.
 */
export function formatReleaseDate(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} UTC`
  );
}

/** Release's checksum blocks: field name (as apt-ftparchive and the Debian archive write it) → digest. */
const BLOCKS: [string, keyof Digests][] = [
  ['MD5Sum', 'MD5sum'],
  ['SHA1', 'SHA1'],
  ['SHA256', 'SHA256'],
  ['SHA512', 'SHA512'],
];

/**
 * Renders a Release file. Fields in the order dpkg knows for Release files (Dpkg::Control::FieldsCore
 * CTRL_REPO_RELEASE, the order of the Debian archive): Origin, Label, Suite, Codename, Date,
 * Valid-Until (when given), Acquire-By-Hash: yes, No-Support-for-Architecture-all: Packages
 * (arch-all packages are listed in every binary-<arch>, apt ≥ 1.1 then skips binary-all),
 * Architectures, Components, Description (when given); then MD5Sum, SHA1, SHA256 and SHA512
 * blocks, each line ' <hash> <size right-aligned on 16 columns> <path>' as apt-ftparchive writes
 * (`%s %16llu %s`). The SHA512 block is left out when an entry lacks a SHA512 digest.
 * Files are listed sorted by path (byte order) so the output does not depend on the caller's order.
 * Ends with '\n'.
 * @throws Error when a value holds a newline or a path holds whitespace (it would corrupt the file).
 */
export function renderRelease(meta: ReleaseMeta, files: IndexFileEntry[]): string {
  const fields: [string, string | undefined][] = [
    ['Origin', meta.origin],
    ['Label', meta.label],
    ['Suite', meta.suite],
    ['Codename', meta.codename],
    ['Date', formatReleaseDate(meta.date)],
    ['Valid-Until', meta.validUntil ? formatReleaseDate(meta.validUntil) : undefined],
    ['Acquire-By-Hash', 'yes'],
    ['No-Support-for-Architecture-all', 'Packages'],
    ['Architectures', meta.architectures.join(' ')],
    ['Components', meta.components.join(' ')],
    ['Description', meta.description],
  ];
  let out = '';
  for (const [name, value] of fields) {
    if (value === undefined) continue;
    if (/[\r\n]/.test(value)) throw new Error(`Release field ${name}: value must be one line: ${JSON.stringify(value)}`);
    out += value === '' ? `${name}:\n` : `${name}: ${value}\n`;
  }
  const sorted = [...files].sort((a, b) => byteOrder(a.path, b.path));
  for (const f of sorted) {
    if (/\s/.test(f.path) || f.path === '') throw new Error(`Release: invalid index path ${JSON.stringify(f.path)}`);
  }
  for (const [block, key] of BLOCKS) {
    if (key === 'SHA512' && sorted.some((f) => !f.digests.SHA512)) continue;
    out += `${block}:\n`;
    for (const f of sorted) out += ` ${f.digests[key]} ${String(f.size).padStart(16)} ${f.path}\n`;
  }
  return out;
}

/**
 * Reads the checksum blocks of a Release text back into entries (the inverse of renderRelease's
 * blocks; other fields are ignored). Lines that do not parse are skipped: the caller uses this to
 * find reusable files and checks each one it uses.
 */
export function parseReleaseFiles(text: string): IndexFileEntry[] {
  const byPath = new Map<string, IndexFileEntry>();
  let key: keyof Digests | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(' ')) {
      const m = /^([A-Za-z0-9-]+):\s*$/.exec(line);
      const block = m ? BLOCKS.find(([name]) => name.toLowerCase() === m[1].toLowerCase()) : undefined;
      key = block?.[1];
      continue;
    }
    if (!key) continue;
    const m = /^ ([0-9a-f]+) +(\d+) (\S+)$/.exec(line);
    if (!m) continue;
    let e = byPath.get(m[3]);
    if (!e) {
      e = { path: m[3], size: Number(m[2]), digests: { MD5sum: '', SHA1: '', SHA256: '' } };
      byPath.set(m[3], e);
    }
    e.digests[key] = m[1];
  }
  return [...byPath.values()];
}

const DATE_RE = /^(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (UTC|GMT|Z|\+0000)$/;

/**
 * Parses a Release date field as formatReleaseDate writes it ('Sat, 21 Nov 2026 05:15:00 UTC'),
 * also with '+0000', 'GMT' or 'Z' for the zone (apt-ftparchive, RFC 1123). Returns undefined for
 * anything else (another zone, a malformed value): the caller treats it as expired.
 */
export function parseReleaseDate(text: string): Date | undefined {
  const m = DATE_RE.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]);
  if (month < 0) return undefined;
  const d = new Date(Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])));
  return Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[1]) ? undefined : d;
}

/** The single-line fields of a Release's header (up to its first checksum block), by name. */
export function releaseHeader(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') || line === '') continue;
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i);
    if (name === 'MD5Sum' || name === 'SHA1' || name === 'SHA256' || name === 'SHA512') break;
    out.set(name, line.slice(i + 1).trim());
  }
  return out;
}
