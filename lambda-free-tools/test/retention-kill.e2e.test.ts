/**
 * Kill test of `gc --policy` (retention, repo/retention.ts), run as its own process of the bundled
 * apt-repo and SIGKILLed at seeded moments spread over its run (test/harness/kill.ts killLoop).
 * Each round uploads one more version of `ret` (the rule keeps the newest 2, so one version is past
 * it), then kills `gc --policy`, then runs `publish`, which recovers. After each round: no intent
 * record; the pool is exactly what is served; verify, the pool store and the history agree with the
 * disk; every version past the rule is either still served with its file in the pool, or neither
 * served nor in the pool and in the trash (all or nothing). The suite asserts that kills landed in
 * the window where a file had gone to the trash while the served generation still listed it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli } from '../../test/harness/cli';
import { rawControlDeb } from '../../test/harness/debs';
import {
  historyProblems,
  inWindow,
  killLoop,
  poolFiles,
  poolVsServed,
  runKilled,
  servedEntries,
  storeProblems,
  timeRun,
} from '../../test/harness/kill';
import { loadChannel, channelPaths } from '../src/repo/channel';
import { verifyChannel } from '../src/repo/verify';

const KILLS = 16;
const WINDOW_KILLS = 3;
const MAX_RUNS = 2 * KILLS;
const LOOP_MS = 100_000;
const TEST_MS = 170_000;
const CODENAMES = ['bookworm'];

let root: string;
const web = () => channelPaths(root, 'preprod').webRoot;
const state = () => path.join(root, 'var/lib/apt-repo/preprod');
const args = (...rest: string[]) => ['--root', root, '--channel', 'preprod', ...rest];
const cli = (...rest: string[]) => runCli(args(...rest));
const poolPath = (v: string) => `pool/main/r/ret/ret_${v}_all.deb`;

/** Uploads version `v` of `ret` and ingests it (published). */
async function upload(v: string): Promise<void> {
  const bytes = await rawControlDeb(
    `Package: ret\nVersion: ${v}\nArchitecture: all\nMaintainer: K <k@example.org>\nDescription: retention kill test\n`,
  );
  fs.mkdirSync(path.join(root, 'srv/apt/incoming/ci'), { recursive: true });
  fs.writeFileSync(path.join(root, 'srv/apt/incoming/ci', `ret_${v}_all.deb`), bytes);
  ok(await cli('ingest', '--settle-ms', '0'), 'ingest');
}

beforeAll(async () => {
  root = mkTemp('retention-kill');
  ok(await cli('init', '--codenames', CODENAMES.join(','), '--architectures', 'amd64'), 'init');
  ok(await cli('keygen', '--type', 'ed25519'), 'keygen');
  fs.appendFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/repo.yaml'), "retention:\n  - pattern: '^ret$'\n    keep: 2\n");
});
afterAll(() => rmTemp(root));

test(
  'SIGKILL at any moment of gc --policy: the next writer completes or undoes it, a version is withdrawn whole or not at all',
  async () => {
    for (const v of ['1.0', '1.1', '1.2']) await upload(v);
    const spanMs = await timeRun(args('gc', '--policy')); // withdraws 1.0
    let windowKills = 0;
    const sum = await killLoop(
      { seed: 9020, kills: KILLS, spanMs, maxRuns: MAX_RUNS, timeLimitMs: LOOP_MS, enough: () => windowKills >= WINDOW_KILLS },
      async (i, delayMs) => {
        await upload(`2.${i}`); // one more version: the oldest kept one is now past the rule
        const k = await runKilled(args('gc', '--policy'), delayMs);
        const window = k.killed && inWindow(poolVsServed(web()));
        if (window) windowKills++;
        const next = ok(await cli('publish'), 'publish');
        if (window) expect(next.stderr).toMatch(/^apt-repo: recovering: preprod: interrupted gc --policy/m);
        expect(fs.existsSync(path.join(state(), 'intent.jsonl'))).toBe(false);
        expect(poolVsServed(web())).toMatchObject({ unserved: [], missing: [] });
        expect(await verifyChannel(await loadChannel({ root, channel: 'preprod' }))).toEqual([]);
        expect(storeProblems(web(), state())).toEqual([]);
        expect(historyProblems(web(), state())).toEqual([]);
        // All or nothing, per version.
        const served = new Set(servedEntries(web(), CODENAMES, ['amd64']).map((e) => e.version));
        const pool = new Set(poolFiles(web()));
        for (const v of ['1.1', '1.2', ...Array.from({ length: i + 1 }, (_, j) => `2.${j}`)]) {
          const inPool = pool.has(poolPath(v));
          const inTrash = fs.existsSync(path.join(state(), 'trash', poolPath(v)));
          expect([v, served.has(v), inPool, inTrash]).toEqual([v, inPool, inPool, !inPool]);
        }
        return k;
      },
    );
    process.stdout.write(
      `kill test gc --policy: one run ${spanMs} ms (fresh timings ${sum.timings.join(', ') || 'none'}); ${sum.killed}/${sum.runs} killed, ${windowKills} in the trashed-not-served window; stopped: ${sum.stoppedBy}\n`,
    );
    // A last run leaves the newest 2.
    ok(await cli('gc', '--policy'), 'gc --policy');
    expect(
      servedEntries(web(), CODENAMES, ['amd64'])
        .map((e) => e.version)
        .sort(),
    ).toHaveLength(2);
    expect(sum.killed).toBeGreaterThanOrEqual(KILLS);
    expect(windowKills).toBeGreaterThanOrEqual(WINDOW_KILLS);
  },
  TEST_MS,
);
