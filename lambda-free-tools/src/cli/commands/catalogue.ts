/**
 * `apt-repo catalogue`: rebuilds the channel's web catalogue (catalogue/write.ts) for the served
 * generation, under the channel lock. Every publish already rebuilds it; this refreshes what it
 * shows from outside the channel's own publishes (on prod, what preprod holds that prod does not;
 * the newest history lines), and is what the channel's timer runs. Prints where it is and which
 * generation it describes; exit 2 when the channel has the catalogue off.
 */
import * as path from 'path';
import type { Command } from 'commander';
import { action, commandChannel } from '../context';

/** Registers `catalogue` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('catalogue')
    .description(
      'rebuild the web catalogue (<webRoot>/catalogue) of the served generation, with the pending list and history as they are now',
    )
    .action(
      action(async (_args, _o, cmd) => {
        const ch = await commandChannel(cmd);
        const { refreshCatalogue } = await import('../../catalogue/refresh');
        const m = await refreshCatalogue(ch);
        const dir = path.join(ch.webRoot, 'catalogue');
        if (!m) return { data: { channel: ch.name, built: false }, human: 'nothing published yet: no catalogue' };
        return {
          data: { channel: ch.name, built: true, dir, generation: m.generation, builtAt: m.builtAt },
          human: `rebuilt ${dir} (generation ${m.generation})`,
        };
      }),
    );
}
