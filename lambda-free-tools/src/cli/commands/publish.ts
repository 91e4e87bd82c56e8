/**
 * `apt-repo publish [--skip-invalid] [--rescan]`: regenerates, signs and flips the channel's indexes
 * (repo/publish.ts), the pool taken from the channel's store while that is the pool served now;
 * --rescan lists, stats and checks every pool file (after a file was put into the pool by hand). Invalid pool files make it fail (exit 1, every file listed) unless
 * --skip-invalid, which publishes the rest, prints each skipped file on stderr and exits 0: the
 * operator asked for exactly that. Other warnings (packages routed to no published codename) go to
 * stderr too; with --json everything is in the JSON object as well.
 *
 * `publish --if-expiring` (what the refresh timer of a channel with validUntilDays runs, hourly;
 * repo/resign.ts refreshChannel, under the lock): when a served Release has less than a third of
 * validUntilDays left, re-signs the SERVED package set as a new generation (fresh Date and
 * Valid-Until; after a rollback the versions rolled back from stay unserved); when nothing or not
 * every codename is served, or a Release lacks Valid-Until, publishes the pool; otherwise prints
 * `fresh: …` with the time from which it will re-sign. Exit 0 in each case; never publishes
 * without validUntilDays. JSON: `published`, `action` ('resigned' | 'published'), `reason`,
 * `generation`, or `validUntil` and `refreshAt` when fresh. --skip-invalid does not apply.
 */
import type { Command } from 'commander';
import { action, commandChannel, progressFor, table } from '../context';

/** Registers `publish` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('publish')
    .description('regenerate, sign and publish the indexes of every codename (atomic switch to a new generation)')
    .option('--skip-invalid', 'publish the valid pool files and report the invalid ones instead of failing', false)
    .option('--rescan', "list, stat and check every pool file instead of taking the pool from the channel's store", false)
    .option('--if-expiring', 'publish only when a served Release has less than a third of validUntilDays left (or none is served)', false)
    .action(
      action<{ skipInvalid: boolean; ifExpiring: boolean; rescan: boolean }>(async (_args, o, cmd) => {
        const ch = await commandChannel(cmd);
        if (o.ifExpiring) {
          const { refreshChannel } = await import('../../repo/resign');
          const r = await refreshChannel(ch, { progress: progressFor(o) });
          const f = r.freshness;
          const times = f.validUntil ? { validUntil: f.validUntil.toISOString(), refreshAt: f.refreshAt!.toISOString() } : {};
          if (r.action === 'none')
            return { data: { channel: ch.name, published: false, reason: f.reason, ...times }, human: `fresh: ${f.reason}` };
          for (const p of r.problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
          process.stderr.write(`apt-repo: ${r.action === 'resigned' ? 're-signed the served package set' : 'published'}: ${f.reason}\n`);
          return {
            data: { channel: ch.name, published: true, action: r.action, reason: f.reason, generation: r.generation, problems: r.problems },
            human: `${r.action === 'resigned' ? 're-signed' : 'published'} generation ${r.generation}`,
          };
        }
        const { publish } = await import('../../repo/publish');
        const r = await publish(ch, { skipInvalid: o.skipInvalid, rescan: o.rescan, progress: progressFor(o) });
        for (const p of r.problems) process.stderr.write(`apt-repo: warning: ${p}\n`);
        const human =
          `published generation ${r.generation}\n` +
          table(
            ['codename', 'packages'],
            Object.entries(r.packages).map(([c, n]) => [c, n]),
          );
        return { data: { channel: ch.name, ...r }, human };
      }),
    );
}
