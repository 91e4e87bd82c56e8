/**
 * `apt-repo versions <pkg>`: every version of a package in every channel under the root, newest
 * first, with channels, architectures and codenames (repo/versions.ts). Unknown package: exit 2.
 */
import type { Command } from 'commander';
import { action, table } from '../context';

/** Registers `versions` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('versions')
    .description('list every version of a package in every channel, newest first')
    .argument('<package>', 'package name')
    .action(
      action<object>(async (args, o) => {
        const { packageVersions } = await import('../../repo/versions');
        const rows = await packageVersions(o.root, args[0]);
        const human = table(
          ['version', 'channels', 'arch', 'codenames'],
          rows.map((r) => [
            r.version,
            r.channels.join(' '),
            r.architectures.join(' '),
            r.channels.map((c) => `${c}:${r.byChannel[c].codenames.join(',') || '-'}`).join(' '),
          ]),
        );
        return { data: { package: args[0], versions: rows }, human };
      }),
    );
}
