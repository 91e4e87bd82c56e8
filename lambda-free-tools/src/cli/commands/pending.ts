/**
 * `apt-repo pending`: packages in the upstream channel's pool (preprod) not yet in its downstream
 * channel's pool (prod), run with either channel (repo/pending.ts).
 */
import type { Command } from 'commander';
import { action, table } from '../context';

/** Registers `pending` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('pending')
    .description('list what the upstream channel (preprod) holds that the downstream channel (prod) does not')
    .action(
      action<object>(async (_args, o) => {
        const { pendingPackages } = await import('../../repo/pending');
        const { resolveChannelPair } = await import('../../repo/channel');
        const pair = await resolveChannelPair(o.root, o.channel);
        const { rows, problems } = await pendingPackages(pair);
        for (const p of problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const human = rows.length
          ? table(
              ['package', 'version', 'arch', 'codenames', 'uploaded'],
              rows.map((r) => [
                r.name,
                r.version,
                r.architecture,
                (r.codenames.join(' ') || `- (no codename of ${pair.downstream.name})`) +
                  (r.conflict ? ` (CONFLICT with ${pair.downstream.name}:${r.conflict})` : ''),
                new Date(r.addedMs).toISOString(),
              ]),
            )
          : `nothing pending: every package of ${pair.upstream.name} is in ${pair.downstream.name}`;
        return { data: { upstream: pair.upstream.name, downstream: pair.downstream.name, pending: rows }, human };
      }),
    );
}
