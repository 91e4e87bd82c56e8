/**
 * Which plan steps a second `pulumi up` runs, by the rule of @pulumi/command: a remote.Command runs
 * its `create` when it is created and again only when one of its OWN inputs changes (the command
 * text, `stdin`, `triggers`: a trigger change replaces it, and with no `delete` a replacement is one
 * more `create`); `dependsOn` orders but never re-runs. A CopyToRemote copies again only when its
 * source changes; a step's staged file that changed always changes the step's text too (infra/plan.ts
 * names each staged file's SHA-256 in the script, and the bundle's in `triggers`), so a step that
 * does not run has nothing new to copy. The diff is test/harness/pulumiState.ts diffResource, the
 * one the stateful replay (pulumiUp) uses.
 */
import type { ReplayStep } from './replay';
import { commandInputs, diffResource } from './pulumiState';

/**
 * The steps of `next` that `pulumi up` would run after `previous` was applied: those absent from
 * `previous` (a new resource) and those whose command text, stdin or triggers differ from the step
 * of the same name in `previous`. In `next`'s order (callers apply them in dependency order).
 * With `previous` undefined (a new stack), every step.
 */
export function stepsToRun<T extends ReplayStep>(previous: readonly ReplayStep[] | undefined, next: readonly T[]): T[] {
  if (!previous) return [...next];
  const before = new Map(previous.map((s) => [s.name, { kind: 'command' as const, step: s.name, inputs: commandInputs(s) }]));
  return next.filter((s) => diffResource(before.get(s.name), { kind: 'command', step: s.name, inputs: commandInputs(s) }) !== 'same');
}
