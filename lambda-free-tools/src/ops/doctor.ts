/**
 * `apt-ops doctor [--expected <file>]`: runs `apt-repo doctor --json` on the server like status
 * does (as the operator account, through remotePrefix: `sudo -n -u <service user>`), so the check
 * sees what the channel's service user sees (secret files are listed as not checked: only root can
 * read them). With --expected, the local manifest (`pulumi stack output expectedState`) is sent on
 * the remote command's stdin (`doctor --expected -`): a manifest edited on the server is then
 * caught too. apt-ops reads no server file itself.
 */
import { z } from 'zod';
import { parseReport } from '../core/validate';
import { AptRepoError } from '../errors';
import type { DoctorReport } from '../repo/doctor';
import { DIFFERENCE_FIELDS } from '../repo/doctor';
import { NAME_RE } from '../repo/channel';
import { assertManifestChannel, parseExpectedState, readManifestFile } from '../repo/expectedState';
import { renderDifferences, renderDoctorSummary } from '../cli/commands/doctor';
import { Connection } from './connect';
import { runIndexerJson } from './remote';
import { OpsConfig } from './stackConfig';

/** What `apt-ops doctor --json` prints: the indexer's DoctorReport, plus where it came from. */
export interface DoctorOpsReport extends DoctorReport {
  stack: string;
  host: string;
  /** Where the manifest came from: 'server' (the channel's expected-state.json), or the local file sent. */
  expected: string;
}

/** The shape of `apt-repo doctor --json` (repo/doctor.ts DoctorReport); unknown keys are dropped. */
const DoctorReportSchema = z.object({
  channel: z.string().regex(NAME_RE),
  checked: z.number().int().min(0),
  differences: z.array(
    z.object({ path: z.string(), field: z.enum(DIFFERENCE_FIELDS), expected: z.string(), found: z.string(), step: z.string() }),
  ),
  notChecked: z.array(z.object({ path: z.string(), reason: z.string() })),
});

/**
 * Validates the indexer's doctor report.
 * @throws AptRepoError naming the host and the first field that does not match (an indexer too
 *         old to know `doctor` prints its usage error instead, exit 2, handled by gatherDoctor).
 */
export function parseDoctorReport(data: unknown, host: string): DoctorReport {
  return parseReport(DoctorReportSchema, data, `the remote apt-repo doctor --json on ${host} is not a doctor report`);
}

/**
 * Reads and checks the local manifest given to --expected, before connecting.
 * @returns its bytes, sent unchanged.
 * @throws UsageError (exit 2) when the file cannot be read, is not a regular file or is larger than
 *         the indexer reads (repo/expectedState.ts readManifestFile), or is the manifest of another
 *         channel than `channel` (assertManifestChannel); ExpectedStateError (exit 2, a UsageError)
 *         when it is not a format 1 manifest.
 */
export function readLocalManifest(file: string, channel: string): { file: string; data: Buffer } {
  const data = readManifestFile(file);
  assertManifestChannel(parseExpectedState(data.toString('utf8'), file), channel, file);
  return { file, data };
}

/**
 * Runs the remote doctor over `conn`. `manifest` (from readLocalManifest) is sent on stdin with
 * `--expected -`; without it the server's own manifest is used. Remote stderr goes to `stderr`.
 * @returns `{ code: 0 | 1, report }` (1: differences), or `{ code: 2 }` when the indexer refused
 *          (no manifest on the server, another channel's: its message went to `stderr`).
 * @throws as runIndexerJson (indexer missing, connection); AptRepoError for another exit code or
 *         output that is not a doctor report.
 */
export async function gatherDoctor(
  conn: Connection,
  cfg: OpsConfig,
  manifest: { file: string; data: Buffer } | undefined,
  stderr: (b: Buffer) => void,
): Promise<{ code: number; report?: DoctorOpsReport }> {
  const cmd = manifest ? ['doctor', '--expected', '-'] : ['doctor'];
  const r = await runIndexerJson(conn, cfg, cmd, { stderr, stdin: manifest?.data });
  if (r.code === 2) return { code: 2 };
  if (r.code !== 0 && r.code !== 1) throw new AptRepoError(`the remote apt-repo doctor on ${cfg.host} failed (exit ${r.code})`);
  const report = parseDoctorReport(r.data, cfg.host);
  return {
    code: report.differences.length ? 1 : 0,
    report: { stack: cfg.stack, host: cfg.host, expected: manifest?.file ?? 'server', ...report },
  };
}

/** The text `apt-ops doctor` prints: the differences table (stdout) and the summary (stderr). */
export function renderDoctor(r: DoctorOpsReport): { stdout: string; stderr: string } {
  const where = ` (stack ${r.stack}) on ${r.host}, against ${r.expected === 'server' ? "the server's expected-state.json" : r.expected}`;
  return { stdout: renderDifferences(r), stderr: renderDoctorSummary(r, where, r.stack) };
}
