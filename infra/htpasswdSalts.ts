/**
 * A dynamic resource that draws one random crypt salt per client credential and keeps it, secret,
 * in the stack state, so the htpasswd file is the same text on every `pulumi up` (no change, no
 * re-run of the htpasswd step) while its salts reveal nothing about the passwords.
 *
 * Why random and kept rather than derived: a salt computed from the password (as this project did
 * before issue 8) lets anyone who reads the htpasswd file test a guess with one HMAC instead of
 * 5000 rounds of SHA-512 crypt. A salt only has to be unique and unpredictable (crypt(5)).
 *
 * Lifecycle (Pulumi dynamic providers: `diff` decides, `update` keeps what it can):
 * - create: a fresh salt for every user;
 * - update: a user whose password is unchanged keeps its salt; a new user, or a user with a new
 *   password, gets a fresh one; a removed user's salt is dropped;
 * - diff: a change only when the set of users or a password changed.
 * The credentials are an input (needed to notice a changed password), so they sit in the state
 * too, as secrets like the stack config they come from; `salts` and `credentials` are secret outputs.
 *
 * The provider's code is serialized into the state by Pulumi: it only uses `require('crypto')`
 * inside its functions (see signingKeyProvider.ts for why imports are avoided there).
 */
import * as pulumi from '@pulumi/pulumi';
import type { ClientCredential } from '../lambda-free-tools/src/settings/stackConfig';

/** User name -> 16-character salt of crypt(3)'s alphabet [./0-9A-Za-z]. */
export type HtpasswdSaltMap = Record<string, string>;

interface Inputs {
  credentials: ClientCredential[];
}

/** State of the resource: the credentials it salted and their salts (both secret). */
export interface HtpasswdSaltsOutputs {
  credentials: ClientCredential[];
  salts: HtpasswdSaltMap;
}

/**
 * A random 16-character crypt salt (96 bits): crypto.randomBytes, one byte per character, low 6
 * bits (256 is a multiple of 64, so every character is equally likely).
 */
export function randomSalt(): string {
  const { randomBytes } = require('crypto') as typeof import('crypto');
  const alphabet = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let salt = '';
  for (const b of randomBytes(16)) salt += alphabet[b & 63];
  return salt;
}

/**
 * The salts for `credentials`: `previous.salts[user]` when `previous` holds the same user with the
 * same password, a fresh random salt otherwise. Users absent from `credentials` are dropped.
 */
export function saltsFor(credentials: ClientCredential[], previous?: HtpasswdSaltsOutputs): HtpasswdSaltMap {
  const salts: HtpasswdSaltMap = {};
  for (const c of credentials) {
    const old = previous?.credentials?.find((o) => o.username === c.username);
    const kept = old && old.password === c.password ? previous?.salts?.[c.username] : undefined;
    salts[c.username] = typeof kept === 'string' && /^[./0-9A-Za-z]{16}$/.test(kept) ? kept : randomSalt();
  }
  return salts;
}

/** True when the users or a password differ between the state and the new inputs. */
function credentialsChanged(olds: HtpasswdSaltsOutputs, news: Inputs): boolean {
  const a = olds.credentials ?? [];
  const b = news.credentials ?? [];
  if (a.length !== b.length) return true;
  return b.some((c) => {
    const o = a.find((x) => x.username === c.username);
    return !o || o.password !== c.password || typeof olds.salts?.[c.username] !== 'string';
  });
}

/** The provider (create, diff, update); nothing to delete on the server. */
export const htpasswdSaltsProvider = {
  async create(inputs: Inputs): Promise<{ id: string; outs: HtpasswdSaltsOutputs }> {
    return { id: 'htpasswd-salts', outs: { credentials: inputs.credentials, salts: saltsFor(inputs.credentials) } };
  },
  async diff(_id: string, olds: HtpasswdSaltsOutputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    return { changes: credentialsChanged(olds, news) };
  },
  async update(_id: string, olds: HtpasswdSaltsOutputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: { credentials: news.credentials, salts: saltsFor(news.credentials, olds) } };
  },
};

/** Arguments of HtpasswdSalts: the client credentials (pass them as a secret). */
export interface HtpasswdSaltsArgs {
  credentials: pulumi.Input<ClientCredential[]>;
}

/** The salts of a channel's htpasswd file, kept secret in the stack state. */
export class HtpasswdSalts extends pulumi.dynamic.Resource {
  declare readonly salts: pulumi.Output<HtpasswdSaltMap>;

  constructor(name: string, args: HtpasswdSaltsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      htpasswdSaltsProvider as pulumi.dynamic.ResourceProvider,
      name,
      { credentials: pulumi.secret(args.credentials), salts: undefined },
      { ...opts, additionalSecretOutputs: ['salts', 'credentials'] },
      'apt-repo',
      'HtpasswdSalts',
    );
  }
}
