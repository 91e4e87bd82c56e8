/**
 * Quoting of words for the remote shell: shellQuote and shellJoin live in ../shellQuote.ts (one
 * definition for apt-ops, the Pulumi program and the tests) and are re-exported here; this file
 * keeps what only apt-ops needs, the split of its configured command prefix.
 */

/**
 * Splits a configured command prefix such as `sudo -n -u aptrepo` into words on white space.
 * No shell syntax is interpreted (quotes, `$`, `;` are kept as literal characters of a word and
 * later quoted), so a prefix can never inject a second command.
 */
export function splitPrefix(prefix: string): string[] {
  return prefix.split(/[ \t\n]+/).filter((w) => w.length > 0);
}
