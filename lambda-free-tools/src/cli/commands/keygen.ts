/**
 * `apt-repo keygen [--name N] [--email E] [--type rsa4096|ed25519] [--force]`: creates the
 * channel's OpenPGP signing key (a v4 key, which Debian's gpgv and apt accept) and publishes its
 * public half in the web root. Private key: `<configDir>/signing-key.asc`, created 0600 (never
 * world-readable, not even briefly). Public key: `<webRoot>/<keyName>-archive-keyring.asc` (armored)
 * and `.gpg` (binary, for `gpgv --keyring` and old apt), 0644. The channel's history records the
 * change (type and fingerprint, who). Prints the fingerprint only.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Command } from 'commander';
import { action, commandChannel, table } from '../context';
import { UsageError } from '../../errors';

/** Registers `keygen` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('keygen')
    .description('create the channel signing key (private key 0600 in the config dir, public key in the web root)')
    .option('--name <name>', 'user id name (default "<label> Archive Signing Key")')
    .option('--email <email>', 'user id email (default apt@<hostname>)')
    .option('--type <type>', 'rsa4096 (default; every apt/gpgv back to jessie) or ed25519 (v4 EdDSA; not jessie)', 'rsa4096')
    .option('--force', 'replace an existing key (clients must then get the new public key)', false)
    .action(
      action<{ name?: string; email?: string; type: string; force: boolean }>(async (_args, o, cmd) => {
        const { mkdirWithMode, writeFileAtomic } = await import('../../core/files');
        const { withChannelLock } = await import('../../repo/lock');
        const { generateSigningKey, publicKeyFileNames } = await import('../../sign/keys');
        if (o.type !== 'rsa4096' && o.type !== 'ed25519') throw new UsageError(`--type must be rsa4096 or ed25519, not '${o.type}'`);
        const ch = await commandChannel(cmd);
        return withChannelLock(ch, async () => {
          const replacing = fs.existsSync(ch.signingKeyFile);
          if (replacing && !o.force) {
            throw new UsageError(
              `${ch.signingKeyFile}: a signing key exists already; use --force to replace it (clients will need the new public key)`,
            );
          }
          const key = await generateSigningKey({
            name: o.name ?? `${ch.label} Archive Signing Key`,
            email: o.email ?? `apt@${os.hostname()}`,
            type: o.type as 'rsa4096' | 'ed25519',
          });
          mkdirWithMode(ch.configDir, 0o750);
          // writeFileAtomic creates its temp file with this mode (O_EXCL), so the secret is never readable by others.
          writeFileAtomic(ch.signingKeyFile, key.privateArmored, 0o600);
          mkdirWithMode(ch.webRoot, 0o755);
          const names = publicKeyFileNames(ch.keyName);
          const asc = path.join(ch.webRoot, names.asc);
          const gpg = path.join(ch.webRoot, names.gpg);
          writeFileAtomic(asc, key.publicArmored, 0o644);
          writeFileAtomic(gpg, key.publicBinary, 0o644);
          // apt needs these world-readable whatever the umask was.
          fs.chmodSync(asc, 0o644);
          fs.chmodSync(gpg, 0o644);
          const fingerprint = key.fingerprint.toUpperCase();
          const { appendHistory, changeRecord } = await import('../../repo/history');
          appendHistory(
            ch,
            changeRecord('keygen', { detail: `${replacing ? 'replaced the signing key by' : 'created'} ${o.type} key ${fingerprint}` }),
          );
          // Seen: the next writer does not record it a second time (repo/keyWatch.ts).
          const { markKeySeen } = await import('../../repo/keyWatch');
          markKeySeen(ch, key.publicArmored);
          const data = { channel: ch.name, fingerprint, privateKeyFile: ch.signingKeyFile, publicKeyFiles: [asc, gpg] };
          return {
            data,
            human:
              table(
                ['', ''],
                [
                  ['fingerprint', fingerprint],
                  ['private key', ch.signingKeyFile],
                  ['public key', asc],
                  ['', gpg],
                ],
              ) + '\nrun `apt-repo publish` to sign the indexes with this key',
          };
        });
      }),
    );
}
