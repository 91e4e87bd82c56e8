/**
 * Downloads for the mirrors, with undici (Node's own HTTP client, bundled): a file is streamed to
 * a new file (never held in memory) while its SHA-256 is computed, with header and body timeouts,
 * retried on connection errors and 5xx answers with a growing pause, conditional when the caller
 * has a previous copy (If-Modified-Since, RFC 9110 §13.1.3: a 304 means the copy is current).
 * Through a proxy when the environment names one, as curl reads it (proxyFor).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import { ProxyAgent, request, type Dispatcher } from 'undici';
import { MirrorError } from '../errors';

/** What a download gave. */
export interface Fetched {
  /** 200: `dest` holds the body; 304: not modified, nothing written. */
  status: 200 | 304;
  size: number;
  sha256: string;
  /** Last-Modified of the answer, when it had one. */
  lastModified?: Date;
}

/** Settings of fetchToFile. */
export interface FetchOptions {
  /** Sends If-Modified-Since with this date. */
  ifModifiedSince?: Date;
  /** Attempts in all (>= 1), default 3. */
  attempts?: number;
  /** Timeouts in ms: until the headers, and between two body chunks. Defaults 30 s and 60 s. */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** A body larger than this many bytes is refused (default 4 GiB). */
  maxBytes?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The proxy `target` is fetched through, from `env` as curl reads it: `https_proxy` (or
 * `HTTPS_PROXY`) for an https URL, `http_proxy` (or `HTTP_PROXY`) for an http one; none when the
 * host is in `no_proxy` (`NO_PROXY`: comma-separated host names, each also matching its subdomains,
 * a leading dot allowed; `*` for every host). Undefined: a direct connection. Pure.
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const first = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const proxy = target.protocol === 'https:' ? first('https_proxy', 'HTTPS_PROXY') : first('http_proxy', 'HTTP_PROXY');
  if (!proxy) return undefined;
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const bypass = (first('no_proxy', 'NO_PROXY') ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase().replace(/^\./, ''))
    .filter(Boolean)
    .some((n) => n === '*' || host === n || host.endsWith(`.${n}`));
  return bypass ? undefined : proxy;
}

const proxyAgents = new Map<string, ProxyAgent>();
/**
 * The dispatcher that fetches `url`: undici's ProxyAgent of proxyFor(url) (one per proxy, kept for
 * the process; it tunnels every request with CONNECT, so an https upstream's TLS stays end to end
 * and the proxy must allow CONNECT to the upstream's port), or undefined for a direct connection.
 */
function dispatcherFor(url: string): Dispatcher | undefined {
  const proxy = proxyFor(new URL(url));
  if (!proxy) return undefined;
  let agent = proxyAgents.get(proxy);
  if (!agent) proxyAgents.set(proxy, (agent = new ProxyAgent(proxy)));
  return agent;
}

/**
 * GETs `url` into the new file `dest` (created with O_EXCL: an existing name, a planted link
 * included, is an error, never written through), fsynced. Throws MirrorError naming the URL for
 * an answer other than 200 or 304 (after the retries for 5xx), a body larger than maxBytes, or a
 * connection that fails every attempt; `dest` is then removed.
 */
export async function fetchToFile(url: string, dest: string, opts: FetchOptions = {}): Promise<Fetched> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(200 * 2 ** (i - 1));
    try {
      return await fetchOnce(url, dest, opts);
    } catch (e) {
      fs.rmSync(dest, { force: true });
      last = e;
      if (e instanceof MirrorError && !e.retry) throw e;
    }
  }
  if (last instanceof MirrorError) throw last;
  throw new MirrorError(url, `download failed after ${attempts} attempts: ${(last as Error)?.message ?? last}`);
}

async function fetchOnce(url: string, dest: string, opts: FetchOptions): Promise<Fetched> {
  const headers: Record<string, string> = {};
  if (opts.ifModifiedSince) headers['if-modified-since'] = opts.ifModifiedSince.toUTCString();
  const dispatcher = dispatcherFor(url);
  const res = await request(url, {
    ...(dispatcher ? { dispatcher } : {}),
    method: 'GET',
    headers,
    headersTimeout: opts.headersTimeoutMs ?? 30_000,
    bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
    maxRedirections: 3,
  });
  if (res.statusCode === 304) {
    await res.body.dump();
    return { status: 304, size: 0, sha256: '' };
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new MirrorError(url, `HTTP ${res.statusCode}`, { retry: res.statusCode >= 500 });
  }
  const max = opts.maxBytes ?? 4 * 1024 ** 3;
  const hash = createHash('sha256');
  const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  let size = 0;
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > max) throw new MirrorError(url, `larger than ${max} bytes`, { retry: false });
      hash.update(b);
      for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const lm = res.headers['last-modified'];
  const lastModified = typeof lm === 'string' && !Number.isNaN(Date.parse(lm)) ? new Date(lm) : undefined;
  return { status: 200, size, sha256: hash.digest('hex'), ...(lastModified ? { lastModified } : {}) };
}
