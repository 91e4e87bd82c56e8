import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LockError } from '../errors';
import { lockFileOf, withChannelLock } from './lock';

let stateDir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-test-'));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** Starts a separate process that takes the lock and holds it until killed; resolves once it holds it. */
function holdInChild(): Promise<ChildProcess> {
  const code = `require(${JSON.stringify(path.join(__dirname, 'lock.ts'))}).withChannelLock({ stateDir: ${JSON.stringify(stateDir)}, lockTimeoutMs: 60000 },
    () => { process.stdout.write('held\\n'); return new Promise(() => setInterval(() => {}, 1000)); });`;
  const child = spawn(process.execPath, ['-r', 'ts-node/register', '-e', code], {
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
    cwd: path.resolve(__dirname, '../../..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      if (String(d).includes('held')) resolve(child);
    });
    child.on('exit', (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
}

test('writers in one process take turns', async () => {
  const ch = { stateDir, lockTimeoutMs: 10_000 };
  const events: string[] = [];
  let releaseA!: () => void;
  const a = withChannelLock(ch, async () => {
    events.push('a-start');
    await new Promise<void>((r) => (releaseA = r));
    events.push('a-end');
  });
  await new Promise((r) => setTimeout(r, 50));
  const b = withChannelLock(ch, async () => {
    events.push('b-start');
  });
  await new Promise((r) => setTimeout(r, 150));
  expect(events).toEqual(['a-start']);
  releaseA();
  await Promise.all([a, b]);
  expect(events).toEqual(['a-start', 'a-end', 'b-start']);
  expect(fs.existsSync(lockFileOf(ch))).toBe(false);
});

test('the lock is released when the work throws', async () => {
  const ch = { stateDir, lockTimeoutMs: 0 };
  await expect(
    withChannelLock(ch, async () => {
      throw new Error('boom');
    }),
  ).rejects.toThrow('boom');
  await expect(withChannelLock(ch, async () => 42)).resolves.toBe(42);
});

test('a live holder in another process makes a waiter fail with LockError naming the file and pid', async () => {
  const child = await holdInChild();
  const ch = { stateDir, lockTimeoutMs: 300 };
  const err = await withChannelLock(ch, async () => 'got it').catch((e) => e);
  expect(err).toBeInstanceOf(LockError);
  expect((err as LockError).lockFile).toBe(lockFileOf(ch));
  expect((err as LockError).message).toContain(`pid ${child.pid}`);
  expect((err as LockError).exitCode).toBe(3);
});

test("a SIGKILLed holder's lock is reclaimed", async () => {
  const child = await holdInChild();
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  expect(fs.existsSync(lockFileOf({ stateDir }))).toBe(true);
  await expect(withChannelLock({ stateDir, lockTimeoutMs: 0 }, async () => 'reclaimed')).resolves.toBe('reclaimed');
  expect(fs.existsSync(lockFileOf({ stateDir }))).toBe(false);
});

test('a lock whose pid now belongs to another process (pid reuse) is reclaimed', async () => {
  fs.writeFileSync(lockFileOf({ stateDir }), JSON.stringify({ pid: process.pid, host: os.hostname(), start: '1', since: 'long ago' }));
  await expect(withChannelLock({ stateDir, lockTimeoutMs: 0 }, async () => 'ok')).resolves.toBe('ok');
});

test('a lock taken on another host is never reclaimed', async () => {
  fs.writeFileSync(lockFileOf({ stateDir }), JSON.stringify({ pid: 999999, host: 'elsewhere', start: '1', since: 'x' }));
  await expect(withChannelLock({ stateDir, lockTimeoutMs: 0 }, async () => 'ok')).rejects.toBeInstanceOf(LockError);
});

describe('reclaiming', () => {
  // The module object itself: `import * as fs` gives a read-only view of it that cannot be spied on.
  const nodeFs = require('fs') as typeof fs;
  afterEach(() => jest.restoreAllMocks());

  test('a live holder whose /proc entry is hidden from us (hidepid) is not taken for dead', async () => {
    // The parent is alive; a start time that differs would mean pid reuse if /proc could be read.
    const file = lockFileOf({ stateDir });
    const text = JSON.stringify({ pid: process.ppid, host: os.hostname(), start: 'x', since: 'now' });
    fs.writeFileSync(file, text);
    const realRead = fs.readFileSync;
    jest.spyOn(nodeFs, 'readFileSync').mockImplementation(((p: fs.PathOrFileDescriptor, o?: never) => {
      if (p === `/proc/${process.ppid}/stat`) throw Object.assign(new Error(`ENOENT: ${String(p)}`), { code: 'ENOENT' });
      return realRead(p, o);
    }) as typeof fs.readFileSync);
    await expect(withChannelLock({ stateDir, lockTimeoutMs: 0 }, async () => 'stolen')).rejects.toBeInstanceOf(LockError);
    expect(realRead(file, 'utf8')).toBe(text);
  });

  test('a waiter never removes a lock another waiter took after reclaiming the stale one', async () => {
    const file = lockFileOf({ stateDir });
    const { spawnSync } = await import('child_process');
    const deadPid = spawnSync('true').pid;
    fs.writeFileSync(file, JSON.stringify({ pid: deadPid, host: os.hostname(), start: '1', since: 'dead' }));
    const start = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    const live = JSON.stringify({ pid: process.pid, host: os.hostname(), start, since: 'reclaimed and taken by another waiter' });
    const third = JSON.stringify({ pid: process.pid, host: os.hostname(), start, since: 'a third writer' });
    const replace = (text: string) => {
      fs.writeFileSync(`${file}.new`, text);
      realRename(`${file}.new`, file);
    };
    const realRead = fs.readFileSync;
    const realRename = fs.renameSync;
    let swapped = false;
    // Right after this waiter read the stale lock, another waiter removes it and takes the lock.
    jest.spyOn(nodeFs, 'readFileSync').mockImplementation(((p: fs.PathOrFileDescriptor, o?: never) => {
      const r = realRead(p, o);
      if (p === file && !swapped) {
        swapped = true;
        replace(live);
      }
      return r;
    }) as typeof fs.readFileSync);
    // And whenever the lock is moved away, a third writer links its own in at once.
    jest.spyOn(nodeFs, 'renameSync').mockImplementation((a: fs.PathLike, b: fs.PathLike) => {
      realRename(a, b);
      if (a === file) fs.writeFileSync(file, third);
    });
    await expect(withChannelLock({ stateDir, lockTimeoutMs: 0 }, async () => 'twice held')).rejects.toBeInstanceOf(LockError);
    expect(swapped).toBe(true);
    expect(realRead(file, 'utf8')).toBe(live);
    expect(fs.readdirSync(stateDir)).toEqual(['lock']);
  });
});

test('a waiter says whom it waits for (command, pid, since) after a second, then every few seconds, until it gets the lock', async () => {
  const child = await holdInChild();
  const holder = JSON.parse(fs.readFileSync(lockFileOf({ stateDir }), 'utf8')) as { since: string };
  const ch = { stateDir, lockTimeoutMs: 30_000 };
  const messages: { at: number; text: string }[] = [];
  const start = Date.now();
  // The holder dies after 6.5 s (SIGKILL): its lock is reclaimed at once and the waiter goes on.
  setTimeout(() => child.kill('SIGKILL'), 6500);
  const got = await withChannelLock(ch, async () => 'got it', { onWait: (text) => messages.push({ at: Date.now() - start, text }) });
  expect(got).toBe('got it');
  expect(messages.length).toBe(2);
  expect(messages[0].at).toBeGreaterThanOrEqual(900);
  expect(messages[0].at).toBeLessThan(2500);
  expect(messages[1].at - messages[0].at).toBeGreaterThanOrEqual(4900);
  for (const m of messages) {
    expect(m.text).toContain(`${lockFileOf(ch)}: waiting for -r ts-node/register -e require(`);
    expect(m.text).toContain(`(pid ${child.pid} on ${os.hostname()}, since ${holder.since}) to release the channel lock; giving up in `);
  }
  expect(messages[0].text).toMatch(/giving up in (28|29|30) s$/);
}, 20_000);
