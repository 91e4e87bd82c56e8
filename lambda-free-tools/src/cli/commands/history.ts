/**
 * `apt-repo history`: what changed in the channel, oldest first (repo/history.ts): when, who (the
 * operator as sudo names them, the SSH client's address, the upload's drop folder), which
 * operation, the generation it published, the packages it added or removed, the uploads it refused.
 * Reads only.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, commandChannel, table } from '../context';
import type { HistoryPackage, HistoryRecord } from '../../repo/history';

/** `name version arch` of each package, at most `max` then a count. */
function packagesText(list: HistoryPackage[] | undefined, max = 3): string {
  if (!list?.length) return '';
  const shown = list.slice(0, max).map((p) => `${p.name} ${p.version} ${p.architecture}${p.source ? ` (${p.source})` : ''}`);
  return list.length > max ? `${shown.join(', ')} … (${list.length} in all)` : shown.join(', ');
}

/** One table row per record: time, who, operation, generation, what. */
export function renderHistory(records: HistoryRecord[]): string {
  if (records.length === 0) return 'no change recorded yet';
  const rows = records.map((r) => {
    const what = [
      r.added?.length ? `+ ${packagesText(r.added)}` : '',
      r.removed?.length ? `- ${packagesText(r.removed)}` : '',
      r.rejected?.length
        ? `rejected ${r.rejected.length}: ${r.rejected
            .map((x) => x.file)
            .slice(0, 3)
            .join(', ')}`
        : '',
      r.detail ?? '',
    ]
      .filter(Boolean)
      .join('; ');
    const who = `${r.who.user}${r.who.via === 'sudo' ? ' (sudo)' : ''}${r.who.from ? ` from ${r.who.from}` : ''}`;
    return [r.time, who, r.op, r.generation ?? '', what];
  });
  return table(['time', 'who', 'operation', 'generation', 'what'], rows);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

/** Registers `history` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('history')
    .description('what changed in the channel, oldest first: when, who, which operation, the packages it added or removed')
    .option('--package <name>', 'only the changes that added or removed this package')
    .option('--limit <n>', 'only the newest n changes', positiveInt)
    .action(
      action<{ package?: string; limit?: number }>(async (_args, o, cmd) => {
        const { readHistory } = await import('../../repo/history');
        const ch = await commandChannel(cmd);
        const records = await readHistory(ch, { package: o.package, limit: o.limit });
        return { data: records, human: renderHistory(records) };
      }),
    );
}
