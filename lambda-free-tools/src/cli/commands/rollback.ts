/**
 * `apt-repo rollback [--to <id>]`: serve the package set of the previous (or the given) kept
 * generation again, as a new generation with a fresh Date so apt clients that already fetched the
 * newer Release take it (repo/rollback.ts); its removed pool files are restored from the trash first.
 */
import type { Command } from 'commander';
import { action, commandChannel, progressFor } from '../context';

/** Registers `rollback` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('rollback')
    .description('serve the package set of the previous generation (or --to <id>, see `generations`) again, as a new generation')
    .option('--to <id>', 'generation id whose package set to serve')
    .action(
      action<{ to?: string }>(async (_args, o, cmd) => {
        const { rollback } = await import('../../repo/rollback');
        const ch = await commandChannel(cmd);
        const r = await rollback(ch, { to: o.to, progress: progressFor(o) });
        const set = r.rolledBackFrom === r.to ? r.to : `${r.to}, first published as ${r.rolledBackFrom}`;
        const human =
          `${ch.name} now serves generation ${r.generation}: the package set of ${set} (was ${r.from ?? 'none'})` +
          (r.restored.length ? `\nrestored from the trash: ${r.restored.join(', ')}` : '') +
          '\nnote: the pool is unchanged; the next publish lists every pool file again (remove a bad version first)';
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
}
