/**
 * Test harness: a real nginx, started by a test as a child process with its own prefix directory
 * (configuration, pid, logs, temp paths), listening on a free port of 127.0.0.1, and stopped by the test.
 *
 * Also re-exports the process helpers the other harness servers share (`findFreePort`,
 * `waitForListening`, …: scripts/local/processes.ts) and holds `httpGet`, a client that can connect from a chosen loopback source address
 * so a test can exercise nginx `allow`/`deny` rules (on Linux the whole 127.0.0.0/8 is loopback:
 * a socket bound to 127.0.0.2 reaches a server on 127.0.0.1 and the server sees 127.0.0.2).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { findFreePort, stopChild, trackChild, waitForListening } from '../../scripts/local/processes';

// Lives in scripts/local/processes.ts (the sandbox of `npm run local` uses it too); tests import it from here.
export { findFreePort };

/** The nginx binary Debian's `nginx` package installs. */
const NGINX = '/usr/sbin/nginx';

/** A running test nginx. */
export interface NginxServer {
  /** The port every server block got (the same one for all blocks). */
  port: number;
  /** `http://<listenAddress>:<port>` without a trailing slash. */
  url: string;
  /** The prefix directory holding nginx.conf, logs/, temp/ (removed by stop()). */
  prefix: string;
  /** Graceful stop (SIGQUIT, SIGKILL after 5 s), waits for exit, removes the prefix. Idempotent. */
  stop(): Promise<void>;
  /** The current content of the error log ('' if none yet). */
  errorLog(): string;
  /** The current content of the access log ('' if none yet). */
  accessLog(): string;
}

/** Options of startNginx. */
export interface NginxOptions {
  /**
   * The `server { … }` blocks to put in the http block, given the chosen port (and listen address):
   * each block writes its own `listen` directive(s). staticServerBlock renders the common case.
   */
  serverBlocks: (port: number, listenAddress: string) => string | string[];
  /** Loopback address the port is probed on and `url` uses; default '127.0.0.1'. */
  listenAddress?: string;
  /** Extra directives for the http block (e.g. `map`, `limit_req_zone`). */
  httpExtra?: string;
}

/**
 * Renders nginx.conf for a prefix: foreground master (`daemon off; master_process on`), one
 * worker, pid/log/temp paths under `prefix` so nothing touches /var/lib/nginx or /var/log/nginx.
 * Workers run as root when the tests do: test web roots live under mkdtemp's 0700 directories.
 * Directive reference: nginx core, ngx_http_core_module documentation.
 */
export function renderNginxConf(prefix: string, serverBlocks: string[], httpExtra = ''): string {
  const t = (n: string) => path.join(prefix, 'temp', n);
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return [
    asRoot ? 'user root root;' : '',
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${path.join(prefix, 'nginx.pid')};`,
    `error_log ${path.join(prefix, 'logs', 'error.log')} info;`,
    'events { worker_connections 256; }',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    `  access_log ${path.join(prefix, 'logs', 'access.log')};`,
    `  client_body_temp_path ${t('client_body')};`,
    `  proxy_temp_path ${t('proxy')};`,
    `  fastcgi_temp_path ${t('fastcgi')};`,
    `  uwsgi_temp_path ${t('uwsgi')};`,
    `  scgi_temp_path ${t('scgi')};`,
    httpExtra,
    ...serverBlocks,
    '}',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

/**
 * A plain static server block for an APT repository: `root webRoot`, autoindex off, listening on
 * `listenAddress:port` (default 127.0.0.1). `extra` is inserted inside the server block
 * (e.g. `allow 127.0.0.2; deny all;` or auth_basic lines).
 */
export function staticServerBlock(port: number, webRoot: string, opts: { listenAddress?: string; extra?: string } = {}): string {
  return [
    'server {',
    `  listen ${opts.listenAddress ?? '127.0.0.1'}:${port};`,
    '  server_name _;',
    `  root ${webRoot};`,
    '  autoindex off;',
    opts.extra ? `  ${opts.extra}` : '',
    '}',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

/**
 * Starts nginx (`/usr/sbin/nginx -p <prefix> -c <prefix>/nginx.conf -e <prefix>/logs/error.log`)
 * as a child process on a free port and resolves once the port accepts connections.
 * If the port was taken in between (bind error in the log), retries with another port (5 attempts).
 * Rejects with nginx's error log if the configuration is invalid or nginx exits early.
 */
export async function startNginx(opts: NginxOptions): Promise<NginxServer> {
  const host = opts.listenAddress ?? '127.0.0.1';
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-'));
    try {
      return await startOnce(prefix, host, await findFreePort(host), opts);
    } catch (err) {
      lastError = err;
      fs.rmSync(prefix, { recursive: true, force: true });
      if (!/Address already in use/.test(String((err as Error).message))) throw err;
    }
  }
  throw lastError;
}

async function startOnce(prefix: string, host: string, port: number, opts: NginxOptions): Promise<NginxServer> {
  for (const d of ['logs', 'temp']) fs.mkdirSync(path.join(prefix, d));
  const blocks = opts.serverBlocks(port, host);
  const conf = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(conf, renderNginxConf(prefix, Array.isArray(blocks) ? blocks : [blocks], opts.httpExtra));
  const errorLogFile = path.join(prefix, 'logs', 'error.log');
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  let output = '';
  // -e: the error log used before the configuration is read (default /var/log/nginx/error.log).
  const child = spawn(NGINX, ['-p', prefix + '/', '-c', conf, '-e', errorLogFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const describe = () => `${output}${read(errorLogFile)}`;
  try {
    await waitForListening(host, port, child, describe);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw new Error(`${(err as Error).message}\n${describe()}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    url: `http://${host}:${port}`,
    prefix,
    errorLog: () => read(errorLogFile),
    accessLog: () => read(path.join(prefix, 'logs', 'access.log')),
    stop() {
      // SIGQUIT: graceful shutdown of master and workers (nginx "Controlling nginx").
      stopped ??= stopChild(child, 'SIGQUIT').then(() => fs.rmSync(prefix, { recursive: true, force: true }));
      return stopped;
    },
  };
}

/** Result of httpGet: status code, body as UTF-8 text and raw bytes, response headers. */
export interface HttpResponse {
  status: number;
  body: string;
  bytes: Buffer;
  headers: http.IncomingHttpHeaders;
}

/**
 * GET `url` with node's http client, or its https client for an `https:` URL (the test servers'
 * self-signed certificates are not checked). `localAddress` binds the client socket (e.g.
 * '127.0.0.2') so nginx sees that client address; `auth` sends HTTP basic credentials
 * ('user:password' or an object). Resolves for every status (no redirects followed); rejects on a
 * connection error.
 */
export function httpGet(
  url: string,
  opts: { localAddress?: string; auth?: string | { username: string; password: string }; headers?: Record<string, string> } = {},
): Promise<HttpResponse> {
  const auth = typeof opts.auth === 'object' ? `${opts.auth.username}:${opts.auth.password}` : opts.auth;
  return new Promise((resolve, reject) => {
    const options = { localAddress: opts.localAddress, auth, headers: opts.headers, agent: false };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, body: bytes.toString('utf8'), bytes, headers: res.headers });
      });
    };
    const req = url.startsWith('https:')
      ? https.get(url, { ...options, rejectUnauthorized: false }, onResponse)
      : http.get(url, options, onResponse);
    req.on('error', reject);
  });
}
