/**
 * What a pool path read back from a file may be (caches, added.json, generation.json, intent
 * records, backup manifests). Apart from pool.ts so that the cache (which pool.ts uses) can check
 * its keys without an import cycle.
 */
import { checkRelPath } from '../core/files';
import { formatOf, type PackageFormat } from './format';

/**
 * True for a pool path as the pool can hold it: `pool/…/<file><extension of the format>` (`.deb`
 * by default), passing checkRelPath (no absolute path, `..`, `.` or empty segment, no control
 * character) and without whitespace. Used on pool paths read back from files (caches, added.json,
 * generation.json, backup manifests).
 */
export function isPoolPath(p: unknown, format: Pick<PackageFormat, 'extension'> = formatOf()): p is string {
  if (typeof p !== 'string' || !p.startsWith('pool/') || !p.endsWith(format.extension) || /\s/.test(p)) return false;
  try {
    checkRelPath(p);
    return true;
  } catch {
    return false;
  }
}
