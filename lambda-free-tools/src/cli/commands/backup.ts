/**
 * `apt-repo backup --to <dir>`, `apt-repo backup --list <dir>` and `apt-repo restore --from <dir>
 * [--force]`: a consistent copy of one channel taken under its lock into a new dated folder
 * `<dir>/<UTC stamp>/` (the last backupKeep kept, unchanged files hard-linked to the previous
 * night's), the complete backups of a folder, and putting one back byte for byte (repo/backup.ts,
 * which lists the folders an off-site backup must hold). `--from` names one backup
 * (`<dir>/<stamp>`) or a folder of them (the newest complete one of the channel). restore exits 1
 * when verify finds problems afterwards.
 */
import type { Command } from 'commander';
import { action, commandChannel, progressFor, table } from '../context';
import { UsageError } from '../../errors';

/** Registers `backup` and `restore` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('backup')
    .description(
      'copy the channel (config with signing key, state, pool, current generation, public keys) into a new dated folder <dir>/<UTC stamp>/ with a SHA256 manifest, keeping the last backupKeep; or list the complete backups of <dir>',
    )
    .option('--to <dir>', 'folder of dated backups (created if missing)')
    .option('--list <dir>', 'list the complete backups in <dir>, oldest first')
    .action(
      action<{ to?: string; list?: string }>(async (_args, o, cmd) => {
        const { backup, listBackups } = await import('../../repo/backup');
        if ((o.to === undefined) === (o.list === undefined)) throw new UsageError('backup: give either --to <dir> or --list <dir>');
        if (o.list !== undefined) {
          const all = await listBackups(o.list);
          const human = all.length
            ? table(
                ['BACKUP', 'CHANNEL', 'GENERATION', 'FILES', 'BYTES', 'CREATED'],
                all.map((b) => [b.stamp, b.channel, b.generation ?? '-', b.files, b.bytes, b.createdAt]),
              )
            : `no complete backup in ${o.list}`;
          return { data: all, human };
        }
        const ch = await commandChannel(cmd);
        const r = await backup(ch, o.to!, { progress: progressFor(o) });
        const human =
          `backed up ${ch.name} (generation ${r.generation ?? 'none'}) into ${r.dir}: ${r.files} file(s), ${r.bytes} bytes, ` +
          `${r.linked} hard-linked to ${r.previous ?? 'no previous backup'}, ${r.copiedBytes} bytes written` +
          (r.pruned.length ? `; removed ${r.pruned.join(' ')} (backupKeep ${ch.backupKeep})` : '');
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
  program
    .command('restore')
    .description(
      'put a backup back into this root (the channel must have no pool files, unless --force); --from <dir>/<stamp>, or <dir> for its newest complete backup',
    )
    .requiredOption('--from <dir>', 'a backup folder, or a folder of dated backups (the newest is taken)')
    .option('--force', 'restore over existing pool files', false)
    .action(
      action<{ from: string; force: boolean }>(async (_args, o) => {
        const { restore } = await import('../../repo/backup');
        const r = await restore(o.root, o.channel, o.from, { force: o.force, progress: progressFor(o) });
        const human =
          `restored ${r.channel} from ${r.from} (generation ${r.generation ?? 'none'}): ${r.files} file(s) written\n` +
          (r.problems.length ? `verify found ${r.problems.length} problem(s):\n  ${r.problems.join('\n  ')}` : 'verify: clean');
        return { data: r, human, exitCode: r.problems.length ? 1 : 0 };
      }),
    );
}
