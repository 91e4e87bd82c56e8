/**
 * status: one look at a channel on the server, composed from the indexer's own reports
 * (`generations --json`, `pending --json`) and a few plain reads: disk use of the web root
 * (`du -sb`), the rejected uploads (SFTP listing of `<incomingDir>/rejected` with each `.reason`),
 * the last ingest (newest upload time in `<stateDir>/added.json`, written by the indexer's recordAdded).
 */
import * as path from 'path';
import type { GenerationInfo } from '../repo/types';
import { AptRepoError } from '../errors';
import { table } from '../cli/context';
import { Connection } from './connect';
import { runCapture, runIndexerJson } from './remote';
import { OpsConfig } from './stackConfig';

/** One refused upload in `<incomingDir>/rejected`. */
export interface RejectedUpload {
  file: string;
  size: number;
  /** ISO date of the rejection (the `.reason` file's time; else the file's own mtime, which may be the uploader's). */
  date: string;
  /** First line of `<file>.reason`, or undefined when there is none. */
  reason?: string;
}

/** What `apt-ops status` reports (also its --json shape). */
export interface StatusReport {
  stack: string;
  channel: string;
  host: string;
  webRoot: string;
  /** `du -sb` of the web root, bytes; undefined when du failed. */
  diskBytes?: number;
  /** The generation `dists` points at (last publish). */
  current?: { id: string; date: string; packages: Record<string, number> };
  generationsKept: number;
  /** ISO date of the newest file added to this channel's pool (ingest for preprod, promote for prod). */
  lastIngest?: string;
  /** Packages promote could take (upstream not in downstream); undefined when the channel has no pair. */
  pending?: number;
  /** Package counts per codename of the current generation, for this channel and its pair (upstream or downstream). */
  channels: Record<string, Record<string, number>>;
  rejected: RejectedUpload[];
  rejectedDir: string;
  /** Facts that could not be read, one line each. */
  problems: string[];
}

/** Parses `du -sb` output (`<bytes>\t<path>`). Returns undefined for anything else. */
export function parseDuBytes(out: string): number | undefined {
  const m = /^(\d+)\s/.exec(out.trim() + '\n');
  return m ? Number(m[1]) : undefined;
}

/** Accepts the generations report either as an array or as `{ generations: [...] }`. */
export function generationsOf(data: unknown): GenerationInfo[] {
  const list = Array.isArray(data) ? data : (data as { generations?: unknown })?.generations;
  if (!Array.isArray(list)) throw new AptRepoError('the remote generations --json report is not a list of generations');
  return list as GenerationInfo[];
}

/** Accepts the pending report as an array of rows or `{ rows: [...] }` / `{ pending: [...] }`. */
export function pendingCountOf(data: unknown): number | undefined {
  if (Array.isArray(data)) return data.length;
  const o = data as { rows?: unknown; pending?: unknown };
  if (Array.isArray(o?.rows)) return o.rows.length;
  if (Array.isArray(o?.pending)) return o.pending.length;
  return undefined;
}

/** The channel pair a pending report names (`{ upstream, downstream }`), when it does. */
export function pairOf(data: unknown): string[] {
  const o = data as { upstream?: unknown; downstream?: unknown };
  return [o?.upstream, o?.downstream].filter((c): c is string => typeof c === 'string' && /^[a-z0-9][a-z0-9-]*$/.test(c));
}

/** The newest time in an added.json map (poolPath → ms since epoch), as an ISO date. */
export function lastAdded(added: unknown): string | undefined {
  if (!added || typeof added !== 'object') return undefined;
  const times = Object.values(added as Record<string, unknown>).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return times.length ? new Date(Math.max(...times)).toISOString() : undefined;
}

/** Human-readable size: 1536 → '1.5 KiB'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Renders a StatusReport as the text `apt-ops status` prints. */
export function renderStatus(r: StatusReport): string {
  const lines: string[] = [];
  lines.push(`channel       ${r.channel} (stack ${r.stack}) on ${r.host}`);
  lines.push(`web root      ${r.webRoot}: ${r.diskBytes === undefined ? 'unknown size' : `${formatBytes(r.diskBytes)} (${r.diskBytes} bytes)`}`);
  lines.push(`last publish  ${r.current ? `${r.current.date} (generation ${r.current.id}, ${r.generationsKept} kept)` : 'never'}`);
  lines.push(`last added    ${r.lastIngest ?? 'unknown'} (newest package ingested or promoted)`);
  const names = Object.keys(r.channels).sort((a, b) => (a === r.channel ? -1 : b === r.channel ? 1 : a < b ? -1 : 1));
  for (const ch of names) {
    const counts = Object.entries(r.channels[ch]);
    lines.push(`packages      ${ch}: ${counts.length ? counts.map(([c, n]) => `${c} ${n}`).join(', ') : 'none published'}`);
  }
  if (r.pending !== undefined) lines.push(`pending       ${r.pending} (packages promote can take)`);
  lines.push(`rejected      ${r.rejected.length} in ${r.rejectedDir}`);
  if (r.rejected.length) {
    lines.push(table(['  FILE', 'SIZE', 'DATE', 'REASON'], r.rejected.map((x) => [`  ${x.file}`, x.size, x.date, x.reason ?? '(no .reason file)'])));
  }
  for (const p of r.problems) lines.push(`problem       ${p}`);
  return lines.join('\n');
}

function sftpCall<T>(fn: (cb: (err: Error | undefined | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

/**
 * Lists `<rejectedDir>`: every entry except the `.reason` files, newest first, each with the first
 * line of its `.reason`. A missing folder is an empty list.
 */
export async function listRejected(sftp: any, rejectedDir: string): Promise<RejectedUpload[]> {
  let list: { filename: string; attrs: { size: number; mtime: number } }[];
  try {
    list = await sftpCall((cb) => sftp.readdir(rejectedDir, cb));
  } catch (e) {
    if ((e as { code?: number }).code === 2 || /No such file/i.test((e as Error).message)) return [];
    throw e;
  }
  const names = new Set(list.map((e) => e.filename));
  const mtimes = new Map(list.map((e) => [e.filename, e.attrs.mtime]));
  const out: RejectedUpload[] = [];
  for (const e of list) {
    if (e.filename.endsWith('.reason') && names.has(e.filename.slice(0, -'.reason'.length))) continue;
    if (e.filename === '.' || e.filename === '..') continue;
    let reason: string | undefined;
    if (names.has(`${e.filename}.reason`)) {
      try {
        const buf: Buffer = await sftpCall((cb) => sftp.readFile(path.posix.join(rejectedDir, `${e.filename}.reason`), cb));
        reason = buf.toString('utf8').split('\n')[0].slice(0, 500);
      } catch {
        reason = undefined;
      }
    }
    const when = mtimes.get(`${e.filename}.reason`) ?? e.attrs.mtime;
    out.push({ file: e.filename, size: e.attrs.size, date: new Date(when * 1000).toISOString(), reason });
  }
  return out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.file < b.file ? -1 : 1));
}

/**
 * Gathers a StatusReport over `conn`. Remote stderr of the indexer goes to `stderr`.
 * @param stateDir the channel's state folder (default `<root>/var/lib/apt-repo/<channel>`).
 * @throws as runIndexerJson for generations (the indexer missing, the lock, the connection);
 *         the other facts degrade into `problems`.
 */
export async function gatherStatus(conn: Connection, cfg: OpsConfig, stderr: (b: Buffer) => void, stateDir = path.posix.join(cfg.root, 'var/lib/apt-repo', cfg.channel)): Promise<StatusReport> {
  const rejectedDir = path.posix.join(cfg.incomingDir, 'rejected');
  const problems: string[] = [];
  const gens = await runIndexerJson(conn, cfg, ['generations'], { stderr });
  if (gens.code !== 0) throw new AptRepoError(`the remote apt-repo generations on ${cfg.host} failed (exit ${gens.code})`);
  const list = generationsOf(gens.data);
  const cur = list.find((g) => g.current);

  let pending: number | undefined;
  const quiet: Buffer[] = [];
  const pend = await runIndexerJson(conn, cfg, ['pending'], { stderr: (b) => quiet.push(b) });
  const channels: Record<string, Record<string, number>> = { [cfg.channel]: cur?.packages ?? {} };
  if (pend.code === 0) {
    pending = pendingCountOf(pend.data);
    for (const other of pairOf(pend.data).filter((c) => c !== cfg.channel)) {
      const g = await runIndexerJson(conn, cfg, ['generations'], { channel: other, stderr: (b) => quiet.push(b) });
      if (g.code === 0) channels[other] = generationsOf(g.data).find((x) => x.current)?.packages ?? {};
      else problems.push(`generations of ${other} failed (exit ${g.code})`);
    }
  } else if (pend.code !== 2) problems.push(`pending failed (exit ${pend.code}): ${Buffer.concat(quiet).toString('utf8').trim().split('\n')[0]}`);

  let diskBytes: number | undefined;
  const du = await runCapture(conn, cfg, ['du', '-sb', '--', cfg.webRoot]);
  if (du.code === 0) diskBytes = parseDuBytes(du.stdout);
  else problems.push(`du -sb ${cfg.webRoot} failed: ${du.stderr.trim().split('\n')[0] || `exit ${du.code}`}`);

  const sftp = await conn.ssh.requestSFTP();
  let rejected: RejectedUpload[] = [];
  let lastIngest: string | undefined;
  try {
    try {
      rejected = await listRejected(sftp, rejectedDir);
    } catch (e) {
      problems.push(`cannot list ${rejectedDir}: ${(e as Error).message}`);
    }
    try {
      const buf: Buffer = await sftpCall((cb) => sftp.readFile(path.posix.join(stateDir, 'added.json'), cb));
      lastIngest = lastAdded(JSON.parse(buf.toString('utf8')));
    } catch {
      // No upload recorded yet (or an older indexer): reported as unknown.
    }
  } finally {
    sftp.end();
  }

  return {
    stack: cfg.stack,
    channel: cfg.channel,
    host: cfg.host,
    webRoot: cfg.webRoot,
    diskBytes,
    current: cur ? { id: cur.id, date: cur.date, packages: cur.packages } : undefined,
    generationsKept: list.length,
    lastIngest,
    pending,
    channels,
    rejected,
    rejectedDir,
    problems,
  };
}
