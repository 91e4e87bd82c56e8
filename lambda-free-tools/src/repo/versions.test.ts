import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { resolveChannelPair } from './channel';
import { promote } from './promote';
import { packageVersions } from './versions';
import { UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';

let root: string;
beforeAll(async () => {
  root = mkTemp('versions-test');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  const preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64', 'arm64'] });
  const prod = await initChannel({
    root,
    channel: 'prod',
    codenames: ['bookworm', 'bullseye'],
    architectures: ['amd64', 'arm64'],
    upstream: 'preprod',
  });
  for (const ch of [preprod, prod]) fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  const ci = path.join(preprod.incomingDir, 'ci');
  for (const v of ['1.0', '1:0.5', '1.10~rc1', '1.10']) buildDeb(ci, { name: 'app', version: v, architecture: 'amd64' });
  buildDeb(ci, { name: 'app', version: '1.10', architecture: 'arm64' });
  buildDeb(path.join(ci, 'bullseye'), { name: 'app', version: '0.9', architecture: 'amd64' });
  await ingest(preprod, { settleMs: 0 });
  await promote(await resolveChannelPair(root, 'prod'), [{ name: 'app', version: '1.0' }]);
});
afterAll(() => rmTemp(root));

test('every version in every channel, newest first in Debian order, with channels, architectures and codenames', async () => {
  const rows = await packageVersions(root, 'app');
  expect(rows.map((r) => [r.version, r.channels, r.architectures, r.codenames])).toEqual([
    ['1:0.5', ['preprod'], ['amd64'], ['bookworm', 'bullseye']],
    ['1.10', ['preprod'], ['amd64', 'arm64'], ['bookworm', 'bullseye']],
    ['1.10~rc1', ['preprod'], ['amd64'], ['bookworm', 'bullseye']],
    ['1.0', ['preprod', 'prod'], ['amd64'], ['bookworm', 'bullseye']],
    ['0.9', ['preprod'], ['amd64'], ['bullseye']],
  ]);
  expect(rows[3].byChannel.prod.poolPaths).toEqual(['pool/main/a/app/app_1.0_amd64.deb']);
});

test('an unknown or invalid package name is a usage error', async () => {
  await expect(packageVersions(root, 'nope')).rejects.toThrow(UsageError);
  await expect(packageVersions(root, 'Bad Name')).rejects.toThrow(UsageError);
  await expect(packageVersions(path.join(root, 'empty'), 'app')).rejects.toThrow(/no channel configured/);
});

test('the pools come from the stores while they are the pools served, and give what a listing gives', async () => {
  const fromStores = await packageVersions(root, 'app');
  const states = ['preprod', 'prod'].map((c) => path.join(root, 'var/lib/apt-repo', c));
  const saved = states.map((d) => fs.readFileSync(path.join(d, 'cache.json')));
  try {
    // A file in preprod's pool behind the writers' back: not in the store, so not listed …
    const stray = path.join(root, 'srv/apt/preprod/pool/main/a/app/app_2.0_amd64.deb');
    fs.renameSync(buildDeb(path.join(root, 'stray'), { name: 'app', version: '2.0', architecture: 'amd64' }), stray);
    expect((await packageVersions(root, 'app')).map((r) => r.version)).not.toContain('2.0');
    // … until the stores are gone and the pools are listed: the same rows, and that file.
    for (const d of states) fs.rmSync(path.join(d, 'cache.json'));
    const listed = await packageVersions(root, 'app');
    // Upload times live in the stores: without them, each file's mtime stands in.
    const timeless = (rows: typeof listed) =>
      rows.map((r) => ({ ...r, byChannel: Object.fromEntries(Object.entries(r.byChannel).map(([c, v]) => [c, { ...v, addedMs: 0 }])) }));
    expect(timeless(listed.filter((r) => r.version !== '2.0'))).toEqual(timeless(fromStores));
    expect(listed.map((r) => r.version)).toContain('2.0');
    fs.rmSync(stray);
  } finally {
    states.forEach((d, i) => fs.writeFileSync(path.join(d, 'cache.json'), saved[i]));
  }
});
