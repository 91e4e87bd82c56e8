/**
 * `apt-repo import <dir>`: copies every .deb below a folder (today's flat repository) into the
 * channel's pool, identical files once, conflicting ones reported and skipped (exit 1), and
 * publishes once (repo/import.ts).
 */
import type { Command } from 'commander';
import { action, commandChannel, progressFor, table } from '../context';

/** Registers `import` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('import')
    .description('import every .deb below a folder (an existing flat repository) into the channel and publish once')
    .argument('<dir>', 'folder to read (recursively)')
    .action(
      action<object>(async (args, o, cmd) => {
        const { importExitCode, importRepository } = await import('../../repo/import');
        const ch = await commandChannel(cmd);
        const r = await importRepository(ch, args[0], { progress: progressFor(o) });
        for (const p of r.publish?.problems ?? []) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const count = (s: string) => r.entries.filter((e) => e.status === s).length;
        const rows = r.entries
          .filter((e) => e.status !== 'present')
          .map((e) => [
            e.status,
            e.package,
            e.version,
            e.architecture,
            e.status === 'imported' ? e.poolPath : `${e.reason} [${e.files.join(' ')}]`,
          ]);
        const human =
          `${count('imported')} imported, ${count('present')} already present, ${count('conflict')} conflict(s), ${count('invalid')} invalid` +
          (rows.length ? '\n' + table(['status', 'package', 'version', 'arch', 'detail'], rows) : '') +
          (r.publish ? `\npublished generation ${r.publish.generation}` : '');
        return { data: { channel: ch.name, ...r }, human, exitCode: importExitCode(r) };
      }),
    );
}
