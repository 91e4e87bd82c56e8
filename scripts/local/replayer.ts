/**
 * Replay of the Pulumi program's remote steps, for real, over SSH (node-ssh), without the Pulumi CLI:
 * how `npm run local` (scripts/local-stack.ts) builds its sandbox, and what the replay tests check.
 *
 * The program (infra/plan.ts `buildPlan`) reduces every remote resource to a PlanStep: files that a
 * copy resource uploads, then a bash script that a remote.Command runs with `secretStdin` on its
 * stdin. This module plays those steps the way the resources would:
 * - steps run in dependency order (a stable topological sort on `dependsOn`, the order Pulumi's
 *   engine guarantees; steps with no path between them keep the plan's order);
 * - files are written over SFTP as the SSH user, mode left to the server's defaults, nothing ever
 *   deleted (what a copy resource does: it never chmods, chowns or removes — the script installs);
 * - each script is sent as the exec request's command text (what remote.Command does with
 *   `create`), so it runs under the SSH user's login shell, with no PTY.
 * A step "changed" something when its script printed a line `CHANGED` on stdout (the convention of
 * infra/plan.ts); independently of that, `snapshotTree` lists a directory tree (type, mode, owner,
 * size, symlink target, SHA-256) so a test can prove that a second run changed nothing on disk.
 */
import { NodeSSH } from 'node-ssh';
import { shellQuote } from '../../lambda-free-tools/src/shellQuote';

/** One remote step: structurally infra/plan.ts `PlanStep`, so the Replayer also plays hand-made steps. */
export interface ReplayStep {
  name: string;
  dependsOn: string[];
  /** `localPath` set: the file is copied from that local file (the indexer bundle) and `content` is ignored. */
  files: { remotePath: string; content: string; mode: string; owner: string; secret: boolean; localPath?: string }[];
  script: string;
  secretStdin?: string;
  triggers: string[];
}

/** Where and as whom to connect; `hostPublicKey` ('ssh-ed25519 AAAA…') is checked when given, as the program's `hostKey`. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** OpenSSH/PEM private key text. */
  privateKey: string;
  hostPublicKey?: string;
}

/** What one step did: exit status, its output, whether it reported a change, and the paths it uploaded. */
export interface StepRun {
  name: string;
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the script printed a line that is exactly `CHANGED` (leading/trailing blanks ignored). */
  changed: boolean;
  uploaded: string[];
}

/** A tree listing: relative path → 'type mode user group size sha256|linktarget'. */
export type TreeSnapshot = Map<string, string>;

/**
 * Orders `steps` so that every step comes after the steps it names in `dependsOn`; among steps that
 * are ready at the same time the plan's order is kept (Kahn's algorithm, stable).
 * Throws Error naming the step for a duplicate name, an unknown dependency, or a cycle.
 */
export function orderSteps<T extends Pick<ReplayStep, 'name' | 'dependsOn'>>(steps: T[]): T[] {
  const byName = new Map<string, T>();
  for (const s of steps) {
    if (byName.has(s.name)) throw new Error(`plan: duplicate step name '${s.name}'`);
    byName.set(s.name, s);
  }
  for (const s of steps) {
    for (const d of s.dependsOn) if (!byName.has(d)) throw new Error(`plan: step '${s.name}' depends on unknown step '${d}'`);
  }
  const done = new Set<string>();
  const out: T[] = [];
  while (out.length < steps.length) {
    const next = steps.find((s) => !done.has(s.name) && s.dependsOn.every((d) => done.has(d)));
    if (!next) {
      const left = steps.filter((s) => !done.has(s.name)).map((s) => s.name);
      throw new Error(`plan: dependency cycle among steps ${left.join(', ')}`);
    }
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/** True when `stdout` holds a line `CHANGED` (the plan scripts' way to say they modified the host). */
export function reportsChange(stdout: string): boolean {
  return stdout.split('\n').some((l) => l.trim() === 'CHANGED');
}

/** One SSH session that replays plan steps. Create with `Replayer.connect`, end with `dispose`. */
export class Replayer {
  private constructor(private readonly ssh: NodeSSH) {}

  /**
   * Connects to `target` with its private key; when `hostPublicKey` is set the server's host key
   * must equal it (else the connection is refused, like the program's `hostKey`). Rejects with
   * node-ssh's error when the connection or the authentication fails.
   */
  static async connect(target: SshTarget): Promise<Replayer> {
    const ssh = new NodeSSH();
    const expected = target.hostPublicKey ? Buffer.from(target.hostPublicKey.trim().split(/\s+/)[1] ?? '', 'base64') : undefined;
    await ssh.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: 20000,
      hostVerifier: expected ? (key: Buffer) => Buffer.isBuffer(key) && key.equals(expected) : undefined,
    } as Parameters<NodeSSH['connect']>[0]);
    return new Replayer(ssh);
  }

  /** Runs `command` (as remote.Command runs `create`: the login shell's `-c`), `stdin` written then closed. Never rejects on a non-zero exit. */
  async exec(command: string, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await this.ssh.execCommand(command, { stdin: stdin ?? '', noTrim: true });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Writes `content` to `remotePath` over SFTP as the SSH user (a copy resource's behaviour: the
   * parent directory must exist, mode and owner are the server's defaults, an existing file is
   * overwritten). Rejects with the SFTP error naming the path.
   */
  async upload(remotePath: string, content: string): Promise<void> {
    const sftp = await this.ssh.requestSFTP();
    try {
      await new Promise<void>((resolve, reject) => {
        sftp.writeFile(remotePath, Buffer.from(content, 'utf8'), (err: Error | null | undefined) =>
          err ? reject(new Error(`upload ${remotePath}: ${err.message}`)) : resolve(),
        );
      });
    } finally {
      sftp.end();
    }
  }

  /** Copies the local file `localPath` to `remotePath` over SFTP (streamed; same rules as upload). */
  async uploadFile(localPath: string, remotePath: string): Promise<void> {
    try {
      await this.ssh.putFile(localPath, remotePath);
    } catch (err) {
      throw new Error(`upload ${localPath} to ${remotePath}: ${(err as Error).message}`);
    }
  }

  /**
   * Applies one step: uploads its files, then runs its script with `secretStdin`.
   * Throws Error naming the step with its exit code and stderr when the script fails (stdout is left
   * out of the message because a script may print what it installed).
   */
  async applyStep(step: ReplayStep): Promise<StepRun> {
    const uploaded: string[] = [];
    for (const f of step.files) {
      if (f.localPath) await this.uploadFile(f.localPath, f.remotePath);
      else await this.upload(f.remotePath, f.content);
      uploaded.push(f.remotePath);
    }
    const r = await this.exec(step.script, step.secretStdin);
    if (r.code !== 0) {
      throw new Error(`step '${step.name}' exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
    }
    return { name: step.name, code: r.code, stdout: r.stdout, stderr: r.stderr, changed: reportsChange(r.stdout), uploaded };
  }

  /** Applies every step of `steps` in dependency order (see orderSteps); stops at the first failure (Error from applyStep). */
  async applyPlan(steps: ReplayStep[], onStep?: (run: StepRun) => void): Promise<StepRun[]> {
    const runs: StepRun[] = [];
    for (const step of orderSteps(steps)) {
      const run = await this.applyStep(step);
      onStep?.(run);
      runs.push(run);
    }
    return runs;
  }

  /**
   * Lists the tree under `root` on the remote host: every entry's type, octal mode, owner, group,
   * size and SHA-256 (files) or target (symlinks). Modification times are left out on purpose: a
   * rewrite with identical content and metadata is not a change the host can see. `exclude` are
   * paths relative to `root` ('var/log') pruned with their subtrees.
   */
  async snapshotTree(root: string, exclude: string[] = []): Promise<TreeSnapshot> {
    const prune = exclude.length
      ? `\\( ${exclude.map((e) => `-path ${shellQuote('./' + e.replace(/^\.?\/+/, ''), { always: true })}`).join(' -o ')} \\) -prune -o`
      : '';
    const cmd = [
      `cd ${shellQuote(root, { always: true })}`,
      `find . -xdev ${prune} -printf 'E\\t%p\\t%y %m %u %g %s %l\\n'`,
      `find . -xdev ${prune} -type f -print0 | xargs -0 -r sha256sum | sed 's/^/H\\t/'`,
    ].join(' && ');
    const r = await this.exec(`set -eu; ${cmd}`);
    if (r.code !== 0) throw new Error(`snapshot of ${root} failed (${r.code}): ${r.stderr}`);
    const entries: TreeSnapshot = new Map();
    const hashes = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('E\t')) {
        const [, p, meta] = line.split('\t');
        entries.set(p, meta.trimEnd());
      } else if (line.startsWith('H\t')) {
        const m = /^H\t([0-9a-f]{64}) [ *](.*)$/.exec(line);
        if (m) hashes.set(m[2], m[1]);
      }
    }
    for (const [p, h] of hashes) entries.set(p, `${entries.get(p)} ${h}`);
    return entries;
  }

  /** Closes the SSH connection. */
  dispose(): void {
    this.ssh.dispose();
  }
}
