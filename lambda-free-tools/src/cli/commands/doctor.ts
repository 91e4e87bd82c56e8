/**
 * `apt-repo doctor [--expected <file>|-]`: compares the channel's server files with the manifest
 * the Pulumi program installed (`<configDir>/expected-state.json`, repo/expectedState.ts), or with
 * the given file, or with stdin (`-`: what `apt-ops doctor --expected` sends), and names every
 * difference (repo/doctor.ts). Read-only: no lock, nothing written; run by root (checks the secret
 * files too), the channel's service user or an operator through sudo.
 * Output: a table `PATH WHAT EXPECTED FOUND STEP` on stdout, the summary, what could not be
 * checked and how to re-apply on stderr; --json prints the DoctorReport.
 * Exit codes: 0 no difference, 1 differences, 2 usage (no manifest, a manifest that does not
 * parse, a manifest of another channel).
 */
import * as path from 'path';
import type { Command } from 'commander';
import { UsageError } from '../../errors';
import { channelPaths } from '../../repo/channel';
import type { DoctorReport } from '../../repo/doctor';
import {
  assertManifestChannel,
  EXPECTED_STATE_FILE,
  ExpectedState,
  MANIFEST_MAX_BYTES,
  parseExpectedState,
  readManifestFile,
} from '../../repo/expectedState';
import { action, table } from '../context';

/** What `doctor` says when the channel has no manifest. */
function noManifestMessage(file: string): string {
  return (
    `${file} does not exist: this channel was not deployed by the Pulumi program, or by a version without expected-state; ` +
    'pass --expected <file> from `pulumi stack output expectedState`'
  );
}

/** Reads all of stdin (at most MANIFEST_MAX_BYTES). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    n += b.length;
    if (n > MANIFEST_MAX_BYTES) throw new UsageError(`stdin: a manifest larger than ${MANIFEST_MAX_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads and validates the manifest: `expected` undefined → `<configDir>/expected-state.json` of
 * the channel; '-' → stdin; else that file. Returns the manifest and the name it was read under.
 * @throws UsageError (exit 2): no default manifest (noManifestMessage), a file that cannot be read,
 *         is not a regular file or is larger than MANIFEST_MAX_BYTES (repo/expectedState.ts
 *         readManifestFile); ExpectedStateError (exit 2) for one that does not parse.
 */
export async function readManifest(
  root: string,
  channel: string,
  expected: string | undefined,
): Promise<{ state: ExpectedState; source: string }> {
  if (expected === '-') return { state: parseExpectedState(await readStdin(), 'stdin'), source: 'stdin' };
  const file = expected ?? path.join(channelPaths(root, channel).configDir, EXPECTED_STATE_FILE);
  const text = readManifestFile(file, expected === undefined ? noManifestMessage(file) : undefined).toString('utf8');
  return { state: parseExpectedState(text, file), source: file };
}

/** The differences as the table doctor prints on stdout; '' when there is none. */
export function renderDifferences(r: Pick<DoctorReport, 'differences'>): string {
  if (!r.differences.length) return '';
  return table(
    ['PATH', 'WHAT', 'EXPECTED', 'FOUND', 'STEP'],
    r.differences.map((d) => [d.path, d.field, d.expected, d.found, d.step]),
  );
}

/**
 * The summary doctor prints on stderr: counts, what was not checked and why, and, when anything
 * differs, the steps to re-apply and how (the stack config `apt-repo:reapply`: a new value re-runs
 * every step once). `where` ends the first line (apt-ops: ' (stack prod) on host'); `stack`, when
 * known (apt-ops), is named in the pulumi commands.
 */
export function renderDoctorSummary(r: DoctorReport, where = '', stack?: string): string {
  const lines: string[] = [];
  const n = r.differences.length;
  lines.push(
    `${r.channel}${where}: ${n === 0 ? 'no difference' : `${n} difference${n === 1 ? '' : 's'}`} from the expected state (${r.checked} path${r.checked === 1 ? '' : 's'} checked` +
      `${r.notChecked.length ? `, ${r.notChecked.length} not checked` : ''})`,
  );
  for (const x of r.notChecked) lines.push(`  not checked: ${x.path}: ${x.reason}`);
  if (n) {
    const steps = [...new Set(r.differences.map((d) => d.step))].sort();
    lines.push(`to repair: re-apply step${steps.length === 1 ? '' : 's'} ${steps.join(', ')} with`);
    const s = stack ? ` --stack ${stack}` : '';
    lines.push(`  pulumi config set${s} apt-repo:reapply "$(date -u +%Y%m%dT%H%M%SZ)" && pulumi up${s}`);
    lines.push('  (a new apt-repo:reapply value re-runs every step of the stack once)');
  }
  return lines.join('\n');
}

/** Registers `doctor` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'compare the server files (modes, owners, contents, keys, links) with what the Pulumi stack installed, and name every difference',
    )
    .option('--expected <file>', `the manifest to compare with ('-': stdin; default: <configDir>/${EXPECTED_STATE_FILE})`)
    .action(
      action<{ expected?: string }>(async (_args, o) => {
        const { checkExpectedState } = await import('../../repo/doctor');
        const { state, source } = await readManifest(o.root, o.channel, o.expected);
        assertManifestChannel(state, o.channel, source, `--channel ${o.channel}`);
        const report = await checkExpectedState(state);
        if (!o.json) {
          // The table first, then the summary under it (action() prints nothing for an empty human text).
          const rows = renderDifferences(report);
          if (rows) process.stdout.write(rows + '\n');
          process.stderr.write(renderDoctorSummary(report) + '\n');
        }
        return { data: report, human: '', exitCode: report.differences.length ? 1 : 0 };
      }),
    );
}
