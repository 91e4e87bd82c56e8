/**
 * `apt-repo generations`: the published generations kept for rollback, newest first, with their
 * date, package counts per codename, which one `dists` points at, and for a rollback the
 * generation whose package set it serves again (repo/generations.ts).
 */
import type { Command } from 'commander';
import { action, commandChannel, table } from '../context';

/** Registers `generations` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('generations')
    .description('list the published generations (newest first; * marks the one served; rollbacks name the generation they serve again)')
    .action(
      action<object>(async (_args, o, cmd) => {
        const { listGenerations } = await import('../../repo/generations');
        const ch = await commandChannel(cmd);
        const gens = await listGenerations(ch);
        // poolPaths can be thousands of lines: --json gives counts, not the list.
        const data = gens.map(({ id, date, packages, current, rolledBackFrom }) =>
          rolledBackFrom === undefined ? { id, date, current, packages } : { id, date, current, rolledBackFrom, packages },
        );
        const rows = gens.map((g) => [
          g.current ? '*' : '',
          g.id,
          g.date,
          ch.codenames.map((c) => `${c}:${g.packages[c] ?? 0}`).join(' '),
          g.rolledBackFrom ? `rollback to ${g.rolledBackFrom}` : '',
        ]);
        return { data, human: gens.length ? table(['', 'generation', 'date', 'packages', 'note'], rows) : 'no generation published yet' };
      }),
    );
}
