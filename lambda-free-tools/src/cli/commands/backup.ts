/**
 * `apt-repo backup --to <dir>` and `apt-repo restore --from <dir> [--force]`: a consistent copy of
 * one channel taken under its lock, and putting it back byte for byte (repo/backup.ts, which lists
 * the folders an off-site backup must hold). restore exits 1 when verify finds problems afterwards.
 */
import type { Command } from 'commander';
import { action } from '../context';
import { loadChannel } from '../../repo/channel';

/** Registers `backup` and `restore` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('backup')
    .description('copy the channel (config with signing key, state, pool, current generation, public keys) into a new folder, with a SHA256 manifest')
    .requiredOption('--to <dir>', 'new or empty folder')
    .action(action<{ to: string }>(async (_args, o) => {
      const { backup } = await import('../../repo/backup');
      const ch = await loadChannel({ root: o.root, channel: o.channel });
      const r = await backup(ch, o.to);
      const human = `backed up ${ch.name} (generation ${r.generation ?? 'none'}) into ${r.dir}: ${r.files} file(s), ${r.bytes} bytes, ${r.linked} hard-linked`;
      return { data: { channel: ch.name, ...r }, human };
    }));
  program
    .command('restore')
    .description('put a backup back into this root (the channel must have no pool files, unless --force)')
    .requiredOption('--from <dir>', 'folder written by backup')
    .option('--force', 'restore over existing pool files', false)
    .action(action<{ from: string; force: boolean }>(async (_args, o) => {
      const { restore } = await import('../../repo/backup');
      const r = await restore(o.root, o.channel, o.from, { force: o.force });
      const human = `restored ${r.channel} (generation ${r.generation ?? 'none'}): ${r.files} file(s) written\n` +
        (r.problems.length ? `verify found ${r.problems.length} problem(s):\n  ${r.problems.join('\n  ')}` : 'verify: clean');
      return { data: r, human, exitCode: r.problems.length ? 1 : 0 };
    }));
}
