/**
 * The plan of a channel for a sandbox: every path under a temp `root`, nginx on a loopback address,
 * no package installation and no systemd (`installPackages: false`, `services: none`), the same
 * step scripts as a real stack otherwise. Used by the replay tests (test/harness/replay.ts) to
 * apply the program's steps for real over SSH without the Pulumi CLI.
 */
import { parseStackConfig, type ClientCredential, type StackConfig } from '../stacks/config';
import { renderHtpasswd } from './htpasswd';
import { buildPlan, fileSha256, inlineLocalFiles, type PlanStep } from './plan';

/** What a sandbox channel needs. */
export interface SandboxOptions {
  /** Absolute temp directory every path goes under. */
  root: string;
  channel?: string;
  upstream?: string;
  codenames: string[];
  architectures: string[];
  /** Loopback address nginx listens on, and its ports. */
  listenAddress: string;
  httpPort: number;
  httpsPort?: number;
  allowedCidrs: string[];
  credentials: ClientCredential[];
  /** The apt-repo bundle (dist/apt-repo.cjs or a test build). */
  bundlePath: string;
  /** Node.js on the server side (default: this process's). */
  nodePath?: string;
  signingKey: { privateArmored: string; publicArmored: string; publicBinary: Uint8Array };
  /** PEM certificate and key: HTTPS on httpsPort; absent: plain HTTP. */
  tls?: { cert: string; key: string };
  /** System user owning the files and running the indexer (default aptrepo, created if missing). */
  serviceUser?: string;
  sshUser?: string;
}

/**
 * Returns the validated config and the full plan (secrets on stdin, the bundle inlined as file
 * content so a replay can upload strings). Throws ConfigError for a wrong option, like a stack.
 */
export function planForSandbox(o: SandboxOptions): { config: StackConfig; steps: PlanStep[] } {
  const channel = o.channel ?? 'preprod';
  const { config } = parseStackConfig(
    {
      channel,
      domain: 'sandbox.test',
      sshHost: '127.0.0.1',
      sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q',
      sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n(unused by the plan)\n',
      sshUser: o.sshUser ?? 'root',
      root: o.root,
      nodePath: o.nodePath ?? process.execPath,
      codenames: JSON.stringify(o.codenames),
      architectures: JSON.stringify(o.architectures),
      allowedCidrs: JSON.stringify(o.allowedCidrs),
      clientCredentials: JSON.stringify(o.credentials),
      tls: JSON.stringify(o.tls ? { mode: 'files', certFile: '(sandbox)', keyFile: '(sandbox)' } : { mode: 'none' }),
      allowPlainHttp: o.tls ? 'false' : 'true',
      listenAddress: o.listenAddress,
      httpPort: String(o.httpPort),
      httpsPort: String(o.httpsPort ?? o.httpPort + 1),
      installPackages: 'false',
      services: 'none',
      serviceUser: o.serviceUser ?? 'aptrepo',
      ...(o.upstream ? { upstream: o.upstream } : {}),
    },
    channel,
  );
  const steps = buildPlan(config, {
    signingKeyArmored: o.signingKey.privateArmored,
    publicKeyArmored: o.signingKey.publicArmored,
    publicKeyBinaryBase64: Buffer.from(o.signingKey.publicBinary).toString('base64'),
    htpasswd: renderHtpasswd(o.credentials),
    bundlePath: o.bundlePath,
    bundleSha256: fileSha256(o.bundlePath),
    ...(o.tls ? { tlsCert: o.tls.cert, tlsKey: o.tls.key } : {}),
  });
  return { config, steps: inlineLocalFiles(steps) };
}
