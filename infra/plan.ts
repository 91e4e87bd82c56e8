/**
 * The plan: every remote step the Pulumi program performs on the server, as plain data, decided
 * by pure functions (the components in this folder only attach steps to remote.Command and
 * remote.CopyToRemote resources). One builder per step, `(ctx) => PlanStep`, in infra/steps/
 * (context.ts holds the shared types and helpers); buildPlan composes them in plan order.
 *
 * How a step is applied (what the components do, and what a replay must do the same way):
 * 1. After every step named in `dependsOn` has succeeded, each entry of `files` is copied to its
 *    `remotePath` (a staging path under `<root>/var/lib/apt-repo/staging/<channel>/`, owned by the
 *    SSH user) as the SSH user, as-is: mode and owner are left to the server, nothing is deleted.
 *    A file with `localPath` is copied from that local file (the indexer bundle, too big for a
 *    string input); its `content` is empty — use `inlineLocalFiles` to fill it for a replay that
 *    uploads strings. The script names each staged file's SHA-256 in a comment, so a changed file
 *    changes the command text and the step runs again (a command never re-runs for a dependency).
 * 2. `script` is sent as the SSH exec command text (what remote.Command's `create` is): a single
 *    `bash -c '…'` (through `sudo -n` for a non-root SSH user), with `secretStdin` on its stdin.
 *    Secret contents (the signing key, the htpasswd, the TLS key) travel ONLY on stdin, one base64
 *    line per secret file, in the order the script reads them; `files` never holds a secret (so
 *    `secret` is always false: no copy resource and no staged file ever carries one), and no
 *    secret is ever part of `script` (the plan is built twice, with and without the secrets, and
 *    the scripts must be identical: see plan.test.ts).
 * 3. The script prints a line `CHANGED` when it changed anything on the server; a second run with
 *    the same inputs prints nothing and changes nothing (files are installed only when content,
 *    mode or owner differ, nginx is reloaded only when its config changed, the first publish only
 *    runs when nothing is published yet or the channel config / indexer / key changed).
 * `triggers` replace the resource when they change (the indexer's SHA-256).
 * A config change reaches the index: the `publish` step's text names indexInputsDigest (codenames,
 * architectures, Release fields, routing, validUntilDays, indexer, public key), so it runs again
 * (and its stamp makes it publish) whenever one of them changes; an unrelated key (allowedCidrs)
 * leaves it alone. With validUntilDays, the `refresh-units` step installs a timer that re-signs
 * (`apt-repo publish --if-expiring`) before a third of the validity remains.
 *
 * Every path honours the config's `root`: with a sandbox root (a temp directory) the scripts work
 * as root on Debian 12 without touching the host's own files, except for two host-wide actions
 * that the config controls explicitly:
 * - `installPackages` (default true): apt-get install of the missing packages;
 * - the accounts (infra/accounts.ts: users and groups exist host-wide, whatever the root) and the
 *   operators' sudo rule, which sudo only reads in /etc/sudoers.d (a sandbox root's rule has a name
 *   of its own there: lambda-free-tools/src/settings/layout.ts sudoersFile);
 * - `services` ('systemd' by default when root is '/', else 'none'): with 'systemd', units are
 *   enabled and started (`systemctl daemon-reload`, `enable --now`), the signer is a socket unit,
 *   nginx is checked with `nginx -t` and reloaded and sshd with `sshd -t` and reloaded; with
 *   'none', unit files are only installed under the root, the signer runs as `sign-server` started
 *   by the step (pid file under <root>/run), nginx is reloaded only when a master runs with
 *   `<root>/run/nginx.pid` and sshd only when one runs with `<root>/run/sshd.pid` (a container's,
 *   or a test's that includes `<root>/etc/ssh/sshd_config.d/*.conf`).
 * In every mode the vhost is first checked alone with `nginx -t` against a minimal nginx.conf
 * (renderNginxTestConf), and the sshd drop-in alone with `sshd -t`, before it replaces the live file.
 * Accounts (settings/stackConfig.ts): `publish` runs as the channel's serviceUser (runuser) and signs
 * through the signer's socket; the private key is signerUser's alone. A sandbox root's parent
 * folders must be traversable by those users, and, for the uploaders' chroot into incomingDir,
 * root-owned and writable by root only (not under /tmp: test/harness/replay.ts makeSandboxRoot).
 * test/harness/replay.ts builds such a plan for a sandbox (no packages, no systemd, bundle inlined)
 * for the replay test and the local stack.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import { parse as parseYaml } from 'yaml';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { ExpectedStateBuilder, openpgpV4Fingerprint } from './expectedState';
import { channelLayout } from './layout';
import { renderRepoYaml } from './repoFiles';
import { configStep } from './steps/config';
import { STEP_NAMES, type PlanContext, type PlanMaterial, type PlanStep, type StepName } from './steps/context';
import { dirsStep } from './steps/dirs';
import { expectedStateStep } from './steps/expectedState';
import { hostBaseStep } from './steps/hostBase';
import { htpasswdStep } from './steps/htpasswd';
import { indexerStep } from './steps/indexer';
import { preUpdateBackupStep } from './steps/preUpdateBackup';
import { publishStep } from './steps/publish';
import { signerStep } from './steps/signer';
import { signingKeyStep } from './steps/signingKey';
import { sshAccessStep } from './steps/sshAccess';
import { sudoersStep } from './steps/sudoers';
import { tlsStep } from './steps/tls';
import { metricsUnitsStep } from './steps/metrics';
import { mirrorsStep } from './steps/mirrors';
import { backupUnitsStep, ingestUnitsStep, refreshUnitsStep } from './steps/units';
import { vhostStep } from './steps/vhost';

/** The plan's data types and step names: infra/steps/context.ts, re-exported. */
export { STEP_NAMES, type PlanContext, type PlanFile, type PlanMaterial, type PlanStep, type StepName } from './steps/context';

/** The steps HostBase and Backups attach; the Channel component attaches every other one. */
const HOST_BASE_STEPS: StepName[] = ['host-base'];
const BACKUPS_STEPS: StepName[] = ['backup-units', 'expected-state'];

/** Which component attaches which step (infra/hostBase.ts, infra/channel.ts, infra/backups.ts), in the plan's order. */
export const STEP_OWNERS: Record<'hostBase' | 'channel' | 'backups', StepName[]> = {
  hostBase: HOST_BASE_STEPS,
  channel: STEP_NAMES.filter((n) => !HOST_BASE_STEPS.includes(n) && !BACKUPS_STEPS.includes(n)),
  backups: BACKUPS_STEPS,
};

/**
 * repo.yaml keys that never change what `publish` writes under dists/: where the public key files
 * are named (keyName: the signing-key step writes them), the URL clients use (url: client-setup
 * prints it), state, backup and drop folders, the signer's socket, how many generations are kept,
 * the upstream promote reads, lock and backup settings. Every other key (those added later too)
 * counts as index-affecting: a key nobody classified costs at most one needless publish, never a
 * stale index.
 */
export const NON_INDEX_REPO_KEYS: readonly string[] = [
  'keyName',
  'url',
  'stateDir',
  'backupDir',
  'incomingDir',
  'signerSocket',
  'generationsKeep',
  'upstream',
  'lockTimeoutSeconds',
  'backupKeep',
  // Where the metrics file goes.
  'metricsDir',
];

/**
 * Everything that changes the indexes `publish` writes, as the server will read it: liste_dist and
 * liste_arch (codenames, architectures, in file order), the index-affecting keys of the rendered
 * repo.yaml (origin, label, description, component, routing, validUntilDays, webRoot …: every key
 * but NON_INDEX_REPO_KEYS), the indexer bundle's SHA-256 and the SHA-256 of the binary public key
 * (a new key must re-sign). Nothing secret: the private key, credentials and TLS key are not read.
 */
export function indexInputs(
  cfg: StackConfig,
  material: Pick<PlanMaterial, 'bundleSha256' | 'publicKeyBinaryBase64'>,
): Record<string, unknown> {
  const repoYaml = parseYaml(renderRepoYaml(cfg, channelLayout(cfg))) as Record<string, unknown>;
  const kept = Object.fromEntries(
    Object.entries(repoYaml)
      .filter(([k]) => !NON_INDEX_REPO_KEYS.includes(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return {
    codenames: cfg.codenames,
    architectures: cfg.architectures,
    repoYaml: kept,
    indexerSha256: material.bundleSha256,
    publicKeySha256: crypto.createHash('sha256').update(Buffer.from(material.publicKeyBinaryBase64, 'base64')).digest('hex'),
  };
}

/**
 * SHA-256 (hex) of indexInputs: the `publish` and `signer` steps name it in their command text, so
 * that under Pulumi's rule (a command runs again only when its own inputs change) a change of any
 * of them runs the publish again, and restarts a sign-server that checks Releases against the old
 * origin, label and codenames. Deterministic: same config and material, same digest.
 */
export function indexInputsDigest(cfg: StackConfig, material: Pick<PlanMaterial, 'bundleSha256' | 'publicKeyBinaryBase64'>): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(indexInputs(cfg, material)))
    .digest('hex');
}

/**
 * The step builders, in plan order (expected-state comes last, after all of them); a builder that
 * returns undefined leaves its step out (htpasswd without credentials, tls with mode none,
 * ingest-units with an upstream).
 */
const BUILDERS: readonly ((ctx: PlanContext) => PlanStep | undefined)[] = [
  hostBaseStep,
  dirsStep,
  preUpdateBackupStep,
  configStep,
  signingKeyStep,
  htpasswdStep,
  tlsStep,
  indexerStep,
  signerStep,
  publishStep,
  vhostStep,
  sshAccessStep,
  sudoersStep,
  ingestUnitsStep,
  refreshUnitsStep,
  metricsUnitsStep,
  mirrorsStep,
  backupUnitsStep,
];

/**
 * Builds the plan of `cfg`'s channel from the stack config and `material`.
 * Steps (dependsOn in brackets): host-base; dirs [host-base]; config [dirs]; signing-key [dirs];
 * htpasswd [dirs] (only with client credentials); tls [dirs] (tls.mode files; certbot: [dirs, htpasswd?]); indexer
 * [dirs]; signer [config, signing-key, indexer]; publish [config, signing-key, indexer, signer];
 * vhost [signing-key, publish, htpasswd?, tls?]; ssh-access [dirs]; sudoers [dirs];
 * ingest-units [indexer] (channels without upstream); refresh-units [indexer, signer] (the
 * re-signing timer with validUntilDays, its removal without); metrics-units [indexer, publish]
 * (the metrics timer with metricsDir, its removal without); mirrors [indexer, vhost] (the stack's
 * mirrors, infra/steps/mirrors.ts; the removal of this stack's former ones without); backup-units [indexer];
 * expected-state [every other step]. `publish` and `signer` name indexInputsDigest in their command text.
 * Pure: same inputs, same plan (no time, no randomness). Throws Error when tls.mode is 'files'
 * and material lacks tlsCert/tlsKey.
 */
export function buildPlan(cfg: StackConfig, material: PlanMaterial): PlanStep[] {
  const layout = channelLayout(cfg);
  const ctx: PlanContext = {
    cfg,
    material,
    layout,
    indexDigest: indexInputsDigest(cfg, material),
    keyFingerprint: openpgpV4Fingerprint(Buffer.from(material.publicKeyBinaryBase64, 'base64')),
    expected: new ExpectedStateBuilder(cfg.channel, cfg.root, layout.secretDigestsFile),
  };
  const steps = BUILDERS.map((build) => build(ctx)).filter((st): st is PlanStep => st !== undefined);
  return [...steps, expectedStateStep(ctx, steps)];
}

/** Material with every secret replaced by a fixed placeholder (and the public parts kept): building the plan with it gives the scripts and files, never a secret. */
export function withoutSecrets(m: PlanMaterial): PlanMaterial {
  return {
    ...m,
    signingKeyArmored: '(secret)',
    htpasswd: '(secret)',
    ...(m.tlsKey !== undefined ? { tlsKey: '(secret)' } : {}),
  };
}

/** SHA-256 (hex) of a local file (the bundle: a few MB, read at once). Throws the fs error when it is missing. */
export function fileSha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Copies of `steps` where every file with `localPath` has its `content` read from it (UTF-8), for a replay that uploads strings. */
export function inlineLocalFiles(steps: PlanStep[]): PlanStep[] {
  return steps.map((s) => ({
    ...s,
    files: s.files.map((f) => (f.localPath ? { ...f, content: fs.readFileSync(f.localPath, 'utf8') } : f)),
  }));
}

/** The paths that hold everything needed to restore the channel identically: settings/layout.ts, re-exported. */
