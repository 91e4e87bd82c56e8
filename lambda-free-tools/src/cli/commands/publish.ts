/**
 * `apt-repo publish [--skip-invalid]`: regenerates, signs and flips the channel's indexes
 * (repo/publish.ts). Invalid pool files make it fail (exit 1, every file listed) unless
 * --skip-invalid, which publishes the rest, prints each skipped file on stderr and exits 0: the
 * operator asked for exactly that. Other warnings (packages routed to no published codename) go to
 * stderr too; with --json everything is in the JSON object as well.
 */
import type { Command } from 'commander';
import { action, progressFor, table } from '../context';
import { loadChannel } from '../../repo/channel';

/** Registers `publish` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('publish')
    .description('regenerate, sign and publish the indexes of every codename (atomic switch to a new generation)')
    .option('--skip-invalid', 'publish the valid pool files and report the invalid ones instead of failing', false)
    .action(action<{ skipInvalid: boolean }>(async (_args, o) => {
      const { publish } = await import('../../repo/publish');
      const ch = await loadChannel({ root: o.root, channel: o.channel });
      const r = await publish(ch, { skipInvalid: o.skipInvalid, progress: progressFor(o) });
      for (const p of r.problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
      const human = `published generation ${r.generation}\n` +
        table(['codename', 'packages'], Object.entries(r.packages).map(([c, n]) => [c, n]));
      return { data: { channel: ch.name, ...r }, human };
    }));
}
