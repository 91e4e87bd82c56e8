import * as fs from 'fs';
import * as path from 'path';
import { NodeSSH } from 'node-ssh';
import { SshdServer, startSshd } from './sshd';
import { mkTemp, rmTemp } from '../../test/harness/cli';

/** ssh2's hostVerifier gets the raw host key blob; the public key line carries it in base64. */
function verifierFor(hostPublicKey: string, seen: string[]): (key: Buffer) => boolean {
  const expected = hostPublicKey.split(' ')[1];
  return (key: Buffer) => {
    seen.push(key.toString('base64'));
    return key.toString('base64') === expected;
  };
}

describe('startSshd', () => {
  let server: SshdServer;

  beforeAll(async () => {
    server = await startSshd();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('gives keys in the documented formats', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(server.hostPublicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
    expect(server.knownHostsLine).toBe(`[127.0.0.1]:${server.port} ${server.hostPublicKey}`);
  });

  it('accepts the authorized key, runs a command and proves its host key', async () => {
    const seen: string[] = [];
    const ssh = new NodeSSH();
    await ssh.connect({
      host: server.host,
      port: server.port,
      username: server.username,
      privateKey: server.privateKey,
      hostVerifier: verifierFor(server.hostPublicKey, seen),
    } as Parameters<NodeSSH['connect']>[0]);
    try {
      const r = await ssh.execCommand('echo ok; id -un');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`ok\n${server.username}`);
      expect(seen).toEqual([server.hostPublicKey.split(' ')[1]]);
      // sftp subsystem (node-ssh putFile) works too.
      const local = mkTemp('sshd-put');
      try {
        fs.writeFileSync(path.join(local, 'f'), 'payload\n');
        await ssh.putFile(path.join(local, 'f'), path.join(local, 'g'));
        expect(fs.readFileSync(path.join(local, 'g'), 'utf8')).toBe('payload\n');
      } finally {
        rmTemp(local);
      }
    } finally {
      ssh.dispose();
    }
    expect(server.log()).toMatch(/Accepted publickey for/);
  });

  it('refuses a host key that is not the one given, and a client without the key', async () => {
    const other = new NodeSSH();
    await expect(
      other.connect({
        host: server.host,
        port: server.port,
        username: server.username,
        privateKey: server.privateKey,
        hostVerifier: () => false,
      } as Parameters<NodeSSH['connect']>[0]),
    ).rejects.toThrow(/verification failed/i);
    other.dispose();
    const nokey = new NodeSSH();
    await expect(nokey.connect({ host: server.host, port: server.port, username: server.username, password: 'x' })).rejects.toThrow(
      /authentication methods failed/i,
    );
    nokey.dispose();
  });

  it('listens on another loopback address when asked, and stop() ends the server', async () => {
    const second = await startSshd({ listenAddress: '127.0.0.2' });
    expect(second.host).toBe('127.0.0.2');
    expect(second.knownHostsLine).toBe(`[127.0.0.2]:${second.port} ${second.hostPublicKey}`);
    const ssh = new NodeSSH();
    await ssh.connect({ host: second.host, port: second.port, username: second.username, privateKey: second.privateKey });
    expect((await ssh.execCommand('echo ok')).stdout).toBe('ok');
    ssh.dispose();
    await second.stop();
    const after = new NodeSSH();
    await expect(
      after.connect({ host: second.host, port: second.port, username: second.username, privateKey: second.privateKey, readyTimeout: 5000 }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
