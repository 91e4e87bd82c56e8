/**
 * rollback where it refuses or is given its date (`now`), defaultRollbackTarget, and a rollback
 * killed or failing after its restore. The rollbacks that wait for the next second of the wall
 * clock (the Release must be newer than the one clients hold) are rollback.e2e.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { generationFiles, publishThreeGenerations } from '../../../test/harness/threeGenerations';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { loadChannel } from './channel';
import * as writerModule from './generationWriter';
import { publish } from './publish';
import { beginIntent, intentFile } from './intent';
import { removePackage } from './remove';
import { restoreFromTrash, trashDir } from './trash';
import { defaultRollbackTarget, rollback } from './rollback';
import { currentGeneration, generationDir, readGenerationInfo } from './generations';
import { verifyChannel } from './verify';
import type { ChannelConfig, GenerationInfo } from '../core/types';

let root: string;
let ch: ChannelConfig;
/** Generations published by ingest: app 1.0, then 2.0, then 3.0 added. */
let gens: string[];
const { distFile, releaseDate } = generationFiles(() => ch);

beforeEach(async () => {
  root = mkTemp('rollback-test');
  ({ ch, gens } = await publishThreeGenerations(root));
});
afterEach(() => rmTemp(root));

test('defaultRollbackTarget: the newest generation published before the set now served', () => {
  const g = (id: string, rolledBackFrom?: string): GenerationInfo => ({
    id: `20261121T050000Z-00000${id}`,
    date: '',
    packages: {},
    poolPaths: [],
    current: false,
    rolledBackFrom,
  });
  // 1, 2, 3 published; 4 rolled back to 2; 5 published after: back from 5 is 4 (the set of 2).
  const list = [g('5'), g('4', g('2').id), g('3'), g('2'), g('1')];
  expect(defaultRollbackTarget(list, list[0])?.id).toBe(g('4').id);
  expect(defaultRollbackTarget(list, list[1])?.id).toBe(g('1').id);
  expect(defaultRollbackTarget([g('2', g('1').id), g('1')], g('2', g('1').id))).toBeUndefined();
});

test('the Date is one second after the current one when the clock is not later', async () => {
  const r = await rollback(ch, { now: new Date('2000-01-01T00:00:00Z') });
  expect(releaseDate(r.generation)).toBe(Math.floor(releaseDate(gens[2]) / 1000) * 1000 + 1000);
  expect(readGenerationInfo(ch, r.generation)!.date).toBe(new Date(releaseDate(r.generation)).toISOString());
});

test('Valid-Until is renewed from the rollback date', async () => {
  fs.appendFileSync(path.join(ch.configDir, 'repo.yaml'), '\nvalidUntilDays: 7\n');
  ch = await loadChannel({ root, channel: 'preprod' });
  const now = new Date(Date.now() + 3600_000);
  const r = await rollback(ch, { now });
  const until = /^Valid-Until: (.+)$/m.exec(distFile(r.generation, 'Release'))![1];
  expect(Date.parse(until.replace(/ UTC$/, ' GMT'))).toBe(Math.floor(now.getTime() / 1000) * 1000 + 7 * 86_400_000);
});

test('a generation without an index of the current liste_arch is refused, nothing changed', async () => {
  fs.writeFileSync(path.join(ch.configDir, 'liste_arch'), 'amd64\narm64\n');
  ch = await loadChannel({ root, channel: 'preprod' });
  const before = fs.readdirSync(path.join(ch.webRoot, '.generations')).sort();
  await expect(rollback(ch)).rejects.toThrow(/lists no main\/binary-arm64\/Packages/);
  expect(await currentGeneration(ch)).toBe(gens[2]);
  expect(fs.readdirSync(path.join(ch.webRoot, '.generations')).sort()).toEqual(before);
});

test('a damaged Packages of the target is refused', async () => {
  fs.appendFileSync(path.join(generationDir(ch, gens[1]), 'dists/bookworm/main/binary-amd64/Packages'), 'X: 1\n');
  await expect(rollback(ch)).rejects.toThrow(/differs from what its Release lists/);
  expect(await currentGeneration(ch)).toBe(gens[2]);
});

test('no signing key: refused before any pool file is restored', async () => {
  await removePackage(ch, { name: 'app', version: '1.0' });
  fs.rmSync(ch.signingKeyFile);
  await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(/no signing key/);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_1.0_all.deb'))).toBe(false);
});

test('a failure after the restore puts the restored files back into the trash and leaves no intent record', async () => {
  await removePackage(ch, { name: 'app', version: '1.0' });
  const current = await currentGeneration(ch);
  const spy = jest.spyOn(writerModule, 'writeGenerationLocked').mockRejectedValueOnce(new Error('disk full'));
  try {
    await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(/disk full/);
  } finally {
    spy.mockRestore();
  }
  expect(await currentGeneration(ch)).toBe(current);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_1.0_all.deb'))).toBe(false);
  expect(fs.existsSync(path.join(trashDir(ch), 'pool/main/a/app/app_1.0_all.deb'))).toBe(true);
  expect(fs.existsSync(intentFile(ch))).toBe(false);
  expect(await verifyChannel(ch)).toEqual([]);
});

test('a rollback killed after its restore (record left, generation not served) is undone by the next writer', async () => {
  await removePackage(ch, { name: 'app', version: '1.0' });
  const served = await currentGeneration(ch);
  // What a SIGKILL between the restore and the flip leaves: the record and the restored file.
  const intent = await beginIntent(ch, 'rollback');
  intent.record({ op: 'untrash', poolPath: 'pool/main/a/app/app_1.0_all.deb' });
  await restoreFromTrash(ch, ['pool/main/a/app/app_1.0_all.deb']);
  const next = await publish(ch);
  expect(next.packages).toEqual({ bookworm: 2 });
  expect(fs.existsSync(path.join(trashDir(ch), 'pool/main/a/app/app_1.0_all.deb'))).toBe(true);
  expect(fs.existsSync(intentFile(ch))).toBe(false);
  expect(served).not.toBe(next.generation);
  expect(await verifyChannel(ch)).toEqual([]);
});
