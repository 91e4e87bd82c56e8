import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { startSshd, SshdServer } from '../../../test/harness/sshd';
import { ConfigError, UsageError } from '../errors';
import { connect, hostKeyPolicy, sshOptions } from './connect';
import { ConnectionError } from './errors';
import { runCapture } from './remote';
import { OpsConfig } from './stackConfig';

let sshd: SshdServer;
let dir: string;
let otherHostKey: string;
let strangerKeyFile: string;

beforeAll(async () => {
  sshd = await startSshd();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'connect-test-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'other')]);
  otherHostKey = fs.readFileSync(path.join(dir, 'other.pub'), 'utf8').trim();
  strangerKeyFile = path.join(dir, 'other');
});
afterAll(async () => {
  await sshd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cfg = (over: Partial<OpsConfig> = {}): OpsConfig => ({
  stack: 'test',
  host: sshd.host,
  port: sshd.port,
  user: sshd.username,
  hostKey: sshd.hostPublicKey,
  hostKeySource: 'Pulumi.test.yaml: apt-repo:sshHostKey',
  knownHostsFile: path.join(dir, 'none'),
  identityFile: sshd.privateKeyFile,
  indexerPath: '/nonexistent/apt-repo.cjs',
  nodePath: 'node',
  remotePrefix: '',
  root: '/',
  channel: 'test',
  incomingDir: '/tmp',
  webRoot: '/tmp',
  connectTimeoutMs: 10000,
  ...over,
});

async function expectRefused(c: OpsConfig, pattern: RegExp): Promise<void> {
  const err = await connect(c).then(
    (conn) => {
      conn.dispose();
      return undefined;
    },
    (e) => e,
  );
  expect(err).toBeInstanceOf(ConnectionError);
  expect((err as ConnectionError).exitCode).toBe(255);
  expect((err as Error).message).toMatch(pattern);
  expect((err as Error).message).not.toContain('\n');
}

describe('connect (real sshd)', () => {
  test('the pinned host key and the key file get a working connection', async () => {
    const conn = await connect(cfg());
    try {
      const r = await runCapture(conn, { remotePrefix: '' }, ['echo', "it's ok"]);
      expect(r).toMatchObject({ code: 0, stdout: "it's ok\n" });
    } finally {
      conn.dispose();
    }
  });

  test('ssh-agent (SSH_AUTH_SOCK) authenticates without a key file', async () => {
    const sock = path.join(dir, 'agent.sock');
    const out = execFileSync('ssh-agent', ['-a', sock, '-s']).toString();
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]);
    try {
      execFileSync('ssh-add', ['-q', sshd.privateKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
      const conn = await connect(cfg({ identityFile: undefined, agentSocket: sock }));
      try {
        expect((await runCapture(conn, { remotePrefix: '' }, ['true'])).code).toBe(0);
      } finally {
        conn.dispose();
      }
    } finally {
      process.kill(pid);
    }
  });

  test('known_hosts is used when no key is pinned', async () => {
    const kh = path.join(dir, 'known_hosts');
    fs.writeFileSync(kh, `# test\n${sshd.knownHostsLine}\n`);
    const c = cfg({ hostKey: undefined, hostKeySource: undefined, knownHostsFile: kh });
    // The policy comes from the file: the server's key, found under its [host]:port entry.
    const policy = hostKeyPolicy(c);
    expect(policy).toMatchObject({ kind: 'known_hosts', file: kh, revoked: [] });
    expect(policy.kind === 'known_hosts' && policy.keys.map((k) => k.blob.toString('base64'))).toEqual([sshd.hostPublicKey.split(' ')[1]]);
    const conn = await connect(c);
    try {
      expect(await runCapture(conn, { remotePrefix: '' }, ['echo', 'known'])).toMatchObject({ code: 0, stdout: 'known\n' });
    } finally {
      conn.dispose();
    }
    // And the file decides: the same entry with another key is refused, naming the file.
    const wrong = path.join(dir, 'known_hosts_wrong_key');
    fs.writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ${otherHostKey}\n`);
    await expectRefused(
      cfg({ hostKey: undefined, hostKeySource: undefined, knownHostsFile: wrong }),
      new RegExp(`host key of 127\\.0\\.0\\.1:${sshd.port} does not match ${wrong.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });

  test('a wrong pinned key is refused, naming the host and the config key', async () => {
    await expectRefused(
      cfg({ hostKey: otherHostKey }),
      new RegExp(`host key of 127\\.0\\.0\\.1:${sshd.port} does not match Pulumi\\.test\\.yaml: apt-repo:sshHostKey`),
    );
  });

  test('a host missing from known_hosts is refused as unknown', async () => {
    const kh = path.join(dir, 'known_hosts_other');
    fs.writeFileSync(kh, `[127.0.0.1]:${sshd.port + 1} ${sshd.hostPublicKey}\n`);
    await expectRefused(cfg({ hostKey: undefined, knownHostsFile: kh }), /is unknown: SHA256:/);
  });

  test('a key the server does not accept is an authentication failure', async () => {
    await expectRefused(cfg({ identityFile: strangerKeyFile }), /authentication failed \(tried key file/);
  });

  test('a server that never answers the handshake times out', async () => {
    const silent = net.createServer((sock) => sock.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      await expectRefused(cfg({ port: (silent.address() as net.AddressInfo).port, connectTimeoutMs: 300 }), /timed out after 0\.3 s/);
    } finally {
      silent.close();
    }
  });

  test('a closed port is "connection refused"', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    await expectRefused(cfg({ port }), /connection refused/);
  });
});

describe('sshOptions / hostKeyPolicy', () => {
  test('no agent and no key file is a usage error; an unreadable key file names it', () => {
    expect(() => sshOptions(cfg({ identityFile: undefined, agentSocket: undefined }), () => undefined)).toThrow(UsageError);
    expect(() => sshOptions(cfg({ identityFile: '/nonexistent/key' }), () => undefined)).toThrow(ConfigError);
    expect(() => sshOptions(cfg({ identityFile: '/nonexistent/key' }), () => undefined)).toThrow(/^\/nonexistent\/key: cannot read/);
  });

  test('the verifier accepts only the pinned blob and reports why it refused', () => {
    let reason = '';
    const o = sshOptions(cfg(), (r) => (reason = r)) as { hostVerifier: (k: Buffer) => boolean; algorithms?: { serverHostKey: string[] } };
    expect(o.algorithms?.serverHostKey).toEqual(['ssh-ed25519']);
    expect(o.hostVerifier(Buffer.from(sshd.hostPublicKey.split(' ')[1], 'base64'))).toBe(true);
    expect(reason).toBe('');
    expect(o.hostVerifier(Buffer.from(otherHostKey.split(' ')[1], 'base64'))).toBe(false);
    expect(reason).toMatch(/does not match/);
  });

  test('a missing known_hosts file means no known key', () => {
    expect(hostKeyPolicy(cfg({ hostKey: undefined, knownHostsFile: '/nonexistent/known_hosts' }))).toEqual({
      kind: 'known_hosts',
      file: '/nonexistent/known_hosts',
      keys: [],
      revoked: [],
    });
  });
});
