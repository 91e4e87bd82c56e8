/**
 * `apt-repo status`: one look at the channel (repo/status.ts), as a short report, or with --json
 * the ChannelStatus object apt-ops status reads (with `drift` when the channel has an expected-state
 * manifest) (run as the channel's service user, so apt-ops
 * never reads server files as root). Exit 0 even when some facts could not be read (they are
 * listed under `problems`).
 */
import type { Command } from 'commander';
import { action, commandChannel, table } from '../context';
import type { ChannelStatus } from '../../repo/status';
import { byteOrder } from '../../core/order';

/** Human-readable size: 1536 → '1.5 KiB'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** An age in seconds for people: '45 s', '12 min', '5 h', '3 days'. */
export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

/**
 * Renders a ChannelStatus as text, one fact per line, the rejected uploads as a table.
 * `where` ends the first line (apt-ops: ' (stack prod) on host'); `doctor` is the command the
 * drift line points at ('apt-repo doctor', or 'apt-ops doctor' from apt-ops).
 */
export function renderChannelStatus(s: ChannelStatus, where = '', doctor = 'apt-repo doctor'): string {
  const lines: string[] = [];
  lines.push(`channel       ${s.channel}${where}`);
  lines.push(`web root      ${s.webRoot}: ${formatBytes(s.diskBytes)} (${s.diskBytes} bytes)`);
  if (s.disk) {
    const d = s.disk;
    lines.push(
      `disk          pool ${formatBytes(d.pool)}, generations ${formatBytes(d.generations)}, trash ${formatBytes(d.trash)}, backups ${formatBytes(d.backups)}`,
    );
  }
  lines.push(`last publish  ${s.current ? `${s.current.date} (generation ${s.current.id}, ${s.generationsKept} kept)` : 'never'}`);
  lines.push(`last added    ${s.lastAdded ?? 'unknown'} (newest package ingested or promoted)`);
  const names = Object.keys(s.channels).sort((a, b) => (a === s.channel ? -1 : b === s.channel ? 1 : byteOrder(a, b)));
  for (const ch of names) {
    const counts = Object.entries(s.channels[ch]);
    lines.push(`packages      ${ch}: ${counts.length ? counts.map(([c, n]) => `${c} ${n}`).join(', ') : 'none published'}`);
  }
  if (s.counts) {
    for (const [codename, per] of Object.entries(s.counts)) {
      const parts = Object.entries(per).map(([arch, c]) => `${arch} ${c.packages} packages, ${c.versions} versions`);
      lines.push(`index         ${codename}: ${parts.join('; ') || 'no architecture'}`);
    }
  }
  if (s.lastIngest) {
    const i = s.lastIngest;
    lines.push(
      `last ingest   ${i.time} by ${i.who}: ${i.accepted} accepted, ${i.rejected} rejected${i.generation ? ` (generation ${i.generation})` : ''}`,
    );
  }
  if (s.pending !== undefined && s.pair)
    lines.push(`pending       ${s.pending} (in ${s.pair.upstream}, not in ${s.pair.downstream}: promote can take them)`);
  if (s.drift) {
    const d = s.drift;
    const unchecked = d.notChecked ? ` (${d.notChecked} not checked)` : '';
    lines.push(
      `drift         ${d.differences === 0 ? `none${unchecked}` : `${d.differences} difference${d.differences === 1 ? '' : 's'}${unchecked} — ${doctor}`}`,
    );
  }
  lines.push(
    `last backup   ${s.lastBackup ? `${s.lastBackup.createdAt} (${s.lastBackup.stamp}, ${formatAge(s.lastBackup.ageSeconds)} ago)` : 'none in the backup folder'}`,
  );
  if (s.signingKey)
    lines.push(
      `signing key   ${s.signingKey.fingerprint} (${s.signingKey.algorithm}), ${s.signingKey.expires ? `expires ${s.signingKey.expires}` : 'never expires'}`,
    );
  if (s.catalogue)
    lines.push(
      `catalogue     built ${s.catalogue.builtAt} for ${s.catalogue.current ? 'the served generation' : `generation ${s.catalogue.generation} (not the served one: the next writing command rebuilds it)`}`,
    );
  if (s.validUntil)
    lines.push(`valid until   ${s.validUntil.date}${s.validUntil.refreshAt ? ` (republished from ${s.validUntil.refreshAt})` : ''}`);
  lines.push(`lock          ${s.lock ? `held by pid ${s.lock.pid} on ${s.lock.host} since ${s.lock.since}` : 'free'}`);
  lines.push(
    `rejected      ${s.rejectedCount} in ${s.rejectedDir}${s.rejectedCount > s.rejected.length ? ` (newest ${s.rejected.length} shown)` : ''}`,
  );
  if (s.rejected.length) {
    lines.push(
      table(
        ['  FILE', 'SIZE', 'DATE', 'REASON'],
        s.rejected.map((x) => [`  ${x.file ?? x.name}`, x.size, x.date, x.reason ?? '(no .reason file)']),
      ),
    );
  }
  for (const p of s.problems) lines.push(`problem       ${p}`);
  return lines.join('\n');
}

/** Registers `status` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('status')
    .description(
      'served generation, index counts per codename and architecture, disk use, last ingest, pending count, rejected uploads, last backup, signing key, Valid-Until, lock holder',
    )
    .action(
      action<object>(async (_args, o, cmd) => {
        const { channelStatus } = await import('../../repo/status');
        const ch = await commandChannel(cmd);
        const s = await channelStatus(o.root, ch);
        return { data: s, human: renderChannelStatus(s) };
      }),
    );
}
