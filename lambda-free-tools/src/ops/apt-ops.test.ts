import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { main } from './apt-ops';

let dir: string;
let stderr: string;
let stdout: string;
let closedPort: number;
const saved = { ...process.env };

beforeAll(async () => {
  closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-ops-cli-test-'));
  stderr = '';
  stdout = '';
  jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  for (const k of Object.keys(process.env)) if (k.startsWith('APT_OPS_') || k === 'SSH_AUTH_SOCK') delete process.env[k];
});
afterEach(() => {
  jest.restoreAllMocks();
  process.env = { ...saved };
  fs.rmSync(dir, { recursive: true, force: true });
});

const run = (...args: string[]) => main(['node', 'apt-ops', ...args]);
const writeStack = (name: string, body: string) => fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), body);

describe('apt-ops CLI edge', () => {
  test('no stack is a usage error (exit 2)', async () => {
    expect(await run('pending')).toBe(2);
    expect(stderr).toBe('apt-ops: --stack <name> is required (or set APT_OPS_STACK)\n');
  });

  test('an unknown command or option is a usage error (exit 2)', async () => {
    expect(await run('--stack', 'prod', 'frobnicate')).toBe(2);
    expect(await run('--stack', 'prod', 'pending', '--bogus')).toBe(2);
  });

  test('a missing stack file names it (exit 1)', async () => {
    expect(await run('--stack', 'prod', '--project-dir', dir, 'pending')).toBe(1);
    expect(stderr).toMatch(new RegExp(`^apt-ops: ${dir}/Pulumi\\.prod\\.yaml: not found`));
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a secret for a plain key names the file and key', async () => {
    writeStack('prod', 'config:\n  apt-repo:sshHost:\n    secure: v1:AAAA\n');
    expect(await run('--stack', 'prod', '--project-dir', dir, 'status')).toBe(1);
    expect(stderr).toContain(`Pulumi.prod.yaml: apt-repo:sshHost: is a Pulumi secret`);
  });

  test('no agent and no key file is a usage error', async () => {
    writeStack('prod', `config:\n  apt-repo:sshHost: 127.0.0.1\n  apt-repo:sshPort: ${closedPort}\n`);
    expect(await run('--stack', 'prod', '--project-dir', dir, 'pending')).toBe(2);
    expect(stderr).toMatch(/^apt-ops: no SSH credentials/);
  });

  test('a refused connection is exit 255, one line; APT_OPS_STACK and APT_OPS_IDENTITY work', async () => {
    writeStack('prod', `config:\n  apt-repo:sshHost: 127.0.0.1\n  apt-repo:sshPort: ${closedPort}\n`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'key')]);
    process.env.APT_OPS_STACK = 'prod';
    process.env.APT_OPS_IDENTITY = path.join(dir, 'key');
    process.env.APT_OPS_PROJECT_DIR = dir;
    expect(await run('generations')).toBe(255);
    expect(stderr).toMatch(new RegExp(`^apt-ops: root@127\\.0\\.0\\.1:${closedPort}: connection refused`));
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stdout).toBe('');
  });

  test('an identity file that is not a key, or is encrypted, is named', async () => {
    writeStack('prod', `config:\n  apt-repo:sshHost: 127.0.0.1\n  apt-repo:sshPort: ${closedPort}\n`);
    fs.writeFileSync(path.join(dir, 'junk'), 'not a key\n');
    expect(await run('--stack', 'prod', '--project-dir', dir, '--identity', path.join(dir, 'junk'), 'pending')).toBe(1);
    expect(stderr).toMatch(new RegExp(`^apt-ops: ${dir}/junk: cannot use the identity file`));
    stderr = '';
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', path.join(dir, 'locked')]);
    expect(await run('--stack', 'prod', '--project-dir', dir, '--identity', path.join(dir, 'locked'), 'pending')).toBe(1);
    expect(stderr).toBe(`apt-ops: ${dir}/locked: the key is encrypted: set APT_OPS_PASSPHRASE or load it into ssh-agent\n`);
  });

  test('upload checks its files before connecting', async () => {
    writeStack('preprod', `config:\n  apt-repo:sshHost: 127.0.0.1\n  apt-repo:sshPort: ${closedPort}\n`);
    fs.writeFileSync(path.join(dir, 'notes.txt'), '');
    expect(await run('--stack', 'preprod', '--project-dir', dir, '--identity', '/dev/null', 'upload', path.join(dir, 'notes.txt'))).toBe(2);
    expect(stderr).toMatch(/notes\.txt: not a \.deb file name/);
  });
});
