/**
 * Process and port helpers of the sandbox (scripts/local): the servers it starts (sshd, nginx)
 * as children or daemons, found on free ports of 127.0.0.1, waited for, and stopped. Shared by
 * `npm run local` (scripts/local-stack.ts) and the tests' harness (test/harness), which re-exports them.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';

/** Children still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Registers a harness child so it is killed when the test process exits. */
export function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/**
 * Asks the kernel for a free TCP port on `host` (binds port 0, reads it, closes).
 * The port may be taken again before the caller binds it: callers retry on "address in use".
 * Rejects with the socket error if `host` cannot be bound.
 */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Resolves true once a TCP connection to host:port succeeds, false after one refused/failed attempt. */
function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

/**
 * Waits until host:port accepts TCP connections. Polls every 50 ms; rejects as soon as `child`
 * exits (with `describe()` in the message, e.g. its log) or after `timeoutMs` (default 15 000 ms).
 */
export async function waitForListening(
  host: string,
  port: number,
  child: ChildProcess,
  describe: () => string,
  timeoutMs = 15000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${child.spawnfile} exited (code ${child.exitCode}, signal ${child.signalCode}) before listening on ${host}:${port}\n${describe()}`,
      );
    }
    if (await tryConnect(host, port)) return;
    if (Date.now() > deadline) throw new Error(`${child.spawnfile} not listening on ${host}:${port} after ${timeoutMs} ms\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops a child process: sends `signal`, then SIGKILL if it is still alive after `graceMs`;
 * resolves once it has exited.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * Resolves once 127.0.0.1:port accepts a TCP connection; rejects after `timeoutMs` or as soon as
 * `alive()` is false, naming the server (`what`, default nginx) and adding `describe()`.
 */
export async function waitForPort(
  port: number,
  alive: () => boolean,
  describe: () => string,
  timeoutMs = 15000,
  what = 'nginx',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      s.setTimeout(1000, () => done(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`${what} is not running (port ${port})\n${describe()}`);
    if (Date.now() > deadline) throw new Error(`${what} not listening on 127.0.0.1:${port} after ${timeoutMs} ms\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid in `pidFile` when that process is alive, else undefined. */
export function runningPid(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Sends `signal` (SIGQUIT: nginx's graceful stop) to `pid`, SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 5000, signal: NodeJS.Signals = 'SIGQUIT'): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, signal);
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
  while (alive()) await new Promise((r) => setTimeout(r, 50));
}
