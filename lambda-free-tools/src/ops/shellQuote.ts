/**
 * Quoting of words for the remote shell. sshd runs the command string with the login shell's
 * `-c` (POSIX sh, dash, bash, zsh: all share single-quote semantics), so each argument must reach
 * apt-repo byte for byte, whatever it contains.
 */
import { UsageError } from '../errors';

// Characters that no POSIX shell gives a meaning to anywhere in a word. '=' is left out on purpose:
// an unquoted `name=value` first word would be taken as a variable assignment, not a command.
const SAFE_WORD = /^[A-Za-z0-9_\/.,:@%+-]+$/;

/**
 * Quotes one argument for a POSIX shell (XCU §2.2.2 single quotes: nothing inside is special,
 * a single quote is written as `'\''`). Safe words are returned bare for readable logs.
 * @param word the argument, any bytes but NUL.
 * @returns the quoted word; `''` for the empty string.
 * @throws UsageError if `word` contains a NUL byte (no shell or argv can carry one).
 */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new UsageError(`argument contains a NUL byte: ${JSON.stringify(word)}`);
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes every word and joins them with single spaces into one command line for `sh -c`.
 * @throws UsageError as shellQuote.
 */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/**
 * Splits a configured command prefix such as `sudo -n -u aptrepo` into words on white space.
 * No shell syntax is interpreted (quotes, `$`, `;` are kept as literal characters of a word and
 * later quoted), so a prefix can never inject a second command.
 */
export function splitPrefix(prefix: string): string[] {
  return prefix.split(/[ \t\n]+/).filter((w) => w.length > 0);
}
