/**
 * `apt-repo remove <pkg>=<ver> [--force]` (pool files to the trash, republish; --force needed in a
 * channel with an upstream) and `apt-repo gc` (delete trash files no kept generation lists),
 * see repo/remove.ts; `gc --policy [--dry-run]` applies repo.yaml's retention (repo/retention.ts).
 */
import type { Command } from 'commander';
import { action, commandChannel, table } from '../context';
import { UsageError } from '../../errors';
import type { ChannelConfig } from '../../core/types';

/** The channel promote feeds from `ch` (prod for preprod), or undefined when none is configured. */
async function downstreamOf(root: string, ch: ChannelConfig): Promise<ChannelConfig | undefined> {
  const { resolveChannelPair } = await import('../../repo/channel');
  try {
    const pair = await resolveChannelPair(root, ch);
    return pair.upstream.name === ch.name ? pair.downstream : undefined;
  } catch (e) {
    if (e instanceof UsageError) return undefined; // a lone channel
    throw e;
  }
}

/** Registers `remove` and `gc` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('remove')
    .description('take a version out of the channel (its files go to the trash until gc) and republish')
    .argument('<spec>', 'pkg=version')
    .option('--force', 'allowed in a channel with an upstream (prod)', false)
    .action(
      action<{ force: boolean }>(async (args, o, cmd) => {
        const { parsePackageSpec } = await import('../../repo/promote');
        const { removePackage } = await import('../../repo/remove');
        const spec = parsePackageSpec(args[0], true);
        const ch = await commandChannel(cmd);
        const r = await removePackage(ch, spec, { force: o.force });
        for (const p of r.publish.problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const human =
          `removed from ${ch.name} (generation ${r.publish.generation}):\n` +
          table(
            ['package', 'version', 'arch', 'pool path'],
            r.removed.map((f) => [f.name, f.version, f.architecture, f.poolPath]),
          );
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
  program
    .command('gc')
    .description(
      'delete removed pool files that no kept generation lists any more; --policy: first stop serving the versions past the retention rules of repo.yaml',
    )
    .option(
      '--policy',
      "apply repo.yaml's retention rules: the versions past them are taken out as remove does (to the trash, one new generation)",
    )
    .option('--dry-run', 'with --policy: list what would go and why, change nothing')
    .action(
      action<{ policy?: boolean; dryRun?: boolean }>(async (_args, o, cmd) => {
        const { gc } = await import('../../repo/remove');
        const ch = await commandChannel(cmd);
        if (o.dryRun && !o.policy) throw new UsageError('gc: --dry-run goes with --policy');
        if (o.policy) {
          const { applyRetention } = await import('../../repo/retention');
          // The channel promote feeds from this one (prod for preprod): what it serves is kept.
          const downstream = await downstreamOf(o.root, ch);
          const r = await applyRetention(ch, { dryRun: o.dryRun, downstream });
          const rows = r.decisions.map((d) => [
            d.verdict === 'remove' ? (r.dryRun ? 'would go' : 'removed') : 'kept',
            d.name,
            d.version,
            d.reason,
            d.rule,
          ]);
          const going = r.decisions.filter((d) => d.verdict === 'remove').length;
          const head = r.dryRun
            ? `${going} version(s) would go (dry run: nothing changed)`
            : `${going} version(s) taken out${r.publish ? ` (generation ${r.publish.generation}); gc deletes their files once no kept generation lists them` : ''}`;
          const human = rows.length
            ? `${head}\n${table(['', 'package', 'version', 'why', 'rule'], rows)}`
            : `${head}: no package matches a rule`;
          return { data: { channel: ch.name, ...r }, human };
        }
        const r = await gc(ch);
        const human =
          `deleted ${r.deleted.length} trash file(s); kept ${r.kept.length} still listed by a kept generation` +
          r.deleted.map((d) => `\n  deleted ${d}`).join('');
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
}
