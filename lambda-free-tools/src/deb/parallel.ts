/**
 * Reads many .deb files on every core: the calling thread and worker threads take files from one
 * shared counter (work stealing, so one large file does not leave the other threads idle), each
 * reading its file with readDeb (one streaming pass: size, digests, control).
 *
 * The workers run the program's own entry file (the bundle), which hands control to
 * serveReadWorker when it starts in a worker (see cli/apt-repo.ts). Only a program that declared
 * its entry with setReadWorkerEntry gets workers; elsewhere (tests running the TypeScript sources,
 * other bundles) everything is read on the calling thread, with the same results.
 */
import * as os from 'os';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';
import { DebError } from '../errors';
import { readDeb, type DebInfo, type DigestName } from './debfile';

/** What a worker is started with; `aptRepoReadWorker` marks the thread as a read worker. */
interface ReadWorkerData {
  aptRepoReadWorker: true;
  files: string[];
  digests?: DigestName[];
  /** One Int32: the index of the next file to take. */
  next: SharedArrayBuffer;
}

/** What a worker posts: results in batches, then 'done'. */
type WorkerMessage =
  { kind: 'results'; results: [number, DebInfo | { file: string; reason: string } | { message: string }][] } | { kind: 'done' };

let entryFile: string | undefined;

/** Declares the file worker threads start from: the program's entry, which must call serveReadWorker first thing. */
export function setReadWorkerEntry(file: string): void {
  entryFile = file;
}

/**
 * Bytes per worker below which no worker is started. A worker costs ~70 ms to start (it parses the
 * bundle again) and ~15 MB; hashing (MD5, SHA1, SHA256: ~425 MB/s per core here) is what it takes
 * over. Many small files do not pay: the calling thread then spends on the workers' results what
 * it saves on reading (3,000 packages of 3 KiB: 687 ms without a worker, 729 ms with one).
 */
const MIN_BYTES_PER_WORKER = 64 << 20;

/**
 * How many worker threads to start: the cores minus the calling thread (at most 3), fewer for a
 * small job (MIN_BYTES_PER_WORKER), none for one file. `APT_REPO_READ_WORKERS` overrides it (0: none).
 */
function workerCount(files: number, bytes: number): number {
  const forced = process.env.APT_REPO_READ_WORKERS;
  if (forced !== undefined && /^\d+$/.test(forced)) return Math.min(Number(forced), files);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const useful = Math.min(files - 1, Math.floor(bytes / MIN_BYTES_PER_WORKER));
  return Math.max(0, Math.min(cores - 1, 3, useful));
}

/**
 * Reads `files` (absolute paths) with readDeb, in parallel on worker threads when the program has
 * a worker entry (setReadWorkerEntry) and the job is large enough. `bytes` is their total size (to
 * size the job; 0 if unknown). `onResult(i, r)` is called as each file completes (any order, on
 * the calling thread). Each result is the DebInfo or the error readDeb threw (DebError for a bad
 * file; other errors come back as plain Errors). Never rejects because of a file; rejects if
 * a worker thread itself fails or with what `onResult` throws.
 */
export async function readDebs(
  files: string[],
  opts: { digests?: DigestName[]; bytes?: number; onResult: (i: number, r: DebInfo | Error) => void },
): Promise<void> {
  const next = new SharedArrayBuffer(4);
  const counter = new Int32Array(next);
  const n = entryFile ? workerCount(files.length, opts.bytes ?? 0) : 0;
  const workers: Promise<void>[] = [];
  for (let w = 0; w < n; w++) {
    const data: ReadWorkerData = { aptRepoReadWorker: true, files, digests: opts.digests, next };
    const running = new Promise<void>((resolve, reject) => {
      const worker = new Worker(entryFile!, { workerData: data });
      let done = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.kind === 'done') {
          done = true;
          return;
        }
        for (const [i, r] of m.results) opts.onResult(i, revive(r));
      });
      worker.on('error', reject);
      worker.on('exit', (code) => (done ? resolve() : reject(new Error(`read worker exited with code ${code} before finishing`))));
    });
    // A worker may fail while this thread is still reading, long before Promise.all below looks at
    // it: without a handler now, Node would call it an unhandled rejection and end the process.
    running.catch(() => undefined);
    workers.push(running);
  }
  // The calling thread reads too; awaiting each file lets the workers' messages in between.
  for (;;) {
    const i = Atomics.add(counter, 0, 1);
    if (i >= files.length) break;
    let r: DebInfo | Error;
    try {
      r = await readDeb(files[i], { digests: opts.digests });
    } catch (e) {
      r = e as Error;
    }
    // Outside the try: an error of the callback is the caller's, not the file's.
    opts.onResult(i, r);
  }
  await Promise.all(workers);
}

function revive(r: DebInfo | { file: string; reason: string } | { message: string }): DebInfo | Error {
  if ('control' in r) return r;
  if ('reason' in r) return new DebError(r.file, r.reason);
  return new Error(r.message);
}

/**
 * When this thread is a read worker started by readDebs: reads files until the shared counter runs
 * out, posting results in batches, and returns true (the caller must then do nothing else).
 * Returns false on the main thread and in any other worker.
 */
export function serveReadWorker(): boolean {
  if (isMainThread || !parentPort || !(workerData as ReadWorkerData | undefined)?.aptRepoReadWorker) return false;
  const port = parentPort;
  const { files, digests, next } = workerData as ReadWorkerData;
  const counter = new Int32Array(next);
  void (async () => {
    let batch: Extract<WorkerMessage, { kind: 'results' }>['results'] = [];
    let last = Date.now();
    for (;;) {
      const i = Atomics.add(counter, 0, 1);
      if (i >= files.length) break;
      try {
        batch.push([i, await readDeb(files[i], { digests })]);
      } catch (e) {
        batch.push([i, e instanceof DebError ? { file: e.file, reason: e.reason } : { message: (e as Error)?.message ?? String(e) }]);
      }
      // Batches keep the message count low; the time bound keeps the progress bar moving.
      if (batch.length >= 64 || Date.now() - last > 50) {
        port.postMessage({ kind: 'results', results: batch } satisfies WorkerMessage);
        batch = [];
        last = Date.now();
      }
    }
    if (batch.length) port.postMessage({ kind: 'results', results: batch } satisfies WorkerMessage);
    port.postMessage({ kind: 'done' } satisfies WorkerMessage);
    port.close();
  })();
  return true;
}
