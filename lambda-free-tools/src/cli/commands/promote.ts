/**
 * `apt-repo --channel prod promote <pkg>[=<ver>]… [--all-pending] [--codename C] [--dry-run]`:
 * hard-links chosen packages of the upstream channel's pool into this channel's pool and publishes
 * once (repo/promote.ts). Prints what went live.
 */
import type { Command } from 'commander';
import { action, commandChannel, progressFor, table } from '../context';
import { UsageError } from '../../errors';

/** Registers `promote` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('promote')
    .description('make packages of the upstream channel (preprod) live in this channel (prod): pkg (newest pending version) or pkg=version')
    .argument('[packages...]', 'pkg or pkg=version')
    .option('--all-pending', 'every pending package', false)
    .option('--codename <codename>', 'only packages published under this codename')
    .option('--dry-run', 'show what would go live, change nothing', false)
    .action(
      action<{ allPending: boolean; codename?: string; dryRun: boolean }>(async (args, o, cmd) => {
        const { resolveChannelPair } = await import('../../repo/channel');
        const { parsePackageSpec, promote } = await import('../../repo/promote');
        const pair = await resolveChannelPair(o.root, await commandChannel(cmd));
        if (pair.downstream.name !== o.channel) {
          throw new UsageError(
            `promote runs on the channel that receives packages: --channel ${pair.downstream.name} (it takes them from ${pair.upstream.name})`,
          );
        }
        const specs = args.map((a) => parsePackageSpec(a));
        const r = await promote(pair, specs, {
          allPending: o.allPending,
          codename: o.codename,
          dryRun: o.dryRun,
          progress: progressFor(o),
        });
        for (const p of r.publish?.problems ?? []) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const rows = r.promoted.map((p) => [p.name, p.version, p.architecture, p.codenames.join(' '), p.how]);
        const head = r.dryRun
          ? `dry run: would make live in ${pair.downstream.name}`
          : r.publish
            ? `live in ${pair.downstream.name} (generation ${r.publish.generation})`
            : `nothing new: already live in ${pair.downstream.name}`;
        const human = rows.length
          ? `${head}\n${table(['package', 'version', 'arch', 'codenames', 'how'], rows)}`
          : 'nothing pending to promote';
        return { data: { upstream: pair.upstream.name, downstream: pair.downstream.name, ...r }, human };
      }),
    );
}
