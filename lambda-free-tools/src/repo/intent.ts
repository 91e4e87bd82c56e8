/**
 * The intent record of a channel's writer, `<stateDir>/intent.jsonl` (see repo/recover.ts for the
 * protocol): a writer announces each pool change durably before it makes it; crash recovery and
 * the read-only commands (verify, pending) read it. Below recover.ts in the import graph: it knows
 * nothing of how an interrupted writer is finished.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AptRepoError, UnsafePathError } from '../errors';
import { appendDurable, errText, fsyncDir, writeFileAtomic } from '../core/files';
import { currentGeneration, generationIds } from './generations';
import { processStart } from '../core/proc';
import { isPoolPath } from './poolPath';
import { formatOf } from './format';
import type { ChannelConfig } from '../core/types';

/** Where a pool file added by an operation came from. */
export type AddSource =
  /** ingest: `<incomingDir>/<rel>`, the inode that was read (moved: the pool file is that inode; copied: a copy of it). */
  | { kind: 'incoming'; rel: string; ino: number }
  /** promote: the same pool path in the upstream channel's web root (hard link, or a copy checked by SHA256). */
  | { kind: 'upstream'; webRoot: string }
  /** import: a copy of this file. */
  | { kind: 'copy'; file: string };

/**
 * One announced change. `add`: a new pool file at `poolPath` whose bytes have SHA256 `sha256`
 * (`at`: the upload time to record, ms since epoch). `trash`: the pool file moves to
 * `<stateDir>/trash/<poolPath>` (remove). `untrash`: a trash file moves back to the pool (rollback's
 * restore; undone when its generation was not served). `reject`: an upload moves to
 * `<rejectedDir>/<name>` with `<name>.reason` created first (a `.reason` left without its file is removed).
 */
export type IntentOp =
  | { op: 'add'; poolPath: string; sha256: string; at: number; from: AddSource }
  | { op: 'trash'; poolPath: string; sha256: string }
  | { op: 'untrash'; poolPath: string }
  | { op: 'reject'; rel: string; name: string };

/** The first line of the record. */
export interface IntentHeader {
  intent: 1;
  command: string;
  pid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22), null when unknown. */
  start: string | null;
  host: string;
  since: string;
  /** The generation `dists` pointed at when the writer began (null: nothing published yet). */
  served: string | null;
  /** Generation folders that existed then: any other one that does not serve was made by the writer and never served. */
  generations: string[];
}

/** `<stateDir>/intent.jsonl`: the intent record of the channel's current (or interrupted) writer. */
export function intentFile(ch: Pick<ChannelConfig, 'stateDir'>): string {
  return path.join(ch.stateDir, 'intent.jsonl');
}

/**
 * The intent of one writer, under the channel lock. Created by beginIntent (nothing is written
 * until the first `record`); `record` makes each operation durable before the caller performs it;
 * `clear` removes the record once the new generation serves (or when the writer undid everything
 * itself). Throws the fs error when the state folder cannot be written: the caller then changes nothing.
 */
export class Intent {
  private written = false;
  private constructor(
    readonly file: string,
    private readonly header: IntentHeader,
  ) {}

  /**
   * Starts the intent of `command` on `ch` (the caller holds the lock and has run recoverChannel).
   * Throws AptRepoError when a record is still there (recovery did not run or could not finish).
   */
  static async begin(ch: ChannelConfig, command: string): Promise<Intent> {
    const file = intentFile(ch);
    if (fs.existsSync(file))
      throw new AptRepoError(
        `${file}: an interrupted writer's intent record is still there; run recoverChannel first (any writing command does)`,
      );
    const served = (await currentGeneration(ch)) ?? null;
    return new Intent(file, {
      intent: 1,
      command,
      pid: process.pid,
      start: processStart(process.pid) ?? null,
      host: os.hostname(),
      since: new Date().toISOString(),
      served,
      generations: generationIds(ch),
    });
  }

  /** Makes `ops` durable in the record (created with the header on the first call), before the caller performs them. */
  record(...ops: IntentOp[]): void {
    if (ops.length === 0) return;
    const lines = ops.map((o) => JSON.stringify(o) + '\n').join('');
    if (!this.written) {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileAtomic(this.file, JSON.stringify(this.header) + '\n' + lines, 0o644);
      this.written = true;
    } else {
      appendDurable(this.file, lines);
    }
  }

  /**
   * Writes the record with no operation (if nothing was recorded yet): for a writer whose only
   * change is the generation it writes (publish, re-sign), so that the next writer removes a
   * generation it completed but never served (killed between generation.json and the flip).
   */
  mark(): void {
    if (this.written) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, JSON.stringify(this.header) + '\n', 0o644);
    this.written = true;
  }

  /** True once an operation was recorded. */
  get active(): boolean {
    return this.written;
  }

  /** Removes the record (durably): the writer's changes are served, or were undone. */
  clear(): void {
    if (!this.written) return;
    fs.rmSync(this.file, { force: true });
    fsyncDir(path.dirname(this.file));
    this.written = false;
  }
}

/**
 * Starts recording the intent of `command` (see Intent). The caller holds the channel lock and has
 * run recoverChannel.
 */
export async function beginIntent(ch: ChannelConfig, command: string): Promise<Intent> {
  return Intent.begin(ch, command);
}

/**
 * After a writer's publish failed: "undo if the new generation is not served yet", written once
 * for ingest, promote and remove. `served` is the generation that served before the publish. When
 * another generation serves now (the failure came after the switch, e.g. while pruning), the
 * change stands and the intent record is cleared. When the previous one still serves, `undo` (if
 * any) puts things back and the record is cleared once it resolves true; without an undo, or when
 * it resolves false, the record stays and the next writing command finishes the change (recovery).
 * `unreadable` says what a `dists` that cannot be read now counts as: 'previous' (ingest: its
 * record stays, the safe side when nothing is undone) or 'none' (no generation: promote and
 * remove, as they always did). Resolves to whether the previous generation still serves and what
 * serves now; what undo throws propagates.
 */
export async function settleFailedPublish(
  ch: ChannelConfig,
  intent: Intent,
  served: string | undefined,
  opts: { undo?: () => Promise<boolean>; unreadable: 'previous' | 'none' },
): Promise<{ previousServes: boolean; now: string | undefined }> {
  const now = await currentGeneration(ch).catch(() => (opts.unreadable === 'previous' ? served : undefined));
  const previousServes = now === served;
  if (!previousServes) intent.clear();
  else if (opts.undo && (await opts.undo())) intent.clear();
  return { previousServes, now };
}

/** A parsed record: the header and the operations whose line is complete. */
export interface IntentRecord {
  header: IntentHeader;
  ops: IntentOp[];
}

/**
 * Reads `<stateDir>/intent.jsonl`: undefined when absent. A last line cut short (a crash in the
 * middle of an append) is ignored: the change it announced was never started. Throws AptRepoError
 * for a record whose header cannot be read (never guessed at).
 */
export function readIntent(ch: Pick<ChannelConfig, 'stateDir' | 'format'>): IntentRecord | undefined {
  const file = intentFile(ch);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AptRepoError(`${file}: cannot read the intent record: ${errText(e)}`);
  }
  // Every complete line ends with '\n': the piece after the last one is empty, or an append cut short.
  const complete = text.split('\n').slice(0, -1);
  let header: IntentHeader;
  try {
    header = JSON.parse(complete[0] ?? '') as IntentHeader;
  } catch {
    throw new AptRepoError(`${file}: the intent record's header is unreadable; look at the pool and the trash, then remove the file`);
  }
  if (header?.intent !== 1) throw new AptRepoError(`${file}: not an intent record this apt-repo knows (intent: ${String(header?.intent)})`);
  const ops: IntentOp[] = [];
  for (const l of complete.slice(1)) {
    let op: IntentOp;
    try {
      op = JSON.parse(l) as IntentOp;
    } catch {
      continue;
    }
    // Read back from a file: paths are checked before use.
    if ((op.op === 'add' || op.op === 'trash' || op.op === 'untrash') && !isPoolPath(op.poolPath, formatOf(ch))) {
      throw new UnsafePathError(`${file}: ${JSON.stringify(op.poolPath)}`, 'not a pool path');
    }
    ops.push(op);
  }
  return { header, ops };
}
