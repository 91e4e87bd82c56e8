/**
 * The channel lock held by another process (a node child started with ts-node): a waiter fails
 * naming its pid, a SIGKILLed holder's lock is reclaimed, a waiter reports whom it waits for. In
 * the e2e project: each spawns a child process, and the last waits 6.5 s of wall clock.
 */
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
