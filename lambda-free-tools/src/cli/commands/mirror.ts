/**
 * `apt-repo mirror sync|list|rollback|gc <name>`: versioned snapshots of an upstream repository
 * (mirror/sync.ts), for the mirrors of `<root>/etc/epiconcept/apt_repo/mirrors.yaml`
 * (mirror/config.ts). Not tied to a channel: `--channel` is not read. Exit codes: 0 done (a sync
 * with nothing new too), 1 a download or a check failed (the pointer did not move), a wrong
 * mirrors.yaml, or a post-sync hook that failed; 2 usage error (an unknown snapshot, a bad --keep);
 * 3 the mirror's lock is held.
 */
import type { Command } from 'commander';
import type { MirrorConfig } from '../../mirror/config';
import { action, globals, progressFor, table } from '../context';

/** The mirror loaded for each command run (see commandMirror). */
const loadedMirrors = new WeakMap<Command, Promise<MirrorConfig>>();

/**
 * Mirror `name` of mirrors.yaml under `--root`, loaded once per command run (as context.ts
 * commandChannel loads a channel): the start-up owner check (apt-repo.ts) and the action get the
 * same MirrorConfig. Rejects as loadMirror does (ConfigError naming mirrors.yaml and the key).
 */
export function commandMirror(cmd: Command, name: string): Promise<MirrorConfig> {
  let loaded = loadedMirrors.get(cmd);
  if (loaded === undefined) {
    loaded = import('../../mirror/config').then(({ loadMirror }) => loadMirror(globals(cmd).root, name));
    loadedMirrors.set(cmd, loaded);
  }
  return loaded;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Registers `mirror` and its subcommands on the apt-repo program. */
export function register(program: Command): void {
  const mirror = program
    .command('mirror')
    .description('versioned snapshots of upstream repositories (Alpine): sync, list, rollback, gc; see mirrors.yaml');
  mirror
    .command('sync <name>')
    .description("make a snapshot of the upstream's current version (unchanged files hard-linked), then point latest-stable at it")
    .action(
      action(async ([name], o, cmd) => {
        const { syncMirror } = await import('../../mirror/sync');
        const m = await commandMirror(cmd, name);
        const r = await syncMirror(m, { progress: progressFor(o) });
        const human =
          r.outcome === 'current'
            ? `${m.name}: snapshot ${r.label} exists already; nothing to do (latest-stable not moved)`
            : r.outcome === 'finished'
              ? `${m.name}: latest-stable now points at ${r.label} (an interrupted sync had made it)`
              : `${m.name}: snapshot ${r.label}: ${r.downloaded.length} downloaded, ${r.linked} hard-linked, ${r.resumed} kept from the interrupted sync; latest-stable -> ${r.label}`;
        const hook = r.hook ? `\npost-sync hook '${r.hook.command}' exited ${r.hook.code}` : '';
        return { data: r, human: human + hook, exitCode: r.hook && r.hook.code !== 0 ? 1 : 0 };
      }),
    );
  mirror
    .command('list <name>')
    .description('the snapshots, their sizes (and what each costs beside the one before), which one latest-stable points at')
    .action(
      action(async ([name], _o, cmd) => {
        const { listSnapshots } = await import('../../mirror/sync');
        const r = listSnapshots(await commandMirror(cmd, name));
        const rows = r.snapshots.map((s) => [s.latestStable ? '*' : '', s.label, s.syncedAt, s.files, mib(s.bytes), mib(s.ownBytes)]);
        const partial = r.partial.length ? `\ninterrupted syncs (resumed by the next sync): ${r.partial.join(', ')}` : '';
        return {
          data: r,
          human: (rows.length ? table(['', 'version', 'synced', 'files', 'size', 'own'], rows) : 'no snapshot yet') + partial,
        };
      }),
    );
  mirror
    .command('rollback <name>')
    .description('point latest-stable at the snapshot before the current one, or at --to <version>')
    .option('--to <version>', 'the snapshot to point at')
    .action(
      action<{ to?: string }>(async ([name], o, cmd) => {
        const { rollbackMirror } = await import('../../mirror/sync');
        const r = await rollbackMirror(await commandMirror(cmd, name), o.to);
        return { data: r, human: `latest-stable: ${r.from ?? '(none)'} -> ${r.to}` };
      }),
    );
  mirror
    .command('gc <name>')
    .description('delete the snapshots but the --keep newest (never the one latest-stable points at)')
    .option('--keep <n>', 'snapshots to keep (default: the mirror keep setting)')
    .action(
      action<{ keep?: string }>(async ([name], o, cmd) => {
        const { gcMirror } = await import('../../mirror/sync');
        const m = await commandMirror(cmd, name);
        const removed = await gcMirror(m, o.keep === undefined ? m.keep : Number(o.keep));
        return { data: { mirror: m.name, removed }, human: removed.length ? `removed ${removed.join(', ')}` : 'nothing to remove' };
      }),
    );
}
