/**
 * The stack settings and plan material the plan tests build on (infra/plan.test.ts, and the
 * sandbox runs in infra/plan.e2e.test.ts): fake key texts and one client credential, so that a
 * test can search scripts and files for each secret.
 */
import { parseStackConfig, type RawConfig, type StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import { renderHtpasswd } from '../../infra/htpasswd';
import type { PlanMaterial, PlanStep } from '../../infra/plan';

/** The SSH private key of the stack settings (fake OpenSSH armor). */
export const SSH_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
/** The signing key of the plan material (fake OpenPGP armor; `fake-private-key-material` is its secret line). */
export const SIGNING_KEY =
  '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxcLYBGVfake-private-key-material\n-----END PGP PRIVATE KEY BLOCK-----\n';
/** The password of the one client credential, `web1`. */
export const PASSWORD = 'correct-horse-battery-staple';
/** The TLS private key of the plan material (fake PEM; `fake-tls-key` is its secret line). */
export const TLS_KEY = '-----BEGIN PRIVATE KEY-----\nfake-tls-key\n-----END PRIVATE KEY-----\n';

/**
 * The validated settings of `stack` (default preprod): domain example.org, codenames bookworm and
 * bullseye, architectures amd64 and arm64, client `web1`, TLS from files, then the raw keys of
 * `over` (strings, as in Pulumi.<stack>.yaml). Throws what parseStackConfig throws for a bad key.
 */
export function config(over: RawConfig = {}, stack = 'preprod'): StackConfig {
  return parseStackConfig(
    {
      domain: 'example.org',
      sshHost: 'repo.example.org',
      sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q',
      sshPrivateKey: SSH_KEY,
      codenames: JSON.stringify(['bookworm', 'bullseye']),
      architectures: JSON.stringify(['amd64', 'arm64']),
      allowedCidrs: JSON.stringify(['127.0.0.1', '10.0.0.0/8']),
      clientCredentials: JSON.stringify([{ username: 'web1', password: PASSWORD }]),
      tls: JSON.stringify({ mode: 'files', certFile: 'c.pem', keyFile: 'k.pem' }),
      ...over,
    },
    stack,
  ).config;
}

/** Plan material with the fake keys above, web1's htpasswd and a stand-in bundle digest ('a' × 64); `over` replaces fields. */
export function material(over: Partial<PlanMaterial> = {}): PlanMaterial {
  return {
    signingKeyArmored: SIGNING_KEY,
    publicKeyArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsFNBGVfake\n-----END PGP PUBLIC KEY BLOCK-----\n',
    publicKeyBinaryBase64: Buffer.from('binary-public-key').toString('base64'),
    htpasswd: renderHtpasswd([{ username: 'web1', password: PASSWORD }]),
    bundlePath: '/build/dist/apt-repo.cjs',
    bundleSha256: 'a'.repeat(64),
    tlsCert: '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n',
    tlsKey: TLS_KEY,
    ...over,
  };
}

/** The steps of a plan keyed by step name. */
export const stepsByName = (steps: PlanStep[]): Record<string, PlanStep> => Object.fromEntries(steps.map((s) => [s.name, s]));
