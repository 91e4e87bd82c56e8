/**
 * The htpasswd file of a channel's basic auth (ngx_http_auth_basic_module: `user:hash` per line).
 * Hashes are SHA-512 crypt (`$6$`, crypt(5)): nginx on Debian checks them through glibc crypt(3) at
 * about 6 ms per request, where bcrypt would cost ~60 ms for each of apt's many requests.
 */
import { createHmac } from 'crypto';
import type { ClientCredential } from '../stacks/config';
import { sha512Crypt } from './shaCrypt';

/** crypt(3)'s salt alphabet. */
const SALT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * A 16-character crypt salt derived from the credential itself: HMAC-SHA-256 keyed with the
 * password over the user name. Deterministic, so the file (and the command carrying it) does not
 * change between `pulumi up` runs; different for every user and password, so equal hashes never
 * reveal shared passwords.
 */
export function saltFor(c: ClientCredential): string {
  const mac = createHmac('sha256', c.password).update(`apt-repo htpasswd\0${c.username}`).digest();
  let salt = '';
  for (let i = 0; i < 16; i++) salt += SALT_ALPHABET[mac[i] & 63];
  return salt;
}

/**
 * Renders the htpasswd file: one `username:$6$salt$hash` line per credential, in the given order,
 * ending with a newline; '' for no credentials. Throws Error for a user name holding ':' or a line
 * break (it would split the line).
 */
export function renderHtpasswd(credentials: ClientCredential[]): string {
  return credentials
    .map((c) => {
      if (/[:\n\r]/.test(c.username)) throw new Error(`htpasswd: user name '${c.username}' cannot hold ':' or a line break`);
      return `${c.username}:${sha512Crypt(c.password, saltFor(c))}\n`;
    })
    .join('');
}
