import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, loadChannel } from './channel';
import { ingest } from './ingest';
import * as writerModule from './generationWriter';
import { publish } from './publish';
import { beginIntent, intentFile } from './intent';
import { removePackage } from './remove';
import { restoreFromTrash, trashDir } from './trash';
import { defaultRollbackTarget, rollback } from './rollback';
import { currentGeneration, generationDir, listGenerations, readGenerationInfo } from './generations';
import { verifyChannel } from './verify';
import { AptRepoError, UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig, GenerationInfo } from '../core/types';

let root: string;
let ch: ChannelConfig;
/** Generations published by ingest: app 1.0, then 2.0, then 3.0 added. */
let gens: string[];

const distFile = (id: string, rel: string) => fs.readFileSync(path.join(generationDir(ch, id), 'dists', 'bookworm', rel), 'utf8');
const packagesOf = (id: string) => distFile(id, 'main/binary-amd64/Packages');
const versionsOf = (id: string) => [...packagesOf(id).matchAll(/^Version: (.+)$/gm)].map((m) => m[1]);
const releaseDate = (id: string) => Date.parse(/^Date: (.+)$/m.exec(distFile(id, 'Release'))![1].replace(/ UTC$/, ' GMT'));
const byHash = (id: string) => fs.readdirSync(path.join(generationDir(ch, id), 'dists/bookworm/main/binary-amd64/by-hash/SHA256'));
const sha256Of = (id: string, rel: string) =>
  new RegExp(`^SHA256:$[\\s\\S]*?^ ([0-9a-f]{64}) +\\d+ ${rel.replace(/\./g, '\\.')}$`, 'm').exec(distFile(id, 'Release'))![1];

beforeEach(async () => {
  root = mkTemp('rollback-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  gens = [];
  for (const v of ['1.0', '2.0', '3.0']) {
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: v });
    gens.push((await ingest(ch, { settleMs: 0 })).generation!);
  }
});
afterEach(() => rmTemp(root));

test('a rollback is a new generation: the earlier Packages re-signed with a newer Date, current by-hash files kept', async () => {
  const r = await rollback(ch);
  expect(r).toEqual({ from: gens[2], to: gens[1], generation: expect.any(String), rolledBackFrom: gens[1], restored: [] });
  expect(gens).not.toContain(r.generation);
  expect(await currentGeneration(ch)).toBe(r.generation);
  // Exactly what gens[1] served, and a Release newer than the one clients of gens[2] hold.
  expect(packagesOf(r.generation)).toBe(packagesOf(gens[1]));
  expect(versionsOf(r.generation)).toEqual(['1.0', '2.0']);
  expect(releaseDate(r.generation)).toBeGreaterThan(releaseDate(gens[2]));
  expect(distFile(r.generation, 'InRelease')).toMatch(/-----BEGIN PGP SIGNATURE-----/);
  // A client holding gens[2]'s Release still finds the files it names by hash.
  for (const f of ['Packages', 'Packages.gz', 'Packages.xz'])
    expect(byHash(r.generation)).toContain(sha256Of(gens[2], `main/binary-amd64/${f}`));
  expect(byHash(r.generation)).toContain(sha256Of(gens[1], 'main/binary-amd64/Packages'));
  const info = readGenerationInfo(ch, r.generation)!;
  expect(info.rolledBackFrom).toBe(gens[1]);
  expect(info.packages).toEqual({ bookworm: 2 });
  expect(info.poolPaths).toEqual(['pool/main/a/app/app_1.0_all.deb', 'pool/main/a/app/app_2.0_all.deb']);
  expect((await listGenerations(ch)).map((g) => [g.id, g.current, g.rolledBackFrom])).toEqual([
    [r.generation, true, gens[1]],
    [gens[2], false, undefined],
    [gens[1], false, undefined],
    [gens[0], false, undefined],
  ]);
  expect(await verifyChannel(ch)).toEqual([]);
  // The pool is not rolled back: the next publish lists 3.0 again.
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_3.0_all.deb'))).toBe(true);
  const next = await publish(ch);
  expect(versionsOf(next.generation)).toEqual(['1.0', '2.0', '3.0']);
  expect(readGenerationInfo(ch, next.generation)!.rolledBackFrom).toBeUndefined();
});

test('the new Release files are modified in a later second than the current ones (If-Modified-Since never answers 304)', async () => {
  const r = await rollback(ch);
  for (const name of ['Release', 'InRelease', 'Release.gpg']) {
    const mtime = (id: string) => Math.floor(fs.statSync(path.join(generationDir(ch, id), 'dists/bookworm', name)).mtimeMs / 1000);
    expect(mtime(r.generation)).toBeGreaterThan(mtime(gens[2]));
  }
});

test('rolling back twice goes one step further back each time; --to picks any kept generation', async () => {
  const first = await rollback(ch);
  const second = await rollback(ch);
  expect(second.to).toBe(gens[0]);
  expect(second.from).toBe(first.generation);
  expect(versionsOf(second.generation)).toEqual(['1.0']);
  expect(releaseDate(second.generation)).toBeGreaterThan(releaseDate(first.generation));
  await expect(rollback(ch)).rejects.toThrow(/no generation older than/);

  // Forward again, to the rollback generation: the record names the publish whose set it serves.
  const forward = await rollback(ch, { to: first.generation });
  expect(forward.rolledBackFrom).toBe(gens[1]);
  expect(versionsOf(forward.generation)).toEqual(['1.0', '2.0']);
  const latest = await rollback(ch, { to: gens[2] });
  expect(versionsOf(latest.generation)).toEqual(['1.0', '2.0', '3.0']);
  expect(await verifyChannel(ch)).toEqual([]);
});

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

test('unknown id, current id and no older generation are usage errors', async () => {
  await expect(rollback(ch, { to: '20000101T000000Z-000099' })).rejects.toThrow(UsageError);
  await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(/already the current/);
  await rollback(ch, { to: gens[0] });
  await expect(rollback(ch)).rejects.toThrow(/no generation older/);
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

test('files removed since are restored from the trash first; missing ones stop the rollback', async () => {
  const rm = await removePackage(ch, { name: 'app', version: '1.0' });
  expect((await listGenerations(ch))[0].id).toBe(rm.publish.generation);
  const r = await rollback(ch, { to: gens[2] });
  expect(r.restored).toEqual(['pool/main/a/app/app_1.0_all.deb']);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_1.0_all.deb'))).toBe(true);
  expect(await verifyChannel(ch)).toEqual([]);

  await removePackage(ch, { name: 'app', version: '1.0' });
  fs.rmSync(trashDir(ch), { recursive: true });
  const current = await currentGeneration(ch);
  await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(AptRepoError);
  await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(/pool\/main\/a\/app\/app_1.0_all.deb/);
  expect(await currentGeneration(ch)).toBe(current);
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
