/**
 * The schema of one routing rule (core/types.ts RoutingRule): the one definition read by the stack
 * config (settings/stackConfig.ts, key `routing`) and by the indexer (repo/channel.ts, repo.yaml
 * `routing`), so a table the stack accepts is one the indexer accepts, with the same messages.
 */
import type { z as zod } from 'zod';

/** Whether `pattern` compiles as a JavaScript regular expression. */
function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/**
 * The zod schema of one routing rule, built with the given zod (`z`): the caller's, so that the
 * indexer can keep loading zod only when a repo.yaml has settings. A strict object (unknown keys
 * refused) of `pattern`, a non-empty string that is a valid regular expression, and `codenames`, a
 * non-empty list of non-empty strings (codenames or `$N` group references, see repo/routing.ts).
 * Its parse fails with zod issues whose path ends in `pattern` or `codenames`; it never throws.
 */
export function routingRuleSchema(z: typeof zod) {
  return z.strictObject({
    pattern: z.string().min(1, 'expected a regular expression').refine(isRegExp, 'is not a valid regular expression'),
    codenames: z.array(z.string().min(1, 'expected a codename or $N')).min(1, 'expected at least one codename'),
  });
}
