/**
 * Dated backups over several nights (issue 9): one folder per run linked to the previous night,
 * backupKeep, half backups, restore --from a folder or a stamp, an interrupted restore finished or
 * replaced, and a restore after a rollback. In the e2e project for the time it takes: each test
 * runs several ingests, backups and full restores (xz runs for every publish; a rollback waits for
 * the next second). The single-backup checks are backup.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { publishBackupChannel } from '../../../test/harness/backupChannel';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { channelPaths, loadChannel } from './channel';
import { ingest } from './ingest';
import { backup, listBackups, restore } from './backup';
import { finishInterruptedRestore, readManifest } from './restoreApply';
import { verifyChannel } from './verify';
import { currentGeneration } from './generations';
import { rollback } from './rollback';
import { withChannelLock } from './lock';
import type { ChannelConfig } from '../core/types';

let tmp: string;
let root: string;
let ch: ChannelConfig;

beforeEach(async () => {
  tmp = mkTemp('backup-test');
  root = path.join(tmp, 'root');
  ch = await publishBackupChannel(root);
});
afterEach(() => rmTemp(tmp));

describe('dated backups (issue 9)', () => {
  const night = (d: number) => () => new Date(Date.UTC(2026, 10, d, 2, 30, 0));
  const poolFile = 'web/pool/main/a/app/app_1.0_all.deb';

  test('one folder per run, unchanged files linked to the previous night, changed ones copied, the last backupKeep kept', async () => {
    fs.appendFileSync(path.join(ch.configDir, 'repo.yaml'), '\nbackupKeep: 2\n');
    ch = await loadChannel({ root, channel: 'preprod' });
    const bk = path.join(tmp, 'bk');
    const n1 = await backup(ch, bk, { now: night(20) });
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: '1.1' });
    await ingest(ch, { settleMs: 0 });
    const n2 = await backup(ch, bk, { now: night(21) });
    expect([n1.stamp, n2.stamp]).toEqual(['20261120T023000Z', '20261121T023000Z']);
    expect(n2.previous).toBe(n1.stamp);
    const ino = (dir: string, rel: string) => fs.statSync(path.join(dir, rel)).ino;
    expect(ino(n2.dir, poolFile)).toBe(ino(n1.dir, poolFile));
    const newFile = 'web/pool/main/a/app/app_1.1_all.deb';
    expect(fs.statSync(path.join(n2.dir, newFile)).nlink).toBe(1);
    // Written tonight: the new .deb and the new generation's indexes (the by-hash copies of
    // yesterday's indexes, the public keys and the unchanged .debs are links); config and state
    // are always copied.
    const m2 = await readManifest(n2.dir);
    const webFiles = m2.entries.filter((e) => e.type === 'file' && e.path.startsWith('web/'));
    const newWeb = webFiles.filter((e) => fs.statSync(path.join(n2.dir, e.path)).nlink === 1).map((e) => e.path);
    expect(newWeb).toContain(newFile);
    expect(newWeb).not.toContain(poolFile);
    expect(n2.linked).toBeGreaterThan(0);
    expect(n2.linked + newWeb.length).toBe(webFiles.length);
    // Two runs in the same second never share a name; the oldest beyond backupKeep (2) go.
    const n3 = await backup(ch, bk, { now: night(21) });
    expect(n3.stamp).toBe('20261121T023000Z-01');
    expect(n3.pruned).toEqual([n1.stamp]);
    expect((await listBackups(bk)).map((b) => b.stamp)).toEqual([n2.stamp, n3.stamp]);
    expect(fs.readdirSync(bk).sort()).toEqual([n2.stamp, n3.stamp]);
    // backupKeep is checked by the schema.
    fs.writeFileSync(
      path.join(ch.configDir, 'repo.yaml'),
      fs.readFileSync(path.join(ch.configDir, 'repo.yaml'), 'utf8').replace('backupKeep: 2', 'backupKeep: 0'),
    );
    await expect(loadChannel({ root, channel: 'preprod' })).rejects.toThrow(/backupKeep/);
  });

  test('after a rollback (newer files in the pool, listed only by an older kept generation) a restore verifies clean and keeps the rollback history', async () => {
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: '1.1' });
    await ingest(ch, { settleMs: 0 });
    await rollback(ch);
    const b = await backup(ch, path.join(tmp, 'bk'), { now: night(20) });
    const root2 = path.join(tmp, 'root2');
    expect((await restore(root2, 'preprod', b.dir)).problems).toEqual([]);
    const ch2 = await loadChannel({ root: root2, channel: 'preprod' });
    expect(fs.readdirSync(path.join(ch2.webRoot, '.generations')).sort()).toEqual(
      fs
        .readdirSync(path.join(ch.webRoot, '.generations'))
        .filter((n) => !n.startsWith('.'))
        .sort(),
    );
    expect(await currentGeneration(ch2)).toBe(await currentGeneration(ch));
  });

  test('a half backup is never listed nor restored from, and the next backup removes it', async () => {
    const bk = path.join(tmp, 'bk');
    const good = await backup(ch, bk, { now: night(20) });
    // What a backup killed before its rename leaves: a hidden folder, even with a manifest.
    const half = path.join(bk, '.20261121T023000Z.preprod.partial');
    fs.cpSync(good.dir, half, { recursive: true, verbatimSymlinks: true });
    // A folder that looks dated but has no manifest (copied by hand, interrupted) is not one either.
    fs.mkdirSync(path.join(bk, '20261122T023000Z'));
    expect((await listBackups(bk)).map((b) => b.stamp)).toEqual([good.stamp]);
    const r = await restore(path.join(tmp, 'root2'), 'preprod', bk);
    expect(r.from).toBe(good.dir);
    const warnings: string[] = [];
    await backup(ch, bk, { now: night(23), warn: (m) => warnings.push(m) });
    expect(fs.existsSync(half)).toBe(false);
    expect(warnings).toEqual([`recovering: removing ${half}, left by an interrupted backup`]);
    // Another channel's leftovers in a shared folder are not ours to remove.
    fs.mkdirSync(path.join(bk, '.20261124T023000Z.prod.partial'));
    await backup(ch, bk, { now: night(24) });
    expect(fs.existsSync(path.join(bk, '.20261124T023000Z.prod.partial'))).toBe(true);
  });

  test('restore --from <dir> takes the newest complete backup of the channel, --from <dir>/<stamp> that one', async () => {
    const bk = path.join(tmp, 'bk');
    const first = await backup(ch, bk, { now: night(20) });
    buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: '1.1' });
    await ingest(ch, { settleMs: 0 });
    const last = await backup(ch, bk, { now: night(21) });
    const newest = await restore(path.join(tmp, 'r-last'), 'preprod', bk);
    expect(newest.from).toBe(last.dir);
    expect(fs.existsSync(path.join(tmp, 'r-last/srv/apt/preprod/pool/main/a/app/app_1.1_all.deb'))).toBe(true);
    const older = await restore(path.join(tmp, 'r-first'), 'preprod', first.dir);
    expect(older.problems).toEqual([]);
    expect(fs.existsSync(path.join(tmp, 'r-first/srv/apt/preprod/pool/main/a/app/app_1.1_all.deb'))).toBe(false);
    // Restored files are copies: changing the channel never changes the backup.
    const restored = path.join(tmp, 'r-first/srv/apt/preprod/pool/main/a/app/app_1.0_all.deb');
    expect(fs.statSync(restored).ino).not.toBe(fs.statSync(path.join(first.dir, poolFile)).ino);
    await expect(restore(path.join(tmp, 'r-none'), 'preprod', path.join(tmp, 'nothing-here'))).rejects.toThrow(
      /no complete backup of channel preprod/,
    );
    // A backup written into the folder itself before dated folders: the dated ones made since win.
    fs.cpSync(first.dir, path.join(tmp, 'legacy'), { recursive: true, verbatimSymlinks: true });
    expect((await restore(path.join(tmp, 'r-legacy'), 'preprod', path.join(tmp, 'legacy'))).from).toBe(path.join(tmp, 'legacy'));
    fs.cpSync(last.dir, path.join(tmp, 'legacy', path.basename(last.dir)), { recursive: true, verbatimSymlinks: true });
    expect((await restore(path.join(tmp, 'r-legacy2'), 'preprod', path.join(tmp, 'legacy'))).from).toBe(
      path.join(tmp, 'legacy', path.basename(last.dir)),
    );
  });

  test('an interrupted restore is finished by finishInterruptedRestore, or replaced by the next restore without --force', async () => {
    const bk = path.join(tmp, 'bk');
    const b = await backup(ch, bk, { now: night(20) });
    const root2 = path.join(tmp, 'root2');
    const target = channelPaths(root2, 'preprod');
    // What a restore killed halfway leaves: its record, the config, part of the pool, no dists.
    await restore(root2, 'preprod', b.dir);
    fs.rmSync(path.join(target.webRoot, 'dists'));
    fs.rmSync(path.join(target.webRoot, 'pool/main/p'), { recursive: true });
    fs.writeFileSync(
      path.join(target.stateDir, 'restore.json'),
      JSON.stringify({ from: b.dir, startedAt: '2026-11-21T10:00:00.000Z', pid: 1 }),
    );
    const ch2 = await loadChannel({ root: root2, channel: 'preprod' });
    expect((await verifyChannel(ch2)).length).toBeGreaterThan(0);
    const said: string[] = [];
    const r = await withChannelLock(ch2, () => finishInterruptedRestore(ch2, { say: (l) => said.push(l) }));
    expect(said).toEqual([`finishing the restore from ${b.dir} interrupted since 2026-11-21T10:00:00.000Z`]);
    expect(r?.problems).toEqual([]);
    expect(fs.existsSync(path.join(target.stateDir, 'restore.json'))).toBe(false);
    expect(await withChannelLock(ch2, () => finishInterruptedRestore(ch2))).toBeUndefined();

    // Same leftovers, but the next command is a restore: it needs no --force (the pool files are
    // the interrupted restore's) and may restore another backup.
    fs.rmSync(path.join(target.webRoot, 'dists'));
    fs.writeFileSync(
      path.join(target.stateDir, 'restore.json'),
      JSON.stringify({ from: path.join(tmp, 'gone'), startedAt: '2026-11-21T10:00:00.000Z', pid: 1 }),
    );
    await expect(withChannelLock(ch2, () => finishInterruptedRestore(ch2, { say: () => {} }))).rejects.toThrow(
      /cannot be finished .*run apt-repo restore --from <another backup>/,
    );
    expect((await restore(root2, 'preprod', bk)).problems).toEqual([]);
    expect(fs.existsSync(path.join(target.stateDir, 'restore.json'))).toBe(false);
    await expect(restore(root2, 'preprod', bk)).rejects.toThrow(/--force/);
  });
});
