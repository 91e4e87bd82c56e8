/**
 * The Debian package format behind the seam of core/format.ts: `.deb` files read with readDeb (on
 * every core, deb/parallel.ts), identities checked by Debian Policy, versions ordered as dpkg
 * does, the Debian archive's pool layout and its `dists` index layout (index/dists.ts). Imports only
 * deb/, index/ and core/: the channel modules reach it through repo/format.ts `formatOf`.
 */
import { DebError } from '../errors';
import type { PackageFormat, PackageIdentity, PackageRead } from '../core/format';
import { isValidArchitecture, isValidPackageName, parseSourceField } from './control';
import { readDeb, type DebInfo } from './debfile';
import { readDebs } from './parallel';
import { compareVersions, isValidVersion, parseVersion } from './version';
import { debianDists } from '../index/dists';

/**
 * The pool directory prefix of a source package: its first letter, or `lib` + the fourth letter
 * for `lib*` sources (`libfoo` → `libf`), as the Debian archive does.
 */
export function poolPrefix(source: string): string {
  return source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
}

/**
 * The source package name of a binary package: the Source field without its optional
 * ` (version)`, or the package name when there is no Source field (Debian Policy §5.6.1).
 * Throws DebError for a Source field that parseSourceField refuses (a path, a newline …).
 */
export function sourceName(sourceField: string | undefined, name: string): string {
  if (sourceField === undefined || sourceField.trim() === '') return name;
  const parsed = parseSourceField(sourceField.trim());
  if (!parsed) throw new DebError(JSON.stringify(name), `invalid Source field ${JSON.stringify(sourceField)} (Debian Policy §5.6.1)`);
  return parsed.name;
}

function asRead(info: DebInfo): PackageRead {
  return { control: Array.from(info.control.entries()), size: info.size, digests: info.digests };
}

/**
 * Debian's identity check of control data (which may come from a cache file: checked again as
 * readDeb checks it); the reason names the field and the Policy section.
 */
const IDENTITY_FIELDS = ['Package', 'Version', 'Architecture', 'Source'] as const;
type IdentityField = (typeof IDENTITY_FIELDS)[number];

/**
 * The four fields identify reads, as getField finds each (the exact name first, else the first
 * whose name matches ignoring case: Debian Policy §5.1), in one pass over the control fields
 * (publish identifies every package of the pool on each run).
 */
function identityFields(control: readonly [string, string][]): Partial<Record<IdentityField, string>> {
  const exact: Partial<Record<IdentityField, string>> = {};
  const folded: Partial<Record<IdentityField, string>> = {};
  for (const [k, v] of control) {
    if (k.length !== 6 && k.length !== 7 && k.length !== 12) continue;
    for (const f of IDENTITY_FIELDS) {
      if (k === f) exact[f] ??= v;
      else if (k.length === f.length && k.toLowerCase() === f.toLowerCase()) folded[f] ??= v;
    }
  }
  return { ...folded, ...exact };
}

/** A field value as a reason quotes it: JSON, cut at 80 characters. */
const shown = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);

function identify(control: [string, string][]): PackageIdentity | string {
  const { Package: name, Version: version, Architecture: architecture, Source: sourceField } = identityFields(control);
  const missing = (
    [
      ['Package', name],
      ['Version', version],
      ['Architecture', architecture],
    ] as const
  )
    .filter(([, v]) => !v)
    .map(([f]) => f);
  if (missing.length) return `control has no ${missing.join(', ')} field`;
  if (!isValidPackageName(name!)) return `invalid Package field ${shown(name!)} (Debian Policy §5.6.1)`;
  if (!isValidVersion(version!)) return `invalid Version field ${shown(version!)} (Debian Policy §5.6.12)`;
  if (!isValidArchitecture(architecture!)) return `invalid Architecture field ${shown(architecture!)} (Debian Policy §5.6.8)`;
  if (sourceField !== undefined && !parseSourceField(sourceField)) return `invalid Source field ${JSON.stringify(sourceField)}`;
  return { name: name!, version: version!, architecture: architecture!, source: sourceName(sourceField, name!) };
}

/** A stored identity checked as identify checks the fields (the source as a plain package name). */
function checkIdentity(id: PackageIdentity): PackageIdentity | string {
  if (!isValidPackageName(id.name)) return `invalid Package field ${shown(id.name)} (Debian Policy §5.6.1)`;
  if (!isValidVersion(id.version)) return `invalid Version field ${shown(id.version)} (Debian Policy §5.6.12)`;
  if (!isValidArchitecture(id.architecture)) return `invalid Architecture field ${shown(id.architecture)} (Debian Policy §5.6.8)`;
  if (!isValidPackageName(id.source)) return `invalid Source field ${shown(id.source)} (Debian Policy §5.6.1)`;
  return id;
}

/**
 * Debian's pool path: `pool/<component>/<prefix>/<source>/[<codename>/]<name>_<version without
 * epoch>_<arch>.deb` (the file name dpkg-name gives). Throws DebError(name, reason) for a name or
 * source that is not a package name (Debian Policy §5.6.1), an architecture that is not one
 * (§5.6.8), and VersionError for an invalid version (§5.6.12).
 */
function poolPath(p: PackageIdentity, component: string, codename?: string): string {
  const fail = (reason: string): never => {
    throw new DebError(JSON.stringify(p.name), reason);
  };
  if (!isValidPackageName(p.name)) fail(`invalid package name ${JSON.stringify(p.name)} (Debian Policy §5.6.1)`);
  if (!isValidPackageName(p.source)) fail(`invalid source package name ${JSON.stringify(p.source)} (Debian Policy §5.6.1)`);
  if (!isValidArchitecture(p.architecture)) fail(`invalid architecture ${JSON.stringify(p.architecture)} (Debian Policy §5.6.8)`);
  const v = parseVersion(p.version);
  const noEpoch = v.revision ? `${v.upstream}-${v.revision}` : v.upstream;
  const dir = ['pool', component, poolPrefix(p.source), p.source, ...(codename ? [codename] : [])].join('/');
  return `${dir}/${p.name}_${noEpoch}_${p.architecture}.deb`;
}

/**
 * The Description field of Debian Policy §5.6.13: the synopsis (first line) and the extended
 * description (the continuation lines, each without its leading space; a line of ` .` is an empty
 * line). Case of the field name is ignored, as for every control field (§5.1).
 */
export function describeDeb(control: readonly [string, string][]): { summary: string; text: string } {
  const value = control.find(([k]) => k.toLowerCase() === 'description')?.[1] ?? '';
  const [first = '', ...rest] = value.split('\n');
  const lines = rest.map((l) => {
    const t = l.startsWith(' ') ? l.slice(1) : l;
    return t.trim() === '.' ? '' : t;
  });
  return { summary: first.trim(), text: lines.join('\n').trim() };
}

/** The Debian format (see core/format.ts PackageFormat). */
export const debianFormat: PackageFormat = {
  id: 'deb',
  extension: '.deb',
  nameRule: 'Debian Policy §5.6.1',
  versionRule: 'Debian Policy §5.6.12',
  versionKind: 'Debian',
  read: async (file, opts = {}) => asRead(await readDeb(file, opts)),
  readMany: (files, opts) =>
    readDebs(files, { bytes: opts.bytes, onResult: (i, r) => opts.onResult(i, r instanceof Error ? r : asRead(r)) }),
  identify,
  checkIdentity,
  nameOf: (control) => identityFields(control).Package,
  isValidName: isValidPackageName,
  isValidVersion,
  compareVersions,
  versionKey(version) {
    // apt treats `1.0` and `0:1.0` as one version: epoch 0 and an empty revision made explicit.
    try {
      const p = parseVersion(version);
      return `${p.epoch}:${p.upstream}-${p.revision}`;
    } catch {
      return version;
    }
  },
  describe: describeDeb,
  installCommand: (name, version) => `apt-get install ${name}=${version}`,
  poolPath,
  indexes: debianDists,
};
