/**
 * Crash recovery of a channel's writers (ingest, promote, remove, gc, import, publish, rollback,
 * restore, backup). Every writing command calls recoverChannel right after it takes the channel
 * lock and before its own work, so an interrupted writer is finished or undone by the next one,
 * whichever it is, and says so on stderr (one line per action, starting `apt-repo: recovering`).
 *
 * The intent record, `<stateDir>/intent.jsonl`: a writer that is about to change the pool creates
 * it (writeFileAtomic: temp file, fsync, rename, fsync of the folder) with a header line (command,
 * pid, process start, time, the generation `dists` served then, the generation folders that
 * existed) and its first operation, then appends one line per further operation (appendDurable:
 * write + fsync), each BEFORE the change it announces. Once the new generation serves, the writer
 * removes the record. A SIGKILL at any instant therefore leaves one of:
 * - no record: the pool was not changed (or the change is served and the record was cleared);
 * - a record whose `served` generation is no longer the current one: the writer's publish flipped
 *   `dists` and only the clearing was lost; recovery prunes generations as publish would and clears;
 * - a record whose `served` generation still serves: recovery looks at each operation on disk and
 *   finishes what is verifiably complete (a pool file with the announced bytes stays; a removal is
 *   completed into the trash; the incoming name of a moved upload is unlinked), undoes the rest (a
 *   pool file with other bytes is removed: its upload is still in incoming; a restore from the trash
 *   is put back), removes the writer's unserved generation folders and temp files, publishes the
 *   pool as it now is (invalid files skipped and named), then clears the record.
 * Every step is idempotent: a recovery killed in its turn is redone by the next writer.
 * Recovery acts on records only, never on "pool minus served" (after a rollback, unserved pool
 * files are intended), and never removes a pool file a kept generation lists.
 *
 * Stale temporary files of dead writers are removed whatever the record says: writeFileAtomic temps
 * (`.<name>.tmp-<pid>-<hex>`) and restore's (`.<name>.tmp-<pid>-restore`) in the state folder, the
 * config folder and the web root, the lock's temp names, `.dists.tmp-*` in the web root, `.trash-*`
 * and incomplete generation folders (no generation.json) in `.generations`. A restore writes at
 * any depth of those three trees: it sweeps them whole first (removeDeadTempsBelow), so the next
 * command finishing a killed restore leaves none of its temps behind.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AptRepoError } from '../errors';
import { confine, Confined, errText, fsyncDir, SafeDir, sha256Fd, sha256File, unlinkConfined } from '../core/files';
import {
  currentGeneration,
  generationDir,
  generationIds,
  generationsDir,
  listGenerations,
  pruneGenerations,
  readGenerationInfo,
} from './generations';
import { POOL_FILE_MODE, recordAdded } from './pool';
import { moveToTrash, trashDir } from './trash';
import type { ChannelConfig, Progress } from '../core/types';
import { publishLocked } from './generationWriter';
import { changeRecord, healHistory, historyFile } from './history';
import { lstatQuiet, removeStale, TMP_RE, staleTemp } from './staleTemps';
import { alive, processStart } from '../core/proc';
import { intentFile, readIntent, type AddSource, type IntentOp } from './intent';

/** What recovery did; undefined from recoverChannel when there was nothing to do. */
export interface RecoveryReport {
  /** One human line per action, as printed on stderr (without the `apt-repo: recovering: ` prefix). */
  actions: string[];
  /** The generation recovery published (when it finished an interrupted writer by publishing). */
  generation?: string;
}

const PREFIX = 'apt-repo: recovering: ';

/** Removes stale temp files and interrupted generation folders; one action line each. */
function sweepStale(ch: ChannelConfig, actions: string[]): void {
  const now = Date.now();
  for (const n of removeStale(ch.stateDir, /^lock(?:\.reclaim)?\.(\d+)\.[a-z0-9]+$/, now))
    actions.push(`removed stale lock temp file ${path.join(ch.stateDir, n)}`);
  for (const n of removeStale(ch.webRoot, /^\.dists\.tmp-(\d+)-[a-z0-9]+$/, now))
    actions.push(`removed stale temporary link ${path.join(ch.webRoot, n)}`);
  // writeFileAtomic writes in these three folders (caches and records; keygen's key files), restore
  // everywhere below them (swept whole by restore itself, see removeDeadTempsBelow).
  for (const dir of [ch.stateDir, ch.configDir, ch.webRoot]) {
    for (const n of removeStale(dir, TMP_RE, now)) actions.push(`removed stale temporary file ${path.join(dir, n)}`);
  }
  const gens = generationsDir(ch);
  let names: string[] = [];
  try {
    names = fs.readdirSync(gens);
  } catch {
    return;
  }
  for (const n of names) {
    const p = path.join(gens, n);
    if (n.startsWith('.trash-')) {
      fs.rmSync(p, { recursive: true, force: true });
      actions.push(`removed ${p} (a generation whose pruning was interrupted)`);
    }
    // Incomplete generation folders (no generation.json) are ignored by every reader and removed by
    // the next publish's prune, after it has taken an id above theirs (ids never go back).
  }
}

/** Removes copyInto temp names of dead writers in the folder of `c` (the destination of an operation). */
function sweepBeside(c: Confined, actions: string[]): void {
  let dir: SafeDir;
  try {
    // The pool folder opened without following a link on the way (files.ts rules, issue 8).
    dir = SafeDir.open(c.base, path.posix.dirname(c.rel));
  } catch {
    return;
  }
  try {
    const prefix = `.${path.posix.basename(c.rel)}.tmp-`;
    const now = Date.now();
    for (const e of dir.list()) {
      if (!e.name.startsWith(prefix) || !e.isFile()) continue;
      const m = TMP_RE.exec(e.name);
      const st = dir.lstat(e.name);
      if (!m || !st || !staleTemp(Number(m[1]), st.mtimeMs, now)) continue;
      if (dir.unlink(e.name, st.ino)) actions.push(`removed partial copy ${path.join(dir.path, e.name)}`);
    }
  } finally {
    dir.close();
  }
}

/**
 * A kept pool file gets the pool file mode (0664, see pool.ts POOL_FILE_MODE) when this user owns
 * it (a move cut before its chmod keeps the upload's mode), and its folder entry is made durable.
 */
function settleKept(ch: ChannelConfig, poolPath: string): void {
  let dir: SafeDir;
  try {
    dir = SafeDir.open(ch.webRoot, path.posix.dirname(poolPath));
  } catch {
    return;
  }
  try {
    const { fd, stat } = dir.openFile(path.posix.basename(poolPath));
    try {
      const uid = process.geteuid?.();
      if ((uid === undefined || stat.uid === uid) && (stat.mode & 0o7777) !== POOL_FILE_MODE) fs.fchmodSync(fd, POOL_FILE_MODE);
    } finally {
      fs.closeSync(fd);
    }
    dir.sync();
  } catch {
    // not a regular file any more: scanPool reports it
  } finally {
    dir.close();
  }
}

function statConfined(c: Confined): fs.Stats | undefined {
  try {
    return lstatQuiet(confine(c.base, c.rel));
  } catch {
    return undefined;
  }
}

async function sha256Quiet(c: Confined): Promise<string | undefined> {
  try {
    return await sha256File(c);
  } catch {
    return undefined;
  }
}

/** What happened to one add operation. */
type AddOutcome = 'kept' | 'undone' | 'absent';

async function recoverAdd(
  ch: ChannelConfig,
  op: Extract<IntentOp, { op: 'add' }>,
  listed: Set<string>,
  actions: string[],
): Promise<AddOutcome> {
  const dest: Confined = { base: ch.webRoot, rel: op.poolPath };
  sweepBeside(dest, actions);
  const st = statConfined(dest);
  const shown = path.join(ch.webRoot, op.poolPath);
  if (!st) return 'absent';
  if (!st.isFile()) return 'absent'; // not a file this writer placed: scanPool reports it
  let verified = false;
  if (op.from.kind === 'incoming' && st.ino === op.from.ino) verified = true;
  if (!verified && op.from.kind === 'upstream') {
    const up = statConfined({ base: op.from.webRoot, rel: op.poolPath });
    verified = up !== undefined && up.ino === st.ino && up.dev === st.dev;
  }
  if (!verified) verified = (await sha256Quiet(dest)) === op.sha256;
  if (!verified) {
    if (listed.has(op.poolPath)) {
      actions.push(`${shown}: not the bytes announced, but a kept generation lists it: left in place`);
      return 'kept';
    }
    unlinkConfined(dest);
    actions.push(`removed ${shown}: incomplete or unverified copy (${describeSource(ch, op.from)} is still where it was)`);
    return 'undone';
  }
  if (op.from.kind === 'incoming') finishIncoming(ch, op, st, actions);
  return 'kept';
}

function describeSource(ch: ChannelConfig, from: AddSource): string {
  if (from.kind === 'incoming') return path.join(ch.incomingDir, from.rel);
  if (from.kind === 'upstream') return path.join(from.webRoot, 'pool');
  return from.file;
}

/**
 * The upload a kept add came from: when its incoming name is still there and is the pool file
 * itself (a move cut between link and unlink), or the very inode that was read with the same bytes
 * (a copy cut before the unlink), the incoming name is removed, as ingest would have. Anything else
 * (the uploader wrote new bytes) stays for the next ingest.
 */
function finishIncoming(ch: ChannelConfig, op: Extract<IntentOp, { op: 'add' }>, placed: fs.Stats, actions: string[]): void {
  if (op.from.kind !== 'incoming') return;
  const rel = op.from.rel;
  let dir: SafeDir;
  try {
    dir = SafeDir.open(ch.incomingDir, path.posix.dirname(rel));
  } catch {
    return;
  }
  try {
    const name = path.posix.basename(rel);
    const st = dir.lstat(name);
    if (!st?.isFile()) return;
    let same = st.ino === placed.ino && st.dev === placed.dev;
    if (!same && st.ino === op.from.ino) {
      try {
        const { fd } = dir.openFile(name);
        try {
          same = fs.fstatSync(fd).ino === op.from.ino && sha256Fd(fd) === op.sha256;
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        same = false;
      }
    }
    if (same && dir.unlink(name, st.ino)) {
      dir.sync();
      actions.push(`removed ${path.join(ch.incomingDir, rel)} (already in the pool as ${op.poolPath})`);
    }
  } finally {
    dir.close();
  }
}

async function recoverTrash(ch: ChannelConfig, op: Extract<IntentOp, { op: 'trash' }>, actions: string[]): Promise<boolean> {
  sweepBeside({ base: trashDir(ch), rel: op.poolPath }, actions);
  const inPool = statConfined({ base: ch.webRoot, rel: op.poolPath });
  if (!inPool) return false;
  await moveToTrash(ch, op.poolPath);
  actions.push(`moved ${path.join(ch.webRoot, op.poolPath)} to the trash (completing an interrupted removal)`);
  return true;
}

async function recoverUntrash(
  ch: ChannelConfig,
  op: Extract<IntentOp, { op: 'untrash' }>,
  servedPaths: Set<string>,
  actions: string[],
): Promise<void> {
  sweepBeside({ base: ch.webRoot, rel: op.poolPath }, actions);
  const inPool = statConfined({ base: ch.webRoot, rel: op.poolPath });
  if (!inPool) return;
  if (servedPaths.has(op.poolPath)) return; // the serving generation lists it: it belongs in the pool
  await moveToTrash(ch, op.poolPath);
  actions.push(`moved ${path.join(ch.webRoot, op.poolPath)} back to the trash (its restore was never served)`);
}

function recoverReject(ch: ChannelConfig, op: Extract<IntentOp, { op: 'reject' }>, actions: string[]): void {
  let rej: SafeDir;
  try {
    rej = SafeDir.openAbs(ch.rejectedDir);
  } catch {
    return;
  }
  try {
    if (!rej.lstat(op.name) && rej.lstat(`${op.name}.reason`)?.isFile()) {
      rej.unlink(`${op.name}.reason`);
      rej.sync();
      actions.push(
        `removed ${path.join(ch.rejectedDir, `${op.name}.reason`)}: its upload was never moved (still ${path.join(ch.incomingDir, op.rel)})`,
      );
    }
  } finally {
    rej.close();
  }
}

/**
 * Finishes or undoes what an interrupted writer of `ch` recorded (see the module comment), and
 * removes stale temporary files of dead writers. The caller holds the channel lock
 * (withChannelLock) and calls this before its own work. Prints one line per action on stderr
 * (`apt-repo: recovering: <channel>: …`). Resolves to what was done, undefined when nothing was.
 * Throws AptRepoError when the record cannot be read or the finishing publish fails (conflicting
 * files, signer down): the record is then kept, so the next writer tries again, and the caller's
 * own work must not start.
 */
export async function recoverChannel(ch: ChannelConfig, opts: { progress?: Progress } = {}): Promise<RecoveryReport | undefined> {
  const report = await recoverWriter(ch, opts);
  // A signing key installed by other means than keygen (pulumi up, by hand) goes into the history:
  // a record, not a repair, so nothing is said unless it fails.
  const lines: string[] = [];
  try {
    const { noticeKeyChange } = await import('./keyWatch');
    await noticeKeyChange(ch);
  } catch (e) {
    lines.push(`could not record the signing key in ${historyFile(ch)}: ${errText(e)}`);
  }
  // Last: the catalogue describes what serves once the interrupted writer is finished or undone.
  let line: string | undefined;
  try {
    const { healCatalogue } = await import('../catalogue/write');
    if (await healCatalogue(ch))
      line = `rebuilt ${path.join(ch.webRoot, 'catalogue')} (it described another generation than the one served)`;
  } catch (e) {
    line = `could not rebuild ${path.join(ch.webRoot, 'catalogue')}: ${errText(e)}`;
  }
  if (line) lines.push(line);
  if (!lines.length) return report;
  for (const l of lines) process.stderr.write(`${PREFIX}${ch.name}: ${l}\n`);
  return { ...report, actions: [...(report?.actions ?? []), ...lines] };
}

/** recoverChannel without the catalogue's heal. */
async function recoverWriter(ch: ChannelConfig, opts: { progress?: Progress }): Promise<RecoveryReport | undefined> {
  const actions: string[] = [];
  const say = () => {
    for (const a of actions.splice(0)) {
      process.stderr.write(`${PREFIX}${ch.name}: ${a}\n`);
      report.actions.push(a);
    }
  };
  const report: RecoveryReport = { actions: [] };
  sweepStale(ch, actions);
  // The served generation's change, if its writer was killed before writing it to the history.
  try {
    if (await healHistory(ch)) actions.push(`added the served generation's change to ${historyFile(ch)} (its writer stopped before)`);
  } catch (e) {
    actions.push(`could not complete ${historyFile(ch)}: ${errText(e)}`);
  }
  say();
  // An interrupted restore (recorded in <stateDir>/restore.json by repo/backup.ts) is finished
  // first: the backup it restores replaces what the channel held. Loaded only when one is recorded.
  if (fs.existsSync(path.join(ch.stateDir, 'restore.json'))) {
    const { finishInterruptedRestore } = await import('./restoreApply');
    await finishInterruptedRestore(ch, {
      say: (line) => {
        actions.push(line);
        say();
      },
    });
  }
  const record = readIntent(ch);
  if (!record) return report.actions.length ? report : undefined;
  const { header, ops } = record;
  const who = `${header.command} (pid ${header.pid}, since ${header.since})`;
  if (header.host !== os.hostname()) {
    throw new AptRepoError(`${intentFile(ch)}: written by ${who} on host ${header.host}; recover on that host`);
  }
  if (header.pid !== process.pid && alive(header.pid) && processStart(header.pid) === header.start && header.start !== null) {
    // Under the lock, a live writer cannot hold a record: its lock would have kept us out.
    throw new AptRepoError(`${intentFile(ch)}: ${who} is still running`);
  }
  const served = (await currentGeneration(ch)) ?? null;
  if (served !== header.served) {
    actions.push(`interrupted ${who} had published generation ${served}; finishing its pruning`);
    say();
    await pruneGenerations(ch, ch.generationsKeep);
    clearRecord(ch);
    return report;
  }
  actions.push(`interrupted ${who}: ${ops.length} recorded change(s), generation ${served ?? '(none)'} still serves; finishing`);
  say();
  // Generations this writer made and never served (complete ones too: killed before the flip).
  const before = new Set(header.generations);
  const unserved = generationIds(ch).filter((id) => id !== served && !before.has(id));
  const listed = new Set<string>();
  for (const g of await listGenerations(ch)) if (!unserved.includes(g.id)) for (const p of g.poolPaths) listed.add(p);
  const servedPaths = new Set(served ? (readGenerationInfo(ch, served)?.poolPaths ?? []) : []);
  let publish = false;
  const added: Record<string, number> = {};
  for (const op of ops) {
    if (op.op === 'add') {
      const outcome = await recoverAdd(ch, op, listed, actions);
      if (outcome === 'kept') {
        if (op.from.kind !== 'upstream') settleKept(ch, op.poolPath);
        publish = true;
        added[op.poolPath] = op.at;
        actions.push(`kept ${path.join(ch.webRoot, op.poolPath)} (complete, SHA256 as announced)`);
      }
    } else if (op.op === 'trash') {
      await recoverTrash(ch, op, actions);
      publish = true;
    } else if (op.op === 'untrash') {
      await recoverUntrash(ch, op, servedPaths, actions);
    } else if (op.op === 'reject') {
      recoverReject(ch, op, actions);
    }
    say();
  }
  if (publish) {
    if (Object.keys(added).length) await recordAdded(ch, added);
    let r;
    try {
      r = await publishLocked(ch, {
        skipInvalid: true,
        progress: opts.progress,
        change: changeRecord('publish', { detail: `finished the interrupted ${header.command} (pid ${header.pid})` }),
      });
    } catch (e) {
      throw new AptRepoError(
        `${PREFIX}${ch.name}: the changes of the interrupted ${who} are in place but publishing them failed (the record ${intentFile(ch)} is kept; the next writing command tries again): ${errText(e)}`,
      );
    }
    for (const p of r.problems) actions.push(p);
    actions.push(`published generation ${r.generation}: the interrupted ${header.command}'s changes are served`);
    report.generation = r.generation;
    say();
  }
  // Removed after the publish, whose new id is then above theirs.
  for (const id of unserved) {
    if (!lstatQuiet(generationDir(ch, id))) continue; // pruned by that publish
    // Out of the id namespace first (as pruneGenerations does): a removal cut short must not leave a
    // folder that still has its generation.json but has lost part of its dists.
    const aside = path.join(generationsDir(ch), `.trash-${id}`);
    fs.renameSync(generationDir(ch, id), aside);
    fs.rmSync(aside, { recursive: true, force: true });
    actions.push(`removed generation ${id}: written by the interrupted writer, never served`);
  }
  clearRecord(ch);
  actions.push(`cleared the intent record of ${who}`);
  say();
  return report;
}

function clearRecord(ch: ChannelConfig): void {
  fs.rmSync(intentFile(ch), { force: true });
  fsyncDir(ch.stateDir);
}
