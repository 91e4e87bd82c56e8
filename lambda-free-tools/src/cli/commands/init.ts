/**
 * `apt-repo init [--codenames a,b] [--architectures x,y] [--upstream preprod] [--origin O] [--label L]`:
 * creates a channel's directories and default files (liste_dist, liste_arch, repo.yaml) where
 * missing; never overwrites. See repo/channel.ts initChannel.
 */
import type { Command } from 'commander';
import { action, table } from '../context';
import { initChannel } from '../../repo/channel';

function list(v: string | undefined): string[] | undefined {
  return v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

/** Registers `init` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('init')
    .description('create the channel directories and default liste_dist, liste_arch, repo.yaml (never overwrites)')
    .option('--codenames <list>', 'comma-separated codenames for a new liste_dist (default bookworm)')
    .option('--architectures <list>', 'comma-separated architectures for a new liste_arch (default amd64)')
    .option('--upstream <channel>', 'channel that promote takes packages from (for prod: preprod)')
    .option('--origin <origin>', 'Release Origin for a new repo.yaml')
    .option('--label <label>', 'Release Label for a new repo.yaml')
    .action(
      action<{ codenames?: string; architectures?: string; upstream?: string; origin?: string; label?: string }>(async (_args, o) => {
        const ch = await initChannel({
          root: o.root,
          channel: o.channel,
          codenames: list(o.codenames),
          architectures: list(o.architectures),
          upstream: o.upstream,
          origin: o.origin,
          label: o.label,
        });
        const data = {
          channel: ch.name,
          configDir: ch.configDir,
          webRoot: ch.webRoot,
          stateDir: ch.stateDir,
          backupDir: ch.backupDir,
          incomingDir: ch.incomingDir,
          rejectedDir: ch.rejectedDir,
          codenames: ch.codenames,
          architectures: ch.architectures,
          upstream: ch.upstream ?? null,
        };
        const rows = Object.entries(data).map(([k, v]) => [k, Array.isArray(v) ? v.join(' ') : (v ?? '')]);
        return { data, human: table(['setting', 'value'], rows) };
      }),
    );
}
