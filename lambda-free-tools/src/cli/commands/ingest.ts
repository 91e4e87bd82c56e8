/**
 * `apt-repo ingest [--source <name>] [--settle-ms <ms>]`: moves complete uploads from the incoming
 * drop folders into the pool, rejects the bad ones into incoming/rejected with a .reason file, and
 * publishes once (repo/ingest.ts). Exit 1 when anything was rejected, else 0.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors';
import { action, commandChannel, progressFor, table } from '../context';

/** Parses a non-negative integer option (milliseconds); UsageError otherwise. */
export function parseMs(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} ${v}: a whole number of milliseconds`);
  return Number(v);
}

/** Registers `ingest` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('ingest')
    .description('take the .deb files dropped into <incoming>/<source>/[<codename>/] into the pool and publish once')
    .option('--source <name>', 'only this drop folder')
    .option('--settle-ms <ms>', 'a file is taken once unchanged for this long (ctime age, and a second look min(1000, ms/2) later)', '2000')
    .action(
      action<{ source?: string; settleMs: string }>(async (_args, o, cmd) => {
        const { ingest, ingestExitCode } = await import('../../repo/ingest');
        const ch = await commandChannel(cmd);
        const settleMs = parseMs('--settle-ms', o.settleMs);
        const r = await ingest(ch, { source: o.source, settleMs, progress: progressFor(o) });
        for (const p of r.publish?.problems ?? []) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const rows = r.entries.map((e) => [
          e.status,
          e.file,
          e.package,
          e.version,
          e.architecture,
          e.status === 'accepted' ? `${e.poolPath} (${e.codenames?.join(' ')})` : e.reason,
        ]);
        const human =
          (rows.length ? table(['status', 'file', 'package', 'version', 'arch', 'detail'], rows) : 'nothing to ingest') +
          (r.generation ? `\npublished generation ${r.generation}` : '');
        return { data: { channel: ch.name, ...r }, human, exitCode: ingestExitCode(r) };
      }),
    );
}
