/**
 * What a pool path read back from a file may be (the pool store, generation.json, intent
 * records, backup manifests). Apart from pool.ts so that the cache (which pool.ts uses) can check
 * its keys without an import cycle.
 */
import { checkRelPath } from '../core/files';
import { formatOf, type PackageFormat } from './format';

/**
 * `pool/` then segments of letters, digits and `. _ + ~ : -`, each starting with a letter or digit:
 * what poolPathFor writes, and the one test that passes both isPoolPath and poolNameProblem at once.
 */
export const PLAIN_POOL_PATH = /^pool(?:\/[A-Za-z0-9][A-Za-z0-9._+~:-]*)+$/;

/**
 * True for a pool path as the pool can hold it: `pool/…/<file><extension of the format>` (`.deb`
 * by default), passing checkRelPath (no absolute path, `..`, `.` or empty segment, no control
 * character) and without whitespace. Used on pool paths read back from files (the pool store,
 * generation.json, backup manifests).
 */
export function isPoolPath(p: unknown, format: Pick<PackageFormat, 'extension'> = formatOf()): p is string {
  if (typeof p !== 'string' || !p.startsWith('pool/') || !p.endsWith(format.extension)) return false;
  // What poolPathFor writes passes at once (segments that start with a letter or digit are never
  // empty, `.` or `..`); anything else gets the full check.
  if (PLAIN_POOL_PATH.test(p)) return true;
  if (/\s/.test(p)) return false;
  try {
    checkRelPath(p);
    return true;
  } catch {
    return false;
  }
}
