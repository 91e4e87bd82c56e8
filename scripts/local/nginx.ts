/**
 * The sandbox's own nginx (not managed by the plan): <root>/etc/nginx/nginx.conf, pid in
 * <root>/run/nginx.pid, workers as www-data, including the vhosts the plan links into
 * <root>/etc/nginx/sites-enabled. A daemon for `npm run local`, a tracked child for the tests.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { runningPid, stopPid, trackChild, waitForPort } from './processes';

/** Paths of the sandbox's own nginx (not managed by the plan): a server-like layout under the root. */
export function sandboxNginxPaths(root: string): { conf: string; pidFile: string; logDir: string; tempDir: string; sitesEnabled: string } {
  return {
    conf: path.join(root, 'etc/nginx/nginx.conf'),
    // The plan reloads nginx (services: none) only when a master runs with <root>/run/nginx.pid.
    pidFile: path.join(root, 'run/nginx.pid'),
    logDir: path.join(root, 'var/log/nginx'),
    tempDir: path.join(root, 'var/lib/nginx'),
    sitesEnabled: path.join(root, 'etc/nginx/sites-enabled'),
  };
}

/**
 * Renders the sandbox nginx.conf, the equivalent of Debian's /etc/nginx/nginx.conf: workers as
 * `user` (default www-data, as on the server, so file modes the plan sets are really tested), pid
 * in <root>/run, logs and temp paths under the root, and `include <root>/etc/nginx/sites-enabled/*`
 * (the plan's vhost links). No `daemon` directive: the caller chooses with `-g`.
 */
export function renderSandboxNginxConf(root: string, user = 'www-data'): string {
  const p = sandboxNginxPaths(root);
  const t = (n: string) => path.join(p.tempDir, n);
  return [
    `user ${user};`,
    'worker_processes 1;',
    `pid ${p.pidFile};`,
    `error_log ${path.join(p.logDir, 'error.log')};`,
    'events { worker_connections 256; }',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  server_tokens off;',
    `  access_log ${path.join(p.logDir, 'access.log')};`,
    `  client_body_temp_path ${t('body')};`,
    `  proxy_temp_path ${t('proxy')};`,
    `  fastcgi_temp_path ${t('fastcgi')};`,
    `  uwsgi_temp_path ${t('uwsgi')};`,
    `  scgi_temp_path ${t('scgi')};`,
    `  include ${p.sitesEnabled}/*;`,
    '}',
    '',
  ].join('\n');
}

/** A sandbox nginx started by startSandboxNginx. */
export interface SandboxNginx {
  pid: number;
  /** SIGQUIT (graceful), SIGKILL after 5 s; resolves once the master is gone. */
  stop(): Promise<void>;
  errorLog(): string;
}

/**
 * Writes the sandbox nginx.conf and starts `/usr/sbin/nginx -c <conf> -p <root>/var/lib/nginx/`,
 * then waits until every port in `ports` accepts connections. `detached`: nginx daemonizes and
 * outlives this process (scripts/local-stack.ts); otherwise it runs in the foreground as a child
 * of this process (tests), killed when the process exits. Rejects with nginx's output and error
 * log when the configuration is wrong or a port does not open.
 */
export async function startSandboxNginx(
  root: string,
  ports: number[],
  opts: { detached?: boolean; user?: string } = {},
): Promise<SandboxNginx> {
  const p = sandboxNginxPaths(root);
  for (const d of [path.dirname(p.pidFile), p.logDir, p.tempDir]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(p.conf, renderSandboxNginxConf(root, opts.user));
  const errorLogFile = path.join(p.logDir, 'error.log');
  const errorLog = () => {
    try {
      return fs.readFileSync(errorLogFile, 'utf8');
    } catch {
      return '';
    }
  };
  const args = ['-c', p.conf, '-p', p.tempDir + '/', '-e', errorLogFile, '-g', opts.detached ? 'daemon on;' : 'daemon off;'];
  let output = '';
  let alive: () => boolean;
  if (opts.detached) {
    const r = spawnSync('/usr/sbin/nginx', args, { encoding: 'utf8' });
    output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.status !== 0) throw new Error(`nginx -c ${p.conf} failed (${r.status}):\n${output}${errorLog()}`);
    alive = () => runningPid(p.pidFile) !== undefined;
  } else {
    const child = spawn('/usr/sbin/nginx', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    alive = () => child.exitCode === null && child.signalCode === null;
  }
  const describe = () => `${output}${errorLog()}`;
  try {
    for (const port of ports) await waitForPort(port, alive, describe);
  } catch (err) {
    const pid = runningPid(p.pidFile);
    if (pid) await stopPid(pid);
    throw err;
  }
  // With daemon off the master writes the pid file a moment after it binds the ports.
  const deadline = Date.now() + 5000;
  while (runningPid(p.pidFile) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const pid = runningPid(p.pidFile);
  if (pid === undefined) throw new Error(`nginx wrote no pid file at ${p.pidFile}\n${describe()}`);
  return { pid, stop: () => stopPid(pid), errorLog };
}
