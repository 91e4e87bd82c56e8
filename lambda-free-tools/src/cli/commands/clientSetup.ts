/**
 * `apt-repo client-setup [--codename C] [--url URL]`: prints the channel's client setup script
 * (client/setupScript.ts) on stdout, for a client's provisioning to run as root. It embeds the
 * channel's public key (`<webRoot>/<keyName>-archive-keyring.asc`, written by keygen or the stack)
 * and the codenames of liste_dist; the URL is `--url`, else repo.yaml `url` (the Pulumi program
 * writes the stack's channel URL there). Reads only; holds no secret. With --json:
 * `{ channel, url, codenames, defaultCodename, keyringFile, script }`.
 * Exit 2: no URL from either, a bad URL, a codename the channel does not serve.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { action, commandChannel } from '../context';
import { ConfigError, UsageError } from '../../errors';
import type { ChannelConfig } from '../../core/types';

/** What `client-setup --json` prints. */
export interface ClientSetupResult {
  channel: string;
  url: string;
  codenames: string[];
  /** The codename the script uses without an argument; null: the client's /etc/os-release. */
  defaultCodename: string | null;
  /** Where the script puts the key on clients. */
  keyringFile: string;
  script: string;
}

/**
 * The setup script of channel `ch` for clients reaching it at `opts.url` (else repo.yaml `url`).
 * @throws UsageError without a URL, for a bad one, or for a codename `ch` does not serve;
 * ConfigError when the public key file cannot be read.
 */
export async function clientSetup(ch: ChannelConfig, opts: { url?: string; codename?: string }): Promise<ClientSetupResult> {
  // Loaded when the command runs, not at every start of apt-repo (sign/keys brings openpgp).
  const { checkChannelUrl, renderClientSetupScript } = await import('../../client/setupScript');
  const { publicKeyFileNames } = await import('../../sign/keys');
  const given = opts.url ?? ch.url;
  if (given === undefined)
    throw new UsageError(
      `no URL for channel ${ch.name}: give --url https://… (or set url in ${path.join(ch.configDir, 'repo.yaml')}; the stack writes it)`,
    );
  const url = checkChannelUrl(given, opts.url !== undefined ? '--url' : `${path.join(ch.configDir, 'repo.yaml')}:url`);
  if (opts.codename !== undefined && !ch.codenames.includes(opts.codename))
    throw new UsageError(`--codename '${opts.codename}' is not served by channel ${ch.name} (it serves: ${ch.codenames.join(', ')})`);
  const keyFile = path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc);
  let publicKeyArmored: string;
  try {
    publicKeyArmored = fs.readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new ConfigError(keyFile, `cannot read the channel's public key (run keygen first): ${(e as Error).message}`);
  }
  const script = renderClientSetupScript({
    channel: ch.name,
    url,
    keyName: ch.keyName,
    codenames: ch.codenames,
    component: ch.component,
    publicKeyArmored,
    ...(opts.codename !== undefined ? { defaultCodename: opts.codename } : {}),
  });
  return {
    channel: ch.name,
    url,
    codenames: ch.codenames,
    defaultCodename: opts.codename ?? null,
    keyringFile: `/usr/share/keyrings/${publicKeyFileNames(ch.keyName).asc}`,
    script,
  };
}

/** Registers `client-setup` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('client-setup')
    .description("print the channel's client setup script (key, deb822 .sources, auth.conf.d entry from the environment; apt >= 1.8)")
    .option('--codename <codename>', "the codename the script uses when run without one (default: the client's /etc/os-release)")
    .option('--url <url>', 'where clients reach the channel (default: repo.yaml url)')
    .action(
      action<{ codename?: string; url?: string }>(async (_args, o, cmd) => {
        const r = await clientSetup(await commandChannel(cmd), { url: o.url, codename: o.codename });
        return { data: r, human: r.script };
      }),
    );
}
