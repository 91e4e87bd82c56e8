/**
 * `apt-repo rollback [--to <id>]`: serve the previous (or the given) kept generation again,
 * restoring its removed pool files from the trash first (repo/rollback.ts).
 */
import type { Command } from 'commander';
import { action } from '../context';
import { loadChannel } from '../../repo/channel';

/** Registers `rollback` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('rollback')
    .description('switch dists back to the previous generation (or --to <id>, see `generations`)')
    .option('--to <id>', 'generation id to serve')
    .action(action<{ to?: string }>(async (_args, o) => {
      const { rollback } = await import('../../repo/rollback');
      const ch = await loadChannel({ root: o.root, channel: o.channel });
      const r = await rollback(ch, { to: o.to });
      const human = `${ch.name} now serves generation ${r.to} (was ${r.from ?? 'none'})` +
        (r.restored.length ? `\nrestored from the trash: ${r.restored.join(', ')}` : '') +
        '\nnote: the pool is unchanged; the next publish lists every pool file again (remove a bad version first)';
      return { data: { channel: ch.name, ...r }, human };
    }));
}
