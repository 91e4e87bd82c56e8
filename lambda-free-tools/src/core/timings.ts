/**
 * Wall-clock time spent in each phase of one run (store load, pool scan, render, index writing,
 * fsync, flip …), in milliseconds, summed over the run, and the resident set size after each. The
 * CLI prints them on stderr when
 * APT_REPO_TIMINGS=1 (cli/apt-repo.ts): what `npm run bench` and an operator read to see where an
 * add-one or a promote spends its time. Costs one performance.now() pair per phase.
 */
import { performance } from 'perf_hooks';

const spent = new Map<string, number>();
/** Resident set size (MiB) at the end of each phase, the largest seen. */
const rssAfter = new Map<string, number>();

function add(phase: string, since: number): void {
  spent.set(phase, (spent.get(phase) ?? 0) + performance.now() - since);
  rssAfter.set(phase, Math.max(rssAfter.get(phase) ?? 0, process.memoryUsage.rss() / 1048576));
}

/** Runs `fn` (sync) and adds its wall time to `phase`; rethrows what it throws. */
export function timed<T>(phase: string, fn: () => T): T {
  const t = performance.now();
  try {
    return fn();
  } finally {
    add(phase, t);
  }
}

/** Awaits `fn` and adds its wall time to `phase`; rethrows what it rejects with. */
export async function timedAsync<T>(phase: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    add(phase, t);
  }
}

/**
 * The phases timed so far (ms, rounded to 0.1), in the order first seen, with `start`: the time
 * from the process's start to the first call of this module's importer (node and the bundle loading).
 */
export function phaseTimes(): Record<string, number> {
  const out: Record<string, number> = { start: Math.round(startedAt * 10) / 10 };
  for (const [k, v] of spent) out[k] = Math.round(v * 10) / 10;
  return out;
}

/** The resident set size (MiB, rounded) at the end of each phase timed so far (the largest of its runs), with `start`. */
export function phaseRss(): Record<string, number> {
  const out: Record<string, number> = { start: Math.round(startRss) };
  for (const [k, v] of rssAfter) out[k] = Math.round(v);
  return out;
}

/** performance.now() when this module was loaded: the process's start-up cost. */
const startedAt = performance.now();
/** The resident set size (MiB) when this module was loaded. */
const startRss = process.memoryUsage.rss() / 1048576;
