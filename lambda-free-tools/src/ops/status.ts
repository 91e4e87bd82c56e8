/**
 * status: one look at a channel on the server. Every fact comes from the indexer's own report,
 * `apt-repo status --json` (repo/status.ts), run like any other command: as the operator account,
 * through remotePrefix (sudo -n -u <service user>). apt-ops reads no server file itself.
 */
import { z } from 'zod';
import { AptRepoError } from '../errors';
import { NAME_RE } from '../repo/channel';
import type { ChannelStatus } from '../repo/status';
import { renderChannelStatus } from '../cli/commands/status';
import { Connection } from './connect';
import { runIndexerJson } from './remote';
import { OpsConfig } from './stackConfig';
import { parseReport } from '../core/validate';

export { formatBytes } from '../cli/commands/status';

/** What `apt-ops status` reports (also its --json shape): the indexer's ChannelStatus, plus where it came from. */
export interface StatusReport extends ChannelStatus {
  stack: string;
  host: string;
}

const counts = z.record(z.string(), z.number().int().min(0));
const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 date');

/** The shape of `apt-repo status --json` (repo/status.ts ChannelStatus); unknown keys are dropped. */
export const ChannelStatusSchema = z.object({
  channel: z.string().regex(NAME_RE),
  webRoot: z.string(),
  diskBytes: z.number().int().min(0),
  current: z.object({ id: z.string(), date: isoDate, packages: counts }).optional(),
  generationsKept: z.number().int().min(0),
  lastAdded: isoDate.optional(),
  pair: z.object({ upstream: z.string(), downstream: z.string() }).optional(),
  pending: z.number().int().min(0).optional(),
  channels: z.record(z.string(), counts),
  rejectedDir: z.string(),
  rejectedCount: z.number().int().min(0),
  rejected: z.array(
    z.object({
      name: z.string(),
      file: z.string().optional(),
      size: z.number().min(0),
      date: isoDate,
      reason: z.string().optional(),
    }),
  ),
  lock: z.object({ pid: z.number(), host: z.string(), since: z.string() }).optional(),
  /** The facts below are absent from an indexer older than them. */
  disk: z
    .object({ pool: z.number().min(0), generations: z.number().min(0), trash: z.number().min(0), backups: z.number().min(0) })
    .optional(),
  counts: z
    .record(z.string(), z.record(z.string(), z.object({ packages: z.number().int().min(0), versions: z.number().int().min(0) })))
    .optional(),
  lastIngest: z
    .object({
      time: isoDate,
      who: z.string(),
      accepted: z.number().int().min(0),
      rejected: z.number().int().min(0),
      generation: z.string().optional(),
    })
    .optional(),
  lastBackup: z
    .object({ stamp: z.string(), createdAt: isoDate, ageSeconds: z.number().min(0), generation: z.string().optional() })
    .optional(),
  signingKey: z.object({ fingerprint: z.string(), algorithm: z.string(), expires: isoDate.optional() }).optional(),
  validUntil: z.object({ date: isoDate, refreshAt: isoDate.optional() }).optional(),
  catalogue: z.object({ generation: z.string(), builtAt: isoDate, current: z.boolean() }).optional(),
  /** Absent from an indexer older than doctor, or on a channel without an expected-state manifest. */
  drift: z.object({ differences: z.number().int().min(0), notChecked: z.number().int().min(0) }).optional(),
  problems: z.array(z.string()),
});

/**
 * Validates the indexer's status report.
 * @throws AptRepoError naming the host and the first field that does not match (an indexer too
 *         old to know `status`, or one that prints something else).
 */
export function parseChannelStatus(data: unknown, host: string): ChannelStatus {
  return parseReport(ChannelStatusSchema, data, `the remote apt-repo status --json on ${host} is not a status report`) as ChannelStatus;
}

/** Renders a StatusReport as the text `apt-ops status` prints. */
export function renderStatus(r: StatusReport): string {
  return renderChannelStatus(r, ` (stack ${r.stack}) on ${r.host}`, `apt-ops --stack ${r.stack} doctor`);
}

/**
 * Gathers a StatusReport over `conn` with one remote `apt-repo status --json`. Remote stderr goes
 * to `stderr`.
 * @throws as runIndexerJson (indexer missing, lock, connection); AptRepoError when the command
 *         fails (its exit code) or prints something that is not a status report.
 */
export async function gatherStatus(conn: Connection, cfg: OpsConfig, stderr: (b: Buffer) => void): Promise<StatusReport> {
  const r = await runIndexerJson(conn, cfg, ['status'], { stderr });
  if (r.code !== 0) throw new AptRepoError(`the remote apt-repo status on ${cfg.host} failed (exit ${r.code})`);
  return { stack: cfg.stack, host: cfg.host, ...parseChannelStatus(r.data, cfg.host) };
}
