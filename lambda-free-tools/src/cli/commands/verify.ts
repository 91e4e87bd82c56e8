/**
 * `apt-repo verify`: checks that pool, indexes and signatures agree (repo/verify.ts). Exit 0 when
 * clean; exit 1 with one line per problem otherwise (with --json: `{ ok, problems }` on stdout).
 */
import type { Command } from 'commander';
import { action, commandChannel } from '../context';

/** Registers `verify` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('verify')
    .description('check that every index matches Release, signatures verify and every pool file has the listed hashes')
    .action(
      action<object>(async (_args, o, cmd) => {
        const { verifyChannel } = await import('../../repo/verify');
        const { currentGeneration } = await import('../../repo/generations');
        const ch = await commandChannel(cmd);
        const problems = await verifyChannel(ch);
        const generation = await currentGeneration(ch).catch(() => undefined);
        if (problems.length === 0) {
          return {
            data: { channel: ch.name, generation, ok: true, problems },
            human: `${ch.name}: generation ${generation} verified, no problem found`,
          };
        }
        return {
          data: { channel: ch.name, generation: generation ?? null, ok: false, problems },
          human: `${ch.name}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`,
          exitCode: 1,
        };
      }),
    );
}
