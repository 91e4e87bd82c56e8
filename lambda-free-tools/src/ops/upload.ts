/**
 * upload: puts local `.deb` files into the server's drop zone over SFTP. Each file is written as
 * `<incomingDir>/<source>/[<codename>/].<file>.part` (a name ingest skips) and renamed into place
 * only once complete, so a dropped connection never leaves a file that ingest could take half-written.
 * Two ways, chosen by the stack's uploadUser:
 * - with an upload account (SFTP only, chrooted into incomingDir): paths are chroot-relative
 *   (`/<source>/[<codename>/]<file>`), no command is ever run; the server's ingest units take the
 *   file, and awaitIngest watches it leave the drop folder and looks for its `.reason` in rejected/;
 * - without: as the operator account, then `ingest` through remotePrefix (ingestUploads).
 */
import * as fs from 'fs';
import * as path from 'path';
import { IngestReportSchema, type IngestEntry, type IngestReport } from '../repo/ingestReport';
import { AptRepoError, UsageError } from '../errors';
import { Connection } from './connect';
import { ConnectionError } from './errors';
import { runCapture, runIndexerJson } from './remote';
import { OpsConfig } from './stackConfig';
import { byteOrder } from '../core/order';
import { parseReport } from '../core/validate';

/** One file to upload and where it goes on the server. */
export interface UploadItem {
  /** Local path as given. */
  local: string;
  /** File name (also the final remote name). */
  name: string;
  /** Size in bytes. */
  size: number;
  remoteDir: string;
  /** `<remoteDir>/.<name>.part` */
  remoteTemp: string;
  remoteFinal: string;
  /** The path relative to incomingDir, as ingest reports it: `<source>/[<codename>/]<name>`. */
  rel: string;
  /** Once sent: the mtime the server gave the complete temporary file (server clock, seconds). */
  serverMtime?: number;
}

/** Drop folder names ingest accepts (see repo/ingest.ts). */
const SOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const CODENAME = /^[a-z0-9][a-z0-9.+-]*$/;

/**
 * Checks the local files and works out their remote names.
 * @param files local paths of `.deb` files (regular files, distinct names, not dot files).
 * @param opts.source drop folder under incomingDir (not `rejected`); opts.codename an optional codename folder.
 * @throws UsageError naming the offending file or option.
 */
export function planUploads(
  files: readonly string[],
  opts: { incomingDir: string; source: string; codename?: string; rejectedDir?: string },
): UploadItem[] {
  if (files.length === 0) throw new UsageError('upload: no .deb file given');
  if (!SOURCE_NAME.test(opts.source))
    throw new UsageError(`--source '${opts.source}': expected a drop folder name (letters, digits, . _ + -)`);
  if (
    opts.source === 'rejected' ||
    path.posix.join(opts.incomingDir, opts.source) === (opts.rejectedDir ?? path.posix.join(opts.incomingDir, 'rejected'))
  ) {
    throw new UsageError(`--source '${opts.source}': that folder holds rejected uploads`);
  }
  if (opts.codename !== undefined && !CODENAME.test(opts.codename))
    throw new UsageError(`--codename '${opts.codename}': expected a codename such as bookworm`);
  const remoteDir = path.posix.join(opts.incomingDir, opts.source, ...(opts.codename ? [opts.codename] : []));
  const seen = new Set<string>();
  return files.map((local) => {
    const name = path.basename(local);
    if (!name.endsWith('.deb')) throw new UsageError(`${local}: not a .deb file name`);
    if (name.startsWith('.')) throw new UsageError(`${local}: ingest ignores dot files; rename it`);
    if (/[\0-\x1f\x7f]/.test(name)) throw new UsageError(`${JSON.stringify(local)}: control characters in a file name; rename it`);
    if (seen.has(name)) throw new UsageError(`${local}: two files named ${name}`);
    seen.add(name);
    let st: fs.Stats;
    try {
      st = fs.statSync(local);
    } catch (e) {
      throw new UsageError(`${local}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    if (!st.isFile()) throw new UsageError(`${local}: not a regular file`);
    return {
      local,
      name,
      size: st.size,
      remoteDir,
      remoteTemp: path.posix.join(remoteDir, `.${name}.part`),
      remoteFinal: path.posix.join(remoteDir, name),
      rel: path.posix.join(opts.source, ...(opts.codename ? [opts.codename] : []), name),
    };
  });
}

/** Progress callback: bytes sent so far of all files, their total, and the file being sent. */
export type UploadProgress = (sentBytes: number, totalBytes: number, file: string) => void;

function sftpCall<T>(fn: (cb: (err: Error | undefined | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

/**
 * Sends UploadItems one after the other over one SFTP session; removes its own temporary file when
 * a transfer fails while the connection is still up, or when abort() is called (Ctrl-C).
 */
export class Uploader {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 ships no types here (node-ssh's refer to @types/ssh2, not installed)
  private sftp: any;
  private current?: UploadItem;
  private aborted = false;

  /**
   * @param opts.exec false for an SFTP-only upload account: no `mv` fallback (an error instead) when
   *        the server cannot rename over an existing file.
   */
  constructor(
    private readonly conn: Connection,
    private readonly cfg: Pick<OpsConfig, 'remotePrefix' | 'host'>,
    private readonly items: UploadItem[],
    private readonly progress?: UploadProgress,
    private readonly opts: { exec?: boolean } = {},
  ) {}

  /**
   * Uploads every item: mkdir -p of the drop folder, write to the `.part` name, rename into place
   * (posix-rename@openssh.com, which replaces an older file of the same name; plain SFTP rename or
   * `mv -f` when the server lacks it).
   * @throws ConnectionError when the connection drops (the `.part` file may stay: ingest ignores it);
   *         AptRepoError for an SFTP failure (permission, disk full), after removing the `.part` file.
   */
  async run(): Promise<void> {
    const total = this.items.reduce((n, i) => n + i.size, 0);
    let done = 0;
    try {
      this.sftp = await this.conn.ssh.requestSFTP();
    } catch (e) {
      throw this.failure(e, undefined);
    }
    try {
      const dirs = [...new Set(this.items.map((i) => i.remoteDir))];
      for (const d of dirs) {
        try {
          await this.conn.ssh.mkdir(d, 'sftp', this.sftp);
        } catch (e) {
          throw this.failure(e, undefined, `cannot create ${d}`);
        }
      }
      for (const item of this.items) {
        if (this.aborted) throw new AptRepoError('upload interrupted');
        this.current = item;
        this.progress?.(done, total, item.name);
        try {
          await this.put(item, (sent) => this.progress?.(done + sent, total, item.name));
          item.serverMtime = (await sftpCall<{ mtime: number }>((cb) => this.sftp.lstat(item.remoteTemp, cb))).mtime;
          await this.rename(item);
        } catch (e) {
          const err = this.failure(e, item);
          await this.removeTemp(item);
          throw err;
        }
        this.current = undefined;
        done += item.size;
        this.progress?.(done, total, item.name);
      }
    } finally {
      try {
        this.sftp?.end();
      } catch {
        // Connection already gone.
      }
    }
  }

  /** Stops after the current file and removes the `.part` file being written (best effort). */
  async abort(): Promise<void> {
    this.aborted = true;
    if (this.current) await this.removeTemp(this.current);
  }

  private put(item: UploadItem, step: (sent: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      this.conn.onClose(() => finish(new Error('connection closed')));
      this.sftp.fastPut(item.local, item.remoteTemp, { mode: 0o644, step: (sent: number) => step(sent) }, (err: Error | undefined) =>
        finish(err ?? undefined),
      );
    });
  }

  private async rename(item: UploadItem): Promise<void> {
    try {
      await sftpCall((cb) => this.sftp.ext_openssh_rename(item.remoteTemp, item.remoteFinal, cb));
      return;
    } catch (e) {
      if (!/does not support/.test((e as Error).message)) throw e;
    }
    try {
      await sftpCall((cb) => this.sftp.rename(item.remoteTemp, item.remoteFinal, cb));
      return;
    } catch (e) {
      // SFTP v3 rename refuses to replace an existing file: fall back to mv, which does (-T: never into a folder of that name).
      if (this.opts.exec === false) throw e;
    }
    const r = await runCapture(this.conn, this.cfg, ['mv', '-f', '-T', '--', item.remoteTemp, item.remoteFinal]);
    if (r.code !== 0) throw new Error(`mv failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  private async removeTemp(item: UploadItem): Promise<void> {
    if (this.conn.state().closed || !this.sftp) return;
    try {
      await Promise.race([
        sftpCall((cb) => this.sftp.unlink(item.remoteTemp, cb)),
        new Promise((resolve) => this.conn.onClose(() => resolve(undefined))),
      ]);
    } catch {
      // Already gone or never created.
    }
  }

  private failure(e: unknown, item: UploadItem | undefined, what?: string): Error {
    if (e instanceof AptRepoError) return e;
    const msg = (e as Error)?.message ?? String(e);
    if (this.conn.state().closed) {
      return new ConnectionError(
        this.conn.target,
        item
          ? `connection lost while uploading ${item.name}; nothing was ingested (a partial ${path.posix.basename(item.remoteTemp)} may remain in ${item.remoteDir}: ingest ignores it and the next upload replaces it)`
          : `connection lost before the upload started (${msg})`,
      );
    }
    return new AptRepoError(`${what ?? `upload of ${item?.local} to ${this.cfg.host}:${item?.remoteFinal} failed`}: ${msg}`);
  }
}

/** What ingest said about the uploaded files, plus anything else it handled in the same drop folder. */
export interface IngestSummary {
  /** Final entry per file (accepted, present, rejected or skipped), ours and others'. */
  entries: IngestEntry[];
  /** Our files ingest did not mention (taken by a concurrent ingest run, or removed). */
  unseen: string[];
  /** The generation published, if any (last run that published). */
  generation?: string;
}

/**
 * Whether an ingest 'skipped' entry means "too fresh, try again shortly": its reasonCode is
 * 'settling'. An entry without a reasonCode comes from an indexer older than the typed contract
 * (each stack deploys its own indexer, so a newer apt-ops meets older ones during a rollout): for
 * it alone, the wording that indexer used is recognised.
 */
export function isSettling(e: IngestEntry): boolean {
  if (e.status !== 'skipped') return false;
  if (e.reasonCode !== undefined) return e.reasonCode === 'settling';
  return /changed less than|still being written|changed while being read/.test(e.reason ?? '');
}

/**
 * Validates what `apt-repo ingest --json` printed (repo/ingestReport.ts IngestReportSchema).
 * @throws AptRepoError naming the host and the first field that does not match.
 */
export function parseIngestReport(data: unknown, host: string): IngestReport {
  return parseReport(IngestReportSchema, data, `the remote apt-repo ingest --json on ${host} is not an ingest report`);
}

/**
 * Folds successive ingest reports into one summary for `ours` (UploadItem.rel paths). A later
 * report's entry for a file replaces an earlier 'skipped' one.
 */
export function summarizeIngest(reports: { entries?: IngestEntry[]; generation?: string }[], ours: readonly string[]): IngestSummary {
  const byFile = new Map<string, IngestEntry>();
  let generation: string | undefined;
  for (const r of reports) {
    for (const e of r.entries ?? []) {
      const prev = byFile.get(e.file);
      if (!prev || prev.status === 'skipped') byFile.set(e.file, e);
    }
    if (r.generation) generation = r.generation;
  }
  const entries = [...byFile.values()].sort((a, b) => byteOrder(a.file, b.file));
  return { entries, unseen: ours.filter((f) => !byFile.has(f)), generation };
}

/** Exit code of an upload: 1 when ingest rejected anything, or left one of `ours` skipped; else 0. */
export function uploadExitCode(s: IngestSummary, ours: readonly string[]): number {
  return s.entries.some((e) => e.status === 'rejected' || (e.status === 'skipped' && ours.includes(e.file))) ? 1 : 0;
}

/** Human report of an upload: one line per file ingest handled, then the generation. */
export function renderIngestSummary(s: IngestSummary, ours: readonly string[]): string {
  const lines: string[] = [];
  const mine = new Set(ours);
  for (const e of s.entries) {
    if (e.status === 'skipped' && !mine.has(e.file)) continue;
    const what = e.package ? ` (${e.package} ${e.version} ${e.architecture})` : '';
    if (e.status === 'accepted') lines.push(`accepted  ${e.file}${what} -> ${(e.codenames ?? []).join(', ')}`);
    else if (e.status === 'present') lines.push(`present   ${e.file}${what}: already in the pool`);
    else if (e.status === 'rejected') lines.push(`rejected  ${e.file}${what}: ${e.reason ?? ''}`);
    else lines.push(`skipped   ${e.file}: ${e.reason ?? ''}`);
  }
  for (const f of s.unseen) lines.push(`unseen    ${f}: not in this ingest's report (taken by a concurrent ingest?)`);
  if (s.generation) lines.push(`published generation ${s.generation}`);
  return lines.join('\n');
}

// How often and how long ingestUploads retries while its files are younger than ingest's settle delay.
const INGEST_ATTEMPTS = 10;
const INGEST_RETRY_MS = 1000;
// apt-repo ingest's default --settle-ms (2000) plus a margin: waiting this long after the last rename
// before the first ingest lets one ingest, hence one publish, take the whole batch.
const INGEST_FIRST_WAIT_MS = 2100;

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * Runs the remote `ingest --json --source <source>` for files just uploaded, again (up to 10 times,
 * 1 s apart) while ingest reports some of them as too fresh to take.
 * @returns the folded report; or, when ingest itself fails (exit other than 0/1, or no JSON: its
 *          message went to `stderr`), its exit code after removing the uploaded files it did not take,
 *          so they do not wait in the shared drop zone for another channel's ingest.
 * @throws as runIndexerJson (indexer missing, lock held, connection lost); AptRepoError when
 *         ingest prints JSON that is not an ingest report (parseIngestReport).
 */
export async function ingestUploads(
  conn: Connection,
  cfg: OpsConfig,
  items: UploadItem[],
  source: string,
  opts: { stderr: (b: Buffer) => void; firstWaitMs?: number },
): Promise<{ ok: true; summary: IngestSummary } | { ok: false; code: number; removed: number }> {
  const ours = items.map((i) => i.rel);
  await sleep(opts.firstWaitMs ?? INGEST_FIRST_WAIT_MS);
  const reports: { entries?: IngestEntry[]; generation?: string }[] = [];
  for (let attempt = 1; ; attempt++) {
    const r = await runIndexerJson(conn, cfg, ['ingest', '--source', source], { stderr: opts.stderr });
    if (r.data === undefined || (r.code !== 0 && r.code !== 1)) {
      const removed = await removeRemoteFiles(
        conn,
        items.map((i) => i.remoteFinal),
      );
      return { ok: false, code: r.code === 0 ? 1 : r.code, removed };
    }
    const report = parseIngestReport(r.data, cfg.host);
    reports.push(report);
    const waiting = (report.entries ?? []).some((e) => ours.includes(e.file) && isSettling(e));
    if (!waiting || attempt >= INGEST_ATTEMPTS) break;
    await sleep(INGEST_RETRY_MS);
  }
  return { ok: true, summary: summarizeIngest(reports, ours) };
}

/** Removes remote files over SFTP, ignoring those already gone; resolves to how many were removed. */
export async function removeRemoteFiles(conn: Connection, files: string[]): Promise<number> {
  if (conn.state().closed) return 0;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 ships no types here (node-ssh's refer to @types/ssh2, not installed)
  const sftp: any = await conn.ssh.requestSFTP();
  let n = 0;
  try {
    for (const f of files) {
      n += await new Promise<number>((resolve) => sftp.unlink(f, (err: Error | undefined) => resolve(err ? 0 : 1)));
    }
  } finally {
    sftp.end();
  }
  return n;
}

/** What became of one file uploaded through the upload account. */
export interface DropOutcome {
  /** `<source>/[<codename>/]<file>`, relative to incomingDir. */
  file: string;
  /** accepted: ingest took it (into the pool); rejected: moved to rejected/ with `reason`; waiting: still in the drop folder when the wait ended. */
  status: 'accepted' | 'rejected' | 'waiting';
  reason?: string;
  /** Its name in rejected/, when rejected. */
  rejectedAs?: string;
}

/** Exit code of `upload` when a file was still in the drop folder at the end of --wait (as timeout(1)). */
export const WAIT_TIMEOUT_EXIT = 124;

/** Exit code of an upload through the upload account: 1 when one was rejected, else 124 when one is still waiting, else 0. */
export function dropExitCode(outcomes: readonly DropOutcome[]): number {
  if (outcomes.some((o) => o.status === 'rejected')) return 1;
  return outcomes.some((o) => o.status === 'waiting') ? WAIT_TIMEOUT_EXIT : 0;
}

/** Human report of an upload through the upload account, one line per file. */
export function renderDropOutcomes(outcomes: readonly DropOutcome[], waitSeconds: number): string {
  return outcomes
    .map((o) => {
      if (o.status === 'accepted') return `accepted  ${o.file}`;
      if (o.status === 'rejected') return `rejected  ${o.file}: ${o.reason ?? '(no reason recorded)'}`;
      return `waiting   ${o.file}: still in the drop folder after ${waitSeconds} s (is the ingest service running?)`;
    })
    .join('\n');
}

/**
 * The `.reason` of `rel` in `rejected` (an SFTP path), written at or after `sinceSec` (server
 * clock, seconds): the newest `.reason` whose `file:` line is `rel` (parseReason). Only `.reason`
 * files modified since then are read, each at most 4 KiB.
 */
export async function findReason(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 ships no types here (node-ssh's refer to @types/ssh2, not installed)
  sftp: any,
  rejected: string,
  rel: string,
  sinceSec: number,
): Promise<{ reason?: string; name: string } | undefined> {
  const { parseReason } = await import('../repo/status');
  let list: { filename: string; attrs: { mtime: number; size: number } }[];
  try {
    list = await sftpCall((cb) => sftp.readdir(rejected, cb));
  } catch {
    return undefined;
  }
  const recent = list
    .filter((e) => e.filename.endsWith('.reason') && e.attrs.mtime >= sinceSec && e.attrs.size <= 4096)
    .sort((a, b) => b.attrs.mtime - a.attrs.mtime || (a.filename < b.filename ? 1 : -1));
  for (const e of recent) {
    let text: string;
    try {
      text = (await sftpCall<Buffer>((cb) => sftp.readFile(path.posix.join(rejected, e.filename), cb))).toString('utf8');
    } catch {
      continue;
    }
    const r = parseReason(text);
    if (r.file === rel) return { reason: r.reason, name: e.filename.slice(0, -'.reason'.length) };
  }
  return undefined;
}

const isNoSuchFile = (e: unknown) => (e as { code?: number }).code === 2 || /No such file/i.test((e as Error)?.message ?? '');

/**
 * Waits, over SFTP only, until each uploaded file has left its drop folder (the server's ingest
 * took it), at most `waitMs`, checking every `pollMs`; then reports it accepted, or rejected with
 * the reason of its `.reason` in `<incomingDir>/rejected` (chroot path `/rejected`). Files still
 * there at the end are 'waiting'.
 * @param items as planned with incomingDir '/' (the upload account's chroot).
 * @throws ConnectionError when the connection drops.
 */
export async function awaitIngest(
  conn: Connection,
  items: UploadItem[],
  opts: { waitMs: number; pollMs?: number; rejectedDir?: string },
): Promise<DropOutcome[]> {
  const pollMs = opts.pollMs ?? 1000;
  const rejected = opts.rejectedDir ?? '/rejected';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 ships no types here (node-ssh's refer to @types/ssh2, not installed)
  const sftp: any = await conn.ssh.requestSFTP();
  try {
    // The server's clock: the mtime of each file once in place (a rejection comes after it).
    const since = new Map<string, number>();
    const left = new Set<UploadItem>();
    const deadline = Date.now() + opts.waitMs;
    for (;;) {
      for (const item of items) {
        if (left.has(item)) continue;
        try {
          const st = await sftpCall<{ mtime: number }>((cb) => sftp.lstat(item.remoteFinal, cb));
          if (!since.has(item.rel)) since.set(item.rel, item.serverMtime ?? st.mtime);
        } catch (e) {
          if (conn.state().closed)
            throw new ConnectionError(conn.target, 'connection lost while waiting for the server to take the upload');
          if (isNoSuchFile(e)) left.add(item);
        }
      }
      if (left.size === items.length || Date.now() >= deadline) break;
      await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
    }
    const out: DropOutcome[] = [];
    for (const item of items) {
      if (!left.has(item)) {
        out.push({ file: item.rel, status: 'waiting' });
        continue;
      }
      // Without a server time (not sent by Uploader, taken before the first look): the last 10 minutes.
      const found = await findReason(
        sftp,
        rejected,
        item.rel,
        (item.serverMtime ?? since.get(item.rel) ?? Math.floor(Date.now() / 1000) - 600) - 1,
      );
      out.push(
        found
          ? { file: item.rel, status: 'rejected', reason: found.reason, rejectedAs: found.name }
          : { file: item.rel, status: 'accepted' },
      );
    }
    return out;
  } finally {
    sftp.end();
  }
}
