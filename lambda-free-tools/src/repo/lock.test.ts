/**
 * The channel lock within one process: turns, release on a throw, stale and foreign locks, and the
 * races of reclaiming. Holders in another process (spawned, killed) are lock.e2e.test.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LockError } from '../errors';
import { lockFileOf, withChannelLock } from './lock';

let stateDir: string;
beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-test-'));
});
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

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
