/**
 * The history of a channel: one JSON line per change (ingest, promote, remove, rollback, gc,
 * import, restore, publish, key changes), appended to `<stateDir>/history.jsonl` and never
 * rewritten: when, who, what.
 *
 * A change that publishes a generation carries its record in that generation's generation.json
 * (written before the flip, so it is on disk whenever the generation serves), and is appended to
 * the history after the flip. A writer killed between the two leaves the served generation with a
 * record the history lacks: the next writer of the channel appends it (healHistory, run first by
 * every writer through recoverChannel, before anything else can be served), and readers add it
 * meanwhile (readHistory). Only the served generation is looked at: a complete generation that was
 * never served (a writer killed before its flip) is not a change. A change that publishes nothing
 * (rejected uploads only, gc) is appended when it is done.
 *
 * Who: the operator as sudo names them (`SUDO_USER`: operators run the indexer through one sudo
 * rule as the channel's user, see the README), else the login user, with the SSH client's address
 * when the run came over SSH; an upload also names its drop folder (the CI or build source).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendDurable } from '../core/files';
import { currentGeneration, readGenerationInfo } from './generations';
import type { ChannelConfig } from '../core/types';

/**
 * The kinds of change history records. `keygen`: a key made by `apt-repo keygen`; `key`: a key
 * installed another way (the Pulumi program, by hand), noticed by the next writer (repo/keyWatch.ts).
 */
export const HISTORY_OPS = [
  'ingest',
  'promote',
  'remove',
  'rollback',
  'gc',
  'import',
  'restore',
  'publish',
  'resign',
  'keygen',
  'key',
] as const;
export type HistoryOp = (typeof HISTORY_OPS)[number];

/** Who made a change. */
export interface Actor {
  /** The operator (sudo's SUDO_USER), else the user the indexer runs as. */
  user: string;
  /** How the run came: through sudo, over SSH (without sudo), or neither (a timer, a local shell). */
  via: 'sudo' | 'ssh' | 'local';
  /** The SSH client's address (SSH_CLIENT / SSH_CONNECTION), when the run came over SSH. */
  from?: string;
}

/** A package a change added to or removed from what the channel serves. */
export interface HistoryPackage {
  name: string;
  version: string;
  architecture: string;
  /** Drop folder of an upload (incoming/<source>/…), for ingest. */
  source?: string;
}

/** One line of the history. */
export interface HistoryRecord {
  /** ISO 8601 UTC time of the change. */
  time: string;
  op: HistoryOp;
  who: Actor;
  /** The generation the change published, if it published one. */
  generation?: string;
  /** Packages the change made served. */
  added?: HistoryPackage[];
  /** Packages the change stopped serving (remove, gc: files deleted). */
  removed?: HistoryPackage[];
  /** Uploads refused (ingest): the file as dropped and the reason. */
  rejected?: { file: string; reason: string }[];
  /** One line for people: the rollback's target, the promote's upstream, the gc's count … */
  detail?: string;
}

/** `<stateDir>/history.jsonl`. */
export function historyFile(ch: Pick<ChannelConfig, 'stateDir'>): string {
  return path.join(ch.stateDir, 'history.jsonl');
}

/** The value of an environment variable, cut to 200 printable characters; undefined when unset or empty. */
function envText(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.replace(/[\0-\x1f\x7f]/g, ' ').trim();
  return v ? v.slice(0, 200) : undefined;
}

/**
 * Who runs this process: `SUDO_USER` (via 'sudo') when sudo started it, else the login user; the
 * SSH client's address from `SSH_CLIENT` or `SSH_CONNECTION` (their first word) when set. These
 * come from sudo and sshd, not from the operator: sudo's env_reset keeps neither SSH variable
 * unless its policy says so, and sets SUDO_USER itself.
 */
export function currentActor(env: NodeJS.ProcessEnv = process.env): Actor {
  const sudo = envText(env, 'SUDO_USER');
  const ssh = envText(env, 'SSH_CLIENT') ?? envText(env, 'SSH_CONNECTION');
  const from = ssh?.split(' ')[0];
  let login = envText(env, 'USER') ?? envText(env, 'LOGNAME');
  if (!login) {
    try {
      login = os.userInfo().username;
    } catch {
      login = `uid ${process.getuid?.() ?? '?'}`;
    }
  }
  return { user: sudo ?? login, via: sudo ? 'sudo' : from ? 'ssh' : 'local', ...(from ? { from } : {}) };
}

/** A new record of `op` made now by the current actor (currentActor), with `fields`. */
export function changeRecord(op: HistoryOp, fields: Omit<HistoryRecord, 'time' | 'op' | 'who'> = {}, now = new Date()): HistoryRecord {
  return { time: now.toISOString(), op, who: currentActor(), ...fields };
}

/** Appends `rec` to the channel's history (one line, fsynced). The caller holds the channel lock. */
export function appendHistory(ch: Pick<ChannelConfig, 'stateDir'>, rec: HistoryRecord): void {
  fs.mkdirSync(ch.stateDir, { recursive: true });
  const file = historyFile(ch);
  // appendDurable opens an existing file only (O_APPEND, never following a link).
  try {
    fs.writeFileSync(file, '', { flag: 'wx', mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  appendDurable(file, `${JSON.stringify(rec)}\n`, { truncateTo: completeLength(file) });
}

/**
 * The length of `file` up to its last newline: a line cut by a kill is dropped by the next append.
 * Opened without following a link (ELOOP: appendDurable would refuse it anyway).
 */
function completeLength(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 0;
    const tail = Buffer.alloc(Math.min(size, 64 * 1024));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    const nl = tail.lastIndexOf(10);
    return nl < 0 ? (size > tail.length ? size : 0) : size - tail.length + nl + 1;
  } finally {
    fs.closeSync(fd);
  }
}

const isRecord = (v: unknown): v is HistoryRecord =>
  !!v &&
  typeof v === 'object' &&
  typeof (v as HistoryRecord).time === 'string' &&
  (HISTORY_OPS as readonly string[]).includes((v as HistoryRecord).op) &&
  !!(v as HistoryRecord).who &&
  typeof (v as HistoryRecord).who.user === 'string';

/**
 * The records of the history file (lines that do not parse are skipped), oldest first; with
 * `tailBytes`, only those of its last that many bytes (the first, maybe partial, line dropped).
 */
function readHistoryFile(ch: Pick<ChannelConfig, 'stateDir'>, tailBytes?: number): HistoryRecord[] {
  let text: string;
  try {
    const fd = fs.openSync(historyFile(ch), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const size = fs.fstatSync(fd).size;
      const from = tailBytes === undefined ? 0 : Math.max(0, size - tailBytes);
      const buf = Buffer.alloc(size - from);
      fs.readSync(fd, buf, 0, buf.length, from);
      text = buf.toString('utf8');
      if (from > 0) text = text.slice(text.indexOf('\n') + 1);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  const out: HistoryRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (isRecord(v)) out.push(v);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/** How much of the history's end a writer reads to find the served generation's record (it is among the last lines). */
const TAIL_BYTES = 256 * 1024;

/**
 * The record of the served generation (generation.json `change`) when the history lacks it (its
 * writer was killed between the flip and the append); [] otherwise. `recorded`: the history read
 * whole; without it, its end is read (TAIL_BYTES), and the whole file only when the record is not
 * there (so a writer's start does not grow with the history).
 */
async function unrecorded(ch: Pick<ChannelConfig, 'webRoot' | 'stateDir'>, recorded?: HistoryRecord[]): Promise<HistoryRecord[]> {
  const id = await currentGeneration(ch);
  if (!id) return [];
  const names = (rs: HistoryRecord[]) => rs.some((r) => r.generation === id);
  // The usual case first, without reading generation.json (it lists every pool path): the history's end names it.
  if (names(recorded ?? readHistoryFile(ch, TAIL_BYTES))) return [];
  const change = readGenerationInfo(ch, id)?.change;
  if (!isRecord(change) || (!recorded && names(readHistoryFile(ch)))) return [];
  return [{ ...change, generation: id }];
}

/**
 * Appends to the history the record of the served generation if it lacks it (see unrecorded);
 * resolves to true when it did. The caller holds the channel lock (recoverChannel calls it).
 */
export async function healHistory(ch: Pick<ChannelConfig, 'webRoot' | 'stateDir'>): Promise<boolean> {
  const missing = await unrecorded(ch);
  for (const r of missing) appendHistory(ch, r);
  return missing.length > 0;
}

/**
 * The history of `ch`, oldest first: the file's records, then the served generation's if the file
 * lacks it (not yet healed). `opts.package`: only records that added or removed a package of that name;
 * `opts.limit`: the newest that many. Reads only; takes no lock.
 */
export async function readHistory(
  ch: Pick<ChannelConfig, 'webRoot' | 'stateDir'>,
  opts: { package?: string; limit?: number } = {},
): Promise<HistoryRecord[]> {
  const recorded = readHistoryFile(ch);
  let all = [...recorded, ...(await unrecorded(ch, recorded))];
  if (opts.package !== undefined) {
    const p = opts.package;
    all = all.filter((r) => [...(r.added ?? []), ...(r.removed ?? [])].some((x) => x.name === p));
  }
  return opts.limit !== undefined ? all.slice(Math.max(0, all.length - opts.limit)) : all;
}
