/**
 * The htpasswd file of a channel's basic auth (ngx_http_auth_basic_module: `user:hash` per line).
 * Hashes are SHA-512 crypt (`$6$`, crypt(5)): nginx on Debian checks them through glibc crypt(3) at
 * about 6 ms per request, where bcrypt would cost ~60 ms for each of apt's many requests.
 *
 * Salts are random (infra/htpasswdSalts.ts draws them once and keeps them secret in the stack
 * state), never derived from the password: a derived salt would confirm a guess without the crypt.
 */
import { createHash } from 'crypto';
import type { ClientCredential } from '../lambda-free-tools/src/settings/stackConfig';
import { randomSalt, type HtpasswdSaltMap } from './htpasswdSalts';
import { sha512Crypt } from './shaCrypt';

/** Random salts drawn for callers that pass none, kept for the life of the process (tests, the replay). */
const processSalts = new Map<string, string>();

function processSalt(c: ClientCredential): string {
  const key = createHash('sha256').update(`${c.username}\0${c.password}`).digest('hex');
  let salt = processSalts.get(key);
  if (!salt) {
    salt = randomSalt();
    processSalts.set(key, salt);
  }
  return salt;
}

/**
 * Renders the htpasswd file: one `username:$6$salt$hash` line per credential, in the given order,
 * ending with a newline; '' for no credentials. `salts` maps each user name to its salt (the
 * HtpasswdSalts resource's output); without it, each credential gets a random salt that stays the
 * same for the life of the process. Throws Error for a user name holding ':' or a line break (it
 * would split the line), or when `salts` lacks a user or holds a salt that is not 16 characters
 * of [./0-9A-Za-z].
 */
export function renderHtpasswd(credentials: ClientCredential[], salts?: HtpasswdSaltMap): string {
  return credentials
    .map((c) => {
      if (/[:\n\r]/.test(c.username)) throw new Error(`htpasswd: user name '${c.username}' cannot hold ':' or a line break`);
      const salt = salts ? salts[c.username] : processSalt(c);
      if (typeof salt !== 'string' || !/^[./0-9A-Za-z]{16}$/.test(salt))
        throw new Error(`htpasswd: no valid salt for user '${c.username}'`);
      return `${c.username}:${sha512Crypt(c.password, salt)}\n`;
    })
    .join('');
}
