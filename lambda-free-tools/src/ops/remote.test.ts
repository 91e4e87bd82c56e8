import { execFileSync, spawnSync } from 'child_process';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Duplex, PassThrough } from 'stream';
import { AptRepoError, LockError } from '../errors';
import { Connection } from './connect';
import { ConnectionError } from './errors';
import { execStreaming, indexerArgv, indexerCommandLine, interpretExit, MissingModuleFilter } from './remote';
import { OpsConfig } from './stackConfig';

let dir: string;
let fakeNode: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'remote-test-'));
  // Stands in for node on the server: prints the argv it received, NUL-separated.
  fakeNode = path.join(dir, 'fake node');
  fs.writeFileSync(fakeNode, '#!/bin/sh\nprintf \'%s\\0\' "$@"\n', { mode: 0o755 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cfg = (over: Partial<OpsConfig> = {}): OpsConfig => ({
  stack: 'prod',
  host: 'repo.example',
  port: 22,
  user: 'root',
  knownHostsFile: '/dev/null',
  indexerPath: '/opt/apt-repo/prod/apt-repo.cjs',
  nodePath: 'node',
  remotePrefix: '',
  root: '/',
  channel: 'prod',
  incomingDir: '/srv/apt/incoming',
  webRoot: '/srv/apt/prod',
  connectTimeoutMs: 1000,
  ...over,
});

describe('indexerArgv / indexerCommandLine', () => {
  test('global options come before the command, --json only when asked', () => {
    expect(indexerArgv(cfg(), ['pending'])).toEqual([
      'node',
      '/opt/apt-repo/prod/apt-repo.cjs',
      '--root',
      '/',
      '--channel',
      'prod',
      'pending',
    ]);
    expect(indexerArgv(cfg({ remotePrefix: 'sudo -n' }), ['versions', 'hello'], { json: true, channel: 'preprod' })).toEqual([
      'sudo',
      '-n',
      'node',
      '/opt/apt-repo/prod/apt-repo.cjs',
      '--root',
      '/',
      '--channel',
      'preprod',
      '--json',
      'versions',
      'hello',
    ]);
  });

  test('the command line run by sh -c delivers every word intact, hostile ones included', () => {
    const args = ['promote', '--', 'hello=1.0-1+deb12u1', "x'; touch /tmp/pwned #", '$(id)', 'a b\nc'];
    const c = cfg({ nodePath: fakeNode, root: '/srv/my root', indexerPath: "/opt/it's/apt-repo.cjs", remotePrefix: 'env LC_ALL=C' });
    const out = execFileSync('/bin/sh', ['-c', indexerCommandLine(c, args, { json: true })])
      .toString('utf8')
      .split('\0');
    out.pop();
    expect(out).toEqual(["/opt/it's/apt-repo.cjs", '--root', '/srv/my root', '--channel', 'prod', '--json', ...args]);
  });
});

describe('indexerArgv for the mirrors', () => {
  test('a mirror command runs through mirrorPrefix and without --channel (the shape of the sudo rule)', () => {
    const c = cfg({ remotePrefix: 'sudo -n -u aptrepo-prod', mirrorPrefix: 'sudo -n -u aptmirror' });
    expect(indexerArgv(c, ['mirror', 'rollback', 'alpine'], { json: true, mirror: true })).toEqual([
      'sudo',
      '-n',
      '-u',
      'aptmirror',
      'node',
      '/opt/apt-repo/prod/apt-repo.cjs',
      '--root',
      '/',
      '--json',
      'mirror',
      'rollback',
      'alpine',
    ]);
    // A channel command of the same config keeps the channel's prefix.
    expect(indexerArgv(c, ['status']).slice(0, 4)).toEqual(['sudo', '-n', '-u', 'aptrepo-prod']);
  });

  test('without a mirrorPrefix, a mirror command is a usage error naming the flag', () => {
    expect(() => indexerArgv(cfg({ remotePrefix: 'doas -u aptrepo-prod' }), ['mirror', 'list', 'alpine'], { mirror: true })).toThrow(
      /--mirror-prefix/,
    );
  });

  test("the mirror's held lock is named as the mirror's", () => {
    const filter = new MissingModuleFilter(() => undefined);
    expect(() => interpretExit({ code: 3, signal: null }, filter, cfg(), ['mirror', 'sync', 'alpine'])).toThrow(/mirror's lock/);
  });
});

describe('MissingModuleFilter', () => {
  // Node's own report for a missing script, as the server's node prints it.
  const real = spawnSync(process.execPath, ['/nonexistent/opt/apt-repo/prod/apt-repo.cjs']).stderr.toString();

  test.each([1, 7, 64, 100000])("holds Node's missing-module report (chunks of %i bytes) and recognises it", (size) => {
    const seen: Buffer[] = [];
    const f = new MissingModuleFilter((b) => seen.push(b));
    for (let i = 0; i < real.length; i += size) f.write(Buffer.from(real.slice(i, i + size)));
    expect(seen).toEqual([]);
    expect(f.isMissing('/nonexistent/opt/apt-repo/prod/apt-repo.cjs')).toBe(true);
    expect(f.isMissing('/other/path.cjs')).toBe(false);
  });

  test('any other stderr passes at once, in order', () => {
    const seen: string[] = [];
    const f = new MissingModuleFilter((b) => seen.push(b.toString()));
    f.write(Buffer.from('apt-repo: warning: '));
    expect(seen).toEqual(['apt-repo: warning: ']);
    f.write(Buffer.from('node:internal/modules/ looks odd\n'));
    expect(seen.join('')).toBe('apt-repo: warning: node:internal/modules/ looks odd\n');
  });

  test('a held prefix that turns out to be something else is flushed', () => {
    const seen: string[] = [];
    const f = new MissingModuleFilter((b) => seen.push(b.toString()));
    f.write(Buffer.from('node'));
    expect(seen).toEqual([]);
    f.write(Buffer.from(' says hi\n'));
    expect(seen.join('')).toBe('node says hi\n');
  });
});

describe('interpretExit', () => {
  const filter = (text = '') => {
    const f = new MissingModuleFilter(() => undefined);
    if (text) f.write(Buffer.from(text));
    return f;
  };
  test('exit codes pass through; 3 is the lock; 127 and signals are explained', () => {
    expect(interpretExit({ code: 0, signal: null }, filter(), cfg(), ['pending'])).toBe(0);
    expect(interpretExit({ code: 1, signal: null }, filter(), cfg(), ['verify'])).toBe(1);
    expect(interpretExit({ code: 2, signal: null }, filter(), cfg(), ['promote'])).toBe(2);
    expect(() => interpretExit({ code: 3, signal: null }, filter(), cfg(), ['promote'])).toThrow(LockError);
    expect(() => interpretExit({ code: 3, signal: null }, filter(), cfg(), ['promote'])).toThrow(
      /prod on repo\.example: another operator holds the channel lock/,
    );
    expect(() => interpretExit({ code: 127, signal: null }, filter(), cfg(), ['pending'])).toThrow(
      /command not found on repo\.example: check apt-repo:nodePath/,
    );
    expect(() => interpretExit({ code: null, signal: 'KILL' }, filter(), cfg(), ['publish'])).toThrow(/killed by KILL/);
  });

  test('a missing bundle becomes one line that says to run pulumi up', () => {
    const text = spawnSync(process.execPath, ['/opt/apt-repo/prod/apt-repo.cjs']).stderr.toString();
    const run = () => interpretExit({ code: 1, signal: null }, filter(text), cfg(), ['pending']);
    expect(run).toThrow(AptRepoError);
    expect(run).toThrow('the indexer is not deployed at /opt/apt-repo/prod/apt-repo.cjs on repo.example: run pulumi up (stack prod)');
  });
});

describe('execStreaming', () => {
  /** A Connection whose exec hands out a fake channel the test drives. */
  function fakeConnection(written: Buffer[] = []): { conn: Connection; channel: Promise<Duplex & { stderr: PassThrough }>; close(): void } {
    let closed = false;
    let resolveChannel!: (c: Duplex & { stderr: PassThrough }) => void;
    const channel = new Promise<Duplex & { stderr: PassThrough }>((r) => (resolveChannel = r));
    const client = new EventEmitter() as EventEmitter & { exec: (...args: never[]) => void };
    client.exec = (_cmd: string, _o: object, cb: (err: Error | undefined, ch: unknown) => void) => {
      const ch = Object.assign(
        new Duplex({
          read() {},
          write(c, _e, cb) {
            written.push(Buffer.from(c));
            cb();
          },
        }),
        { stderr: new PassThrough() },
      );
      cb(undefined, ch);
      resolveChannel(ch);
    };
    const conn = {
      ssh: { connection: client },
      target: 'root@h:22',
      state: () => ({ closed }),
      onClose() {},
      dispose() {},
    } as unknown as Connection;
    return { conn, channel, close: () => (closed = true) };
  }

  test('streams stdout and stderr and resolves with the exit code', async () => {
    const f = fakeConnection();
    const out: string[] = [];
    const err: string[] = [];
    const p = execStreaming(f.conn, 'x', { stdout: (b) => out.push(b.toString()), stderr: (b) => err.push(b.toString()) });
    const ch = await f.channel;
    // The channel's readable side is what the server sends; its writable side (stdin) is ended by us.
    ch.push('{"a":');
    ch.stderr.push('warn\n');
    ch.push('1}\n');
    await new Promise((r) => setImmediate(r));
    ch.emit('exit', 4);
    ch.emit('close');
    await expect(p).resolves.toEqual({ code: 4, signal: null });
    expect(out.join('')).toBe('{"a":1}\n');
    expect(err.join('')).toBe('warn\n');
  });

  test('stdin, when given, is written to the remote command and then ended; else it is ended empty', async () => {
    for (const stdin of ['{"format":1}\n', undefined]) {
      const written: Buffer[] = [];
      const f = fakeConnection(written);
      const p = execStreaming(f.conn, 'x', { stdout: () => undefined, stderr: () => undefined, stdin });
      const ch = await f.channel;
      await new Promise((r) => setImmediate(r));
      expect(ch.writableEnded).toBe(true);
      expect(Buffer.concat(written).toString()).toBe(stdin ?? '');
      ch.emit('exit', 0);
      ch.emit('close');
      await expect(p).resolves.toEqual({ code: 0, signal: null });
    }
  });

  test('a channel closed without an exit status is a lost connection', async () => {
    const f = fakeConnection();
    const p = execStreaming(f.conn, 'x', { stdout: () => undefined, stderr: () => undefined });
    const ch = await f.channel;
    f.close();
    ch.emit('close');
    await expect(p).rejects.toThrow(ConnectionError);
    await expect(p).rejects.toThrow(/root@h:22: connection lost while running a remote command/);
  });
});
