/**
 * The host's account names: ids to names from passwd(5) and group(5). The accounts are the host's,
 * so the files are `/etc/passwd` and `/etc/group`, never under `--root`; tests pass their own.
 * Read by the owner check of writing commands (cli/owner.ts) and by doctor (repo/doctor.ts).
 */
import * as fs from 'fs';

/** The host's passwd(5) file. */
export const PASSWD_FILE = '/etc/passwd';
/** The host's group(5) file. */
export const GROUP_FILE = '/etc/group';

/**
 * id → name from a passwd(5) or group(5) file (`name:x:id:…`, field 3 the id in decimal): lines
 * with an empty name or a non-numeric id are skipped, and the first name of an id wins. Returns an
 * empty map when the file cannot be read (a container without one: ids are then shown as numbers);
 * never throws.
 */
export function idNames(file: string): Map<number, string> {
  const names = new Map<number, string>();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || !/^\d+$/.test(f[2])) continue;
    const id = Number(f[2]);
    if (!names.has(id)) names.set(id, f[0]);
  }
  return names;
}

/**
 * The name of `id` in `names` (from idNames), or `<kind> <id>` (`uid 1000`, `gid 50`) when it has
 * none, so a message or a report still names the account.
 */
export function idName(names: ReadonlyMap<number, string>, id: number, kind: 'uid' | 'gid'): string {
  return names.get(id) ?? `${kind} ${id}`;
}
