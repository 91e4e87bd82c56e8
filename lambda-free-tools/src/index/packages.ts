import { getField, type Stanza } from '../deb/control';
import { compareVersions } from '../deb/version';
import type { Digests } from '../core/types';
import type { IndexedPackage, StanzaCache } from '../core/format';
import { byteOrder } from '../core/order';

/**
 * One package of a Packages index: the .deb's control stanza, its path from the repository root,
 * its size in bytes and its digests.
 */
export interface PackagesEntry {
  control: Stanza | [string, string][];
  /** Path relative to the repository root, 'pool/main/h/hello/hello_2.10-3_amd64.deb'. */
  filename: string;
  size: number;
  digests: Digests;
}

/**
 * Field order of a Packages stanza, as dpkg-scanpackages writes it (dpkg 1.21,
 * Dpkg::Control::FieldsCore, CTRL_INDEX_PKG). Fields not listed come after, sorted by name.
 */
const INDEX_PKG_ORDER = [
  'Package',
  'Package-Type',
  'Source',
  'Version',
  'Kernel-Version',
  'Built-For-Profiles',
  'Auto-Built-Package',
  'Architecture',
  'Subarchitecture',
  'Installer-Menu-Item',
  'Build-Essential',
  'Essential',
  'Protected',
  'Origin',
  'Bugs',
  'Maintainer',
  'Installed-Size',
  'Pre-Depends',
  'Depends',
  'Recommends',
  'Suggests',
  'Enhances',
  'Conflicts',
  'Breaks',
  'Replaces',
  'Provides',
  'Built-Using',
  'Static-Built-Using',
  'Filename',
  'Size',
  'MD5sum',
  'SHA1',
  'SHA256',
  // Not in dpkg's list (dpkg-scanpackages writes no SHA512); placed after SHA256 as apt-ftparchive
  // and the Debian archive do, instead of among the unknown fields at the end.
  'SHA512',
  'Section',
  'Priority',
  'Multi-Arch',
  'Homepage',
  'Description',
  'Tag',
  'Task',
];
const RANK = new Map(INDEX_PKG_ORDER.map((name, i) => [name, i]));

/** Known field names whose spelling is not the generic Word-Word capitalisation (Dpkg::Control::FieldsCore). */
const SPECIAL_NAMES = new Map(
  ['MD5sum', 'SHA1', 'SHA256', 'SHA512', 'NotAutomatic', 'ButAutomaticUpgrades', 'No-Support-for-Architecture-all'].map((n) => [
    n.toLowerCase(),
    n,
  ]),
);

/** Fields the index writes itself from the file; a control stanza's own copies are dropped, as dpkg-scanpackages overwrites them. */
const FILE_FIELDS = new Set(['filename', 'size', 'md5sum', 'sha1', 'sha256', 'sha512']);

/**
 * A field name as dpkg writes it back: field names are case-insensitive (Debian Policy §5.1), and
 * dpkg capitalises each '-'-separated word (`installed-size` → `Installed-Size`), except a few
 * historical spellings (MD5sum, SHA1 …).
 */
export function canonicalFieldName(name: string): string {
  const lower = name.toLowerCase();
  return (
    SPECIAL_NAMES.get(lower) ??
    lower
      .split('-')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('-')
  );
}

/**
 * A field value as dpkg writes it: the first line without surrounding blanks, each continuation
 * line with trailing blanks removed and its leading blank written as one space, an empty line as
 * ' .' (deb822(5)). `value` holds continuation lines verbatim (leading blank included, see
 * deb/control.ts); a line without a leading blank gets one. Blanks are the ASCII ones only (space,
 * tab, CR, LF, FF, VT), as Perl's \s on the byte strings dpkg reads: a no-break space (U+00A0, or
 * a Latin-1 0xA0 byte) or U+2028 at the end of a line is data and stays, where JavaScript's \s and
 * trim() would remove it.
 */
function renderField(name: string, value: string): string {
  const [first, ...rest] = value.split('\n');
  const head = first.replace(LEADING_BLANKS, '').replace(TRAILING_BLANKS, '');
  let out = head === '' ? `${name}:\n` : `${name}: ${head}\n`;
  for (const raw of rest) {
    const line = raw.replace(TRAILING_BLANKS, '');
    if (line === '') out += ' .\n';
    else out += /^[ \t\r\n\f\v]/.test(line) ? ` ${line.slice(1)}\n` : ` ${line}\n`;
  }
  return out;
}

/** ASCII blanks only (see renderField). */
const LEADING_BLANKS = /^[ \t\r\n\f\v]+/;
const TRAILING_BLANKS = /[ \t\r\n\f\v]+$/;

/**
 * Renders one Packages stanza, field for field as `dpkg-scanpackages -m` writes it (dpkg-dev 1.21):
 * field names canonicalised, fields ordered as dpkg's CTRL_INDEX_PKG list with unknown fields
 * after it sorted by name, whitespace-only fields dropped, Filename, Size, MD5sum, SHA1, SHA256
 * inserted after the relationship fields (and SHA512 after SHA256 when given, see INDEX_PKG_ORDER).
 * Ends with '\n' (no blank line).
 * @throws Error when filename holds whitespace or a control character (it would corrupt the
 * index), is absolute, or has an empty, `.` or `..` segment.
 */
export function renderPackagesStanza(e: PackagesEntry): string {
  // Filename is a path clients fetch below the repository root: no whitespace or control
  // character (it would corrupt the index), no absolute path and no '.', '..' or empty segment.
  if (
    e.filename === '' ||
    /[\s\u0000-\u001f\u007f]/.test(e.filename) ||
    e.filename.startsWith('/') ||
    e.filename.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')
  ) {
    throw new Error(`Packages: invalid Filename ${JSON.stringify(e.filename)}`);
  }
  const pairs: Iterable<[string, string]> = e.control instanceof Map ? e.control.entries() : e.control;
  // Keyed by lower-case name: a repeated name keeps its first place and its last value, as dpkg's hash does.
  const fields = new Map<string, [string, string]>();
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (FILE_FIELDS.has(lower)) continue;
    const prev = fields.get(lower);
    if (prev) prev[1] = value;
    else fields.set(lower, [canonicalFieldName(name), value]);
  }
  const added: [string, string][] = [
    ['Filename', e.filename],
    ['Size', String(e.size)],
    ['MD5sum', e.digests.MD5sum],
    ['SHA1', e.digests.SHA1],
    ['SHA256', e.digests.SHA256],
  ];
  if (e.digests.SHA512) added.push(['SHA512', e.digests.SHA512]);
  // Whitespace-only fields are dropped, as dpkg does; ASCII blanks only (see renderField).
  const all = [...[...fields.values()].filter(([, value]) => /[^ \t\r\n\f\v]/.test(value)), ...added];
  all.sort(([a], [b]) => {
    const ra = RANK.get(a);
    const rb = RANK.get(b);
    if (ra !== undefined && rb !== undefined) return ra - rb;
    if (ra !== undefined) return -1;
    if (rb !== undefined) return 1;
    return byteOrder(a, b);
  });
  return all.map(([name, value]) => renderField(name, value)).join('');
}

function field(e: PackagesEntry, name: string): string {
  return (getField(e.control, name) ?? '').replace(LEADING_BLANKS, '').replace(TRAILING_BLANKS, '');
}

/**
 * The order of a Packages index: package name (byte order), then version (the given order;
 * Debian's by default), then architecture. dpkg-scanpackages sorts versions as plain strings;
 * Debian order is what apt shows and gives the same file whenever the two agree.
 * @throws VersionError (from compareVersions) for an entry with an invalid Version.
 */
export function sortForIndex<T extends { name: string; version: string; architecture: string }>(
  items: Iterable<T>,
  compare: (a: string, b: string) => number = compareVersions,
): T[] {
  return [...items].sort((a, b) => byteOrder(a.name, b.name) || compare(a.version, b.version) || byteOrder(a.architecture, b.architecture));
}

/**
 * The Packages text publish writes for every (codename, architecture): the packages of each
 * codename whose architecture is that one or `all` (apt < 1.1 ignores binary-all, so `all`
 * packages go into every binary-<arch>), in sortForIndex order, each entry followed by one blank
 * line (as dpkg-scanpackages writes it; no entries: ''). Each package's entry is rendered once
 * however many indexes list it; with `opts.cache`, entries rendered by an earlier publish are
 * reused and new ones stored, so a republish renders only new files.
 * Returns codename → architecture → text, for every codename of `perCodename` and every architecture given.
 */
export function renderPackagesIndexes(
  perCodename: Map<string, IndexedPackage[]>,
  architectures: string[],
  opts: { cache?: StanzaCache } = {},
): Map<string, Map<string, string>> {
  const unique = new Set<IndexedPackage>();
  for (const list of perCodename.values()) for (const p of list) unique.add(p);
  const sorted = sortForIndex(unique);
  const stanzas = new Map<IndexedPackage, string>();
  for (const p of sorted) {
    let stanza = opts.cache?.stanza(p.poolPath);
    if (stanza === undefined) {
      stanza = renderPackagesStanza({ control: p.control, filename: p.poolPath, size: p.size, digests: p.digests }) + '\n';
      opts.cache?.setStanza(p.poolPath, stanza);
    }
    stanzas.set(p, stanza);
  }
  const out = new Map<string, Map<string, string>>();
  for (const [codename, list] of perCodename) {
    // One pass over the codename's packages (in index order) fills every architecture's index.
    const members = new Set(list);
    const parts = new Map(architectures.map((arch) => [arch, [] as string[]]));
    const everyArch = [...parts.values()];
    for (const p of sorted) {
      if (!members.has(p)) continue;
      const stanza = stanzas.get(p)!;
      if (p.architecture === 'all') for (const a of everyArch) a.push(stanza);
      else parts.get(p.architecture)?.push(stanza);
    }
    out.set(codename, new Map([...parts].map(([arch, a]) => [arch, a.join('')])));
  }
  return out;
}

/**
 * One Packages text of `entries` as given (whatever their architectures), in the order and with
 * the stanzas renderPackagesIndexes writes: the published index's rules applied to a list that
 * names its fields only in its control data (tests compare it with dpkg-scanpackages).
 * @throws VersionError (from compareVersions) for an entry with an invalid Version.
 */
export function renderPackagesIndex(entries: PackagesEntry[]): string {
  const keyed = entries.map((e) => ({
    e,
    name: field(e, 'Package'),
    version: field(e, 'Version'),
    architecture: field(e, 'Architecture'),
  }));
  return sortForIndex(keyed)
    .map((k) => renderPackagesStanza(k.e) + '\n')
    .join('');
}
