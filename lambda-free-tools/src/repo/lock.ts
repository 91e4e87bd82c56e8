/**
 * The channel lock: one writer at a time (publish, ingest, promote, remove, rollback, restore).
 *
 * Design: an exclusive-create lock file `<stateDir>/lock` holding the holder's pid, host name and
 * process start time (from /proc/<pid>/stat), written to a temp file first and hard-linked into
 * place (link(2) fails with EEXIST atomically, and the lock never exists half written).
 * proper-lockfile was not used because it cannot say who holds the lock and only detects a dead
 * holder after its staleness delay; a pid check reclaims a SIGKILLed holder's lock at once.
 * A lock is stale when it was taken on this host and its pid is gone, or the pid now belongs to
 * another process (different start time). Locks from another host are never reclaimed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LockError } from '../errors';
import type { ChannelConfig } from './types';

interface Holder {
  pid: number;
  host: string;
  /** Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat); null when unknown. */
  start: string | null;
  since: string;
}

/** The start time of process `pid` (field 22 of /proc/<pid>/stat), undefined if it does not exist, null if unknown. */
function processStart(pid: number): string | null | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // No /proc (not Linux): fall back to signal 0.
    try {
      process.kill(pid, 0);
      return null;
    } catch (k) {
      return (k as NodeJS.ErrnoException).code === 'EPERM' ? null : undefined;
    }
  }
}

function readHolder(file: string): Holder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Holder;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Unparseable content cannot come from this module (the file is linked in complete): treat as
    // a dead holder so a damaged lock never blocks the channel forever.
    return { pid: 0, host: os.hostname(), start: null, since: '' };
  }
}

function isStale(h: Holder): boolean {
  if (h.host !== os.hostname()) return false;
  if (!Number.isInteger(h.pid) || h.pid <= 0) return true;
  const start = processStart(h.pid);
  if (start === undefined) return true;
  return h.start !== null && start !== null && start !== h.start;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lock file path of a channel: `<stateDir>/lock`. */
export function lockFileOf(ch: Pick<ChannelConfig, 'stateDir'>): string {
  return path.join(ch.stateDir, 'lock');
}

/**
 * Runs `fn` holding the channel's lock (`<stateDir>/lock`), releasing it afterwards whatever `fn`
 * does. Waits (polling, up to ch.lockTimeoutMs; 0 = fail at once) while another live process holds
 * it, then throws LockError naming the lock file and the holder's pid. A lock left by a dead
 * process on this host (SIGKILL, crash, power loss with pid reuse) is reclaimed.
 * Not reentrant: calling it again inside `fn` for the same channel waits for itself and times out.
 */
export async function withChannelLock<T>(ch: Pick<ChannelConfig, 'stateDir' | 'lockTimeoutMs'>, fn: () => Promise<T>): Promise<T> {
  const file = lockFileOf(ch);
  fs.mkdirSync(ch.stateDir, { recursive: true });
  const me: Holder = { pid: process.pid, host: os.hostname(), start: processStart(process.pid) ?? null, since: new Date().toISOString() };
  const mine = JSON.stringify(me);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, mine, { mode: 0o644 });
  const deadline = Date.now() + ch.lockTimeoutMs;
  let delay = 25;
  try {
    for (;;) {
      try {
        fs.linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(file);
      if (holder === undefined) continue; // released between link and read: try again at once
      if (isStale(holder)) {
        reclaim(file, holder);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new LockError(file, `held by pid ${holder.pid} on ${holder.host} since ${holder.since}` +
          (ch.lockTimeoutMs > 0 ? ` (waited ${Math.round(ch.lockTimeoutMs / 1000)} s)` : ''));
      }
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 500);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    return await fn();
  } finally {
    // Remove only our own lock: never a lock someone reclaimed from us (if we were wrongly judged dead).
    const now = readHolder(file);
    if (now && now.pid === me.pid && now.since === me.since && now.host === me.host) fs.rmSync(file, { force: true });
  }
}

/**
 * Removes a stale lock. Renaming it aside first means two waiters reclaiming at once cannot both
 * delete: the loser's rename fails (ENOENT), or moves a fresh lock, which it then puts back.
 */
function reclaim(file: string, stale: Holder): void {
  const aside = `${file}.stale.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = readHolder(aside);
  if (moved && (moved.pid !== stale.pid || moved.since !== stale.since)) {
    // We moved someone else's fresh lock: restore it unless yet another writer got in meanwhile.
    try { fs.linkSync(aside, file); } catch { /* a newer lock exists; ours to drop */ }
  }
  fs.rmSync(aside, { force: true });
}
