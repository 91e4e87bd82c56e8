/**
 * A `pulumi up` of the plan's remote resources, without the Pulumi CLI: each PlanStep becomes the
 * resources infra/remoteSteps.ts attaches (one remote.CopyToRemote per staged file, named
 * `<component>-<step>-copy-<file>`, then one remote.Command named `<component>-<step>`), and a
 * state of their previous inputs (a JSON file standing for the stack's state file) decides what
 * happens to each, by @pulumi/command 1.2.1's rules:
 * - remote.Command: created (its `create` runs) when absent from the state; when its own inputs
 *   differ (`create`, `stdin`, the connection) it is updated, and having no `update` the provider
 *   runs `create` again; when its `triggers` differ it is replaced (delete then create: our commands
 *   have no `delete`, so only `create` runs). `dependsOn` orders and never re-runs anything.
 * - remote.CopyToRemote: copies when created and again when its `source` (content) or
 *   `remotePath` changes; it never deletes anything on the server.
 * - a resource of the state that the program no longer declares is deleted: nothing runs on the
 *   server (no `delete` command), it leaves the state.
 * - a failed operation is not recorded (the state keeps the previous inputs, or no entry for a
 *   create), so the next up tries it again; nothing after it in dependency order is touched in
 *   that up (Pulumi stops scheduling new operations after an error).
 * The state holds SHA-256 digests of stdin and of the connection (they carry secrets), never the
 * secrets themselves. Steps are processed in dependency order (test/harness/replay.ts orderSteps).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { STEP_OWNERS } from '../../infra/plan';
import { orderSteps, reportsChange, type Replayer, type ReplayStep } from './replay';

/** What pulumiUp needs of a Replayer (a fake in unit tests): upload a string or a local file, run a command. */
export type ReplayTarget = Pick<Replayer, 'upload' | 'uploadFile' | 'exec'>;

/** What one resource is recorded with: its kind, its step, and the inputs the engine diffs. */
export interface ResourceRecord {
  kind: 'command' | 'copy';
  step: string;
  /** command: create (text), stdinSha256 (or null), triggers, connectionSha256; copy: remotePath, sourceSha256. */
  inputs: Record<string, unknown>;
}

/** What pulumiUp did to one resource. */
export type ResourceOp = 'create' | 'update' | 'replace' | 'delete' | 'same';

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/**
 * The stack state between ups: resource name → ResourceRecord, kept in a JSON file (mode 0600).
 * `load` of a missing file is an empty (new) stack; `save` writes the file atomically (temp file +
 * rename). Throws the fs/JSON error for an unreadable or malformed file.
 */
export class ReplayState {
  private constructor(
    readonly file: string,
    readonly resources: Map<string, ResourceRecord>,
  ) {}

  /** Reads `file` (absent: a new stack with no resource). */
  static load(file: string): ReplayState {
    if (!fs.existsSync(file)) return new ReplayState(file, new Map());
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { resources: Record<string, ResourceRecord> };
    return new ReplayState(file, new Map(Object.entries(parsed.resources)));
  }

  /** Writes the state to its file (sorted by name, 0600). */
  save(): void {
    const resources = Object.fromEntries([...this.resources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify({ resources }, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

/** The component a step belongs to (infra/plan.ts STEP_OWNERS; a step nobody claims: the channel). */
export function componentOf(step: string): keyof typeof STEP_OWNERS {
  for (const [owner, steps] of Object.entries(STEP_OWNERS) as [keyof typeof STEP_OWNERS, readonly string[]][])
    if (steps.includes(step)) return owner;
  return 'channel';
}

/**
 * The resource names stacks/index.ts gives a step of `channel`'s stack (components
 * `<channel>-host-base`, `<channel>`, `<channel>-backups`; infra/remoteSteps.ts attachSteps):
 * the command `<component>-<step>` and, per staged file in order, `<component>-<step>-copy-<suffix>`
 * where suffix is the staging file name without its `<step>.` prefix.
 */
export function resourceNames(channel: string, step: Pick<ReplayStep, 'name' | 'files'>): { command: string; copies: string[] } {
  const owner = componentOf(step.name);
  const component = owner === 'hostBase' ? `${channel}-host-base` : owner === 'backups' ? `${channel}-backups` : channel;
  const command = `${component}-${step.name}`;
  return { command, copies: step.files.map((f) => `${command}-copy-${path.posix.basename(f.remotePath).replace(/^[^.]+\./, '')}`) };
}

/** Options of pulumiUp. */
export interface PulumiUpOptions {
  /** The stack's channel: the resource names' prefix. */
  channel: string;
  /** Identity of the SSH connection (host, port, user, host key…); a change updates every command. Hashed before it is stored. */
  connection?: string;
}

/** One command that ran during an up. */
export interface CommandRun {
  step: string;
  resource: string;
  op: 'create' | 'update' | 'replace';
  stdout: string;
  stderr: string;
  /** The script printed a line `CHANGED`. */
  changed: boolean;
}

/** What one up did. */
export interface UpReport {
  /** Every resource of the program and of the previous state, with what happened to it. */
  resources: Record<string, ResourceOp>;
  /** The commands that ran, in order. */
  ran: CommandRun[];
  /** The remote paths that were (re)copied, in order. */
  copied: string[];
}

/** A failed up: the error of the failing resource, and what the up did before it (state saved). */
export class PulumiUpError extends Error {
  constructor(
    message: string,
    readonly resource: string,
    readonly report: UpReport,
  ) {
    super(message);
    this.name = 'PulumiUpError';
  }
}

/** The inputs of a step's remote.Command the engine diffs (stdin and connection as SHA-256). */
export function commandInputs(step: ReplayStep, connection = ''): Record<string, unknown> {
  return {
    create: step.script,
    stdinSha256: step.secretStdin === undefined ? null : sha256(step.secretStdin),
    triggers: step.triggers,
    connectionSha256: sha256(connection),
  };
}

function copyInputs(file: ReplayStep['files'][number]): Record<string, unknown> {
  return {
    remotePath: file.remotePath,
    sourceSha256: sha256(file.localPath ? fs.readFileSync(file.localPath) : Buffer.from(file.content, 'utf8')),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The operation the engine decides for a resource with `next` inputs given its `previous` record:
 * create (absent), same, replace (a command's triggers changed), update (any other input).
 */
export function diffResource(previous: ResourceRecord | undefined, next: ResourceRecord): Exclude<ResourceOp, 'delete'> {
  if (!previous || previous.kind !== next.kind) return 'create';
  if (same(previous.inputs, next.inputs)) return 'same';
  if (next.kind === 'command' && !same(previous.inputs.triggers, next.inputs.triggers)) return 'replace';
  return 'update';
}

/**
 * Applies `steps` (one stack's plan) to `target` as `pulumi up` would, given and updating `state`
 * (see the module comment), and saves the state. Steps run in dependency order; for each, its
 * copies (upload of only the files whose copy is created or updated), then its command (run with
 * its stdin when created, updated or replaced). Resources of the state absent from `steps` are
 * deleted from it (nothing runs). Resolves to the report. Throws PulumiUpError (state saved with
 * what succeeded) when an upload fails or a command exits non-zero; Error from orderSteps for a
 * bad dependency graph.
 */
export async function pulumiUp(
  target: ReplayTarget,
  state: ReplayState,
  steps: readonly ReplayStep[],
  opts: PulumiUpOptions,
): Promise<UpReport> {
  const report: UpReport = { resources: {}, ran: [], copied: [] };
  const connection = opts.connection ?? '';
  const ordered = orderSteps([...steps]);
  const declared = new Set<string>();
  for (const st of ordered) {
    const names = resourceNames(opts.channel, st);
    names.copies.forEach((n) => declared.add(n));
    declared.add(names.command);
  }
  const fail = (resource: string, message: string): never => {
    state.save();
    throw new PulumiUpError(message, resource, report);
  };
  for (const st of ordered) {
    const names = resourceNames(opts.channel, st);
    for (const [i, f] of st.files.entries()) {
      const name = names.copies[i];
      const next: ResourceRecord = { kind: 'copy', step: st.name, inputs: copyInputs(f) };
      const op = diffResource(state.resources.get(name), next);
      report.resources[name] = op;
      if (op === 'same') continue;
      try {
        if (f.localPath) await target.uploadFile(f.localPath, f.remotePath);
        else await target.upload(f.remotePath, f.content);
      } catch (err) {
        fail(name, `${name}: ${(err as Error).message}`);
      }
      report.copied.push(f.remotePath);
      state.resources.set(name, next);
    }
    const next: ResourceRecord = { kind: 'command', step: st.name, inputs: commandInputs(st, connection) };
    const op = diffResource(state.resources.get(names.command), next);
    report.resources[names.command] = op;
    if (op === 'same') continue;
    const r = await target.exec(st.script, st.secretStdin);
    if (r.code !== 0) fail(names.command, `step '${st.name}' (${names.command}, ${op}) exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
    report.ran.push({ step: st.name, resource: names.command, op, stdout: r.stdout, stderr: r.stderr, changed: reportsChange(r.stdout) });
    state.resources.set(names.command, next);
  }
  for (const name of [...state.resources.keys()]) {
    if (declared.has(name)) continue;
    report.resources[name] = 'delete';
    state.resources.delete(name);
  }
  state.save();
  return report;
}

/** The step names of the commands that ran in `report`, in order. */
export function stepsRan(report: UpReport): string[] {
  return report.ran.map((r) => r.step);
}
