/**
 * Kill tests of ingest, promote and remove, each run as its own process of the bundled apt-repo
 * and SIGKILLed at seeded moments spread over its whole run (test/harness/kill.ts killLoop), until
 * 30 runs per command were really killed and at least 3 of those kills landed in the window (at most
 * 60 runs: a run that ends before its kill moment is a fresh timing that rescales the next moments). After each kill, the next command of another kind runs normally, and then:
 * - every accepted package is served exactly once per Packages index, with the pool file's SHA256;
 * - the pool holds exactly what is served (no stranded file, no served file missing);
 * - verify (in-process verifyChannel, which checks pool against kept generations) finds nothing;
 * - nothing an uploader sent is lost: each upload is served, still in incoming, or in rejected/
 *   with its .reason; a removed version is in the trash;
 * - no intent record and no temp file is left; prod serves only what preprod serves, with
 *   preprod's inodes.
 * Each suite asserts that several kills landed in the window where the pool had changed but the
 * served generation had not (the probe right after the kill), and that the next writer said it recovered.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli, RunResult } from '../../test/harness/cli';
import { rawControlDeb } from '../../test/harness/debs';
import {
  changeNotRecorded,
  historyProblems,
  inWindow,
  killLoop,
  KillLoopSummary,
  poolFiles,
  poolVsServed,
  runKilled,
  servedEntries,
  ServedEntry,
  servedGeneration,
  storeProblems,
  timeRun,
} from '../../test/harness/kill';
import { loadChannel, channelPaths } from '../src/repo/channel';
import { verifyChannel } from '../src/repo/verify';
import { readPoolStore } from '../src/repo/cache';

const CODENAMES = ['bookworm', 'trixie'];
const ARCHS = ['amd64'];
const KILLS = 30;
/** Runs at most (killLoop's bound): the per-round packages are prepared for that many. */
const MAX_RUNS = 2 * KILLS;
/** Kills inside the pool-changed-not-served window each suite must see. */
const WINDOW_KILLS = 3;
/** No new run after this long (ms); each test's own timeout is above it. */
const LOOP_MS = 100_000;
const TEST_MS = 170_000;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let root: string;
const web = (ch: string) => channelPaths(root, ch).webRoot;
const state = (ch: string) => path.join(root, 'var/lib/apt-repo', ch);
const incoming = () => path.join(root, 'srv/apt/incoming');
const rejected = () => path.join(incoming(), 'rejected');
const args = (ch: string, ...rest: string[]) => ['--root', root, '--channel', ch, ...rest];
const cli = (ch: string, ...rest: string[]) => runCli(args(ch, ...rest));

/** An upload dropped into incoming/ci: what the test expects to find again. */
interface Upload {
  rel: string;
  name: string;
  version: string;
  sha256: string;
  valid: boolean;
}
const uploads: Upload[] = [];
/** Versions removed from preprod (their uploads are expected in the trash). */
const removed = new Set<string>();

async function drop(name: string, version: string, valid = true): Promise<Upload> {
  const bytes = valid
    ? await rawControlDeb(
        `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Kill Test <kill@example.org>\nDescription: kill test ${name}\n`,
      )
    : Buffer.from(`not a deb ${name} ${version}\n`);
  const rel = `ci/${name}_${version}_all.deb`;
  fs.mkdirSync(path.join(incoming(), 'ci'), { recursive: true });
  fs.writeFileSync(path.join(incoming(), rel), bytes);
  const u = { rel, name, version, sha256: sha256(bytes), valid };
  uploads.push(u);
  return u;
}

const key = (e: { name: string; version: string }) => `${e.name}=${e.version}`;

/**
 * Checks one channel after a writing command ran on it: see the module comment. Returns its served
 * entries (amd64 of every codename).
 */
async function expectConsistent(ch: string): Promise<ServedEntry[]> {
  expect(fs.existsSync(path.join(state(ch), 'intent.jsonl'))).toBe(false);
  expect(fs.readdirSync(state(ch)).filter((n) => /\.tmp-|^lock\./.test(n))).toEqual([]);
  expect(fs.readdirSync(web(ch)).filter((n) => n.startsWith('.dists.tmp-'))).toEqual([]);
  const { unserved, missing } = poolVsServed(web(ch));
  expect({ ch, unserved, missing }).toEqual({ ch, unserved: [], missing: [] });
  const entries = servedEntries(web(ch), CODENAMES, ARCHS);
  const seen = new Set<string>();
  for (const e of entries) {
    const k = `${e.codename}/${e.arch}/${e.name}=${e.version}/${e.architecture}`;
    expect(seen.has(k)).toBe(false); // served exactly once per index
    seen.add(k);
    expect(sha256(fs.readFileSync(path.join(web(ch), e.filename)))).toBe(e.sha256);
  }
  // Every served package is in every codename (no version suffix: routed everywhere).
  const byName = new Map<string, Set<string>>();
  for (const e of entries) byName.set(key(e), (byName.get(key(e)) ?? new Set()).add(e.codename));
  for (const [k, cs] of byName) expect([k, [...cs].sort()]).toEqual([k, CODENAMES]);
  // Pool files have no leftover temp names.
  const hidden: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) hidden.push(path.join(d, e.name));
      else if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(path.join(web(ch), 'pool'));
  expect(hidden).toEqual([]);
  expect(await verifyChannel(await loadChannel({ root, channel: ch }))).toEqual([]);
  expect(storeProblems(web(ch), state(ch))).toEqual([]);
  return entries;
}

/** The .reason files of rejected/ by the upload path they name, each with its file present. */
function rejectedByRel(): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(rejected());
  } catch {
    return out;
  }
  for (const n of names.filter((x) => x.endsWith('.reason'))) {
    const file = path.join(rejected(), n.slice(0, -'.reason'.length));
    expect(fs.existsSync(file)).toBe(true); // no .reason without its upload
    const rel = /^file: (.*)$/m.exec(fs.readFileSync(path.join(rejected(), n), 'utf8'))?.[1];
    if (rel) out.set(rel, sha256(fs.readFileSync(file)));
  }
  return out;
}

/**
 * Nothing an uploader sent is lost: each upload is served by preprod, in incoming, or in rejected/
 * with its reason; a version removed on purpose is in the trash, or gone from it by gc (after no
 * kept generation listed it), never in the pool.
 */
function expectNothingLost(preprodServed: ServedEntry[]): void {
  const served = new Map(preprodServed.map((e) => [key(e), e.sha256]));
  const rej = rejectedByRel();
  for (const u of uploads) {
    const inIncoming = fs.existsSync(path.join(incoming(), u.rel)) ? sha256(fs.readFileSync(path.join(incoming(), u.rel))) : undefined;
    const where: string[] = [];
    if (inIncoming === u.sha256) where.push('incoming');
    if (u.valid && served.get(key(u)) === u.sha256) where.push('served');
    if (rej.get(u.rel) === u.sha256) where.push('rejected');
    if (u.valid && removed.has(key(u)) && where.length === 0) {
      const rel = `pool/main/${u.name[0]}/${u.name}/${u.name}_${u.version}_all.deb`;
      const trash = path.join(state('preprod'), 'trash', rel);
      expect(fs.existsSync(path.join(web('preprod'), rel))).toBe(false);
      if (!fs.existsSync(trash) || sha256(fs.readFileSync(trash)) === u.sha256) where.push('removed');
    }
    expect([u.rel, where.length]).toEqual([u.rel, 1]);
    if (!u.valid) expect([u.rel, where]).not.toEqual([u.rel, ['served']]);
  }
}

beforeAll(async () => {
  root = mkTemp('kill-e2e');
  ok(await cli('preprod', 'init', '--codenames', CODENAMES.join(','), '--architectures', ARCHS.join(',')), 'init preprod');
  ok(
    await cli('prod', 'init', '--codenames', CODENAMES.join(','), '--architectures', ARCHS.join(','), '--upstream', 'preprod'),
    'init prod',
  );
  ok(await cli('preprod', 'keygen', '--type', 'ed25519'), 'keygen preprod');
  ok(await cli('prod', 'keygen', '--type', 'ed25519'), 'keygen prod');
});
afterAll(() => rmTemp(root));

/**
 * Kills that landed after the run flipped `dists` to its new generation and before it saved the pool
 * cache marked for it (repo/generationWriter.ts publishLocked): the cache then names an older
 * generation, so the next writer lists the pool. Counted for the log (a window of a few ms).
 */
const markWindowKills = { ingest: 0, promote: 0 };
/** Kills after the flip, before the history line (counted, like markWindowKills: one append wide). */
const historyWindowKills = { ingest: 0, promote: 0, remove: 0 };
function flippedNotRecorded(ch: string): boolean {
  const id = servedGeneration(web(ch));
  return id !== undefined && changeNotRecorded(web(ch), state(ch), id);
}
function flippedNotMarked(ch: string, servedBefore: string | undefined): boolean {
  const now = servedGeneration(web(ch));
  if (now === undefined || now === servedBefore) return false;
  try {
    return readPoolStore(state(ch)).listedFor !== now;
  } catch {
    return true;
  }
}

/** Summary line per suite, for the log. */
function note(what: string, sum: KillLoopSummary, window: number, spanMs: number, startedMs: number): void {
  process.stdout.write(
    `kill test ${what}: one run ${spanMs} ms (fresh timings ${sum.timings.join(', ') || 'none'}); ${sum.killed}/${sum.runs} killed, ${window} in the pool-changed-not-served window${what in markWindowKills ? `, ${markWindowKills[what as keyof typeof markWindowKills]} after the flip before the cache mark` : ''}${what in historyWindowKills ? `, ${historyWindowKills[what as keyof typeof historyWindowKills]} after the flip before the history line` : ''}; stopped: ${sum.stoppedBy}; suite ${Date.now() - startedMs} ms\n`,
  );
}

/**
 * The assertions every suite ends with: KILLS real kills, WINDOW_KILLS of them inside the window
 * (killLoop stops early only when both hold; a bound reached first fails here).
 */
function expectKills(sum: KillLoopSummary, window: number): void {
  expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
  expect(window).toBeGreaterThanOrEqual(WINDOW_KILLS);
}

test(
  `ingest: ${KILLS} kills, then publish / gc / remove / promote+gc`,
  async () => {
    const started = Date.now();
    // Time scale: one complete ingest of a batch of the size used below.
    for (let j = 0; j < 4; j++) await drop(`calib${j}`, '1.0');
    const spanMs = await timeRun(args('preprod', 'ingest', '--settle-ms', '0'));
    let windowKills = 0;
    const sum = await killLoop(
      { seed: 9001, kills: KILLS, spanMs, maxRuns: MAX_RUNS, timeLimitMs: LOOP_MS, enough: () => windowKills >= WINDOW_KILLS },
      async (i, delayMs) => {
        for (const s of ['a', 'b', 'c', 'd']) await drop(`in${i}${s}`, '1.0');
        if (i % 3 === 0) await drop(`bad${i}`, '1.0', false);
        const servedBefore = servedGeneration(web('preprod'));
        const k = await runKilled(args('preprod', 'ingest', '--settle-ms', '0'), delayMs);
        const probe = poolVsServed(web('preprod'));
        const window = k.killed && inWindow(probe);
        if (window) windowKills++;
        // At the kill's instant: served.json and a marked cache agree with the disk.
        expect(storeProblems(web('preprod'), state('preprod'))).toEqual([]);
        if (k.killed && flippedNotMarked('preprod', servedBefore)) markWindowKills.ingest++;
        if (k.killed && flippedNotRecorded('preprod')) historyWindowKills.ingest++;
        let next: RunResult;
        switch (i % 4) {
          case 0:
            next = ok(await cli('preprod', 'publish'), 'publish');
            break;
          case 1:
            next = ok(await cli('preprod', 'gc'), 'gc');
            break;
          case 2: {
            // Remove a version an earlier round made live (never one of this round).
            const victim = `in${i - 2}a`;
            const r = await cli('preprod', 'remove', `${victim}=1.0`);
            next = r;
            if (r.code === 0) removed.add(`${victim}=1.0`);
            else expect(r.stderr).toMatch(/is not in preprod's pool/); // it is still in incoming (that ingest was killed early)
            break;
          }
          default: {
            // prod's promote cannot finish preprod's ingest: it promotes only what preprod serves.
            const before = new Set(servedEntries(web('preprod'), CODENAMES, ARCHS).map((e) => `${key(e)}/${e.sha256}`));
            ok(await cli('prod', 'promote', '--all-pending'), 'promote');
            const prodServed = await expectConsistent('prod');
            for (const e of prodServed) expect(before.has(`${key(e)}/${e.sha256}`)).toBe(true);
            const pend = JSON.parse(ok(await cli('prod', '--json', 'pending'), 'pending').stdout) as { pending: unknown[] };
            expect(pend.pending).toEqual([]);
            next = ok(await cli('preprod', 'gc'), 'gc');
          }
        }
        if (window) expect(next.stderr).toMatch(/^apt-repo: recovering: preprod: interrupted ingest/m);
        expect(historyProblems(web('preprod'), state('preprod'))).toEqual([]);
        expectNothingLost(await expectConsistent('preprod'));
        return k;
      },
    );
    // A last, uninterrupted ingest takes whatever the killed ones left in incoming: exit 1 (README:
    // any rejected file) when a bad upload was still there, and then only bad uploads were rejected.
    const last = await cli('preprod', 'ingest', '--settle-ms', '0');
    if (last.code !== 0) {
      const rejectedNow = last.stdout.split('\n').filter((l) => /^rejected /.test(l));
      expect({
        code: last.code,
        stderr: last.stderr,
        onlyBad: rejectedNow.length > 0 && rejectedNow.every((l) => /^rejected\s+ci\/bad\d+_1\.0_all\.deb /.test(l)),
      }).toEqual({ code: 1, stderr: '', onlyBad: true });
    }
    const served = await expectConsistent('preprod');
    expectNothingLost(served);
    const names = new Set(served.map(key));
    for (const u of uploads.filter((x) => x.valid && !removed.has(key(x)))) expect([u.rel, names.has(key(u))]).toEqual([u.rel, true]);
    expect(fs.readdirSync(path.join(incoming(), 'ci'))).toEqual([]);
    note('ingest', sum, windowKills, spanMs, started);
    expectKills(sum, windowKills);
  },
  TEST_MS,
);

test(
  `promote: ${KILLS} kills, then publish / gc / remove --force / pending+gc on prod`,
  async () => {
    const started = Date.now();
    // preprod serves three packages per round, and a few for the time scale.
    for (let i = 0; i < MAX_RUNS; i++) for (const s of ['x', 'y', 'z']) await drop(`pr${i}${s}`, '1.0');
    for (const s of ['x', 'y', 'z']) await drop(`prcal${s}`, '1.0');
    ok(await cli('preprod', 'ingest', '--settle-ms', '0'), 'ingest');
    const preServed = await expectConsistent('preprod');
    const preSha = new Map(preServed.map((e) => [key(e), e.sha256]));
    const spanMs = await timeRun(args('prod', 'promote', 'prcalx', 'prcaly', 'prcalz'));
    let windowKills = 0;
    const removedFromProd = new Set<string>();
    const sum = await killLoop(
      { seed: 9002, kills: KILLS, spanMs, maxRuns: MAX_RUNS, timeLimitMs: LOOP_MS, enough: () => windowKills >= WINDOW_KILLS },
      async (i, delayMs) => {
        const names = ['x', 'y', 'z'].map((s) => `pr${i}${s}`);
        const servedBefore = servedGeneration(web('prod'));
        const k = await runKilled(args('prod', 'promote', ...names), delayMs);
        const window = k.killed && inWindow(poolVsServed(web('prod')));
        if (window) windowKills++;
        expect(storeProblems(web('prod'), state('prod'))).toEqual([]);
        expect(storeProblems(web('preprod'), state('preprod'))).toEqual([]);
        if (k.killed && flippedNotMarked('prod', servedBefore)) markWindowKills.promote++;
        if (k.killed && flippedNotRecorded('prod')) historyWindowKills.promote++;
        let next: RunResult;
        switch (i % 4) {
          case 0:
            next = ok(await cli('prod', 'publish'), 'publish');
            break;
          case 1:
            next = ok(await cli('prod', 'gc'), 'gc');
            break;
          case 2: {
            const victim = `pr${i - 2}x`;
            next = await cli('prod', 'remove', '--force', `${victim}=1.0`);
            if (next.code === 0) removedFromProd.add(`${victim}=1.0`);
            else expect(next.stderr).toMatch(/is not in prod's pool/);
            break;
          }
          default: {
            // pending (read-only) lists what prod does not serve, whatever its pool holds.
            const pend = JSON.parse(ok(await cli('prod', '--json', 'pending'), 'pending').stdout) as {
              pending: { name: string; version: string }[];
            };
            const prodNow = new Set(servedEntries(web('prod'), CODENAMES, ARCHS).map(key));
            const expected = [...preSha.keys()].filter((n) => !prodNow.has(n)).sort();
            expect(pend.pending.map(key).sort()).toEqual(expected);
            next = ok(await cli('prod', 'gc'), 'gc');
          }
        }
        if (window) expect(next.stderr).toMatch(/^apt-repo: recovering: prod: interrupted promote/m);
        expect(historyProblems(web('prod'), state('prod'))).toEqual([]);
        const prodServed = await expectConsistent('prod');
        for (const e of prodServed) {
          // Only what preprod serves, and preprod's very inode.
          expect(preSha.get(key(e))).toBe(e.sha256);
          expect(fs.statSync(path.join(web('prod'), e.filename)).ino).toBe(fs.statSync(path.join(web('preprod'), e.filename)).ino);
        }
        // Each named package is live in prod, or not in prod's pool at all (still pending): never
        // stranded there (expectConsistent: prod's pool is exactly what prod serves).
        const live = new Set(prodServed.map(key));
        const inPool = new Set(poolFiles(web('prod')));
        for (const n of names) expect([n, live.has(`${n}=1.0`)]).toEqual([n, inPool.has(`pool/main/p/${n}/${n}_1.0_all.deb`)]);
        return k;
      },
    );
    note('promote', sum, windowKills, spanMs, started);
    // Whether a round's victim was live in prod depends on where the kills landed (timing, load):
    // when no round removed one, remove a package prod serves now, and prod stays consistent.
    if (removedFromProd.size === 0) {
      const live = servedEntries(web('prod'), CODENAMES, ARCHS).filter((e) => e.name.startsWith('pr'));
      expect(live.length).toBeGreaterThan(0);
      ok(await cli('prod', 'remove', '--force', `${live[0].name}=${live[0].version}`), 'remove --force');
      expect((await expectConsistent('prod')).map(key)).not.toContain(key(live[0]));
    }
    expectKills(sum, windowKills);
  },
  TEST_MS,
);

test(
  `remove: ${KILLS} kills, then publish / gc / ingest / promote+gc`,
  async () => {
    const started = Date.now();
    for (let i = 0; i < MAX_RUNS; i++) for (const v of ['1.0', '2.0']) await drop(`rm${i}`, v);
    await drop('rmcal', '1.0');
    ok(await cli('preprod', 'ingest', '--settle-ms', '0'), 'ingest');
    await expectConsistent('preprod');
    const spanMs = await timeRun(args('preprod', 'remove', 'rmcal=1.0'));
    let windowKills = 0;
    removed.add('rmcal=1.0');
    const sum = await killLoop(
      { seed: 9003, kills: KILLS, spanMs, maxRuns: MAX_RUNS, timeLimitMs: LOOP_MS, enough: () => windowKills >= WINDOW_KILLS },
      async (i, delayMs) => {
        const k = await runKilled(args('preprod', 'remove', `rm${i}=1.0`), delayMs);
        const window = k.killed && inWindow(poolVsServed(web('preprod')));
        if (window) windowKills++;
        if (k.killed && flippedNotRecorded('preprod')) historyWindowKills.remove++;
        let next: RunResult;
        switch (i % 4) {
          case 0:
            next = ok(await cli('preprod', 'publish'), 'publish');
            break;
          case 1:
            next = ok(await cli('preprod', 'gc'), 'gc');
            break;
          case 2: {
            await drop(`rmnew${i}`, '1.0');
            next = ok(await cli('preprod', 'ingest', '--settle-ms', '0'), 'ingest');
            break;
          }
          default: {
            ok(await cli('prod', 'promote', '--all-pending'), 'promote');
            await expectConsistent('prod');
            next = ok(await cli('preprod', 'gc'), 'gc');
          }
        }
        if (window) expect(next.stderr).toMatch(/^apt-repo: recovering: preprod: interrupted remove/m);
        expect(historyProblems(web('preprod'), state('preprod'))).toEqual([]);
        const served = new Set((await expectConsistent('preprod')).map(key));
        // All or nothing: the version is served with its file in the pool, or gone with its file in the trash.
        const poolHas = poolFiles(web('preprod')).includes(`pool/main/r/rm${i}/rm${i}_1.0_all.deb`);
        expect(served.has(`rm${i}=1.0`)).toBe(poolHas);
        if (!poolHas) removed.add(`rm${i}=1.0`);
        expect(served.has(`rm${i}=2.0`)).toBe(true);
        expectNothingLost(servedEntries(web('preprod'), CODENAMES, ARCHS));
        return k;
      },
    );
    note('remove', sum, windowKills, spanMs, started);
    expectKills(sum, windowKills);
  },
  TEST_MS,
);
