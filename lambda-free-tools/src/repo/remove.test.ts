import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { sha256File } from '../core/files';
import { gc, removePackage } from './remove';
import { moveToTrash, restoreFromTrash, trashDir, walkFiles } from './trash';
import * as generations from './generations';
import { currentGeneration, listGenerations } from './generations';
import { publish } from './publish';
import { verifyChannel } from './verify';
import { UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
let key: Awaited<ReturnType<typeof generateSigningKey>>;
beforeAll(async () => {
  key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
});
beforeEach(async () => {
  root = mkTemp('remove-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64', 'arm64'] });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  const ci = path.join(ch.incomingDir, 'ci');
  buildDeb(ci, { name: 'app', version: '1.0', architecture: 'amd64' });
  buildDeb(ci, { name: 'app', version: '1.0', architecture: 'arm64' });
  buildDeb(ci, { name: 'app', version: '2.0', architecture: 'amd64' });
  await ingest(ch, { settleMs: 0 });
});
afterEach(() => rmTemp(root));

test('remove moves every architecture of the version to the trash and republishes without it', async () => {
  const before = await currentGeneration(ch);
  const r = await removePackage(ch, { name: 'app', version: '1.0' });
  expect(r.removed.map((f) => [f.architecture, f.poolPath])).toEqual([
    ['amd64', 'pool/main/a/app/app_1.0_amd64.deb'],
    ['arm64', 'pool/main/a/app/app_1.0_arm64.deb'],
  ]);
  for (const f of r.removed) {
    expect(fs.existsSync(path.join(ch.webRoot, f.poolPath))).toBe(false);
    expect(f.trashPath).toBe(path.join(trashDir(ch), f.poolPath));
    expect(fs.existsSync(f.trashPath)).toBe(true);
  }
  expect(r.publish.generation).not.toBe(before);
  expect(r.publish.packages).toEqual({ bookworm: 1 });
  expect(await verifyChannel(ch)).toEqual([]);
});

test('remove refuses an absent version, a missing version and a downstream channel without --force', async () => {
  await expect(removePackage(ch, { name: 'app', version: '9' })).rejects.toThrow(/versions there: 1.0, 2.0/);
  await expect(removePackage(ch, { name: 'app' })).rejects.toThrow(UsageError);
  await expect(removePackage(ch, { name: 'nope', version: '1' })).rejects.toThrow(UsageError);
  const prod = { ...ch, upstream: 'preprod' };
  await expect(removePackage(prod, { name: 'app', version: '2.0' })).rejects.toThrow(/--force/);
  const forced = await removePackage(prod, { name: 'app', version: '2.0' }, { force: true });
  expect(forced.removed).toHaveLength(1);
});

test('a failed publish puts the files back', async () => {
  const keyText = fs.readFileSync(ch.signingKeyFile);
  fs.rmSync(ch.signingKeyFile);
  await expect(removePackage(ch, { name: 'app', version: '2.0' })).rejects.toThrow(/signing key/);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_2.0_amd64.deb'))).toBe(true);
  fs.writeFileSync(ch.signingKeyFile, keyText, { mode: 0o600 });
});

test('gc deletes trash files no kept generation lists, and keeps the others', async () => {
  await removePackage(ch, { name: 'app', version: '1.0' });
  // The generation before the removal still lists 1.0: kept.
  let r = await gc(ch);
  expect(r.deleted).toEqual([]);
  expect(r.kept).toEqual(['pool/main/a/app/app_1.0_amd64.deb', 'pool/main/a/app/app_1.0_arm64.deb']);
  // Publish until that generation is pruned (generationsKeep 5).
  for (let i = 0; i < ch.generationsKeep; i++) await publish(ch);
  expect((await listGenerations(ch)).some((g) => g.poolPaths.includes('pool/main/a/app/app_1.0_amd64.deb'))).toBe(false);
  r = await gc(ch);
  expect(r.deleted).toEqual(['pool/main/a/app/app_1.0_amd64.deb', 'pool/main/a/app/app_1.0_arm64.deb']);
  expect(walkFiles(trashDir(ch))).toEqual([]);
  expect(fs.readdirSync(trashDir(ch))).toEqual([]);
});

test('trash keeps the newest removal of a path; restoreFromTrash puts files back and names the missing', async () => {
  const p = 'pool/main/a/app/app_2.0_amd64.deb';
  const sha = await sha256File(path.join(ch.webRoot, p));
  await moveToTrash(ch, p);
  fs.writeFileSync(path.join(ch.webRoot, p), 'replacement');
  await moveToTrash(ch, p);
  expect(fs.readFileSync(path.join(trashDir(ch), p), 'utf8')).toBe('replacement');
  const older = walkFiles(trashDir(ch)).filter((f) => f !== p);
  expect(older).toHaveLength(1);
  expect(await sha256File(path.join(trashDir(ch), older[0]))).toBe(sha);
  const dry = await restoreFromTrash(ch, [p, 'pool/main/x/x/gone.deb'], { dryRun: true });
  expect(dry).toEqual({ restored: [p], missing: ['pool/main/x/x/gone.deb'] });
  expect(fs.existsSync(path.join(ch.webRoot, p))).toBe(false);
  const done = await restoreFromTrash(ch, [p]);
  expect(done.restored).toEqual([p]);
  expect(fs.readFileSync(path.join(ch.webRoot, p), 'utf8')).toBe('replacement');
});

test('a failure after the new generation is served (pruning) keeps the removal: the files stay in the trash', async () => {
  const spy = jest.spyOn(generations, 'pruneGenerations').mockRejectedValueOnce(new Error('EACCES: cannot prune'));
  try {
    await expect(removePackage(ch, { name: 'app', version: '2.0' })).rejects.toThrow(/cannot prune/);
  } finally {
    spy.mockRestore();
  }
  const served = (await listGenerations(ch)).find((g) => g.current)!;
  expect(served.poolPaths).not.toContain('pool/main/a/app/app_2.0_amd64.deb');
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/a/app/app_2.0_amd64.deb'))).toBe(false);
  expect(fs.existsSync(path.join(trashDir(ch), 'pool/main/a/app/app_2.0_amd64.deb'))).toBe(true);
});

test('gc keeps an older trash copy of a pool path that a kept generation lists', async () => {
  const p = 'pool/main/a/app/app_2.0_amd64.deb';
  // Published in the current generation, removed, then other bytes under the same name removed again.
  await moveToTrash(ch, p);
  fs.writeFileSync(path.join(ch.webRoot, p), 'replacement');
  await moveToTrash(ch, p);
  expect((await listGenerations(ch)).some((g) => g.poolPaths.includes(p))).toBe(true);
  const before = walkFiles(trashDir(ch));
  expect(before).toHaveLength(2);
  const r = await gc(ch);
  expect(r.deleted).toEqual([]);
  expect(walkFiles(trashDir(ch))).toEqual(before);
});

test('pool paths read back from generations are checked and confined: a hostile one is refused (issue 8)', async () => {
  const victimDir = path.join(root, 'victim');
  fs.mkdirSync(victimDir);
  fs.writeFileSync(path.join(victimDir, 'x.deb'), 'victim');
  await expect(restoreFromTrash(ch, ['pool/../../../victim/x.deb'])).rejects.toThrow(/not a pool path/);
  await expect(moveToTrash(ch, '../victim/x.deb')).rejects.toThrow(/not a pool path/);
  // A trash folder swapped for a symlink is never written through.
  fs.mkdirSync(path.join(trashDir(ch), 'pool/main'), { recursive: true });
  fs.symlinkSync(victimDir, path.join(trashDir(ch), 'pool/main/a'));
  await expect(removePackage(ch, { name: 'app', version: '1.0' })).rejects.toThrow(/symbolic link/);
  expect(fs.readdirSync(victimDir)).toEqual(['x.deb']);
  expect(fs.readFileSync(path.join(victimDir, 'x.deb'), 'utf8')).toBe('victim');
});
