/**
 * Kill tests of `backup` and `restore` (test/harness/kill.ts): the bundled apt-repo is SIGKILLed at
 * seeded moments spread over a whole run (stratified over one measured run's duration, rescaled by
 * each run that finishes before its moment), and the loop (killLoop, at most 2 × KILLS runs) goes on
 * until KILLS runs were really killed and the window thresholds below were reached.
 *
 * backup: a channel of 20 packages, backupKeep 3, backups into one folder. The window: a kill that
 * leaves a `.<stamp>.<channel>.partial` folder (killed while writing) or a `.deleting` one (while
 * pruning). After each kill: every listed backup is complete (checkBackup clean, the manifest's
 * channel), no half backup is listed, the channel (config, web root, state minus the lock) is
 * byte for byte what it was, and every other kill the next backup runs to the end and removes the
 * leftovers. At the end `restore --from <dir>` takes the newest complete backup: published files
 * byte for byte, verify clean.
 *
 * restore: into a fresh empty root each time, from a folder holding one complete backup and a half
 * one. The window: a kill that leaves `<stateDir>/restore.json` (restore under way). The next
 * command alternates between `restore --from <dir>` again (no --force: the leftovers are the
 * interrupted restore's) and `gc`, a writer whose crash recovery finishes the restore; a kill
 * before the config exists leaves no channel (gc: unknown channel, exit 2) and no published file,
 * and the restore that follows does the whole work. Afterwards: published files byte for byte,
 * verify clean, no record left.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli } from '../../test/harness/cli';
import { fileTree } from '../../test/harness/fileTree';
import { buildDeb } from '../../test/harness/debs';
import { killLoop, runKilled, timeRun } from '../../test/harness/kill';
import { listBackups } from '../src/repo/backup';
import { checkBackup, readManifest } from '../src/repo/restoreApply';
import { channelPaths } from '../src/repo/channel';

const KILLS = 32;
/** Kills that must leave a half backup (backup) or a restore under way (restore). */
const WINDOW_KILLS = 5;
/** Interrupted restores gc's recovery must finish. */
const BY_WRITER = 2;
/** No new run after this long in one test's loop (ms). */
const LOOP_MS = 240_000;

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const paths = (root: string) => channelPaths(root, 'preprod');

/** What clients fetch: dists (through the link), pool, public keys. */
function published(root: string): Record<string, string> {
  const web = paths(root).webRoot;
  const out: Record<string, string> = {};
  const walk = (abs: string, rel: string) => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const a = path.join(abs, e.name);
      if (fs.statSync(a).isDirectory()) walk(a, `${rel}/${e.name}`);
      else out[`${rel}/${e.name}`] = sha(a);
    }
  };
  walk(path.join(web, 'dists'), 'dists');
  walk(path.join(web, 'pool'), 'pool');
  for (const f of fs.readdirSync(web).filter((n) => n.includes('-archive-keyring.'))) out[f] = sha(path.join(web, f));
  return out;
}

/** The channel as a backup must leave it: config, web root, state without the writers' lock. */
/**
 * The lock and its temp name (`.lock.tmp-<pid>-<hex>`, written and linked into place while a run
 * takes the lock): a kill can leave either; the next command reclaims the lock and recovery removes
 * the dead run's temp (checked after each backup that follows a kill).
 */
const isLockFile = (n: string) => n === 'lock' || n.startsWith('lock.') || /^\.lock\.tmp-\d+-[0-9a-f]{8}$/.test(n);

function channelState(root: string): Record<string, string> {
  const p = paths(root);
  return {
    ...Object.fromEntries(Object.entries(fileTree(p.configDir, { dirs: true, missingOk: true })).map(([k, v]) => [`config/${k}`, v])),
    ...Object.fromEntries(Object.entries(fileTree(p.webRoot, { dirs: true, missingOk: true })).map(([k, v]) => [`web/${k}`, v])),
    ...Object.fromEntries(
      Object.entries(fileTree(p.stateDir, { skip: (_rel, n) => isLockFile(n), dirs: true, missingOk: true })).map(([k, v]) => [
        `state/${k}`,
        v,
      ]),
    ),
  };
}

let base: string;
let work: string;
const cli = (root: string, ...args: string[]) => runCli(['--root', root, '--channel', 'preprod', ...args]);

beforeAll(async () => {
  base = mkTemp('backup-kill-base');
  work = mkTemp('backup-kill-work');
  ok(await cli(base, 'init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64'), 'init');
  ok(await cli(base, 'keygen'), 'keygen');
  fs.appendFileSync(path.join(paths(base).configDir, 'repo.yaml'), '\nbackupKeep: 3\n');
  for (let i = 0; i < 20; i++) buildDeb(path.join(base, 'srv/apt/incoming/ci'), { name: `pkg${i}`, version: '1.0', payloadBytes: 150_000 });
  ok(await cli(base, 'ingest', '--settle-ms', '0'), 'ingest');
}, 180_000);

afterAll(() => {
  rmTemp(base);
  rmTemp(work);
});

test(`backup killed ${KILLS} times: no half backup listed or restored from, the channel unchanged, the next backup cleans up`, async () => {
  const bk = path.join(work, 'backups');
  const args = ['--root', base, '--channel', 'preprod', 'backup', '--to', bk];
  // The first night copies everything; later ones link: a later run's duration is the span. Runs
  // that end before their kill (the machine's load varies) do not count: the schedule goes on
  // with the next seed until KILLS runs were killed and WINDOW_KILLS of them in the window.
  await timeRun(args);
  const span = await timeRun(args);
  const before = channelState(base);
  let inWindow = 0;
  const sum = await killLoop(
    { seed: 9101, kills: KILLS, spanMs: span, timeLimitMs: LOOP_MS, enough: () => inWindow >= WINDOW_KILLS },
    async (i, delayMs) => {
      const k = await runKilled(args, delayMs);
      if (!k.killed) ok({ code: k.code, signal: null, stdout: k.stdout, stderr: k.stderr }, `backup (not killed, ${delayMs} ms)`);
      const names = fs.readdirSync(bk);
      if (k.killed && names.some((n) => n.endsWith('.preprod.partial') || n.endsWith('.preprod.deleting'))) inWindow++;
      const listed = await listBackups(bk);
      for (const b of listed) {
        expect([b.stamp, await checkBackup(b.dir, await readManifest(b.dir))]).toEqual([b.stamp, []]);
        expect(b.channel).toBe('preprod');
      }
      // Only complete backups and hidden leftovers: nothing else looks like a backup.
      expect(names.filter((n) => !n.startsWith('.')).sort()).toEqual(listed.map((b) => b.stamp));
      expect(channelState(base)).toEqual(before);
      if (i % 2 === 1) {
        ok(await runCli(args), `backup after kill ${i}`);
        expect(fs.readdirSync(bk).filter((n) => n.startsWith('.'))).toEqual([]);
        expect(fs.readdirSync(paths(base).stateDir).filter((n) => n.startsWith('.lock.tmp-'))).toEqual([]);
        expect((await listBackups(bk)).length).toBeLessThanOrEqual(3);
      }
      return k;
    },
  );
  console.log(
    `backup: ${sum.killed} of ${sum.runs} runs killed, ${inWindow} while a backup was being written or pruned (span ${span} ms, fresh timings ${sum.timings.join(', ') || 'none'}; stopped: ${sum.stoppedBy}, ${sum.elapsedMs} ms)`,
  );
  expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
  // Kills landed while the backup was being written or pruned, and the listing never showed them.
  expect(inWindow).toBeGreaterThanOrEqual(WINDOW_KILLS);
  const root2 = path.join(work, 'restored');
  const r = ok(await cli(root2, 'restore', '--from', bk), 'restore newest');
  expect(r.stdout).toContain(`from ${(await listBackups(bk)).pop()!.dir} `);
  expect(published(root2)).toEqual(published(base));
  ok(await cli(root2, 'verify'), 'verify');
}, 600_000);

test(`restore killed ${KILLS} times: the next command (restore or any writer) finishes it; byte for byte, verify clean`, async () => {
  const bk = path.join(work, 'restore-from');
  ok(await cli(base, 'backup', '--to', bk), 'backup');
  const complete = (await listBackups(bk))[0];
  // A half backup beside it (killed before its rename): never the one restored.
  fs.cpSync(complete.dir, path.join(bk, '.29991231T235959Z.preprod.partial'), { recursive: true, verbatimSymlinks: true });
  fs.rmSync(path.join(bk, '.29991231T235959Z.preprod.partial', 'web/pool'), { recursive: true });
  const want = published(base);
  let n = 0;
  const fresh = () => path.join(work, `r${n++}`);
  const span = await timeRun(['--root', fresh(), '--channel', 'preprod', 'restore', '--from', bk]);
  let inWindow = 0;
  let byWriter = 0;
  const enough = () => inWindow >= WINDOW_KILLS && byWriter >= BY_WRITER;
  const sum = await killLoop({ seed: 9201, kills: KILLS, spanMs: span, timeLimitMs: LOOP_MS, enough }, async (i, delayMs) => {
    const root = fresh();
    const k = await runKilled(['--root', root, '--channel', 'preprod', 'restore', '--from', bk], delayMs);
    if (!k.killed) ok({ code: k.code, signal: null, stdout: k.stdout, stderr: k.stderr }, `restore (not killed, ${delayMs} ms)`);
    const record = path.join(paths(root).stateDir, 'restore.json');
    if (k.killed && fs.existsSync(record)) inWindow++;
    const hasConfig = fs.existsSync(path.join(paths(root).configDir, 'liste_dist'));
    if (i % 2 === 0 && hasConfig) {
      // Any writer: its crash recovery finishes the restore.
      const g = ok(await cli(root, 'gc'), `gc after kill ${i}`);
      if (g.stderr.includes('finishing the restore from')) byWriter++;
    } else {
      if (!hasConfig) {
        // Killed before the config existed: no channel, nothing published.
        expect(fs.existsSync(path.join(paths(root).webRoot, 'dists'))).toBe(false);
        if (i % 2 === 0) expect((await cli(root, 'gc')).code).toBe(2);
      }
      const again = await cli(root, 'restore', '--from', bk);
      // A restore that had finished before the kill leaves a channel with pool files: the second
      // one refuses without --force (exit 2), which is right; anything else must succeed.
      if (!(again.code === 2 && /--force/.test(again.stderr) && !fs.existsSync(record))) ok(again, `restore after kill ${i}`);
    }
    expect(fs.existsSync(record)).toBe(false);
    expect(published(root)).toEqual(want);
    ok(await cli(root, 'verify'), `verify after kill ${i}`);
    rmTemp(root);
    return k;
  });
  console.log(
    `restore: ${sum.killed} of ${sum.runs} runs killed, ${inWindow} left a restore under way, ${byWriter} finished by gc's recovery (span ${span} ms, fresh timings ${sum.timings.join(', ') || 'none'}; stopped: ${sum.stoppedBy}, ${sum.elapsedMs} ms)`,
  );
  expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
  expect(inWindow).toBeGreaterThanOrEqual(WINDOW_KILLS);
  expect(byWriter).toBeGreaterThanOrEqual(BY_WRITER);
}, 600_000);
