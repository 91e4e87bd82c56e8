/**
 * Kill harness: runs a bundled CLI command as its own process and SIGKILLs it at a chosen moment,
 * then tells the test what the kill left behind, so crash tests can assert both that recovery
 * repairs everything and that the kills really landed in the dangerous window: the pool changed
 * but the generation `dists` serves not flipped yet.
 *
 * - killSchedule(seed, n, spanMs): n seeded delays spread over [0, spanMs): one per equal slot
 *   (stratified: every part of the run gets kills), in a seeded shuffled order. Same seed, same delays.
 * - runKilled(args, delayMs): spawns `node <bundle> ...args`, sends SIGKILL `delayMs` after the
 *   spawn (unless it finished before), resolves with how it ended.
 * - timeRun(args): one complete run's duration, to scale the schedule.
 * - poolVsServed(webRoot): the pool's `.deb` files against the pool paths of the generation `dists`
 *   points at (its generation.json): `unserved` (in the pool, not served) and `missing` (served,
 *   not in the pool). Either non-empty right after a kill = the kill landed inside the window.
 * - servedEntries(webRoot, …): every stanza of every served Packages file, parsed.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundle } from './cli';
import { prng } from './prng';

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
 * `n` delays in [0, spanMs): delay i lies in slot [i·span/n, (i+1)·span/n) at a seeded pseudo-random
 * offset, and the order is a seeded shuffle (so consecutive runs do not all kill later and later).
 */
export function killSchedule(seed: number, n: number, spanMs: number): number[] {
  const r = prng(seed);
  const out = Array.from({ length: n }, (_, i) => Math.round(((i + r()) / n) * spanMs));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Runs the bundled CLI (apt-repo by default) with `args` and SIGKILLs it `delayMs` after the spawn.
 * Resolves once the process is gone (never rejects on its exit status).
 */
export async function runKilled(args: string[], delayMs: number, opts: { which?: 'apt-repo' | 'apt-ops'; env?: NodeJS.ProcessEnv } = {}): Promise<KillOutcome> {
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
  return { generation: servedGeneration(webRoot), unserved: pool.filter((p) => !inServed.has(p)), missing: served.filter((p) => !inPool.has(p)) };
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
        out.push({ codename, arch, name: f('Package'), version: f('Version'), architecture: f('Architecture'), filename: f('Filename'), sha256: f('SHA256') });
      }
    }
  }
  return out;
}
