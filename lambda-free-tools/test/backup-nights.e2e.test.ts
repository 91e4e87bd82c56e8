/**
 * End to end: the nightly backup unit, three nights. The backup service is rendered by
 * infra/systemd.ts renderSystemdUnits for a stack whose root is a temp folder, and its exact
 * ExecStart line runs as the unit's User/Group under its UMask (setpriv, no supplementary group,
 * no capability, as in signer-socket-activation.e2e.test.ts), three times at least a second apart
 * (the stamps are the real UTC clock's). The channel's files come from infra/repoFiles.ts (repo.yaml
 * with absolute paths, backupKeep); repo.yaml's signerSocket is left out and the key is readable by
 * the indexer while it publishes, then handed to another account before each backup (the signer's
 * key, skipped by backup as in production). Night 2 adds a package, night 3 changes nothing.
 * Checks: three dated folders, unchanged pool files share inodes with the previous night's, the
 * files written anew each night are exactly those whose content the previous night did not have,
 * and restoring the first and the last night into emptied channel folders gives the published
 * files of that night byte for byte and a clean verify. Needs root (useradd, setpriv, chown).
 */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { StackConfig } from '../../stacks/config';
import { channelLayout, type ChannelLayout } from '../../infra/layout';
import { renderListes, renderRepoYaml } from '../../infra/repoFiles';
import { renderSystemdUnits } from '../../infra/systemd';
import { bundle, mkTemp, ok, rmTemp, runProcess, RunResult } from '../../test/harness/cli';
import { asUnitUser, localStackConfig, unitKey, unitKeys } from '../../test/harness/units';
import { buildDeb } from '../../test/harness/debs';
import { ensureSystemUser } from '../../test/harness/users';

// A name of its own: other e2e files create their accounts in parallel jest workers.
const INDEXER = 'aptrepo-bknights';
const CHANNEL = 'preprod';

let root: string;
let cfg: StackConfig;
let layout: ChannelLayout;
let service: Map<string, string>;
const key = (name: string) => unitKey(service, name);

/** The backup unit's ExecStart words, run as its User and Group under its UMask. */
function runUnit(): Promise<RunResult> {
  return runProcess('/bin/sh', asUnitUser(service, key('ExecStart').split(/\s+/)), { env: { PATH: process.env.PATH } });
}

/** Another apt-repo command as the service user (what an operator runs through sudo -u). */
function repoAs(args: string[]): Promise<RunResult> {
  return runProcess('runuser', ['-u', INDEXER, '--', cfg.nodePath, cfg.indexerPath, '--channel', CHANNEL, ...args], {
    env: { PATH: process.env.PATH },
  });
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** SHA256 of every file a client can fetch: dists (through the symlink), pool, public keys. */
function published(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (abs: string, rel: string) => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const a = path.join(abs, e.name);
      const r = `${rel}/${e.name}`;
      if (fs.statSync(a).isDirectory()) walk(a, r);
      else out[r] = sha(a);
    }
  };
  walk(path.join(layout.webRoot, 'dists'), 'dists');
  walk(path.join(layout.webRoot, 'pool'), 'pool');
  for (const f of fs.readdirSync(layout.webRoot).filter((n) => n.endsWith('-archive-keyring.asc') || n.endsWith('-archive-keyring.gpg')))
    out[f] = sha(path.join(layout.webRoot, f));
  return out;
}

/** Every regular file below `dir` (relative path → lstat), links not followed. */
function filesOf(dir: string): Map<string, fs.Stats> {
  const out = new Map<string, fs.Stats>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.set(r, fs.lstatSync(path.join(dir, r)));
    }
  };
  walk('');
  return out;
}

/** Hands the private key to root (as the signer's account owns it in production) or back to the indexer. */
function keyOwner(user: string): void {
  execFileSync('chown', [`${user}:${user}`, path.join(layout.configDir, 'signing-key.asc')]);
}

function chownIndexer(...dirs: string[]): void {
  for (const d of dirs) execFileSync('chown', ['-R', `${INDEXER}:${INDEXER}`, d]);
}

/** Empties the channel's folders (a new machine, as the stack's dirs step leaves it). */
function emptyChannel(): void {
  for (const d of [layout.configDir, layout.webRoot, layout.stateDir]) {
    fs.rmSync(d, { recursive: true, force: true });
    fs.mkdirSync(d, { recursive: true });
  }
  chownIndexer(layout.configDir, layout.webRoot, layout.stateDir);
}

beforeAll(async () => {
  ensureSystemUser(INDEXER);
  root = mkTemp('backup-nights-root');
  fs.chmodSync(root, 0o755);
  cfg = localStackConfig(root, CHANNEL, { serviceUser: INDEXER, backupKeep: '5' });
  layout = channelLayout(cfg);
  const unit = renderSystemdUnits(cfg, layout).find((u) => u.name === `apt-repo-backup-${CHANNEL}.service`)!;
  service = unitKeys(unit.content);
  expect(key('ExecStart')).toBe(
    `${process.execPath} ${cfg.indexerPath} --root ${root} --channel ${CHANNEL} backup --to ${layout.backupDir}`,
  );
  expect(key('User')).toBe(INDEXER);

  fs.mkdirSync(path.dirname(cfg.indexerPath), { recursive: true });
  fs.copyFileSync(await bundle('apt-repo'), cfg.indexerPath);
  fs.chmodSync(cfg.indexerPath, 0o755);
  for (const d of [layout.configDir, layout.webRoot, layout.stateDir, layout.backupDir, layout.incomingDir])
    fs.mkdirSync(d, { recursive: true });
  // Every folder on the way is world-searchable (mkTemp's are 0700).
  for (let d = path.dirname(layout.backupDir); d.startsWith(root); d = path.dirname(d)) fs.chmodSync(d, 0o755);
  for (let d = path.dirname(layout.configDir); d.startsWith(root); d = path.dirname(d)) fs.chmodSync(d, 0o755);
  const listes = renderListes(cfg.codenames, cfg.architectures);
  fs.writeFileSync(path.join(layout.configDir, 'liste_dist'), listes.listeDist);
  fs.writeFileSync(path.join(layout.configDir, 'liste_arch'), listes.listeArch);
  // Signing in-process for this test (the signer socket has its own e2e test).
  fs.writeFileSync(path.join(layout.configDir, 'repo.yaml'), renderRepoYaml(cfg, layout).replace(/^signerSocket: .*\n/m, ''));
  chownIndexer(layout.configDir, layout.webRoot, layout.stateDir, layout.backupDir, layout.incomingDir);
  fs.chmodSync(layout.backupDir, 0o750);
  ok(await repoAs(['--root', root, 'keygen']), 'keygen');
  buildDeb(path.join(layout.incomingDir, 'ci'), { name: 'app', version: '1.0', payloadBytes: 300_000 });
  buildDeb(path.join(layout.incomingDir, 'ci', 'bookworm'), { name: 'php-app', version: '2.0', architecture: 'amd64' });
  chownIndexer(layout.incomingDir);
  ok(await repoAs(['--root', root, 'ingest', '--settle-ms', '0']), 'ingest');
}, 120_000);

afterAll(() => {
  if (root) rmTemp(root);
});

test('three nights of the unit: dated folders, unchanged files linked, the first and the last restored byte for byte', async () => {
  const nights: { dir: string; published: Record<string, string>; stderr: string }[] = [];
  for (let n = 1; n <= 3; n++) {
    if (n === 2) {
      keyOwner(INDEXER);
      buildDeb(path.join(layout.incomingDir, 'ci'), { name: 'app', version: '1.1', payloadBytes: 200_000 });
      chownIndexer(layout.incomingDir);
      ok(await repoAs(['--root', root, 'ingest', '--settle-ms', '0']), 'ingest night 2');
    }
    keyOwner('root');
    const before = new Set(fs.readdirSync(layout.backupDir));
    const started = Date.now();
    const r = ok(await runUnit(), `backup night ${n}`);
    const made = fs.readdirSync(layout.backupDir).filter((d) => !before.has(d));
    expect(made).toHaveLength(1);
    expect(made[0]).toMatch(/^\d{8}T\d{6}Z$/);
    expect(fs.statSync(path.join(layout.backupDir, made[0])).uid).toBe(Number(execFileSync('id', ['-u', INDEXER], { encoding: 'utf8' })));
    nights.push({ dir: path.join(layout.backupDir, made[0]), published: published(), stderr: r.stderr });
    // The stamps have a one-second resolution: the next night starts in another second.
    await new Promise((res) => setTimeout(res, Math.max(0, 1100 - (Date.now() - started))));
  }
  expect(fs.readdirSync(layout.backupDir).sort()).toEqual(nights.map((n) => path.basename(n.dir)));
  // The signer's key is not the indexer's to read: left out, one line.
  for (const n of nights) expect(n.stderr).toMatch(/signing-key\.asc: not readable by this user \(the signer's key\): not backed up/);
  const list = ok(await repoAs(['--root', root, '--json', 'backup', '--list', layout.backupDir]), 'backup --list');
  expect((JSON.parse(list.stdout) as { stamp: string }[]).map((b) => b.stamp)).toEqual(nights.map((n) => path.basename(n.dir)));

  for (let n = 1; n < 3; n++) {
    const prev = filesOf(path.join(nights[n - 1].dir, 'web'));
    const cur = filesOf(path.join(nights[n].dir, 'web'));
    const prevInodes = new Set([...prev.values()].map((s) => s.ino));
    const prevContent = new Set([...prev.keys()].map((r) => sha(path.join(nights[n - 1].dir, 'web', r))));
    let written = 0;
    for (const [rel, st] of cur) {
      const unchanged = prevContent.has(sha(path.join(nights[n].dir, 'web', rel)));
      // Unchanged content: the previous night's inode; new content: a file of its own.
      expect([rel, prevInodes.has(st.ino)]).toEqual([rel, unchanged]);
      if (prev.has(rel) && unchanged && rel.startsWith('pool/')) expect(st.ino).toBe(prev.get(rel)!.ino);
      if (!unchanged) written += st.size;
    }
    if (n === 1) {
      expect(written).toBeGreaterThanOrEqual(200_000);
      // A copy of its own, not the live pool's inode (a pool file changed in place must not change the backup).
      expect(cur.get('pool/main/a/app/app_1.1_all.deb')!.ino).not.toBe(
        fs.statSync(path.join(layout.webRoot, 'pool/main/a/app/app_1.1_all.deb')).ino,
      );
    } else {
      // Night 3: nothing changed, nothing under web/ costs space.
      expect(written).toBe(0);
    }
  }

  for (const n of [nights[0], nights[2]]) {
    emptyChannel();
    const r = ok(await repoAs(['--root', root, 'restore', '--from', n === nights[2] ? layout.backupDir : n.dir]), `restore ${n.dir}`);
    expect(r.stdout).toContain(`from ${n.dir} `);
    expect(r.stdout).toContain('verify: clean');
    expect(published()).toEqual(n.published);
    ok(await repoAs(['--root', root, 'verify']), 'verify');
  }
  expect(Object.keys(nights[0].published)).not.toContain('pool/main/a/app/app_1.1_all.deb');
  expect(Object.keys(nights[2].published)).toContain('pool/main/a/app/app_1.1_all.deb');
}, 180_000);
