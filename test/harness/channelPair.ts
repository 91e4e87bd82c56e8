/**
 * The preprod/prod pair that the replay and uploader-security tests deploy on the sandbox server:
 * one upload account (preprod) and one operator (both channels), each with an ed25519 key made by
 * the test, one signing key per channel, and the sandbox stack options of each channel.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { SshTarget } from '../../scripts/local/replayer';
import type { KeyMaterial, SandboxStackOptions } from '../../scripts/local/stack';
import type { ClientCredential } from '../../lambda-free-tools/src/settings/stackConfig';
import { generateSigningKey } from '../../lambda-free-tools/src/sign/keys';

/** The two channels, upstream first. */
export const PAIR = ['preprod', 'prod'] as const;

/**
 * Makes an ed25519 key pair without passphrase per user with ssh-keygen, as `<work>/<user>_ed25519`
 * (and `.pub`), commented `<user>@<comment>`; returns the private key paths by user. Throws
 * ssh-keygen's error.
 */
export function makeAccountKeys(work: string, users: string[], comment: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const user of users) {
    keys[user] = path.join(work, `${user}_ed25519`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${user}@${comment}`, '-f', keys[user]]);
  }
  return keys;
}

/** A new ed25519 signing key per channel of the pair, named `<label> <channel>`, mailed apt-<channel>@epiconcept.fr. */
export async function pairSigningKeys(label: string): Promise<Record<string, KeyMaterial>> {
  const keys: Record<string, KeyMaterial> = {};
  for (const ch of PAIR) keys[ch] = await generateSigningKey({ name: `${label} ${ch}`, email: `apt-${ch}@epiconcept.fr`, type: 'ed25519' });
  return keys;
}

/** What pairStackOptions needs besides the channel and its port. */
export interface PairSettings {
  root: string;
  ssh: SshTarget;
  credentials: ClientCredential[];
  codenames: string[];
  uploader: string;
  operator: string;
  /** Private key paths by user (makeAccountKeys); the `.pub` beside each is read. */
  accountKeys: Record<string, string>;
}

/**
 * The sandbox stack options of `channel` served on `httpPort` (127.0.0.1 only, amd64): prod takes
 * preprod as its upstream, the operator reaches both channels, the uploader preprod only.
 */
export function pairStackOptions(s: PairSettings, channel: string, httpPort: number): SandboxStackOptions {
  const publicKey = (user: string) => fs.readFileSync(`${s.accountKeys[user]}.pub`, 'utf8').trim();
  return {
    root: s.root,
    channel,
    ...(channel === 'prod' ? { upstream: 'preprod' } : {}),
    ssh: s.ssh,
    httpPort,
    credentials: s.credentials,
    allowedCidrs: ['127.0.0.1/32'],
    codenames: s.codenames,
    architectures: ['amd64'],
    extra: {
      operators: JSON.stringify([{ name: s.operator, authorizedKeys: [publicKey(s.operator)] }]),
      ...(channel === 'prod' ? {} : { uploaders: JSON.stringify([{ name: s.uploader, authorizedKeys: [publicKey(s.uploader)] }]) }),
    },
  };
}
