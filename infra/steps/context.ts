/**
 * What the plan's step builders share (infra/steps/<step>.ts, composed by infra/plan.ts buildPlan):
 * the plan's data types, the context every builder reads, the staging of a step's files, and the
 * wrapping of a step body into a PlanStep. See infra/plan.ts for how a step is applied.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ExpectedContent, ExpectedStateBuilder } from '../expectedState';
import type { ChannelLayout } from '../layout';
import { shq, wrapScript } from '../shell';

/** A file a step needs on the server before its script runs (copied to a staging path). */
export interface PlanFile {
  remotePath: string;
  content: string;
  /** Mode and owner the script installs the file's final copy with (informational for staging). */
  mode: string;
  owner: string;
  /** Always false: secrets travel on stdin (see the module comment). */
  secret: boolean;
  /** When set, the file is copied from this local path and `content` is ''. */
  localPath?: string;
}

/** One remote step. */
export interface PlanStep {
  name: string;
  dependsOn: string[];
  files: PlanFile[];
  /** The command text: `bash -c '<set -eu, idempotent body>'`; never holds a secret. */
  script: string;
  /** Base64 lines of the secret files, read by the script in order; undefined when none. */
  secretStdin?: string;
  triggers: string[];
}

/** What the steps carry besides the config: keys, credentials file, bundle, certificate. */
export interface PlanMaterial {
  /** Armored OpenPGP private key (secret). */
  signingKeyArmored: string;
  publicKeyArmored: string;
  /** The binary (non-armored) public key, base64. */
  publicKeyBinaryBase64: string;
  /** htpasswd file text (secret); '' when there are no client credentials. */
  htpasswd: string;
  /** Local path of dist/apt-repo.cjs and its SHA-256 (hex). */
  bundlePath: string;
  bundleSha256: string;
  /** PEM certificate chain and key (secret) when tls.mode is 'files'. */
  tlsCert?: string;
  tlsKey?: string;
  /** The trusted keys of the stack's mirrors (infra/mirrors.ts readMirrorKeys; public); unset: no mirror names a key. */
  mirrorKeys?: import('../mirrors').MirrorKeys;
}

/** Names of the steps, in the order the plan lists them. */
export const STEP_NAMES = [
  'host-base',
  'dirs',
  'pre-update-backup',
  'config',
  'signing-key',
  'htpasswd',
  'tls',
  'indexer',
  'signer',
  'publish',
  'vhost',
  'ssh-access',
  'sudoers',
  'ingest-units',
  'refresh-units',
  'metrics-units',
  'mirrors',
  'backup-units',
  'expected-state',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

/**
 * What a step builder reads: the validated stack config, the material, the channel's layout, the
 * index inputs digest, the key's fingerprint, and the expected-state manifest being built (each
 * builder records there what its step installs; builders run in plan order, so the manifest is
 * the same whatever the builders' files).
 */
export interface PlanContext {
  cfg: StackConfig;
  material: PlanMaterial;
  layout: ChannelLayout;
  /** indexInputsDigest(cfg, material) (infra/plan.ts): named by pre-update-backup, signer and publish. */
  indexDigest: string;
  /** The v4 fingerprint of the binary public key (expectedState.ts openpgpV4Fingerprint). */
  keyFingerprint: ReturnType<typeof import('../expectedState').openpgpV4Fingerprint>;
  expected: ExpectedStateBuilder;
}

/** One line of base64: how a secret file travels on a step's stdin. */
export const b64line = (s: string | Buffer) => Buffer.from(s).toString('base64') + '\n';

/** The files one step stages, and what it installs (recorded in the expected state). */
export class StepFiles {
  readonly files: PlanFile[] = [];
  /** `step`'s files are staged as `<layout.stagingDir>/<step>.<name>`; `expected` records what it installs. */
  constructor(
    private readonly layout: ChannelLayout,
    private readonly step: string,
    private readonly expected: ExpectedStateBuilder,
  ) {}
  /** Records that this step installs `dest` so (expected state, infra/expectedState.ts). */
  expect(dest: string, mode: string, owner: string, group: string, what: ExpectedContent, fingerprint?: string): void {
    this.expected.file(this.step, dest, mode, owner, group, what, fingerprint);
  }

  /** Stages `content` and returns the shell-quoted staging path. */
  stage(fileName: string, content: string, mode: string, owner: string, localPath?: string): string {
    const remotePath = path.posix.join(this.layout.stagingDir, `${this.step}.${fileName}`);
    this.files.push({ remotePath, content, mode, owner, secret: false, ...(localPath ? { localPath } : {}) });
    return shq(remotePath);
  }
}

/**
 * Wraps `body` into the PlanStep `name` of `cfg`'s channel: the script (infra/shell.ts wrapScript,
 * through sudo for a non-root SSH user) names the step, the channel and each staged file's SHA-256;
 * `triggers` gain `reapply <value>` when the stack sets reapply. Pure.
 */
export function makeStep(
  cfg: StackConfig,
  name: StepName,
  dependsOn: StepName[],
  body: string,
  files: PlanFile[] = [],
  secretStdin?: string,
  triggers: string[] = [],
): PlanStep {
  // A remote.Command runs again only when its own inputs change, never when a copy it depends on
  // does: naming each staged file's digest in the script makes a new vhost, unit or certificate
  // re-run the step that installs it. (The bundle, copied from localPath, has its digest checked
  // and as a trigger already.)
  const digests = files
    .filter((f) => !f.localPath)
    .map((f) => `# staged ${path.posix.basename(f.remotePath)} sha256 ${crypto.createHash('sha256').update(f.content).digest('hex')}\n`);
  // `reapply` (stack config): a new value replaces every command once, a forced re-apply after drift.
  const allTriggers = cfg.reapply ? [...triggers, `reapply ${cfg.reapply}`] : triggers;
  return {
    name,
    dependsOn,
    files,
    script: wrapScript(`# apt-repo step '${name}' (channel ${cfg.channel})\n${digests.join('')}${body}`, cfg.ssh.user),
    ...(secretStdin !== undefined ? { secretStdin } : {}),
    triggers: allTriggers,
  };
}
