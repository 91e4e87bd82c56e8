/**
 * Facts about another process of this host, as the channel lock and crash recovery need them to
 * tell a live writer from a dead one (a pid may be reused: its start time tells them apart).
 * Linux /proc (proc(5): /proc/<pid>/stat field 22) and kill(2) with signal 0.
 */
import * as fs from 'fs';

/**
 * The start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat):
 * undefined when the process does not exist, null when it exists but its start is unknown
 * (/proc hides other users' processes with hidepid=1|2, or there is no /proc).
 */
export function processStart(pid: number): string | null | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return alive(pid) ? null : undefined;
  }
}

/** True when `pid` is a live process of this host (signal 0; EPERM means alive, another user's). */
export function alive(pid: number): boolean {
  // kill(0 or a negative pid) would signal a whole process group.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
