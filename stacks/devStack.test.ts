/**
 * The dev stack under pulumi.runtime.setMocks: the container runs the systemd image with what
 * systemd needs, gets the stack's generated host key, the SSH connection pins that key, the plan
 * runs with services systemd, and the outputs show the ports Docker publishes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HOST_KEY_PATH } from '../infra/devDockerfile';
import { evaluate, isSecret, nameOf, unwrap, type Registered } from '../test/harness/stackProgram';

const SSH_PRIVATE_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-dev-private-material\n-----END OPENSSH PRIVATE KEY-----\n';
const HOST_PRIVATE = '-----BEGIN OPENSSH PRIVATE KEY-----\nmock-host-private-material\n-----END OPENSSH PRIVATE KEY-----\n';
const HOST_PUBLIC = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfTheDevContainer0000000000000';
const PASSWORD = 'dev-password-123456';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-stack-test-'));
  const bundle = path.join(tmp, 'apt-repo.cjs');
  fs.writeFileSync(bundle, '#!/usr/bin/env node\n');
  process.env.APT_REPO_BUNDLE = bundle;
});
afterAll(() => {
  delete process.env.APT_REPO_BUNDLE;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const MOCKS: import('@pulumi/pulumi').runtime.Mocks = {
  async newResource(args) {
    if (args.type === 'pulumi-nodejs:dynamic/apt-repo:HtpasswdSalts') {
      const { htpasswdSaltsProvider } = await import('../infra/htpasswdSalts');
      const { outs } = await htpasswdSaltsProvider.create({
        credentials: unwrap(args.inputs.credentials) as import('./config').ClientCredential[],
      });
      return { id: 'htpasswd-salts', state: { ...outs } };
    }
    if (args.type === 'pulumi-nodejs:dynamic/apt-repo:DevHostKey')
      return { id: 'SHA256:mock', state: { ...args.inputs, privateKey: HOST_PRIVATE, publicKey: HOST_PUBLIC } };
    if (args.type.startsWith('pulumi-nodejs:dynamic')) {
      return {
        id: 'MOCK',
        state: {
          ...args.inputs,
          privateArmored: '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nmock\n-----END PGP PRIVATE KEY BLOCK-----\n',
          publicArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmock-public\n-----END PGP PUBLIC KEY BLOCK-----\n',
          publicBinaryBase64: Buffer.from('mock-binary-public').toString('base64'),
          fingerprint: 'MOCKFINGERPRINT',
        },
      };
    }
    return {
      id: `${args.name}-id`,
      state: { ...args.inputs, ...(args.type === 'docker:index/image:Image' ? { repoDigest: 'sha256:0123' } : {}) },
    };
  },
  call: (args) => args.inputs,
};

/** Evaluates stacks/index.ts as the `dev` stack with `over` merged into Pulumi.dev.yaml-like config. */
async function evaluateDev(over: Record<string, string> = {}): Promise<{ resources: Registered[]; exports: Record<string, unknown> }> {
  const config: Record<string, string> = {
    'apt-repo:channel': 'dev',
    'apt-repo:domain': 'localhost',
    'apt-repo:serverName': 'apt-dev.localhost',
    'apt-repo:devContainer': JSON.stringify({
      authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevKey dev@laptop',
      sshPort: 2200,
      baseImage: 'apt-repo-base:bookworm',
    }),
    'apt-repo:sshPrivateKey': SSH_PRIVATE_KEY,
    'apt-repo:nodePath': '/usr/bin/node',
    'apt-repo:codenames': JSON.stringify(['bookworm']),
    'apt-repo:architectures': JSON.stringify(['amd64']),
    'apt-repo:allowedCidrs': JSON.stringify(['0.0.0.0/0']),
    'apt-repo:tls': JSON.stringify({ mode: 'none' }),
    'apt-repo:allowPlainHttp': 'true',
    'apt-repo:clientCredentials': JSON.stringify([{ username: 'dev', password: PASSWORD }]),
    ...Object.fromEntries(Object.entries(over).map(([k, v]) => [`apt-repo:${k}`, v])),
  };
  return evaluate('dev', config, MOCKS);
}

describe('dev stack: the systemd image, a pinned host key, published ports', () => {
  let resources: Registered[];
  let exports: Record<string, unknown>;
  const get = (name: string) => {
    const r = resources.find((x) => x.name === name);
    if (!r) throw new Error(`no resource ${name} among ${resources.map((x) => x.name).join(', ')}`);
    return r;
  };

  beforeAll(async () => {
    ({ resources, exports } = await evaluateDev());
  });
  afterAll(() => {
    const image = resources?.find((r) => r.name === 'dev-image');
    if (image)
      fs.rmSync(path.dirname(String((unwrap(image.raw.build) as { dockerfile: string }).dockerfile)), { recursive: true, force: true });
  });

  it('builds the systemd image FROM the configured base', () => {
    const build = unwrap(get('dev-image').raw.build) as { dockerfile: string };
    const dockerfile = fs.readFileSync(build.dockerfile, 'utf8');
    expect(dockerfile).toMatch(/^FROM apt-repo-base:bookworm$/m);
    expect(dockerfile).toContain('CMD ["/sbin/init"]');
    expect(dockerfile).toContain("'Port 22'");
  });

  it('runs the container with what systemd needs and publishes its ports on 127.0.0.1', () => {
    const c = get('dev-container').raw;
    expect(unwrap(c.capabilities)).toEqual({ adds: ['SYS_ADMIN', 'SYS_PTRACE'] });
    expect(unwrap(c.securityOpts)).toEqual(['seccomp=unconfined']);
    expect(unwrap(c.tmpfs)).toEqual({ '/run': '', '/run/lock': '' });
    expect(unwrap(c.volumes)).toEqual([{ hostPath: '/sys/fs/cgroup', containerPath: '/sys/fs/cgroup', readOnly: true }]);
    expect(unwrap(c.command)).toEqual(['/sbin/init']);
    expect(unwrap(c.stopSignal)).toBe('SIGRTMIN+3');
    expect(unwrap(c.ports)).toEqual([
      { internal: 22, external: 2200, ip: '127.0.0.1' },
      { internal: 80, external: 8080, ip: '127.0.0.1' },
      { internal: 443, external: 8443, ip: '127.0.0.1' },
    ]);
  });

  it('uploads the generated host key (secret) and pins its public half in the SSH connection', () => {
    expect(get('dev-host-key').additionalSecretOutputs).toEqual(['privateKey']);
    const uploads = get('dev-container').raw.uploads;
    const list = (unwrap(uploads) as unknown[]).map(unwrap) as Record<string, unknown>[];
    expect(list).toHaveLength(1);
    expect(list[0].file).toBe(HOST_KEY_PATH);
    expect(list[0].permissions).toBe('0600');
    // The private key reaches the engine as a secret only.
    expect(isSecret(list[0].content) || isSecret(uploads)).toBe(true);
    expect(unwrap(list[0].content)).toBe(HOST_PRIVATE);
    for (const cmd of resources.filter((r) => r.type === 'command:remote:Command')) {
      expect(isSecret(cmd.raw.connection)).toBe(true);
      expect(unwrap(cmd.raw.connection)).toMatchObject({ host: '127.0.0.1', port: 2200, user: 'root', hostKey: HOST_PUBLIC });
    }
  });

  it('applies the plan with services systemd (units enabled, nginx reloaded)', () => {
    expect(String(unwrap(get('dev-backups-backup-units').raw.create))).toContain('systemctl');
    expect(get('dev-host-base-host-base').deps.map(nameOf)).toContain('dev-container');
  });

  it('exports the URL, key files, client files and auth.conf with the published port', () => {
    expect(exports.url).toBe('http://apt-dev.localhost:8080/');
    const keys = exports.publicKeyFiles as { binary: string; binaryUrl: string };
    expect(keys.binaryUrl).toBe(`http://apt-dev.localhost:8080/${keys.binary}`);
    expect(JSON.stringify(exports.clientFiles)).toContain('http://apt-dev.localhost:8080/ bookworm main');
    expect(JSON.stringify(exports.clientFiles)).not.toContain(':80/');
    expect(exports.authConf).toEqual({ dev: `machine http://apt-dev.localhost:8080 login dev password ${PASSWORD}\n` });
  });
});

describe('dev stack config', () => {
  it("refuses services 'none' for the dev container, naming the key", async () => {
    await expect(evaluateDev({ services: 'none' })).rejects.toThrow(/apt-repo:services/);
  });
});
