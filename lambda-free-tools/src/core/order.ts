/**
 * The one byte-order comparator: the order of JavaScript's `<` on strings (UTF-16 code units,
 * which is byte order for the ASCII of names, paths, ids and stamps), as `sort` wants it. Package
 * indexes, Release file lists, directory listings, reports and backups all sort with it, so the
 * same input always gives the same bytes.
 */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
