/**
 * Kill test of `publish` (moved from lambda-free-tools/src/cli/commands/publish.test.ts, where its
 * moments came from an unseeded Math.random and nothing showed a kill had landed mid-publish).
 * The bundled apt-repo publishes a pool of 300 small packages (one more each round, so each run has
 * something new to serve; every other round without the index cache, so the whole pool is read) and
 * is SIGKILLed at seeded moments spread over a whole run (test/harness/kill.ts killLoop: a run that
 * ends before its moment is a fresh timing that rescales the next moments, so a loaded machine still
 * gets its kills). After each kill: `dists` serves a complete generation whose Release files gpgv
 * and openpgp accept, and verify reports only the packages added since the last complete publish.
 * The dangerous window is "a new generation directory written (in part or whole), `dists` not
 * flipped to it yet": the probe right after each kill counts the kills that landed there, and the
 * test asserts at least WINDOW_KILLS did. A last publish then recovers and serves everything.
 */
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { expectServingValid as expectServing } from '../../test/harness/published';
import { killLoop, poolVsServed, runKilled, servedGeneration, storeProblems, timeRun } from '../../test/harness/kill';
import { prng } from '../../test/harness/prng';
import { generationSequence } from '../src/repo/generations';
import { channelPaths } from '../src/repo/channel';
import { servedCatalogue } from '../src/catalogue/write';

const SEED = 9010;
/** Packages in the pool before the first kill. */
const BASE = 300;
/** Runs really killed before the loop may stop. */
const KILLS = 8;
/** Kills inside the new-generation-not-served window the test must see. */
const WINDOW_KILLS = 2;
/** Runs at most (a package is prepared for each). */
const MAX_RUNS = 5 * KILLS;
/** No new run after this long (ms); the test's own timeout is above it. */
const LOOP_MS = 100_000;
/** The catalogue test: runs at most, and kills it must see between the flip of dists and that of catalogue. */
const CATALOGUE_RUNS = 40;
const CATALOGUE_KILLS = 2;
const TEST_MS = 170_000;
/**
 * What the run after a killed publish may say: temp files of the killed run removed; its intent
 * record (no operation) found, a generation it completed but never served removed, the record
 * cleared; the pruning of a killed run that had flipped finished; or the web catalogue rebuilt
 * (killed between the flip of dists and that of catalogue).
 */
const RECOVERY_OF_PUBLISH =
  /^apt-repo: recovering: preprod: (removed stale |interrupted publish \(pid \d+, since [^)]+\)(: 0 recorded change\(s\)| had published generation )|removed generation \S+: written by the interrupted writer, never served|cleared the intent record of publish |rebuilt \S+\/catalogue \(it described another generation than the one served\))/;

let root: string;
let debs: string;
const webRoot = () => channelPaths(root, 'preprod').webRoot;
const name = (i: number) => `pkg${String(i).padStart(3, '0')}`;

beforeAll(async () => {
  debs = mkTemp('publish-kill-debs');
  for (let i = 0; i < BASE + MAX_RUNS + CATALOGUE_RUNS; i++) buildDeb(debs, { name: name(i), version: `1.${i}-1`, compression: 'none' });
  root = mkTemp('publish-kill');
  expect((await runCli(['--root', root, 'init', '--codenames', 'bookworm,trixie', '--architectures', 'amd64,arm64'])).code).toBe(0);
  expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
});
afterAll(() => {
  rmTemp(debs);
  rmTemp(root);
});

/** Copies the i-th prebuilt package into the pool where ingest would put it. */
function addToPool(i: number): void {
  const dir = path.join(webRoot(), 'pool/main/p', name(i));
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(debs, `${name(i)}_1.${i}-1_all.deb`), path.join(dir, `${name(i)}_1.${i}-1_all.deb`));
}

/** The shared check (test/harness/published.ts) for this test's preprod channel, codenames bookworm and trixie. */
const expectServingValid = (unpublished: string[] = []): Promise<string> => expectServing(root, ['bookworm', 'trixie'], unpublished);

/**
 * The generation directories newer than the one `dists` serves (complete or not): a kill that
 * leaves one landed after the publish began writing its generation and before the flip.
 */
function newerThanServed(): string[] {
  const served = servedGeneration(webRoot());
  const seq = served === undefined ? 0 : generationSequence(served);
  return fs.readdirSync(path.join(webRoot(), '.generations')).filter((n) => /^\d{8}T\d{6}Z-\d+$/.test(n) && generationSequence(n) > seq);
}

test(
  'SIGKILL at any moment of a publish leaves dists serving a complete, valid generation; kills land while a new generation is written; the next publish succeeds',
  async () => {
    for (let i = 0; i < BASE; i++) addToPool(i);
    const stateDir = path.join(root, 'var/lib/apt-repo/preprod');
    // A complete first publish (cold cache) gives the time scale of the kills.
    const spanMs = await timeRun(['--root', root, 'publish']);
    await expectServingValid();
    expect(newerThanServed()).toEqual([]);

    let windowKills = 0;
    let staleCatalogues = 0;
    const outcomes: string[] = [];
    const sum = await killLoop(
      { seed: SEED, kills: KILLS, spanMs, maxRuns: MAX_RUNS, timeLimitMs: LOOP_MS, enough: () => windowKills >= WINDOW_KILLS },
      async (i, delayMs) => {
        addToPool(BASE + i); // each run has something new to publish
        if (i % 2 === 0) fs.rmSync(path.join(stateDir, 'cache.json'), { force: true }); // long runs too: the whole pool is read
        const k = await runKilled(['--root', root, 'publish'], delayMs);
        if (!k.killed)
          expect({ code: k.code, stderr: k.stderr.split('\n').filter((l) => l && !RECOVERY_OF_PUBLISH.test(l)) }).toEqual({
            code: 0,
            stderr: [],
          });
        const window = k.killed && newerThanServed().length > 0;
        if (window) windowKills++;
        // Killed after the flip, before the catalogue's: the catalogue still describes the generation before (the next run rebuilds it).
        const served = servedGeneration(webRoot());
        if (k.killed && served && servedCatalogue({ webRoot: webRoot(), name: 'preprod' })?.generation !== served) staleCatalogues++;
        // served.json of the served generation agrees with the disk at the kill's instant (the pool
        // cache's mark is not checked: this test adds pool files behind apt-repo's back).
        expect(storeProblems(webRoot(), stateDir, { cacheMark: false })).toEqual([]);
        outcomes.push(`${k.delayMs} ms: ${window ? 'killed in the window' : k.killed ? 'killed' : 'finished'}`);
        // The packages added since the last complete publish are in the pool, not served yet.
        await expectServingValid(poolVsServed(webRoot()).unserved.map((p) => path.join(webRoot(), p)));
        return k;
      },
    );
    process.stdout.write(
      `publish kill test: one run ${spanMs} ms (fresh timings ${sum.timings.join(', ') || 'none'}); ${sum.killed}/${sum.runs} killed, ${windowKills} in the window, ${staleCatalogues} leaving the catalogue of the generation before; stopped: ${sum.stoppedBy}\n  ${outcomes.join('\n  ')}\n`,
    );

    // The killed runs left a lock and maybe an incomplete generation and temp files: all are dealt
    // with (temp files of the killed runs are removed by recovery, which says so).
    const after = await runCli(['--root', root, '--json', 'publish']);
    expect(after.stderr.split('\n').filter((l) => l && !RECOVERY_OF_PUBLISH.test(l))).toEqual([]);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout).packages).toEqual({ bookworm: BASE + sum.runs, trixie: BASE + sum.runs });
    const id = await expectServingValid();
    // The catalogue describes the generation served, whatever the kills left.
    expect(servedCatalogue({ webRoot: webRoot(), name: 'preprod' })?.generation).toBe(id);
    const gens = fs.readdirSync(path.join(webRoot(), '.generations'));
    expect(gens).toContain(id);
    for (const g of gens) expect(fs.existsSync(path.join(webRoot(), '.generations', g, 'generation.json'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'var/lib/apt-repo/preprod/lock'))).toBe(false);

    expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
    expect(windowKills).toBeGreaterThanOrEqual(WINDOW_KILLS);
  },
  TEST_MS,
);

test(
  "SIGKILL between the flip of dists and the catalogue's leaves a complete catalogue of the generation before, which the next publish rebuilds",
  async () => {
    // The window is at the end of a run (history, then the catalogue gathered, rendered, written and
    // flipped). Kills at seeded moments between two bounds of a run's time, narrowed after each
    // kill that landed before the flip of dists (too early) or after the catalogue's (too late),
    // until CATALOGUE_KILLS landed in it.
    const first = BASE + MAX_RUNS;
    addToPool(first);
    let spanMs = await timeRun(['--root', root, 'publish']);
    const r = prng(SEED + 1);
    let [lo, hi] = [0.5, 1.05];
    let stale = 0;
    let runs = 0;
    const outcomes: string[] = [];
    for (let i = 1; i < CATALOGUE_RUNS && stale < CATALOGUE_KILLS; i++) {
      runs++;
      addToPool(first + i);
      const before = servedGeneration(webRoot());
      const f = lo + (hi - lo) * r();
      const k = await runKilled(['--root', root, 'publish'], Math.round(spanMs * f));
      if (!k.killed) {
        expect(k.code).toBe(0);
        spanMs = k.elapsedMs;
      }
      const served = servedGeneration(webRoot());
      // Whatever the moment, `catalogue` points at a complete build (its marker names a generation).
      const cat = servedCatalogue({ webRoot: webRoot(), name: 'preprod' });
      expect(cat).toBeDefined();
      const inWindow = k.killed && served !== before && cat!.generation !== served;
      outcomes.push(`${f.toFixed(3)} of ${spanMs} ms: ${inWindow ? 'killed in the window' : k.killed ? 'killed' : 'finished'}`);
      if (!inWindow) {
        if (k.killed && served === before)
          lo = f; // before the flip of dists
        else hi = f; // after the catalogue's flip, or finished
        if (hi - lo < 0.02) [lo, hi] = [Math.max(0, lo - 0.1), hi + 0.1];
        continue;
      }
      stale++;
      // The next writer rebuilds it first, and says so.
      const next = await runCli(['--root', root, 'publish']);
      expect(next.code).toBe(0);
      expect(next.stderr).toMatch(
        /^apt-repo: recovering: preprod: rebuilt \S+\/catalogue \(it described another generation than the one served\)$/m,
      );
      expect(servedCatalogue({ webRoot: webRoot(), name: 'preprod' })?.generation).toBe(servedGeneration(webRoot()));
    }
    process.stdout.write(`catalogue kill test: ${runs} runs, ${stale} killed in the window\n  ${outcomes.join('\n  ')}\n`);
    expect(stale).toBeGreaterThanOrEqual(CATALOGUE_KILLS);
  },
  TEST_MS,
);
