/**
 * Test side of the replay: what only tests use (diffSnapshots, planDigest, a one-argument
 * shellQuote for `.map`), and the sandbox code the replay tests share with `npm run local`,
 * re-exported from its home in scripts/local/ (replayer.ts: the Replayer and its step types;
 * stack.ts: sandbox stacks, client config; nginx.ts: the sandbox nginx). Only what tests import is re-exported.
 */
import * as crypto from 'crypto';
import { shellQuote as quoteWord } from '../../lambda-free-tools/src/shellQuote';
import type { ReplayStep, TreeSnapshot } from '../../scripts/local/replayer';

export { orderSteps, Replayer, reportsChange, type ReplayStep, type StepRun, type TreeSnapshot } from '../../scripts/local/replayer';
export {
  applyStacks,
  clientConfig,
  planMaterial,
  sandboxStack,
  sandboxStackConfig,
  type KeyMaterial,
  type SandboxStack,
  type SandboxStackOptions,
} from '../../scripts/local/stack';
export { startSandboxNginx, type SandboxNginx } from '../../scripts/local/nginx';

/**
 * Single-quotes `s` for a POSIX shell, safe words too (lambda-free-tools/src/shellQuote.ts with
 * `always`): one argument, so `words.map(shellQuote)` works. Throws UsageError for a NUL byte.
 */
export function shellQuote(s: string): string {
  return quoteWord(s, { always: true });
}

/** Lists the differences between two snapshots as '+ path meta', '- path meta', '~ path old => new', sorted by path. */
export function diffSnapshots(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const out: string[] = [];
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const p of paths) {
    const a = before.get(p);
    const b = after.get(p);
    if (a === undefined) out.push(`+ ${p} ${b}`);
    else if (b === undefined) out.push(`- ${p} ${a}`);
    else if (a !== b) out.push(`~ ${p} ${a} => ${b}`);
  }
  return out;
}

/** A stable digest of a plan's steps (names, order, files, scripts, stdin, triggers): equal digests mean a second `pulumi up` has nothing to do. */
export function planDigest(steps: ReplayStep[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(steps)).digest('hex');
}
