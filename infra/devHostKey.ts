/**
 * The dev stack's SSH host key: a dynamic resource that runs `ssh-keygen -t ed25519` on the machine
 * running `pulumi up`, once, at create, and keeps the pair in the stack state (the private half a
 * secret output). infra/devServer.ts puts the private half into the container before it first
 * starts (a docker.Container upload, at infra/devDockerfile.ts HOST_KEY_PATH) and the stack's SSH
 * connection pins the public half as `hostKey`, so the dev stack checks its server like preprod and
 * prod do. `diff` never reports a change: a rebuilt container gets the same key back.
 *
 * Like infra/signingKeyProvider.ts, the modules are loaded with `require` inside `create` so Pulumi's
 * closure serializer leaves them to Node (they are Node built-ins here).
 */
import * as pulumi from '@pulumi/pulumi';

/** Inputs: the key's comment (informational). */
export interface DevHostKeyArgs {
  comment: pulumi.Input<string>;
}

interface Inputs {
  comment: string;
}

/** Outputs of create: `privateKey` (OpenSSH format, secret) and `publicKey` ('ssh-ed25519 AAAA…', no comment). */
export interface DevHostKeyOutputs extends Inputs {
  privateKey: string;
  publicKey: string;
}

/**
 * The provider: create runs `ssh-keygen -q -t ed25519 -N '' -C <comment>` in a private temp folder
 * (0700, removed afterwards) and returns the pair, id the key's SHA-256 fingerprint in base64.
 * create rejects with ssh-keygen's message when it is missing or fails.
 */
export const devHostKeyProvider = {
  async create(inputs: Inputs): Promise<{ id: string; outs: DevHostKeyOutputs }> {
    const cp = require('child_process') as typeof import('child_process');
    const fs = require('fs') as typeof import('fs');
    const os = require('os') as typeof import('os');
    const path = require('path') as typeof import('path');
    const crypto = require('crypto') as typeof import('crypto');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-repo-host-key-'));
    try {
      const file = path.join(dir, 'ssh_host_ed25519_key');
      const r = cp.spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', String(inputs.comment ?? ''), '-f', file], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`ssh-keygen failed (${r.status ?? r.error?.message}): ${(r.stderr ?? '').trim()}`);
      const privateKey = fs.readFileSync(file, 'utf8');
      const publicKey = fs.readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      const blob = Buffer.from(publicKey.split(' ')[1], 'base64');
      const id = `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
      return { id, outs: { ...inputs, privateKey, publicKey } };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  async diff(): Promise<pulumi.dynamic.DiffResult> {
    return { changes: false };
  },
};

/** The dev server's SSH host key pair; `privateKey` is a secret output. */
export class DevHostKey extends pulumi.dynamic.Resource {
  declare readonly privateKey: pulumi.Output<string>;
  declare readonly publicKey: pulumi.Output<string>;

  constructor(name: string, args: DevHostKeyArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      devHostKeyProvider as pulumi.dynamic.ResourceProvider,
      name,
      { ...args, privateKey: undefined, publicKey: undefined },
      { ...opts, additionalSecretOutputs: ['privateKey'] },
      'apt-repo',
      'DevHostKey',
    );
  }
}
