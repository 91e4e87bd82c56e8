/**
 * Quoting of words for a POSIX shell: the one definition shared by apt-ops (command lines sent over
 * SSH), the Pulumi program's step scripts (infra/shell.ts) and the test harness. sshd and the
 * plan's `bash -c` run the text with a POSIX shell (sh, dash, bash, zsh: all share single-quote
 * semantics), so each word must reach the command byte for byte, whatever it contains.
 */
import { UsageError } from './errors';

// Characters that no POSIX shell gives a meaning to anywhere in a word. '=' is left out on purpose:
// an unquoted `name=value` first word would be taken as a variable assignment, not a command.
const SAFE_WORD = /^[A-Za-z0-9_/.,:@%+-]+$/;

/** How shellQuote writes a word. */
export interface ShellQuoteOptions {
  /**
   * Single-quote every word, safe ones too (the step scripts: their text is a resource input, so it
   * must not change with the quoting style). Default false: a word made only of safe characters is
   * returned bare, for readable logs.
   */
  always?: boolean;
}

/**
 * Quotes one word for a POSIX shell (XCU §2.2.2 single quotes: nothing inside is special, a single
 * quote is written as `'\''`).
 * @param word the word, any bytes but NUL.
 * @param options `always`: quote safe words too (see ShellQuoteOptions).
 * @returns the quoted word; `''` for the empty string.
 * @throws UsageError if `word` contains a NUL byte (no shell or argv can carry one).
 */
export function shellQuote(word: string, options: ShellQuoteOptions = {}): string {
  if (word.includes('\0')) throw new UsageError(`argument contains a NUL byte: ${JSON.stringify(word)}`);
  if (!options.always && SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes every word (shellQuote, safe words bare) and joins them with single spaces into one
 * command line for `sh -c`.
 * @throws UsageError as shellQuote.
 */
export function shellJoin(words: readonly string[]): string {
  return words.map((w) => shellQuote(w)).join(' ');
}
