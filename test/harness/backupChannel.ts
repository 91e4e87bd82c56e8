/**
 * The channel the backup tests (lambda-free-tools/src/repo/backup*.test.ts) start from: preprod
 * under `root` (bookworm and bullseye, amd64), an ed25519 signing key with its public keys
 * (.asc and .gpg, 0644), and app 1.0 (all) plus php-app 2.0 (amd64, bookworm only) ingested.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from './debs';
import { initChannel } from '../../lambda-free-tools/src/repo/channel';
import { ingest } from '../../lambda-free-tools/src/repo/ingest';
import { generateSigningKey } from '../../lambda-free-tools/src/sign/keys';
import type { ChannelConfig } from '../../lambda-free-tools/src/core/types';

/** Makes that channel under `root` and resolves to its config once the ingest has published. */
export async function publishBackupChannel(root: string): Promise<ChannelConfig> {
  const ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored, { mode: 0o644 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.gpg`), key.publicBinary, { mode: 0o644 });
  buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: '1.0' });
  buildDeb(path.join(ch.incomingDir, 'ci', 'bookworm'), { name: 'php-app', version: '2.0', architecture: 'amd64' });
  await ingest(ch, { settleMs: 0 });
  return ch;
}
