/**
 * Routing: which codenames (dists/<codename>) a pool package is published under.
 *
 * The packaging scripts put the target release into the version (`1.0-2+deb9u1`, `1.0-1+jessie8`,
 * `2.0~bionic1`); a table of regular expressions over the version string maps those suffixes to
 * codenames. Without a suffix match, a codename folder in the pool path (the drop zone's
 * `incoming/<source>/<codename>/` kept by ingest) decides; otherwise the package goes everywhere.
 */
import type { ChannelConfig, RoutingRule } from '../core/types';

/** Debian release numbers → codenames (https://wiki.debian.org/DebianReleases). */
export const DEBIAN_CODENAMES: Readonly<Record<string, string>> = {
  '6': 'squeeze',
  '7': 'wheezy',
  '8': 'jessie',
  '9': 'stretch',
  '10': 'buster',
  '11': 'bullseye',
  '12': 'bookworm',
  '13': 'trixie',
  '14': 'forky',
};

/** Ubuntu release versions → codenames (https://wiki.ubuntu.com/Releases). */
export const UBUNTU_CODENAMES: Readonly<Record<string, string>> = {
  '14.04': 'trusty',
  '16.04': 'xenial',
  '18.04': 'bionic',
  '20.04': 'focal',
  '22.04': 'jammy',
  '24.04': 'noble',
  '24.10': 'oracular',
  '25.04': 'plucky',
  '25.10': 'questing',
};

const KNOWN_CODENAMES = [...Object.values(DEBIAN_CODENAMES), ...Object.values(UBUNTU_CODENAMES)];

/** What may follow a routing suffix: the end, or another suffix (`+b1` binNMU, `.1` rebuild …). */
const TAIL = '(?:[+~.].*)?$';

/**
 * The default version-suffix table, tried in order (first match wins):
 * - `+debNuM`, `+debN`, `~debN` → Debian release N (`1.0-2+deb9u1` → stretch);
 * - `~bpoN` backports (and the old `~bpo60`/`~bpo70` spelling) → Debian release N;
 * - `~ubuntuYY.MM` → that Ubuntu release (`1.0-1~ubuntu22.04.1` → jammy);
 * - `+<codename>N`, `+<codename>`, `~<codename>N`, `.<codename>` for any known Debian or Ubuntu
 *   codename (`1.0-1+jessie8` → jessie, `2.0~bionic1` → bionic).
 * Each pattern starts with a greedy `^.*` so that the LAST suffix of its kind decides: a rebuild
 * such as `6.16-1+deb13u1~deb12u1` (trixie's update rebuilt for bookworm) goes to bookworm.
 * A `$N` codename is the pattern's group N; a number maps through DEBIAN_CODENAMES and a `YY.MM`
 * through UBUNTU_CODENAMES (see expandCodename).
 */
export const DEFAULT_ROUTING: RoutingRule[] = [
  { pattern: `^.*[+~]deb(\\d+)(?:u\\d+)?${TAIL}`, codenames: ['$1'] },
  { pattern: `^.*~bpo([67])0${TAIL}`, codenames: ['$1'] },
  { pattern: `^.*~bpo(\\d+)${TAIL}`, codenames: ['$1'] },
  { pattern: `^.*~ubuntu(\\d\\d\\.\\d\\d)${TAIL}`, codenames: ['$1'] },
  { pattern: `^.*[+~.](${KNOWN_CODENAMES.join('|')})\\d*${TAIL}`, codenames: ['$1'] },
];

/**
 * Expands one codename of a rule against a match: `$N` becomes group N, then a Debian release
 * number or an Ubuntu `YY.MM` version becomes its codename; anything else is taken as a codename
 * (lower-cased). Returns undefined when the group did not participate or maps to nothing known.
 */
export function expandCodename(template: string, match: RegExpExecArray): string | undefined {
  const value = template
    .replace(/\$(\d+)/g, (_, n: string) => match[Number(n)] ?? '')
    .trim()
    .toLowerCase();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return DEBIAN_CODENAMES[String(Number(value))];
  if (/^\d\d\.\d\d$/.test(value)) return UBUNTU_CODENAMES[value];
  return value;
}

const compiled = new Map<string, RegExp>();
function regexOf(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(pattern);
    compiled.set(pattern, re);
  }
  return re;
}

/**
 * Applies the version-suffix table only: the codenames of the first matching rule (possibly
 * codenames the channel does not publish), or undefined when no rule matches.
 * Throws SyntaxError for an invalid pattern (loadChannel validates patterns beforehand).
 */
export function suffixCodenames(version: string, routing: RoutingRule[]): string[] | undefined {
  for (const rule of routing) {
    const m = regexOf(rule.pattern).exec(version);
    if (!m) continue;
    const out: string[] = [];
    for (const t of rule.codenames) {
      const c = expandCodename(t, m);
      if (c && !out.includes(c)) out.push(c);
    }
    return out;
  }
  return undefined;
}

/**
 * The codename folder of a pool path, if any: a directory segment after
 * `pool/<component>/<prefix>/<source>/` equal to one of `codenames`
 * (`pool/main/d/demo/bookworm/demo_1.0_all.deb` → bookworm). The source folder itself is not
 * considered, so a source package named like a codename does not route by accident.
 */
export function folderCodename(poolPath: string, codenames: string[]): string | undefined {
  // `pool/<component>/<prefix>/<source>/<file>` (the usual case) has no folder to look at.
  let slashes = 0;
  for (let i = poolPath.indexOf('/'); i >= 0; i = poolPath.indexOf('/', i + 1)) slashes++;
  if (slashes <= 4) return undefined;
  const dirs = poolPath.split('/').slice(0, -1);
  for (let i = 4; i < dirs.length; i++) if (codenames.includes(dirs[i])) return dirs[i];
  return undefined;
}

/**
 * Codenames a package is published under, restricted to the channel's codenames (liste_dist), in
 * liste_dist order. Version-suffix table first (a match to codenames the channel does not publish
 * gives [] — published nowhere, the caller warns), then the pool path's codename folder, else every
 * codename. `version` is the full Debian version; `poolPath` is relative to the web root.
 */
export function routeCodenames(version: string, poolPath: string, ch: Pick<ChannelConfig, 'codenames' | 'routing'>): string[] {
  const bySuffix = suffixCodenames(version, ch.routing);
  if (bySuffix) return ch.codenames.filter((c) => bySuffix.includes(c));
  const folder = folderCodename(poolPath, ch.codenames);
  if (folder) return [folder];
  return [...ch.codenames];
}
