/**
 * Timing for the bench: every command is a separate process under GNU time (wall time measured here,
 * peak RSS from `%M`), grouped in rows; a row's contenders run interleaved, one run of each in turn.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** One run: wall time and peak resident set size (the largest of its steps). */
export interface Timing {
  ms: number;
  rssKiB: number;
}

/** The figures of one tool on one piece of work (`work` is the line of the final table it belongs to). */
export interface Row {
  dataset: string;
  /** The command as shown in the detailed table. */
  what: string;
  /** 'apt-repo' for ours (or 'apt-repo (before)' with --compare), the peer's name otherwise. */
  tool: string;
  /** The final table's line, e.g. "small-3000, add one"; empty for rows outside that table. */
  work: string;
  runs: Timing[];
  /** 1-minute load average sampled just before the row's first run. */
  load: number;
  note?: string;
}

/** Every row measured so far, in order. */
export const rows: Row[] = [];

/** One command line; `env` is added to the bench's environment. */
export interface Step {
  cmd: string[];
  cwd?: string;
  stdoutFile?: string;
  env?: Record<string, string>;
  okCodes?: number[];
}

let rssFile = path.join(os.tmpdir(), `apt-repo-bench-${process.pid}.rss`);

/** Where GNU time writes its figure (inside the bench cache, so nothing is left in /tmp). */
export function setScratch(dir: string): void {
  rssFile = path.join(dir, '.rss');
}

/** Runs one step under GNU time; throws with its stderr when it fails. */
export function timed(step: Step): Timing {
  const out = step.stdoutFile ? fs.openSync(step.stdoutFile, 'w') : 'ignore';
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, ...step.cmd], {
    cwd: step.cwd,
    stdio: ['ignore', out, 'pipe'],
    env: step.env ? { ...process.env, ...step.env } : process.env,
    maxBuffer: 64 << 20,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (typeof out === 'number') fs.closeSync(out);
  if (!(step.okCodes ?? [0]).includes(r.status ?? -1))
    throw new Error(`${step.cmd.join(' ').slice(0, 300)} exited ${r.status}: ${r.stderr?.toString().slice(-2000)}`);
  return { ms, rssKiB: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) };
}

/** Runs steps one after the other: the time is their sum, the peak RSS their largest. */
export function timedSteps(steps: Step[]): Timing {
  let ms = 0;
  let rssKiB = 0;
  for (const s of steps) {
    const t = timed(s);
    ms += t.ms;
    rssKiB = Math.max(rssKiB, t.rssKiB);
  }
  return { ms, rssKiB };
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median wall time of a row's runs (ms). */
export const msOf = (r: Row): number => median(r.runs.map((t) => t.ms));
/** Fastest run of a row (ms). */
export const minOf = (r: Row): number => Math.min(...r.runs.map((t) => t.ms));
/** Largest peak RSS of a row's runs (KiB). */
export const rssOf = (r: Row): number => Math.max(...r.runs.map((t) => t.rssKiB));

/** One tool's part in an interleaved figure: `before(i)` is untimed, `run(i)` is the timed run. */
export interface Contender {
  tool: string;
  what: string;
  run: (i: number) => Timing;
  before?: (i: number) => void;
  note?: string;
}

/** A run slower than this (dpkg-scanpackages on thousands of files) is not repeated: its figure is far from any other. */
export const SLOW_MS = 10_000;

/**
 * Runs the contenders of one piece of work interleaved: round i runs each contender once, in turn,
 * `rounds` rounds. A contender whose first run took over SLOW_MS runs once. Adds one row per contender.
 */
export function interleave(dataset: string, work: string, rounds: number, contenders: Contender[]): Row[] {
  const out = contenders.map((c): Row => ({ dataset, what: c.what, tool: c.tool, work, runs: [], load: 0, note: c.note }));
  for (let i = 0; i < rounds; i++) {
    contenders.forEach((c, k) => {
      const row = out[k];
      if (i > 0 && row.runs[0].ms > SLOW_MS) return;
      c.before?.(i);
      if (i === 0) row.load = os.loadavg()[0];
      row.runs.push(c.run(i));
    });
  }
  for (const r of out) {
    rows.push(r);
    process.stderr.write(`  ${dataset} ${r.what}: ${r.runs.map((t) => t.ms.toFixed(0)).join(', ')} ms (load ${r.load.toFixed(2)})\n`);
  }
  return out;
}
