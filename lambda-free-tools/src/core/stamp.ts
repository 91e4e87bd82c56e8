/**
 * `20261121T051500Z`: a UTC time usable in file names and sortable as text (generation ids,
 * rejected uploads, backup folders). The one definition of that stamp.
 */
export function utcStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}
