import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { removePackage, trashDir } from './remove';
import { rollback } from './rollback';
import { currentGeneration, listGenerations } from './generations';
import { verifyChannel } from './verify';
import { AptRepoError, UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from './types';

let root: string;
let ch: ChannelConfig;
let gens: string[];
beforeEach(async () => {
  root = mkTemp('rollback-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  gens = [];
  for (const v of ['1.0', '2.0']) {
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: v });
    gens.push((await ingest(ch, { settleMs: 0 })).generation!);
  }
});
afterEach(() => rmTemp(root));

test('without --to goes back one generation; --to goes anywhere kept', async () => {
  const r = await rollback(ch);
  expect(r).toEqual({ from: gens[1], to: gens[0], restored: [] });
  expect(await currentGeneration(ch)).toBe(gens[0]);
  expect(await verifyChannel(ch)).toEqual([]);
  const back = await rollback(ch, { to: gens[1] });
  expect(back.to).toBe(gens[1]);
  expect(await currentGeneration(ch)).toBe(gens[1]);
});

test('unknown id, current id and no older generation are usage errors', async () => {
  await expect(rollback(ch, { to: '20000101T000000Z-000099' })).rejects.toThrow(UsageError);
  await expect(rollback(ch, { to: gens[1] })).rejects.toThrow(/already the current/);
  await rollback(ch);
  await expect(rollback(ch)).rejects.toThrow(/no generation older/);
});

test('files removed since are restored from the trash first; missing ones stop the rollback', async () => {
  const rm = await removePackage(ch, { name: 'app', version: '1.0' });
  expect((await listGenerations(ch))[0].id).toBe(rm.publish.generation);
  const r = await rollback(ch, { to: gens[1] });
  expect(r.restored).toEqual(['pool/main/a/app/app_1.0_all.deb']);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_1.0_all.deb'))).toBe(true);
  expect(await verifyChannel(ch)).toEqual([]);

  await removePackage(ch, { name: 'app', version: '1.0' });
  fs.rmSync(trashDir(ch), { recursive: true });
  const current = await currentGeneration(ch);
  await expect(rollback(ch, { to: gens[1] })).rejects.toThrow(AptRepoError);
  await expect(rollback(ch, { to: gens[1] })).rejects.toThrow(/pool\/main\/a\/app\/app_1.0_all.deb/);
  expect(await currentGeneration(ch)).toBe(current);
});
