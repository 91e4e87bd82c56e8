/**
 * backup and restore: what a backup holds, a byte-identical restore, the lock, links never
 * followed, unreadable keys, and the temp files a killed restore leaves. Several nights of dated
 * backups and restores (backupKeep, links to the previous night, --from, interrupted restores,
 * after a rollback) are backup.e2e.test.ts.
 */
import * as fs from 'fs';
import { servedCatalogue } from '../catalogue/write';
import * as path from 'path';
import { publishBackupChannel } from '../../../test/harness/backupChannel';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { fileTree } from '../../../test/harness/fileTree';
import { channelPaths, loadChannel } from './channel';
import { backup, listBackups, restore } from './backup';
import { checkBackup, readManifest } from './restoreApply';
import { verifyChannel } from './verify';
import { recoverChannel } from './recover';
import { currentGeneration } from './generations';
import { lockFileOf, withChannelLock } from './lock';
import { AptRepoError, LockError, UsageError } from '../errors';
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

test('backup writes <dir>/<UTC stamp>/ holding config (key 0600), state without the lock, pool (copies, never the live inodes), the kept generations, dists, keys and a manifest', async () => {
  fs.writeFileSync(lockFileOf(ch) + '.stale.1.x', 'leftover');
  const r = await backup(ch, path.join(tmp, 'bk'));
  const to = r.dir;
  expect(path.dirname(to)).toBe(path.join(tmp, 'bk'));
  expect(path.basename(to)).toMatch(/^\d{8}T\d{6}Z$/);
  const gen = await currentGeneration(ch);
  expect(r.generation).toBe(gen);
  // The first backup has no previous one: every file is a copy, none shares the live pool's inode.
  expect(r.linked).toBe(0);
  expect(fs.statSync(path.join(to, 'config/signing-key.asc')).mode & 0o777).toBe(0o600);
  expect(fs.readdirSync(path.join(to, 'state')).some((n) => n.startsWith('lock'))).toBe(false);
  expect(
    fs
      .readdirSync(path.join(to, 'state'))
      .filter((n) => n.startsWith('cache.'))
      .sort(),
  ).toEqual(['cache.json', 'cache.log']);
  expect(fs.statSync(path.join(to, 'web/pool/main/a/app/app_1.0_all.deb')).ino).not.toBe(
    fs.statSync(path.join(ch.webRoot, 'pool/main/a/app/app_1.0_all.deb')).ino,
  );
  expect(fs.readlinkSync(path.join(to, 'web/dists'))).toBe(`.generations/${gen}/dists`);
  expect(fs.readdirSync(path.join(to, 'web/.generations')).sort()).toEqual(
    fs
      .readdirSync(path.join(ch.webRoot, '.generations'))
      .filter((n) => !n.startsWith('.'))
      .sort(),
  );
  const m = await readManifest(to);
  expect(m.channel).toBe('preprod');
  const files = m.entries.filter((e) => e.type === 'file').map((e) => e.path);
  expect(files).toEqual(
    expect.arrayContaining([
      'config/liste_dist',
      'config/signing-key.asc',
      'web/epiconcept-preprod-archive-keyring.asc',
      'web/epiconcept-preprod-archive-keyring.gpg',
      `web/.generations/${gen}/dists/bookworm/InRelease`,
    ]),
  );
  expect(await checkBackup(to, m)).toEqual([]);
  await expect(backup(ch, path.join(ch.stateDir, 'bk'))).rejects.toThrow(UsageError);
  await expect(backup(ch, path.join(ch.stateDir, 'bk'))).rejects.toThrow(/itself backed up/);
});

test('restore into an empty root gives byte-identical published files and a clean verify; a damaged backup restores nothing', async () => {
  const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
  const root2 = path.join(tmp, 'root2');
  const r = await restore(root2, 'preprod', to);
  expect(r.problems).toEqual([]);
  const ch2 = await loadChannel({ root: root2, channel: 'preprod' });
  expect(ch2.webRoot).toBe(path.join(root2, 'srv/apt/preprod'));
  const before = fileTree(ch.webRoot);
  const after = fileTree(ch2.webRoot);
  // Only the served generation is backed up: compare what clients can reach. The catalogue is not
  // backed up (derived data): the restore rebuilt it, for the same generation.
  const gen = (await currentGeneration(ch))!;
  const served = (t: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(t).filter(
        ([k]) =>
          (!k.startsWith('.generations/') || k.startsWith(`.generations/${gen}/`)) && k !== 'catalogue' && !k.startsWith('.catalogue/'),
      ),
    );
  expect(served(after)).toEqual(served(before));
  expect(servedCatalogue(ch2)?.generation).toBe(gen);
  expect(fs.statSync(ch2.signingKeyFile).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(ch2.signingKeyFile, 'utf8')).toBe(fs.readFileSync(ch.signingKeyFile, 'utf8'));

  // Second restore into the same root: the pool has files now.
  await expect(restore(root2, 'preprod', to)).rejects.toThrow(/--force/);
  expect((await restore(root2, 'preprod', to, { force: true })).problems).toEqual([]);
  await expect(restore(path.join(tmp, 'root3'), 'prod', to)).rejects.toThrow(/--channel preprod/);

  fs.appendFileSync(path.join(to, 'config/liste_dist'), 'sid\n');
  await expect(restore(path.join(tmp, 'root4'), 'preprod', to)).rejects.toThrow(AptRepoError);
  expect(fs.existsSync(path.join(tmp, 'root4'))).toBe(false);
});

test('a folder without manifest is not a backup', async () => {
  fs.mkdirSync(path.join(tmp, 'half'));
  await expect(restore(path.join(tmp, 'r'), 'preprod', path.join(tmp, 'half'))).rejects.toThrow(/manifest/);
});

test('restore takes the channel lock before writing anything, the config included', async () => {
  fs.appendFileSync(path.join(ch.configDir, 'repo.yaml'), '\nlockTimeoutSeconds: 0\n');
  const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
  const root2 = path.join(tmp, 'root2');
  const target = channelPaths(root2, 'preprod');
  await withChannelLock({ stateDir: target.stateDir, lockTimeoutMs: 0 }, async () => {
    await expect(restore(root2, 'preprod', to)).rejects.toThrow(LockError);
  });
  expect(fs.existsSync(target.configDir)).toBe(false);
  expect(fs.existsSync(target.webRoot)).toBe(false);
  expect((await restore(root2, 'preprod', to)).problems).toEqual([]);
});

describe('backup and restore never follow a link (issue 8)', () => {
  test('a symlink in the pool is refused by backup (never copied nor followed)', async () => {
    const victim = path.join(tmp, 'victim.asc');
    fs.writeFileSync(victim, 'secret');
    fs.symlinkSync(victim, path.join(ch.webRoot, 'pool/main/a/app/evil_1_all.deb'));
    await expect(backup(ch, path.join(tmp, 'bk'))).rejects.toThrow(/evil_1_all.deb: symbolic link/);
    expect(await listBackups(path.join(tmp, 'bk'))).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'bk')).filter((n) => !n.endsWith('.partial'))).toEqual([]);
  });

  test('readManifest refuses paths that leave the backup and symlinks other than web/dists', async () => {
    const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
    const m = JSON.parse(fs.readFileSync(path.join(to, 'manifest.json'), 'utf8'));
    const write = (entries: unknown[]) =>
      fs.writeFileSync(path.join(to, 'manifest.json'), JSON.stringify({ ...m, entries: [...m.entries, ...entries] }));
    write([{ path: 'web/pool/x\u0000.deb', type: 'dir', mode: 493 }]);
    await expect(readManifest(to)).rejects.toThrow(/control character/);
    write([{ path: 'web//pool', type: 'dir', mode: 493 }]);
    await expect(readManifest(to)).rejects.toThrow(/empty path segment/);
    write([{ path: 'web/pool/main/evil', type: 'symlink', target: '/etc' }]);
    await expect(readManifest(to)).rejects.toThrow(/only web\/dists -> .generations\/<id>\/dists is restored/);
    write([]);
    expect((await readManifest(to)).entries.length).toBe(m.entries.length);
  });

  test('a symlinked folder in the backup tree is a problem; restore writes nothing', async () => {
    const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
    const copy = path.join(tmp, 'copy-of-a');
    fs.cpSync(path.join(to, 'web/pool/main/a'), copy, { recursive: true });
    fs.rmSync(path.join(to, 'web/pool/main/a'), { recursive: true });
    fs.symlinkSync(copy, path.join(to, 'web/pool/main/a'));
    const problems = await checkBackup(to, await readManifest(to));
    expect(problems.some((p) => /web\/pool\/main\/a: symbolic link/.test(p))).toBe(true);
    await expect(restore(path.join(tmp, 'root2'), 'preprod', to)).rejects.toThrow(/backup damaged/);
    expect(fs.existsSync(path.join(tmp, 'root2'))).toBe(false);
  });

  test('restore --force never writes through a symlinked folder of the target', async () => {
    const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
    const victimDir = path.join(tmp, 'victim');
    fs.mkdirSync(victimDir);
    fs.rmSync(path.join(ch.webRoot, 'pool/main/a'), { recursive: true });
    fs.symlinkSync(victimDir, path.join(ch.webRoot, 'pool/main/a'));
    await expect(restore(root, 'preprod', to, { force: true })).rejects.toThrow(/pool\/main\/a: symbolic link/);
    expect(fs.readdirSync(victimDir)).toEqual([]);
  });

  test("a private key this user cannot read (the signer's) is skipped with one line; restore restores the rest", async () => {
    const realFs = require('fs') as typeof fs;
    const real = realFs.openSync;
    const open = jest.spyOn(realFs, 'openSync').mockImplementation((p, ...rest) => {
      if (String(p).endsWith('/signing-key.asc'))
        throw Object.assign(new Error(`EACCES: permission denied, open '${String(p)}'`), { code: 'EACCES' });
      return real(p, ...rest);
    });
    const warnings: string[] = [];
    let r;
    try {
      r = await backup(ch, path.join(tmp, 'bk'), { warn: (m) => warnings.push(m) });
      expect(r.dir).toMatch(/bk\/\d{8}T\d{6}Z$/);
    } finally {
      open.mockRestore();
    }
    expect(warnings).toEqual([
      `${ch.signingKeyFile}: not readable by this user (the signer's key): not backed up; it lives in the Pulumi stack's secrets`,
    ]);
    expect(r.skipped).toEqual([ch.signingKeyFile]);
    expect(fs.existsSync(path.join(r.dir, 'config/signing-key.asc'))).toBe(false);
    const root2 = path.join(tmp, 'root2');
    expect((await restore(root2, 'preprod', path.join(tmp, 'bk'))).problems).toEqual([]);
    const ch2 = await loadChannel({ root: root2, channel: 'preprod' });
    expect(fs.existsSync(ch2.signingKeyFile)).toBe(false);
    expect(fs.readdirSync(path.join(ch2.webRoot, 'pool/main/a/app'))).toEqual(['app_1.0_all.deb']);
  });

  test("the stack's root-only record of secret digests is skipped without a word; any other unreadable file still fails the backup", async () => {
    fs.writeFileSync(path.join(ch.configDir, 'secret-digests'), `${'0'.repeat(64)}  /etc/nginx/apt-repo/preprod.htpasswd\n`, {
      mode: 0o600,
    });
    fs.writeFileSync(path.join(ch.configDir, 'other-file'), 'x\n');
    const realFs = require('fs') as typeof fs;
    const real = realFs.openSync;
    let denied = /\/secret-digests$/;
    const open = jest.spyOn(realFs, 'openSync').mockImplementation((p, ...rest) => {
      if (denied.test(String(p))) throw Object.assign(new Error(`EACCES: permission denied, open '${String(p)}'`), { code: 'EACCES' });
      return real(p, ...rest);
    });
    const warnings: string[] = [];
    try {
      const r = await backup(ch, path.join(tmp, 'bk-digests'), { warn: (m) => warnings.push(m) });
      expect([warnings, r.skipped]).toEqual([[], [path.join(ch.configDir, 'secret-digests')]]);
      expect(fs.existsSync(path.join(r.dir, 'config/secret-digests'))).toBe(false);
      denied = /\/other-file$/;
      await expect(backup(ch, path.join(tmp, 'bk-other'), { warn: (m) => warnings.push(m) })).rejects.toThrow(/EACCES/);
    } finally {
      open.mockRestore();
    }
  });
});

describe('dated backups (issue 9)', () => {
  const night = (d: number) => () => new Date(Date.UTC(2026, 10, d, 2, 30, 0));

  test("the temp files a killed restore leaves (its own and copyInto's around them) are removed by the next command, at any depth; a live writer's, links' targets and other names are kept", async () => {
    const b = await backup(ch, path.join(tmp, 'bk'), { now: night(20) });
    const root2 = path.join(tmp, 'root2');
    await restore(root2, 'preprod', b.dir);
    const ch2 = await loadChannel({ root: root2, channel: 'preprod' });
    // The history is left out: it is the audit trail, and the finished restore adds its own line (checked below).
    const stateNoHistory = () => Object.fromEntries(Object.entries(fileTree(ch2.stateDir)).filter(([k]) => k !== 'history.jsonl'));
    const historyLines = () => fs.readFileSync(path.join(ch2.stateDir, 'history.jsonl'), 'utf8').split('\n').filter(Boolean);
    const linesBefore = historyLines();
    // The catalogue too: derived data, rebuilt by the restore that recovery finishes (its history page gains that line).
    const webNoCatalogue = () =>
      Object.fromEntries(Object.entries(fileTree(ch2.webRoot)).filter(([k]) => k !== 'catalogue' && !k.startsWith('.catalogue/')));
    const whole = { web: webNoCatalogue(), config: fileTree(ch2.configDir), state: stateNoHistory() };
    // A pid no process can have (above Linux's largest pid_max, 2^22).
    const dead = 4_194_999;
    const asc = `${ch2.keyName}-archive-keyring.asc`;
    const deb = fs.readdirSync(path.join(ch2.webRoot, 'pool/main/a/app'))[0];
    const gen = (await currentGeneration(ch2))!;
    const release = path.join(ch2.webRoot, '.generations', gen, 'dists/bookworm');
    // What restore (`.<name>.tmp-<pid>-restore`) and the copy under it (placeFile -> copyInto,
    // `.<that name>.tmp-<pid>-<8 hex>`) leave when killed, in the web root, the pool, a
    // generation, the config and the state folders.
    const leftovers = [
      path.join(ch2.webRoot, `..${asc}.tmp-${dead}-restore.tmp-${dead}-18c0831b`),
      path.join(ch2.webRoot, `.${asc}.tmp-${dead}-restore`),
      path.join(ch2.webRoot, 'pool/main/a/app', `..${deb}.tmp-${dead}-restore.tmp-${dead}-0a1b2c3d`),
      path.join(ch2.webRoot, 'pool/main/a/app', `.${deb}.tmp-${dead}-restore`),
      path.join(release, `..Release.tmp-${dead}-restore.tmp-${dead}-deadbeef`),
      path.join(ch2.configDir, `..signing-key.asc.tmp-${dead}-restore.tmp-${dead}-0badc0de`),
      path.join(ch2.configDir, `.repo.yaml.tmp-${dead}-restore`),
      path.join(ch2.stateDir, `..added.json.tmp-${dead}-restore.tmp-${dead}-01234567`),
    ];
    for (const f of leftovers) fs.writeFileSync(f, 'partial');
    fs.symlinkSync(`.generations/${gen}/dists`, path.join(ch2.webRoot, `.dists.tmp-${dead}-restore`));
    // A link with such a name is removed, never followed: its target stays.
    const outside = path.join(tmp, 'outside');
    fs.writeFileSync(outside, 'not ours');
    fs.symlinkSync(outside, path.join(ch2.webRoot, 'pool/main/a/app', `.x.deb.tmp-${dead}-restore`));
    // Kept: a live writer's temp, and names our writers never make.
    const kept = [
      path.join(ch2.webRoot, 'pool/main/a/app', `.${deb}.tmp-${process.ppid}-restore`),
      path.join(ch2.webRoot, `.${asc}.tmp-${dead}-restored`),
      path.join(ch2.webRoot, `${asc}.tmp-${dead}-0a1b2c3d`),
      path.join(ch2.configDir, `.repo.yaml.tmp-${dead}-xyz`),
    ];
    for (const f of kept) fs.writeFileSync(f, 'kept');
    fs.writeFileSync(
      path.join(ch2.stateDir, 'restore.json'),
      JSON.stringify({ from: b.dir, startedAt: '2026-11-21T10:00:00.000Z', pid: dead }),
    );

    // The next command (any writer) runs recovery under the lock: it finishes the restore.
    const said: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      said.push(String(s));
      return true;
    });
    try {
      await withChannelLock(ch2, () => recoverChannel(ch2));
    } finally {
      spy.mockRestore();
    }
    for (const f of leftovers) expect([f, fs.existsSync(f)]).toEqual([f, false]);
    expect(fs.readdirSync(ch2.webRoot).filter((n) => n.startsWith('.dists.tmp-'))).toEqual([]);
    expect(fs.existsSync(path.join(ch2.webRoot, 'pool/main/a/app', `.x.deb.tmp-${dead}-restore`))).toBe(false);
    expect(fs.readFileSync(outside, 'utf8')).toBe('not ours');
    for (const f of kept) expect(fs.readFileSync(f, 'utf8')).toBe('kept');
    for (const f of kept) fs.rmSync(f);
    expect({ web: webNoCatalogue(), config: fileTree(ch2.configDir), state: stateNoHistory() }).toEqual(whole);
    expect(fs.readFileSync(path.join(ch2.webRoot, 'catalogue', 'history.html'), 'utf8')).toMatch(/<tr data-op="restore">/);
    // The history before, kept, and one line more: the restore that recovery finished.
    expect(historyLines().slice(0, -1)).toEqual(linesBefore);
    expect(JSON.parse(historyLines().pop()!)).toMatchObject({ op: 'restore', detail: expect.stringContaining(`from ${b.dir}`) });
    expect(said.join('')).toContain(`removed stale temporary file ${leftovers[0]}`);
    expect(await verifyChannel(ch2)).toEqual([]);
  });
});

test('restore keeps the live history (the audit trail) and adds itself to it; a channel restored from nothing takes the backup history', async () => {
  const { appendHistory, changeRecord, readHistory } = await import('./history');
  appendHistory(ch, changeRecord('publish', { detail: 'before the backup' }));
  const to = (await backup(ch, path.join(tmp, 'bk'))).dir;
  appendHistory(ch, changeRecord('remove', { detail: 'after the backup' }));
  const root2 = path.join(tmp, 'fresh');
  await restore(root2, 'preprod', to);
  const fresh = await readHistory(await loadChannel({ root: root2, channel: 'preprod' }));
  expect(fresh.map((r) => r.detail)).toEqual(
    expect.arrayContaining(['before the backup', expect.stringMatching(new RegExp(`^from ${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))]),
  );
  expect(fresh.some((r) => r.detail === 'after the backup')).toBe(false);
  expect(fresh[fresh.length - 1].op).toBe('restore');

  await restore(root, 'preprod', to, { force: true });
  const live = await readHistory(ch);
  const details = live.map((r) => r.detail ?? '');
  // Nothing of the live history lost: the change made after the backup is still there, then the restore.
  expect(details.indexOf('after the backup')).toBeGreaterThan(details.indexOf('before the backup'));
  expect(live[live.length - 1]).toMatchObject({ op: 'restore', detail: expect.stringMatching(/^from .* \(generation \S+\)$/) });
});
