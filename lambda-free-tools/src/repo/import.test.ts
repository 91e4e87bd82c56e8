import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { importExitCode, importRepository } from './import';
import { readAdded } from './pool';
import { verifyChannel } from './verify';
import { UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
let old: string;
beforeEach(async () => {
  root = mkTemp('import-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  // Today's flat repository: one folder of debs, and the same files again under dists/*.
  old = path.join(root, 'old');
  const a = buildDeb(path.join(old, 'debs'), { name: 'app', version: '1.0' });
  buildDeb(path.join(old, 'debs'), { name: 'app', version: '1.1-1+deb11u1' });
  buildDeb(path.join(old, 'debs'), { name: 'tool', version: '3', architecture: 'amd64' });
  for (const c of ['bookworm', 'bullseye']) {
    fs.mkdirSync(path.join(old, 'dists', c), { recursive: true });
    fs.copyFileSync(a, path.join(old, 'dists', c, 'app_1.0_all.deb'));
  }
  fs.utimesSync(a, new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'));
});
afterEach(() => rmTemp(root));

test('imports every deb once (copies collapsed), routing by version suffix, one publish; a second run imports nothing', async () => {
  const r = await importRepository(ch, old);
  expect(r.entries.map((e) => [e.status, e.package, e.version, e.files.length])).toEqual([
    ['imported', 'app', '1.0', 3],
    ['imported', 'app', '1.1-1+deb11u1', 1],
    ['imported', 'tool', '3', 1],
  ]);
  expect(importExitCode(r)).toBe(0);
  expect(r.publish?.packages).toEqual({ bookworm: 2, bullseye: 3 });
  expect(readAdded(ch)['pool/main/a/app/app_1.0_all.deb']).toBe(Date.parse('2024-01-02T03:04:05Z'));
  expect(fs.existsSync(path.join(old, 'debs/app_1.0_all.deb'))).toBe(true);
  expect(await verifyChannel(ch)).toEqual([]);
  const again = await importRepository(ch, old);
  expect(again.entries.every((e) => e.status === 'present')).toBe(true);
  expect(again.publish).toBeUndefined();
});

test('different files claiming one identity are reported and skipped (exit 1); unreadable files too', async () => {
  buildDeb(path.join(old, 'other'), { name: 'tool', version: '3', architecture: 'amd64', description: 'rebuilt' });
  fs.writeFileSync(path.join(old, 'broken.deb'), 'garbage');
  const r = await importRepository(ch, old);
  const tool = r.entries.find((e) => e.package === 'tool')!;
  expect(tool.status).toBe('conflict');
  expect(tool.files).toEqual(['debs/tool_3_amd64.deb', 'other/tool_3_amd64.deb']);
  expect(r.entries.find((e) => e.status === 'invalid')?.files).toEqual(['broken.deb']);
  expect(importExitCode(r)).toBe(1);
  expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/t/tool/tool_3_amd64.deb'))).toBe(false);
  expect(r.publish?.packages).toEqual({ bookworm: 1, bullseye: 2 });
});

test('a pool file with the same identity and other bytes is a conflict', async () => {
  await importRepository(ch, path.join(old, 'debs'));
  const other = path.join(root, 'other');
  buildDeb(other, { name: 'tool', version: '3', architecture: 'amd64', description: 'rebuilt' });
  const r = await importRepository(ch, other);
  expect(r.entries).toEqual([expect.objectContaining({ status: 'conflict', poolPath: 'pool/main/t/tool/tool_3_amd64.deb' })]);
  expect(importExitCode(r)).toBe(1);
});

test('not a folder, or the web root itself: usage error', async () => {
  await expect(importRepository(ch, path.join(root, 'missing'))).rejects.toThrow(UsageError);
  await expect(importRepository(ch, path.join(ch.webRoot, 'pool'))).rejects.toThrow(UsageError);
});

test('a failed publish says the files are in the pool and that publish, not a new import, finishes the job', async () => {
  const keyText = fs.readFileSync(ch.signingKeyFile);
  fs.rmSync(ch.signingKeyFile);
  await expect(importRepository(ch, path.join(old, 'debs'))).rejects.toThrow(
    new RegExp(
      `^3 file\\(s\\) were copied into ${ch.webRoot}/pool but publishing failed: .*signing key.*; fix the cause, then run \`apt-repo --channel preprod publish\``,
      's',
    ),
  );
  fs.writeFileSync(ch.signingKeyFile, keyText, { mode: 0o600 });
  const again = await importRepository(ch, path.join(old, 'debs'));
  expect(again.entries.every((e) => e.status === 'present')).toBe(true);
});

test('a symlink in the imported folder is reported invalid and never followed (issue 8)', async () => {
  const from = path.join(root, 'old-repo-links');
  fs.mkdirSync(from, { recursive: true });
  const elsewhere = path.join(root, 'elsewhere');
  const target = buildDeb(elsewhere, { name: 'linked', version: '1.0' });
  fs.symlinkSync(target, path.join(from, 'linked_1.0_all.deb'));
  const r = await importRepository(ch, from);
  expect(r.entries.map((e) => [e.status, e.files])).toEqual([['invalid', ['linked_1.0_all.deb']]]);
  expect(r.entries[0].reason).toMatch(/symbolic link/);
  expect(fs.readdirSync(path.join(ch.webRoot, 'pool'))).toEqual([]);
});
