/**
 * Rollbacks on the wall clock: each waits for the next second, since apt ignores a Release no newer
 * than the one it holds (about a second per rollback, several per test). In the e2e project for
 * that time; the rollbacks given their date, and the refusals, are rollback.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { generationFiles, publishThreeGenerations } from '../../../test/harness/threeGenerations';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { publish } from './publish';
import { removePackage } from './remove';
import { trashDir } from './trash';
import { rollback } from './rollback';
import { currentGeneration, generationDir, listGenerations, readGenerationInfo } from './generations';
import { verifyChannel } from './verify';
import { AptRepoError, UsageError } from '../errors';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
/** Generations published by ingest: app 1.0, then 2.0, then 3.0 added. */
let gens: string[];
const { distFile, packagesOf, versionsOf, releaseDate, byHash, sha256Of } = generationFiles(() => ch);

beforeEach(async () => {
  root = mkTemp('rollback-test');
  ({ ch, gens } = await publishThreeGenerations(root));
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

test('unknown id, current id and no older generation are usage errors', async () => {
  await expect(rollback(ch, { to: '20000101T000000Z-000099' })).rejects.toThrow(UsageError);
  await expect(rollback(ch, { to: gens[2] })).rejects.toThrow(/already the current/);
  await rollback(ch, { to: gens[0] });
  await expect(rollback(ch)).rejects.toThrow(/no generation older/);
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
