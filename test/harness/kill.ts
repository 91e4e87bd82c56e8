/**
 * Kill harness: runs a bundled CLI command as its own process and SIGKILLs it at a chosen moment,
 * then tells the test what the kill left behind, so crash tests can assert both that recovery
 * repairs everything and that the kills really landed in the dangerous window: the pool changed
 * but the generation `dists` serves not flipped yet.
 *
 * - killFractions(seed, n): n seeded moments as fractions of a run, in [0, 1): one per equal slot
 *   (stratified: every part of the run gets kills), in a seeded shuffled order. Same seed, same moments.
 * - killSchedule(seed, n, spanMs): the same moments in ms of a run lasting spanMs.
 * - killLoop(options, round): runs rounds at those moments (block b of n moments from seed + b) until
 *   `kills` runs were really killed and the caller's other thresholds are met, bounded in runs and
 *   time; each run that exits by itself before its kill is a fresh timing that rescales the next
 *   moments, so a machine faster or slower than at the first timing still gets its kills.
 * - runKilled(args, delayMs): spawns `node <bundle> ...args`, sends SIGKILL `delayMs` after the
 *   spawn (unless it finished before), resolves with how it ended.
 * - timeRun(args): one complete run's duration, to scale the schedule.
 * - poolVsServed(webRoot): the pool's `.deb` files against the pool paths of the generation `dists`
 *   points at (its generation.json): `unserved` (in the pool, not served) and `missing` (served,
 *   not in the pool). Either non-empty right after a kill = the kill landed inside the window.
 * - servedEntries(webRoot, …): every stanza of every served Packages file, parsed.
 */
import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { bundle } from './cli';
import { prng } from './prng';
import { readPoolStore } from '../../lambda-free-tools/src/repo/cache';

/** How a killed (or not) run ended. */
export interface KillOutcome {
  /** Milliseconds after the spawn at which SIGKILL was sent (or was due). */
  delayMs: number;
  /** True when SIGKILL ended the process; false when it exited by itself first. */
  killed: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
  /** From spawn to exit, ms. */
  elapsedMs: number;
}

/**
 * `n` moments in [0, 1), as fractions of one run: moment i lies in slot [i/n, (i+1)/n) at a seeded
 * pseudo-random offset, and the order is a seeded shuffle (so consecutive runs do not all kill later
 * and later). Same seed, same moments.
 */
export function killFractions(seed: number, n: number): number[] {
  const r = prng(seed);
  const out = Array.from({ length: n }, (_, i) => (i + r()) / n);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** killFractions(seed, n) as delays in ms of a run lasting `spanMs` (rounded to whole ms). */
export function killSchedule(seed: number, n: number, spanMs: number): number[] {
  return killFractions(seed, n).map((f) => Math.round(f * spanMs));
}

/** How killLoop plans and bounds its runs. */
export interface KillLoopOptions {
  /** Block b (0, 1, …) of planned moments is killFractions(seed + b, kills). */
  seed: number;
  /** Runs that must really be killed (SIGKILL ended them) before the loop may stop. */
  kills: number;
  /** One complete run's duration, ms (a timeRun before the loop): the first scale of the moments. */
  spanMs: number;
  /** Moments are spread over stretch × the run's duration (default 1; above 1, some runs are meant to finish). */
  stretch?: number;
  /** Further thresholds (e.g. "at least 3 kills inside the window") that must also hold before stopping. */
  enough?: () => boolean;
  /** At most this many runs (default 2 × kills). */
  maxRuns?: number;
  /** No new run starts after this long (ms from the loop's start; default 90 000). */
  timeLimitMs?: number;
}

/** What killLoop did, for the test's assertions and log. */
export interface KillLoopSummary {
  runs: number;
  killed: number;
  /** The fresh full durations seen (runs that exited 0 before their kill), ms, in order. */
  timings: number[];
  /** The duration the last moments were scaled by, ms. */
  spanMs: number;
  /** Why the loop stopped: its targets were met, or a bound was reached first. */
  stoppedBy: 'done' | 'maxRuns' | 'time';
  elapsedMs: number;
}

/**
 * Runs `round(i, delayMs, fraction)` (which must start the command with runKilled(…, delayMs), check
 * what the kill left behind and return the KillOutcome) for i = 0, 1, … until `kills` runs were
 * really killed and `enough()` holds, or `maxRuns` runs were made, or `timeLimitMs` passed. The
 * planned moments are the seeded fractions (reproducible); the delay of each is fraction × stretch ×
 * the latest measured duration: a run that exits 0 by itself before its kill moment gives a fresh
 * duration, so the schedule follows the machine's load instead of the first timing alone. The
 * caller asserts on the summary (killed ≥ kills, its thresholds): a bound reached first fails there.
 */
export async function killLoop(
  opts: KillLoopOptions,
  round: (i: number, delayMs: number, fraction: number) => Promise<KillOutcome>,
): Promise<KillLoopSummary> {
  const stretch = opts.stretch ?? 1;
  const maxRuns = opts.maxRuns ?? 2 * opts.kills;
  const timeLimitMs = opts.timeLimitMs ?? 90_000;
  const enough = opts.enough ?? (() => true);
  const started = Date.now();
  const timings: number[] = [];
  let spanMs = opts.spanMs;
  let killed = 0;
  let fractions: number[] = [];
  let i = 0;
  let stoppedBy: KillLoopSummary['stoppedBy'] = 'done';
  for (;;) {
    if (killed >= opts.kills && enough()) break;
    if (i >= maxRuns) {
      stoppedBy = 'maxRuns';
      break;
    }
    if (Date.now() - started > timeLimitMs) {
      stoppedBy = 'time';
      break;
    }
    if (i % opts.kills === 0) fractions = killFractions(opts.seed + i / opts.kills, opts.kills);
    const fraction = fractions[i % opts.kills];
    const outcome = await round(i, Math.round(fraction * stretch * spanMs), fraction);
    if (outcome.killed) killed++;
    else if (outcome.code === 0) {
      timings.push(outcome.elapsedMs);
      spanMs = outcome.elapsedMs;
    }
    i++;
  }
  return { runs: i, killed, timings, spanMs, stoppedBy, elapsedMs: Date.now() - started };
}

/**
 * Runs the bundled CLI (apt-repo by default) with `args` and SIGKILLs it `delayMs` after the spawn.
 * Resolves once the process is gone (never rejects on its exit status).
 */
export async function runKilled(
  args: string[],
  delayMs: number,
  opts: { which?: 'apt-repo' | 'apt-ops'; env?: NodeJS.ProcessEnv } = {},
): Promise<KillOutcome> {
  const file = await bundle(opts.which ?? 'apt-repo');
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    }, delayMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ delayMs, killed: killed && signal === 'SIGKILL', code, stdout, stderr, elapsedMs: Date.now() - started });
    });
  });
}

/** The duration of one complete run of `args` (ms, spawn to exit); throws when it exits non-zero. */
export async function timeRun(args: string[], opts: { which?: 'apt-repo' | 'apt-ops'; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const r = await runKilled(args, 600_000, opts);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.elapsedMs;
}

/** Every `*.deb` below `<webRoot>/pool` ('/'-separated, relative to the web root; hidden names skipped: temp files). */
export function poolFiles(webRoot: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(webRoot, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.deb')) out.push(r);
    }
  };
  walk('pool');
  return out.sort();
}

/** The id `<webRoot>/dists` points at (undefined: nothing published). */
export function servedGeneration(webRoot: string): string | undefined {
  try {
    return /\.generations\/([^/]+)\/dists/.exec(fs.readlinkSync(path.join(webRoot, 'dists')))?.[1];
  } catch {
    return undefined;
  }
}

/** The pool paths the served generation lists (its generation.json); empty when nothing is published. */
export function servedPoolPaths(webRoot: string): string[] {
  const id = servedGeneration(webRoot);
  if (!id) return [];
  const info = JSON.parse(fs.readFileSync(path.join(webRoot, '.generations', id, 'generation.json'), 'utf8')) as { poolPaths: string[] };
  return [...info.poolPaths].sort();
}

/** What the pool holds against what is served (see the module comment). */
export interface PoolVsServed {
  generation?: string;
  unserved: string[];
  missing: string[];
}

/** Compares the pool with the served generation (see PoolVsServed). */
export function poolVsServed(webRoot: string): PoolVsServed {
  const pool = poolFiles(webRoot);
  const served = servedPoolPaths(webRoot);
  const inPool = new Set(pool);
  const inServed = new Set(served);
  return {
    generation: servedGeneration(webRoot),
    unserved: pool.filter((p) => !inServed.has(p)),
    missing: served.filter((p) => !inPool.has(p)),
  };
}

/**
 * What the writers' stores say against the disk, at any instant (right after a kill included):
 * - the served generation's served.json (what pending reads) lists exactly its generation.json pool
 *   paths, each with the SHA256 of the pool file when that file is in the pool;
 * - a pool store (`<stateDir>/cache.json` + `cache.log`, readPoolStore) marked as the pool of the served generation (listedFor,
 *   what ingest and promote then take instead of listing the pool) holds exactly the pool's files,
 *   unless an interrupted writer's intent record is there (its recovery runs before any writer
 *   loads the cache, and republishes from a listing or undoes the writer's pool changes).
 * Returns one line per disagreement (empty: consistent). Generations without served.json (written
 * by an older apt-repo) are accepted. `opts.cacheMark: false` skips the cache check, for a test
 * that itself puts files into the pool behind apt-repo's back (which only the next publish sees).
 */
export function storeProblems(webRoot: string, stateDir: string, opts: { cacheMark?: boolean } = {}): string[] {
  const out: string[] = [];
  const id = servedGeneration(webRoot);
  if (!id) return out;
  const pool = poolFiles(webRoot);
  const servedFile = path.join(webRoot, '.generations', id, 'served.json');
  if (fs.existsSync(servedFile)) {
    const rows = (JSON.parse(fs.readFileSync(servedFile, 'utf8')) as { served: [string, string, string, string, string, number][] }).served;
    const paths = rows.map((r) => r[0]).sort();
    if (JSON.stringify(paths) !== JSON.stringify([...servedPoolPaths(webRoot)].sort()))
      out.push(`${servedFile}: lists other pool paths than generation.json`);
    const inPool = new Set(pool);
    for (const [p, , , , sha] of rows) {
      if (!inPool.has(p)) continue;
      const actual = createHash('sha256')
        .update(fs.readFileSync(path.join(webRoot, p)))
        .digest('hex');
      if (actual !== sha) out.push(`${servedFile}: ${p} recorded with SHA256 ${sha}, the pool file has ${actual}`);
    }
  }
  if (opts.cacheMark !== false && !fs.existsSync(path.join(stateDir, 'intent.jsonl'))) {
    const store = readPoolStore(stateDir);
    if (store.listedFor === id) {
      const keys = Object.keys(store.entries).sort();
      if (JSON.stringify(keys) !== JSON.stringify([...pool].sort()))
        out.push(`${stateDir}/cache.json + cache.log: marked as the pool of served generation ${id} but holds other files than the pool`);
    }
  }
  return out;
}

/**
 * What the channel's history (`<stateDir>/history.jsonl`, repo/history.ts) says against the served
 * generation: once any writer ran after a kill, the change the served generation carries
 * (generation.json `change`) is in the history, and no generation is named twice. Right after a
 * kill the first may not hold yet (killed between the flip and the append: see
 * changeNotRecorded). One line per disagreement.
 */
export function historyProblems(webRoot: string, stateDir: string): string[] {
  const out: string[] = [];
  const named = historyGenerations(stateDir);
  const id = servedGeneration(webRoot);
  if (id && changeNotRecorded(webRoot, stateDir, id)) out.push(`${stateDir}/history.jsonl: lacks the change of served generation ${id}`);
  const seen = new Set<string>();
  for (const g of named) {
    if (seen.has(g)) out.push(`${stateDir}/history.jsonl: names generation ${g} twice`);
    seen.add(g);
  }
  return out;
}

/** The generations the history file names, in order (lines that do not parse skipped). */
function historyGenerations(stateDir: string): string[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(stateDir, 'history.jsonl'), 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    try {
      const g = (JSON.parse(line) as { generation?: string }).generation;
      if (g) out.push(g);
    } catch {
      // empty or cut line
    }
  }
  return out;
}

/** True when generation `id` carries a change (generation.json) that the history file does not name: the flipped-not-recorded window. */
export function changeNotRecorded(webRoot: string, stateDir: string, id: string): boolean {
  let change: unknown;
  try {
    change = (JSON.parse(fs.readFileSync(path.join(webRoot, '.generations', id, 'generation.json'), 'utf8')) as { change?: unknown })
      .change;
  } catch {
    return false;
  }
  return change !== undefined && !historyGenerations(stateDir).includes(id);
}

/** True when the pool and the served generation disagree: a kill landed in the "pool changed, not served" window. */
export function inWindow(s: PoolVsServed): boolean {
  return s.unserved.length > 0 || s.missing.length > 0;
}

/** One stanza of a served Packages file. */
export interface ServedEntry {
  codename: string;
  arch: string;
  name: string;
  version: string;
  architecture: string;
  filename: string;
  sha256: string;
}

/** Every stanza of `<webRoot>/dists/<codename>/<component>/binary-<arch>/Packages` for each codename and arch given. */
export function servedEntries(webRoot: string, codenames: string[], archs: string[], component = 'main'): ServedEntry[] {
  const out: ServedEntry[] = [];
  for (const codename of codenames) {
    for (const arch of archs) {
      let text: string;
      try {
        text = fs.readFileSync(path.join(webRoot, 'dists', codename, component, `binary-${arch}`, 'Packages'), 'utf8');
      } catch {
        continue;
      }
      for (const stanza of text.split('\n\n')) {
        if (!stanza.trim()) continue;
        const f = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(stanza)?.[1] ?? '';
        out.push({
          codename,
          arch,
          name: f('Package'),
          version: f('Version'),
          architecture: f('Architecture'),
          filename: f('Filename'),
          sha256: f('SHA256'),
        });
      }
    }
  }
  return out;
}
