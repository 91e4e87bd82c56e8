/**
 * A preprod channel (bookworm, amd64, an ed25519 signing key) whose ingest published three
 * generations: app 1.0, then 2.0, then 3.0 added; and readers of a generation's bookworm files. The
 * rollback tests (lambda-free-tools/src/repo/rollback*.test.ts) start from it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from './debs';
import { initChannel } from '../../lambda-free-tools/src/repo/channel';
import { ingest } from '../../lambda-free-tools/src/repo/ingest';
import { generationDir } from '../../lambda-free-tools/src/repo/generations';
import { generateSigningKey } from '../../lambda-free-tools/src/sign/keys';
import type { ChannelConfig } from '../../lambda-free-tools/src/core/types';

/** Makes the channel under `root` and ingests app 1.0, 2.0 and 3.0 one at a time; resolves to it and the three generation ids, oldest first. */
export async function publishThreeGenerations(root: string): Promise<{ ch: ChannelConfig; gens: string[] }> {
  const ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  const gens: string[] = [];
  for (const v of ['1.0', '2.0', '3.0']) {
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: v });
    gens.push((await ingest(ch, { settleMs: 0 })).generation!);
  }
  return { ch, gens };
}

/**
 * Readers of generation `id`'s files under dists/bookworm of the channel `channel()` returns (read
 * at each call): a file's text, the amd64 Packages, its versions, the Release Date (ms), the
 * by-hash SHA256 names, and the SHA-256 the Release lists for `rel`. They throw when the file or
 * the field is missing.
 */
export function generationFiles(channel: () => ChannelConfig) {
  const distFile = (id: string, rel: string) => fs.readFileSync(path.join(generationDir(channel(), id), 'dists', 'bookworm', rel), 'utf8');
  const packagesOf = (id: string) => distFile(id, 'main/binary-amd64/Packages');
  return {
    distFile,
    packagesOf,
    versionsOf: (id: string) => [...packagesOf(id).matchAll(/^Version: (.+)$/gm)].map((m) => m[1]),
    releaseDate: (id: string) => Date.parse(/^Date: (.+)$/m.exec(distFile(id, 'Release'))![1].replace(/ UTC$/, ' GMT')),
    byHash: (id: string) => fs.readdirSync(path.join(generationDir(channel(), id), 'dists/bookworm/main/binary-amd64/by-hash/SHA256')),
    sha256Of: (id: string, rel: string) =>
      new RegExp(`^SHA256:$[\\s\\S]*?^ ([0-9a-f]{64}) +\\d+ ${rel.replace(/\./g, '\\.')}$`, 'm').exec(distFile(id, 'Release'))![1],
  };
}
