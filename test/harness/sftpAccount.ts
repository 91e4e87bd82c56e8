/**
 * Test harness: an SSH account's session seen from the client side, the way an uploader's CI job
 * or an attacker holding its key sees it: SFTP requests (draft-ietf-secsh-filexfer-02, OpenSSH's
 * `hardlink@openssh.com` extension from its PROTOCOL file) and the connection-level requests of
 * RFC 4254 (exec, pty, agent forwarding, direct-tcpip, tcpip-forward, streamlocal). Built on
 * node-ssh's ssh2 client, as lambda-free-tools/src/ops/upload.ts is. Every call resolves with the
 * server's answer or rejects with the ssh2 error (its message carries the SFTP status text, e.g.
 * 'Permission denied', or the channel open failure reason).
 */
import { NodeSSH } from 'node-ssh';

/** The few ssh2 SFTPWrapper methods used here (ssh2 ships no type declarations). */
interface Ssh2Sftp {
  writeFile(p: string, data: Buffer | string, cb: (err?: Error | null) => void): void;
  readFile(p: string, cb: (err: Error | null | undefined, data: Buffer) => void): void;
  readdir(p: string, cb: (err: Error | null | undefined, list: { filename: string }[]) => void): void;
  mkdir(p: string, cb: (err?: Error | null) => void): void;
  rename(from: string, to: string, cb: (err?: Error | null) => void): void;
  unlink(p: string, cb: (err?: Error | null) => void): void;
  symlink(target: string, link: string, cb: (err?: Error | null) => void): void;
  ext_openssh_hardlink(oldPath: string, newPath: string, cb: (err?: Error | null) => void): void;
  realpath(p: string, cb: (err: Error | null | undefined, abs: string) => void): void;
  lstat(
    p: string,
    cb: (err: Error | null | undefined, st: { isSymbolicLink(): boolean; isFile(): boolean; isDirectory(): boolean }) => void,
  ): void;
  readlink(p: string, cb: (err: Error | null | undefined, target: string) => void): void;
  end(): void;
}

/** The ssh2 Client methods used here. */
interface Ssh2Client {
  exec(cmd: string, opts: Record<string, unknown>, cb: (err: Error | undefined, ch: Ssh2Channel) => void): void;
  forwardOut(srcIP: string, srcPort: number, dstIP: string, dstPort: number, cb: (err: Error | undefined, ch: Ssh2Channel) => void): void;
  forwardIn(bindAddr: string, bindPort: number, cb: (err: Error | undefined, port: number) => void): void;
  openssh_forwardOutStreamLocal(socketPath: string, cb: (err: Error | undefined, ch: Ssh2Channel) => void): void;
}

interface Ssh2Channel {
  on(ev: 'data', f: (d: Buffer) => void): void;
  on(ev: 'close', f: (code?: number) => void): void;
  stderr: { on(ev: 'data', f: (d: Buffer) => void): void };
  end(): void;
  close(): void;
}

/** Where and as whom: the test sshd's address, an account name and its private key (OpenSSH text). */
export interface AccountTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  /** ssh-agent for agent forwarding requests (an ssh2 BaseAgent instance or a socket path). */
  agent?: unknown;
}

const cbPromise = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));

/** One SSH connection of an account with an open SFTP session (when the server grants one). */
export class AccountSession {
  private constructor(
    readonly ssh: NodeSSH,
    private readonly sftpSession: Ssh2Sftp | undefined,
  ) {}

  /**
   * Connects as `t.username` with its key (`agentForward` is offered when `t.agent` is set) and
   * opens the sftp subsystem unless `sftp` is false. Rejects with ssh2's error when the connection,
   * the authentication or the subsystem request fails.
   */
  static async open(t: AccountTarget, opts: { sftp?: boolean } = {}): Promise<AccountSession> {
    const ssh = new NodeSSH();
    await ssh.connect({
      host: t.host,
      port: t.port,
      username: t.username,
      privateKey: t.privateKey,
      readyTimeout: 20000,
      ...(t.agent ? { agent: t.agent, agentForward: true } : {}),
    } as Parameters<NodeSSH['connect']>[0]);
    try {
      const sftp = opts.sftp === false ? undefined : ((await ssh.requestSFTP()) as unknown as Ssh2Sftp);
      return new AccountSession(ssh, sftp);
    } catch (err) {
      ssh.dispose();
      throw err;
    }
  }

  private get sftp(): Ssh2Sftp {
    if (!this.sftpSession) throw new Error('no SFTP session (opened with sftp: false)');
    return this.sftpSession;
  }
  private get client(): Ssh2Client {
    return this.ssh.connection as unknown as Ssh2Client;
  }

  /** Writes `data` to `p` the way apt-ops upload does: `<dir>/.<name>.part` first, then renamed to `p`. */
  async upload(p: string, data: Buffer): Promise<void> {
    const slash = p.lastIndexOf('/');
    const part = `${p.slice(0, slash + 1)}.${p.slice(slash + 1)}.part`;
    await cbPromise<void>((cb) => this.sftp.writeFile(part, data, cb));
    await cbPromise<void>((cb) => this.sftp.rename(part, p, cb));
  }
  writeFile(p: string, data: Buffer | string): Promise<void> {
    return cbPromise<void>((cb) => this.sftp.writeFile(p, data, cb));
  }
  readFile(p: string): Promise<Buffer> {
    return cbPromise<Buffer>((cb) => this.sftp.readFile(p, cb));
  }
  async readdir(p: string): Promise<string[]> {
    return (await cbPromise<{ filename: string }[]>((cb) => this.sftp.readdir(p, cb))).map((e) => e.filename).sort();
  }
  mkdir(p: string): Promise<void> {
    return cbPromise<void>((cb) => this.sftp.mkdir(p, cb));
  }
  unlink(p: string): Promise<void> {
    return cbPromise<void>((cb) => this.sftp.unlink(p, cb));
  }
  /** SSH_FXP_SYMLINK: a link at `link` holding the string `target` (ssh2 puts OpenSSH's swapped argument order right). */
  symlink(target: string, link: string): Promise<void> {
    return cbPromise<void>((cb) => this.sftp.symlink(target, link, cb));
  }
  /** hardlink@openssh.com: a second name `newPath` for `oldPath`. */
  hardlink(oldPath: string, newPath: string): Promise<void> {
    return cbPromise<void>((cb) => this.sftp.ext_openssh_hardlink(oldPath, newPath, cb));
  }
  realpath(p: string): Promise<string> {
    return cbPromise<string>((cb) => this.sftp.realpath(p, cb));
  }
  readlink(p: string): Promise<string> {
    return cbPromise<string>((cb) => this.sftp.readlink(p, cb));
  }
  async isSymlink(p: string): Promise<boolean> {
    return (await cbPromise<{ isSymbolicLink(): boolean }>((cb) => this.sftp.lstat(p, cb))).isSymbolicLink();
  }

  /**
   * An exec request (with `pty` and/or agent forwarding when asked): resolves with what came back
   * (stdout, stderr, exit code) within `timeoutMs`, or rejects with the request's refusal.
   */
  exec(
    cmd: string,
    opts: { pty?: boolean; agentForward?: boolean; timeoutMs?: number } = {},
  ): Promise<{ stdout: string; stderr: string; code?: number }> {
    return new Promise((resolve, reject) => {
      this.client.exec(cmd, { ...(opts.pty ? { pty: true } : {}), ...(opts.agentForward ? { agentForward: true } : {}) }, (err, ch) => {
        if (err) return reject(err);
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => ch.close(), opts.timeoutMs ?? 5000);
        ch.on('data', (d) => (stdout += d));
        ch.stderr.on('data', (d) => (stderr += d));
        ch.on('close', (code?: number) => {
          clearTimeout(timer);
          resolve({ stdout, stderr, code });
        });
        ch.end();
      });
    });
  }

  /** A direct-tcpip channel (ssh -L, ssh -W) to dstIP:dstPort; resolves with the first bytes read (1 s), or rejects with the open failure. */
  forwardOut(dstIP: string, dstPort: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, dstIP, dstPort, (err, ch) => {
        if (err) return reject(err);
        let got = '';
        ch.on('data', (d) => (got += d));
        setTimeout(() => {
          ch.close();
          resolve(got);
        }, 1000);
      });
    });
  }
  /** A tcpip-forward request (ssh -R); resolves with the bound port, or rejects with the refusal. */
  forwardIn(bindAddr: string, bindPort: number): Promise<number> {
    return cbPromise<number>((cb) => this.client.forwardIn(bindAddr, bindPort, cb));
  }
  /** A direct-streamlocal@openssh.com channel to a Unix socket of the server; rejects with the open failure. */
  forwardOutStreamLocal(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => (err ? reject(err) : (ch.close(), resolve()))),
    );
  }

  /** Ends the SFTP session and the connection. */
  dispose(): void {
    try {
      this.sftpSession?.end();
    } catch {
      /* already closed */
    }
    this.ssh.dispose();
  }
}
