/**
 * Kill test of `rollback`: the bundled apt-repo is killed with SIGKILL at seeded pseudo-random
 * moments spread over a whole rollback, from process start to exit (test/harness/kill.ts). The channel serves generation
 * G4 (app 1.1, 1.2: 1.0 removed into the trash); the rollback goes to G3 (1.0, 1.1, 1.2), so it
 * restores 1.0 from the trash (the pool changes) before the new generation serves it: the window the
 * test checks kills landed in. After each kill: `dists` serves G4's or G3's package set completely
 * (Packages byte for byte), nothing is lost (every file in the pool or the trash), and the next
 * command (rollback, or publish) succeeds with verify clean; a restore never served is put back
 * into the trash by that command's recovery (the rollback's intent record).
 * The seeded moments are spread over 1.5 times a rollback (about a third of the runs finish), and
 * the loop goes on (killLoop: at most 2 × KILLS runs) until KILLS runs were really killed and at
 * least 3 kills landed before the restore, 3 inside the window and 3 runs after the flip or done;
 * a run that finishes before its kill moment is a fresh timing that rescales the next moments.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundle, mkTemp, ok, rmTemp, runCli } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { inWindow, killLoop, poolVsServed, runKilled, timeRun } from '../../test/harness/kill';
import { channelPaths } from '../src/repo/channel';

const SEED = 9008;
/** Runs really killed (about 40 runs in all, a third of them finishing before their moment). */
const KILLS = 28;
/** Each kind of outcome (before the restore, inside the window, after the flip or finished) at least this often. */
const EACH = 3;

/** Versions of package app in a Packages text, in index order. */
const appVersions = (packages: string) =>
  packages
    .split('\n\n')
    .filter((st) => /^Package: app$/m.test(st))
    .map((st) => /^Version: (.+)$/m.exec(st)![1]);

describe('rollback killed at any moment', () => {
  let base: string;
  /** Packages text (bookworm amd64) of G4 (served before) and G3 (the rollback's target). */
  let before: string;
  let target: string;
  let g2: string;
  let g3: string;
  let g4: string;
  const pkgRel = 'dists/bookworm/main/binary-amd64/Packages';
  const files = ['app_1.0_all.deb', 'app_1.1_all.deb', 'app_1.2_all.deb'];

  const cliAt = (root: string, ...args: string[]) => runCli(['--root', root, '--channel', 'preprod', ...args]);
  const webRoot = (root: string) => channelPaths(root, 'preprod').webRoot;
  const served = (root: string) => fs.readFileSync(path.join(webRoot(root), pkgRel), 'utf8');
  const inPool = (root: string, f: string) => fs.existsSync(path.join(webRoot(root), 'pool/main/a/app', f));
  const inTrash = (root: string, f: string) => fs.existsSync(path.join(root, 'var/lib/apt-repo/preprod/trash/pool/main/a/app', f));
  /** A fresh copy of the prepared channel (cp -a keeps the hard links between generations). */
  function copy(): string {
    const dir = mkTemp('rollback-kill-run');
    execFileSync('cp', ['-a', `${base}/.`, dir]);
    return dir;
  }

  beforeAll(async () => {
    base = mkTemp('rollback-kill-base');
    // Three codenames and architectures and some other packages: a rollback writes and signs
    // enough indexes that a good part of its run comes after the pool changed.
    ok(await cliAt(base, 'init', '--codenames', 'bookworm,bullseye,trixie', '--architectures', 'amd64,i386,arm64'), 'init');
    for (let i = 0; i < 40; i++)
      buildDeb(path.join(base, 'srv/apt/incoming/ci'), {
        name: `filler${i}`,
        version: '1.0',
        description: `filler package ${i}\n ${'x'.repeat(200)}`,
      });
    ok(await cliAt(base, 'keygen'), 'keygen');
    const gens: string[] = [];
    for (const version of ['1.0', '1.1', '1.2']) {
      buildDeb(path.join(base, 'srv/apt/incoming/ci'), { name: 'app', version });
      gens.push(JSON.parse(ok(await cliAt(base, '--json', 'ingest', '--settle-ms', '0'), 'ingest').stdout).generation);
    }
    ok(await cliAt(base, 'remove', 'app=1.0'), 'remove');
    g2 = gens[1];
    g3 = gens[2];
    g4 = JSON.parse(ok(await cliAt(base, '--json', 'generations'), 'generations').stdout)[0].id;
    before = served(base);
    target = fs.readFileSync(path.join(webRoot(base), '.generations', g3, pkgRel), 'utf8');
    expect(before).not.toBe(target);
    expect(inTrash(base, files[0])).toBe(true);
  });
  afterAll(() => rmTemp(base));

  test(`${KILLS} seeded real kills: old or rolled-back set served whole, verify clean, next command fine`, async () => {
    // How long an uninterrupted rollback takes here, so the kills cover all of it.
    await bundle('apt-repo'); // built once, not inside the first timing
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const root = copy();
      times.push(await timeRun(['--root', root, '--channel', 'preprod', 'rollback']));
      expect(served(root)).toBe(target);
      rmTemp(root);
    }
    // Up to half as long again: the machine may be busier during the loop, and the last kills
    // should still land after the new generation is served or find the rollback done.
    process.stderr.write(`rollback takes ${times.join(', ')} ms\n`);
    const outcomes = { beforeRestore: 0, window: 0, served: 0, finished: 0 };
    const enough = () => outcomes.beforeRestore >= EACH && outcomes.window >= EACH && outcomes.served + outcomes.finished >= EACH;
    const sum = await killLoop(
      { seed: SEED, kills: KILLS, spanMs: Math.max(...times), stretch: 1.5, enough, timeLimitMs: 200_000 },
      async (k, delay, fraction) => {
        const root = copy();
        const what = `kill ${k} at ${delay} ms (${fraction.toFixed(3)} × 1.5 runs; seed ${SEED})`;
        try {
          const run = await runKilled(['--root', root, '--channel', 'preprod', 'rollback'], delay);
          const window = inWindow(poolVsServed(webRoot(root)));
          const now = served(root);
          // Old set or new set, whole: never anything else.
          expect({ what, servesOldOrTarget: now === before || now === target }).toEqual({ what, servesOldOrTarget: true });
          for (const f of files) expect({ what, f, kept: inPool(root, f) || inTrash(root, f) }).toEqual({ what, f, kept: true });
          const restored = inPool(root, files[0]);
          // In the window exactly when 1.0 is back in the pool and the old set is still served.
          expect({ what, window }).toEqual({ what, window: restored && now === before });
          if (!run.killed) outcomes.finished++;
          else if (now === target) outcomes.served++;
          else if (window) outcomes.window++;
          else outcomes.beforeRestore++;
          // Before the next writer: clean, or it names the interrupted rollback's record (and only that).
          const verify = await cliAt(root, 'verify');
          const problems = (verify.stdout + verify.stderr)
            .split('\n')
            .filter((l) => /pool|generation|Release|Packages|intent/.test(l) && !/verified, no problem found/.test(l));
          expect({ what, ok: verify.code === 0 || problems.every((l) => /intent\.jsonl: an interrupted rollback/.test(l)) }).toEqual({
            what,
            ok: true,
          });

          // The next command: a rollback again, or a publish (every pool file listed again).
          if (k % 2 === 0) {
            const next = ok(await cliAt(root, '--json', 'rollback'), `${what}: next rollback`);
            const r = JSON.parse(next.stdout);
            if (now === target) {
              // The killed one had finished serving: this one goes one step further back (G2: 1.0, 1.1).
              expect({ what, to: r.to }).toEqual({ what, to: g2 });
              expect({ what, v: appVersions(served(root)) }).toEqual({ what, v: ['1.0', '1.1'] });
            } else {
              expect({ what, to: r.to, set: served(root) === target }).toEqual({ what, to: g3, set: true });
            }
          } else {
            ok(await cliAt(root, 'publish'), `${what}: next publish`);
            const v = appVersions(served(root));
            // A restore the killed rollback never served went back into the trash (its intent record):
            // the version removed on purpose stays removed.
            expect({ what, v, trashed: inTrash(root, files[0]) }).toEqual({
              what,
              v: now === target ? ['1.0', '1.1', '1.2'] : ['1.1', '1.2'],
              trashed: now !== target,
            });
          }
          const after = await cliAt(root, 'verify');
          expect({ what, code: after.code, out: after.code ? after.stdout + after.stderr : '' }).toEqual({ what, code: 0, out: '' });
          expect({ what, g4Kept: fs.existsSync(path.join(webRoot(root), '.generations', g4, 'generation.json')) }).toEqual({
            what,
            g4Kept: true,
          });
          return run;
        } finally {
          rmTemp(root);
        }
      },
    );
    // The kills were spread over the whole run: some before the pool changed, some inside the
    // pool-changed-but-not-served window, some after the new generation was served.
    process.stderr.write(
      `rollback kill outcomes: ${JSON.stringify(outcomes)}; ${sum.killed}/${sum.runs} killed, fresh timings ${sum.timings.join(', ')} ms, stopped: ${sum.stoppedBy}, ${sum.elapsedMs} ms\n`,
    );
    expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
    expect(outcomes.window).toBeGreaterThanOrEqual(EACH);
    expect(outcomes.beforeRestore).toBeGreaterThanOrEqual(EACH);
    expect(outcomes.served + outcomes.finished).toBeGreaterThanOrEqual(EACH);
  }, 900_000);
});
