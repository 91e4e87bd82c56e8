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
import type { ChannelConfig } from '../core/types';
import { tempName } from '../core/files';
import { processStart } from '../core/proc';

interface Holder {
  pid: number;
  host: string;
  /** Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat); null when unknown. */
  start: string | null;
  since: string;
}

/** The holder recorded in `file` and the file's exact text (undefined when the file does not exist). */
function readHolder(file: string): (Holder & { raw: string }) | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Never taken for a dead holder: an unreadable lock may well be a live one.
    throw new LockError(file, `cannot read: ${(e as Error).message}`);
  }
  try {
    return { ...(JSON.parse(raw) as Holder), raw };
  } catch {
    // Unparseable content cannot come from this module (the file is linked in complete; only a
    // power loss can leave it empty): treat as a dead holder so it never blocks the channel forever.
    return { pid: 0, host: os.hostname(), start: null, since: '', raw };
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

/**
 * A waiting writer says whom it waits for once it has waited LOCK_WAIT_FIRST_REPORT_MS (a turn of
 * a few milliseconds between two writers stays silent), then every LOCK_WAIT_REPORT_MS.
 */
export const LOCK_WAIT_FIRST_REPORT_MS = 1000;
export const LOCK_WAIT_REPORT_MS = 5000;

/**
 * What the holder `pid` runs, for a waiting writer's message: its command line from
 * /proc/<pid>/cmdline (proc(5)), the node executable left out, cut at 120 characters; undefined
 * when it cannot be read (another host, /proc hidden, the process gone).
 */
export function holderCommand(pid: number): string | undefined {
  let words: string[];
  try {
    words = fs
      .readFileSync(`/proc/${pid}/cmdline`, 'latin1')
      .split('\0')
      .filter((w) => w !== '');
  } catch {
    return undefined;
  }
  if (words.length > 1 && /^node(js)?(\d+)?$/.test(path.basename(words[0]))) words = words.slice(1);
  const line = words.join(' ');
  return line === '' ? undefined : line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

/** The line a waiting writer prints: `waiting for <holder> (pid N on host, since T) …`. */
function waitMessage(file: string, h: Holder, deadline: number): string {
  const what = h.host === os.hostname() ? holderCommand(h.pid) : undefined;
  const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  return `${file}: waiting for ${what ?? 'another writer'} (pid ${h.pid} on ${h.host}, since ${h.since || 'an unknown time'}) to release the channel lock; giving up in ${left} s`;
}

const toStderr = (message: string) => void process.stderr.write(`apt-repo: ${message}\n`);

/** The lock file path of a channel: `<stateDir>/lock`. */
export function lockFileOf(ch: Pick<ChannelConfig, 'stateDir'>): string {
  return path.join(ch.stateDir, 'lock');
}

/**
 * Runs `fn` holding the channel's lock (`<stateDir>/lock`), releasing it afterwards whatever `fn`
 * does. Waits (polling, up to ch.lockTimeoutMs; 0 = fail at once) while another live process holds
 * it, then throws LockError naming the lock file and the holder's pid. A lock left by a dead
 * process on this host (SIGKILL, crash, power loss with pid reuse) is reclaimed.
 * While it waits it says so through `opts.onWait` (default: one `apt-repo: …` line on stderr), after
 * LOCK_WAIT_FIRST_REPORT_MS and then every LOCK_WAIT_REPORT_MS: the lock file, the holder's command line (holderCommand),
 * pid, host and since when it holds the lock, and the seconds left before giving up.
 * Not reentrant: calling it again inside `fn` for the same channel waits for itself and times out.
 */
export async function withChannelLock<T>(
  ch: Pick<ChannelConfig, 'stateDir' | 'lockTimeoutMs'>,
  fn: () => Promise<T>,
  opts: { onWait?: (message: string) => void } = {},
): Promise<T> {
  const file = lockFileOf(ch);
  fs.mkdirSync(ch.stateDir, { recursive: true });
  const me: Holder = { pid: process.pid, host: os.hostname(), start: processStart(process.pid) ?? null, since: new Date().toISOString() };
  const mine = JSON.stringify(me);
  // A lock is taken by link(2) of a complete temp file onto the lock name (fails on an existing
  // lock), never by rename (which would replace it): only the temp name is shared with the others.
  const tmp = tempName(file);
  fs.writeFileSync(tmp, mine, { mode: 0o644 });
  const deadline = Date.now() + ch.lockTimeoutMs;
  const onWait = opts.onWait ?? toStderr;
  // As if reported just before the wait began, so the first report comes after LOCK_WAIT_FIRST_REPORT_MS.
  let reported = Date.now() - LOCK_WAIT_REPORT_MS + LOCK_WAIT_FIRST_REPORT_MS;
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
      if (isStale(holder) && reclaim(file, holder.raw)) continue;
      if (Date.now() >= deadline) {
        throw new LockError(
          file,
          `held by pid ${holder.pid} on ${holder.host} since ${holder.since}` +
            (ch.lockTimeoutMs > 0 ? ` (waited ${Math.round(ch.lockTimeoutMs / 1000)} s)` : ''),
        );
      }
      if (Date.now() - reported >= LOCK_WAIT_REPORT_MS) {
        onWait(waitMessage(file, holder, deadline));
        reported = Date.now();
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
 * Removes a stale lock whose exact text is `staleRaw`; returns false when another waiter is
 * reclaiming at the same moment (the caller waits and looks again).
 * Check-then-unlink is a race between waiters (one could delete the lock another has just taken
 * after removing the stale one), so it runs under a reclaim mutex `<lock>.reclaim`, taken with
 * link(2) like the lock: only the lock's owner and a mutex holder ever remove the lock, and the
 * owner of a stale lock is dead, so a text still equal to `staleRaw` under the mutex is the stale
 * lock itself (a live process never writes the text of a dead one: its pid or start time differ).
 * A mutex left by a dead process (a crash inside these few system calls) is removed like a lock.
 */
function reclaim(file: string, staleRaw: string): boolean {
  const mutex = `${file}.reclaim`;
  const tmp = tempName(mutex);
  fs.writeFileSync(
    tmp,
    JSON.stringify({ pid: process.pid, host: os.hostname(), start: processStart(process.pid) ?? null, since: new Date().toISOString() }),
    { mode: 0o644 },
  );
  try {
    fs.linkSync(tmp, mutex);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const other = readHolder(mutex);
    if (other && isStale(other)) fs.rmSync(mutex, { force: true });
    return false;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    if (readHolder(file)?.raw === staleRaw) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(mutex, { force: true });
  }
  return true;
}
