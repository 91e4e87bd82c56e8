/**
 * `apt-repo generations`: the published generations kept for rollback, newest first, with their
 * date, package counts per codename and which one `dists` points at (repo/generations.ts).
 */
import type { Command } from 'commander';
import { action, table } from '../context';
import { loadChannel } from '../../repo/channel';

/** Registers `generations` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('generations')
    .description('list the published generations (newest first; * marks the one served)')
    .action(action<object>(async (_args, o) => {
      const { listGenerations } = await import('../../repo/generations');
      const ch = await loadChannel({ root: o.root, channel: o.channel });
      const gens = await listGenerations(ch);
      // poolPaths can be thousands of lines: --json gives counts, not the list.
      const data = gens.map(({ id, date, packages, current }) => ({ id, date, current, packages }));
      const rows = gens.map((g) => [
        g.current ? '*' : '', g.id, g.date,
        ch.codenames.map((c) => `${c}:${g.packages[c] ?? 0}`).join(' '),
      ]);
      return { data, human: gens.length ? table(['', 'generation', 'date', 'packages'], rows) : 'no generation published yet' };
    }));
}
