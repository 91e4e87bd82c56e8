/**
 * `apt-repo publish [--skip-invalid]`: regenerates, signs and flips the channel's indexes
 * (repo/publish.ts). Invalid pool files make it fail (exit 1, every file listed) unless
 * --skip-invalid, which publishes the rest, prints each skipped file on stderr and exits 0: the
 * operator asked for exactly that. Other warnings (packages routed to no published codename) go to
 * stderr too; with --json everything is in the JSON object as well.
 *
 * `publish --if-expiring` (what the refresh timer of a channel with validUntilDays runs, hourly):
 * publishes only when a served Release has less than a third of validUntilDays left, has no
 * Valid-Until, or is missing (repo/freshness.ts); otherwise prints `fresh: …` with the time from
 * which it will re-sign and exits 0 without taking the lock. Without validUntilDays it never
 * publishes. The JSON object has `published: true|false` and `reason`.
 */
import type { Command } from 'commander';
import { action, progressFor, table } from '../context';
import { loadChannel } from '../../repo/channel';

/** Registers `publish` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('publish')
    .description('regenerate, sign and publish the indexes of every codename (atomic switch to a new generation)')
    .option('--skip-invalid', 'publish the valid pool files and report the invalid ones instead of failing', false)
    .option('--if-expiring', 'publish only when a served Release has less than a third of validUntilDays left (or none is served)', false)
    .action(action<{ skipInvalid: boolean; ifExpiring: boolean }>(async (_args, o) => {
      const ch = await loadChannel({ root: o.root, channel: o.channel });
      let reason: string | undefined;
      if (o.ifExpiring) {
        const { releaseFreshness } = await import('../../repo/freshness');
        const f = releaseFreshness(ch, new Date());
        if (!f.due) {
          return {
            data: { channel: ch.name, published: false, reason: f.reason, ...(f.validUntil ? { validUntil: f.validUntil.toISOString(), refreshAt: f.refreshAt!.toISOString() } : {}) },
            human: `fresh: ${f.reason}`,
          };
        }
        reason = f.reason;
        process.stderr.write(`apt-repo: re-signing: ${f.reason}\n`);
      }
      const { publish } = await import('../../repo/publish');
      const r = await publish(ch, { skipInvalid: o.skipInvalid, progress: progressFor(o) });
      for (const p of r.problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
      const human = `published generation ${r.generation}\n` +
        table(['codename', 'packages'], Object.entries(r.packages).map(([c, n]) => [c, n]));
      return { data: { channel: ch.name, ...(o.ifExpiring ? { published: true, reason } : {}), ...r }, human };
    }));
}
