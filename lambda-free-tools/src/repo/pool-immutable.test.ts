/**
 * Pool files never change once placed. Prod's pool files are hard links to preprod's (one inode,
 * owned by preprod's indexer, mode 0664 for the pool group: contracts of issue 8), so preprod's
 * indexer, or any member of the pool group, can rewrite the bytes of a file prod serves. A publish
 * must then refuse the file, never index and sign the new bytes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { resolveChannelPair } from './channel';
import { promote } from './promote';
import { publish } from './publish';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let preprod: ChannelConfig;
let prod: ChannelConfig;
let key: Awaited<ReturnType<typeof generateSigningKey>>;
const POOL_PATH = 'pool/main/a/app/app_1.0_all.deb';

beforeAll(async () => {
  key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
});

beforeEach(async () => {
  root = mkTemp('pool-immutable');
  preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  }
  buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'app', version: '1.0' });
  expect((await ingest(preprod, { settleMs: 0 })).entries.map((e) => e.status)).toEqual(['accepted']);
  const r = await promote(await resolveChannelPair(root, 'prod'), [{ name: 'app', version: '1.0' }]);
  expect(r.promoted.map((p) => p.how)).toEqual(['linked']);
});
afterEach(() => rmTemp(root));

/** The SHA256 prod's served Packages gives the file. */
function servedSha256(ch: ChannelConfig): string {
  const packages = fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  return /^SHA256: ([0-9a-f]{64})$/m.exec(packages)![1];
}

/** Rewrites the inode in place (O_TRUNC, same inode), with other bytes of a valid .deb. */
function rewriteInPlace(file: string): void {
  const other = buildDeb(mkTemp('pool-immutable-evil'), { name: 'app', version: '1.0', description: 'not what was promoted' });
  const ino = fs.statSync(file).ino;
  fs.writeFileSync(file, fs.readFileSync(other));
  rmTemp(path.dirname(other));
  expect(fs.statSync(file).ino).toBe(ino);
}

test("a promoted file rewritten in place through preprod is refused by prod's publish; prod keeps serving what was promoted", async () => {
  const promoted = servedSha256(prod);
  const dists = fs.readlinkSync(path.join(prod.webRoot, 'dists'));
  rewriteInPlace(path.join(preprod.webRoot, POOL_PATH));
  for (let i = 0; i < 2; i++) {
    // Refused again on a retry: the record of what was indexed is kept.
    await expect(publish(prod, { rescan: true })).rejects.toThrow(
      new RegExp(`${POOL_PATH}: changed in place since it was indexed \\(SHA256 [0-9a-f]{64}, indexed ${promoted}\\)`),
    );
  }
  expect(fs.readlinkSync(path.join(prod.webRoot, 'dists'))).toBe(dists);
  expect(servedSha256(prod)).toBe(promoted);
  // Preprod's own publish refuses it too.
  await expect(publish(preprod, { rescan: true })).rejects.toThrow(/changed in place since it was indexed/);
});

test('a pool file touched without a change of content (mtime only) is read again and still published', async () => {
  const promoted = servedSha256(prod);
  const file = path.join(prod.webRoot, POOL_PATH);
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const r = await publish(prod, { rescan: true });
  expect(r.debsRead).toBe(1);
  expect(servedSha256(prod)).toBe(promoted);
});
