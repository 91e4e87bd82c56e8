/**
 * Sandbox stacks: the same configuration, material and plan for the replay tests and for
 * `npm run local` (scripts/local-stack.ts), so what the tests prove is what `npm run local` does.
 * A sandbox stack's config is validated by stacks/config.ts, its plan is infra/plan.ts buildPlan,
 * its client files are rendered by infra/clientFiles.ts; every server path is under its root.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseStackConfig, type ClientCredential, type RawConfig, type StackConfig, type StackSecrets } from '../../stacks/config';
import { buildPlan, fileSha256, type PlanMaterial, type PlanStep } from '../../infra/plan';
import { renderHtpasswd } from '../../infra/htpasswd';
import type { HtpasswdSaltMap } from '../../infra/htpasswdSalts';
import { channelUrl, renderAuthConf, renderClientFiles } from '../../infra/clientFiles';
import { channelLayout } from '../../infra/layout';
import { readMirrorKeys } from '../../infra/mirrors';
import { runningPid, stopPid } from './processes';
import type { Replayer, SshTarget, StepRun } from './replayer';

/** What a sandbox stack needs besides its channel name. */
export interface SandboxStackOptions {
  /** The sandbox root (absolute): every server path of the stack is under it. */
  root: string;
  channel: string;
  /** The channel promote takes packages from (prod: 'preprod'). */
  upstream?: string;
  /** The SSH server the steps are applied through (its host key becomes sshHostKey). */
  ssh: SshTarget;
  /** nginx port of this channel on 127.0.0.1 (plain HTTP, allowed explicitly). */
  httpPort: number;
  /** Unused without TLS but must differ from httpPort (default httpPort + 1000, capped). */
  httpsPort?: number;
  credentials: ClientCredential[];
  allowedCidrs: string[];
  codenames: string[];
  architectures: string[];
  /** Node.js the service user runs the indexer with (default: this process's node). */
  nodePath?: string;
  /** Let the plan apt-get install missing packages (default false: the caller did). */
  installPackages?: boolean;
  /** More raw `apt-repo:*` keys (string values, JSON for lists), applied last. */
  extra?: RawConfig;
}

/** One sandbox stack: validated config, secrets, plan material and the plan. */
export interface SandboxStack {
  config: StackConfig;
  secrets: StackSecrets;
  material: PlanMaterial;
  steps: PlanStep[];
}

/**
 * Builds the raw stack config of a sandbox channel (the keys a Pulumi.<stack>.yaml would hold) and
 * validates it with stacks/config.ts parseStackConfig, so a sandbox passes the same checks as a
 * real stack. nginx listens on 127.0.0.1 only, serverName is 127.0.0.1 so the rendered client URL
 * is the one a local client uses. Throws ConfigError as parseStackConfig does.
 */
export function sandboxStackConfig(o: SandboxStackOptions): { config: StackConfig; secrets: StackSecrets } {
  const raw: RawConfig = {
    channel: o.channel,
    domain: 'epiconcept.fr',
    serverName: '127.0.0.1',
    listenAddress: '127.0.0.1',
    sshHost: o.ssh.host,
    sshPort: String(o.ssh.port),
    sshUser: o.ssh.username,
    ...(o.ssh.hostPublicKey ? { sshHostKey: o.ssh.hostPublicKey } : {}),
    sshPrivateKey: o.ssh.privateKey,
    root: o.root,
    nodePath: o.nodePath ?? process.execPath,
    codenames: JSON.stringify(o.codenames),
    architectures: JSON.stringify(o.architectures),
    allowedCidrs: JSON.stringify(o.allowedCidrs),
    clientCredentials: JSON.stringify(o.credentials),
    tls: JSON.stringify({ mode: 'none' }),
    allowPlainHttp: 'true',
    httpPort: String(o.httpPort),
    httpsPort: String(o.httpsPort ?? (o.httpPort < 64535 ? o.httpPort + 1000 : o.httpPort - 1000)),
    installPackages: o.installPackages ? 'true' : 'false',
    ...(o.upstream ? { upstream: o.upstream } : {}),
    ...o.extra,
  };
  return parseStackConfig(raw, o.channel);
}

/** A signing key in the shape both keys.ts and a stored key give: armored private and public keys, binary public key. */
export interface KeyMaterial {
  privateArmored: string;
  publicArmored: string;
  publicBinary: Uint8Array;
}

/**
 * The plan material of a stack: the key, the htpasswd rendered by infra/htpasswd.ts from the
 * credentials (with `salts`, the salts a previous run kept, as the HtpasswdSalts resource keeps them
 * in the stack state; without, random salts fixed for this process), and the indexer bundle with its
 * SHA-256 (the mirrors' keys are sandboxStack's: they come from the config). Throws the fs error if
 * the bundle is missing.
 */
export function planMaterial(key: KeyMaterial, credentials: ClientCredential[], bundlePath: string, salts?: HtpasswdSaltMap): PlanMaterial {
  return {
    signingKeyArmored: key.privateArmored,
    publicKeyArmored: key.publicArmored,
    publicKeyBinaryBase64: Buffer.from(key.publicBinary).toString('base64'),
    htpasswd: renderHtpasswd(credentials, salts),
    bundlePath,
    bundleSha256: fileSha256(bundlePath),
  };
}

/** The project folder (Pulumi.yaml's): relative paths of the config are taken from it, as the program does (stacks/material.ts). */
const PROJECT_DIR = path.resolve(__dirname, '../..');

/**
 * sandboxStackConfig + planMaterial + buildPlan; with `mirrors` in the config, the material also
 * holds their keys (infra/mirrors.ts readMirrorKeys, relative paths from the project folder, as
 * stacks/material.ts reads them). Throws ConfigError as sandboxStackConfig and readMirrorKeys do.
 */
export function sandboxStack(o: SandboxStackOptions, key: KeyMaterial, bundlePath: string, salts?: HtpasswdSaltMap): SandboxStack {
  const { config, secrets } = sandboxStackConfig(o);
  const material: PlanMaterial = {
    ...planMaterial(key, secrets.clientCredentials, bundlePath, salts),
    ...(config.mirrors ? { mirrorKeys: readMirrorKeys(config, PROJECT_DIR) } : {}),
  };
  return { config, secrets, material, steps: buildPlan(config, material) };
}

/**
 * Applies the stacks one after the other (each in its own dependency order: step names repeat
 * across stacks), returning every run with its name prefixed by the channel ('prod/vhost').
 */
export async function applyStacks(replayer: Replayer, stacks: SandboxStack[]): Promise<StepRun[]> {
  const runs: StepRun[] = [];
  for (const s of stacks) {
    for (const r of await replayer.applyPlan(s.steps)) runs.push({ ...r, name: `${s.config.channel}/${r.name}` });
  }
  return runs;
}

/**
 * Where sandbox roots go: sshd chroots the upload accounts into `<root>/srv/apt/incoming`, and
 * requires every folder of that path to be root-owned and writable by root only — never true under
 * /tmp (1777). A root-owned 0755 folder under /srv is.
 */
export const SANDBOX_PARENT = '/srv/apt-replay';

/**
 * Creates a fresh sandbox root `<SANDBOX_PARENT>/<prefix>-XXXXXX`, root-owned, mode 0755 (the
 * service, signer and upload users, and nginx's workers, reach it as they reach / on a server).
 * Must run as root. Throws the fs error otherwise.
 */
export function makeSandboxRoot(prefix: string): string {
  fs.mkdirSync(SANDBOX_PARENT, { recursive: true, mode: 0o755 });
  fs.chmodSync(SANDBOX_PARENT, 0o755);
  const root = fs.mkdtempSync(path.join(SANDBOX_PARENT, `${prefix}-`));
  fs.chmodSync(root, 0o755);
  return root;
}

/**
 * Stops the `sign-server` processes the plan started for `stacks` (services 'none'): SIGTERM to the
 * pid in each channel's pid file, when that process is alive; resolves once they are gone (SIGKILL
 * after 5 s).
 */
export async function stopSandboxSigners(stacks: Pick<SandboxStack, 'config'>[]): Promise<void> {
  for (const s of stacks) {
    const pid = runningPid(channelLayout(s.config).signerPidFile);
    if (pid !== undefined) await stopPid(pid, 5000, 'SIGTERM');
  }
}

/** Removes the sudoers rules the plan wrote for `stacks` in /etc/sudoers.d (sandbox roots name them apart). */
export function removeSandboxSudoers(stacks: Pick<SandboxStack, 'config'>[]): void {
  for (const s of stacks) {
    const file = channelLayout(s.config).sudoersFile;
    if (s.config.root !== '/') fs.rmSync(file, { force: true });
  }
}

/** What a client of one channel installs: the rendered files of infra/clientFiles.ts plus where the key is served. */
export interface ChannelClientConfig {
  url: string;
  /** URLs of the public key files in the web root (served without credentials, behind the allowlist). */
  keyUrls: { asc: string; gpg: string };
  /** /usr/share/keyrings/<keyName>-archive-keyring.gpg: where clients put the binary key. */
  keyringPath: string;
  sourcesList: Record<string, string>;
  sources: Record<string, string>;
  /** auth.conf.d entry per user name (secret). */
  authConf: Record<string, string>;
}

/** Renders the client configuration of a stack with infra/clientFiles.ts (as the stack outputs do). */
export function clientConfig(s: Pick<SandboxStack, 'config' | 'secrets'>): ChannelClientConfig {
  const c = s.config;
  const url = channelUrl(c.serverName, c.tls.mode !== 'none', c.httpPort, c.httpsPort);
  const files = renderClientFiles({ url, codenames: c.codenames, component: 'main', keyName: c.keyName });
  return {
    url,
    keyUrls: { asc: `${url}${c.keyName}-archive-keyring.asc`, gpg: `${url}${c.keyName}-archive-keyring.gpg` },
    keyringPath: files.keyringPath,
    sourcesList: files.sourcesList,
    sources: files.sources,
    authConf: renderAuthConf(url, s.secrets.clientCredentials),
  };
}
