/**
 * `apt-repo remove <pkg>=<ver> [--force]` (pool files to the trash, republish; --force needed in a
 * channel with an upstream) and `apt-repo gc` (delete trash files no kept generation lists),
 * see repo/remove.ts.
 */
import type { Command } from 'commander';
import { action, commandChannel, table } from '../context';

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
    .description('delete removed pool files that no kept generation lists any more')
    .action(
      action<object>(async (_args, o, cmd) => {
        const { gc } = await import('../../repo/remove');
        const ch = await commandChannel(cmd);
        const r = await gc(ch);
        const human =
          `deleted ${r.deleted.length} trash file(s); kept ${r.kept.length} still listed by a kept generation` +
          r.deleted.map((d) => `\n  deleted ${d}`).join('');
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
}
