/**
 * Runs the server's indexer (apt-repo, deployed by the channel's stack) over an SSH exec channel:
 * `[remotePrefix] <nodePath> <indexerPath> --root <root> --channel <channel> [--json] <cmd> <args…>`,
 * every word shell-quoted; output streamed as it arrives; the remote exit code returned.
 */
import { Writable } from 'stream';
import { AptRepoError, LockError, UsageError } from '../errors';
import { Connection } from './connect';
import { ConnectionError } from './errors';
import { splitPrefix } from './shellQuote';
import { shellJoin } from '../shellQuote';
import { OpsConfig } from './stackConfig';

/** Exit code apt-repo uses when another writer holds the channel lock (see errors.ts). */
export const LOCK_HELD_EXIT = 3;

/** How indexerArgv runs a command: `channel` overrides cfg.channel; `mirror` runs a `mirror …` command. */
export interface IndexerRunOptions {
  json?: boolean;
  channel?: string;
  /**
   * A mirrors' command (`cmd` starts with 'mirror'): through cfg.mirrorPrefix (as the mirror user)
   * and without `--channel` (mirrors are not channels), the shape the operators' sudo rule allows.
   */
  mirror?: boolean;
}

/**
 * The remote argv (before quoting) that runs apt-repo `cmd` for `cfg`'s channel, or for its mirrors.
 * @param cmd command and its arguments, e.g. ['promote', 'hello=1.0-1', '--dry-run'].
 * @throws UsageError for a mirror command when cfg has no mirrorPrefix.
 */
export function indexerArgv(
  cfg: Pick<OpsConfig, 'remotePrefix' | 'mirrorPrefix' | 'nodePath' | 'indexerPath' | 'root' | 'channel'>,
  cmd: readonly string[],
  opts: IndexerRunOptions = {},
): string[] {
  if (opts.mirror && cfg.mirrorPrefix === undefined)
    throw new UsageError(
      `cannot tell how to run the mirrors' commands as the mirror user from remotePrefix '${cfg.remotePrefix}': pass --mirror-prefix (e.g. 'sudo -n -u aptmirror') or set APT_OPS_MIRROR_PREFIX`,
    );
  return [
    ...splitPrefix(opts.mirror ? (cfg.mirrorPrefix as string) : cfg.remotePrefix),
    cfg.nodePath,
    cfg.indexerPath,
    '--root',
    cfg.root,
    ...(opts.mirror ? [] : ['--channel', opts.channel ?? cfg.channel]),
    ...(opts.json ? ['--json'] : []),
    ...cmd,
  ];
}

/** indexerArgv as one shell command line (each word quoted with shellQuote). */
export function indexerCommandLine(cfg: Parameters<typeof indexerArgv>[0], cmd: readonly string[], opts: IndexerRunOptions = {}): string {
  return shellJoin(indexerArgv(cfg, cmd, opts));
}

/** How a remote process ended: `code` null when it was killed by `signal`. */
export interface RemoteExit {
  code: number | null;
  signal: string | null;
}

/**
 * Runs `commandLine` on the server and streams its output to `stdout`/`stderr` as it arrives
 * (pausing the channel when a local stream is full). `out.stdin`, when given, is written to the
 * remote command's stdin before it is closed (without it, stdin is closed at once, as before).
 * @returns the remote exit status.
 * @throws ConnectionError if the connection is (or gets) lost before the command's exit status arrives.
 */
export function execStreaming(
  conn: Connection,
  commandLine: string,
  out: { stdout: Writable | ((b: Buffer) => void); stderr: Writable | ((b: Buffer) => void); stdin?: Buffer | string },
): Promise<RemoteExit> {
  return new Promise((resolve, reject) => {
    const lost = () => {
      const err = conn.state().error;
      reject(
        new ConnectionError(
          conn.target,
          `connection lost while running a remote command${err ? ` (${err.message})` : ''}; it may or may not have completed on the server`,
        ),
      );
    };
    if (conn.state().closed) return lost();
    const client = conn.ssh.connection;
    if (!client) return lost();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 ships no types here (node-ssh's refer to @types/ssh2, not installed)
    client.exec(commandLine, {}, (err: Error | undefined, channel: any) => {
      if (err) {
        if (conn.state().closed) return lost();
        return reject(new ConnectionError(conn.target, `cannot start a remote command: ${err.message}`));
      }
      let exit: RemoteExit | undefined;
      const pipe = (src: NodeJS.ReadableStream & { pause(): void; resume(): void }, dst: Writable | ((b: Buffer) => void)) => {
        src.on('data', (chunk: Buffer) => {
          if (typeof dst === 'function') return dst(chunk);
          if (!dst.write(chunk)) {
            src.pause();
            dst.once('drain', () => src.resume());
          }
        });
      };
      pipe(channel, out.stdout);
      pipe(channel.stderr, out.stderr);
      channel.on('exit', (code: number | null, signal?: string) => {
        exit = { code: typeof code === 'number' ? code : null, signal: signal ?? null };
      });
      channel.on('close', () => {
        if (exit) resolve(exit);
        else lost();
      });
      if (out.stdin !== undefined) channel.end(out.stdin);
      else channel.end();
    });
  });
}

// How node's module loader starts its report when the script itself is missing.
const LOADER_PREFIXES = ['node:internal/modules/', 'internal/modules/', 'module.js:'];

/**
 * Holds back stderr only while it could still be Node's "Cannot find module" report, so a missing
 * bundle becomes one clear line while every other message streams through as it arrives.
 */
export class MissingModuleFilter {
  private held = '';
  private passing = false;
  constructor(private readonly sink: (b: Buffer) => void) {}

  /** Feeds one stderr chunk; it is forwarded at once unless it may be the loader's report. */
  write(chunk: Buffer): void {
    if (this.passing) return this.sink(chunk);
    this.held += chunk.toString('utf8');
    const maybe = LOADER_PREFIXES.some((p) => this.held.startsWith(p) || p.startsWith(this.held));
    if (!maybe) this.flush();
  }

  /** True when the held text is Node's report that `modulePath` does not exist. */
  isMissing(modulePath: string): boolean {
    return /Cannot find module/.test(this.held) && this.held.includes(modulePath);
  }

  /** Forwards whatever is held and passes everything from now on. */
  flush(): void {
    this.passing = true;
    if (this.held) this.sink(Buffer.from(this.held, 'utf8'));
    this.held = '';
  }
}

/**
 * Runs apt-repo `cmd` on the server, streaming its stdout/stderr (with --json, the remote JSON
 * reaches `out.stdout` byte for byte); `opts.stdin` is sent to its stdin (`doctor --expected -`).
 * @returns the remote exit code (0 ok, 1 failure, 2 usage; 3 is thrown as LockError).
 * @throws AptRepoError 'the indexer is not deployed at <path> on <host>: run pulumi up' when node
 *         cannot find the bundle; AptRepoError when node or the prefix command is not found (exit 127)
 *         or the remote process is killed; LockError (exit 3) when another operator holds the lock;
 *         ConnectionError when the connection drops.
 */
export async function runIndexer(
  conn: Connection,
  cfg: OpsConfig,
  cmd: readonly string[],
  opts: IndexerRunOptions & {
    stdin?: Buffer | string;
    stdout: Writable | ((b: Buffer) => void);
    stderr: Writable | ((b: Buffer) => void);
  },
): Promise<number> {
  const errSink = opts.stderr;
  const toErr = (b: Buffer) => (typeof errSink === 'function' ? errSink(b) : void errSink.write(b));
  const filter = new MissingModuleFilter(toErr);
  const line = indexerCommandLine(cfg, cmd, { json: opts.json, channel: opts.channel, mirror: opts.mirror });
  const exit = await execStreaming(conn, line, { stdout: opts.stdout, stderr: (b) => filter.write(b), stdin: opts.stdin });
  return interpretExit(exit, filter, cfg, cmd);
}

/**
 * Turns a remote exit status into the local exit code or a one-line error (see runIndexer).
 * `filter` holds the stderr that may be Node's missing-module report; it is flushed here.
 */
export function interpretExit(exit: RemoteExit, filter: MissingModuleFilter, cfg: OpsConfig, cmd: readonly string[]): number {
  const channel = cfg.channel;
  if (exit.code !== 0 && filter.isMissing(cfg.indexerPath)) {
    throw new AptRepoError(`the indexer is not deployed at ${cfg.indexerPath} on ${cfg.host}: run pulumi up (stack ${cfg.stack})`);
  }
  filter.flush();
  if (exit.code === null)
    throw new AptRepoError(`the remote apt-repo ${cmd[0] ?? ''} on ${cfg.host} was killed by ${exit.signal ?? 'a signal'}`);
  if (exit.code === 127) {
    throw new AptRepoError(
      `command not found on ${cfg.host}: check apt-repo:nodePath ('${cfg.nodePath}')${cfg.remotePrefix ? ` and apt-repo:remotePrefix ('${cfg.remotePrefix}')` : ''}, or run pulumi up`,
    );
  }
  if (exit.code === LOCK_HELD_EXIT) {
    if (cmd[0] === 'mirror')
      throw new LockError(
        `mirror ${cmd[2] ?? ''} on ${cfg.host}`,
        `a sync or another operator holds the mirror's lock; try again when it has finished`,
      );
    throw new LockError(`${channel} on ${cfg.host}`, `another operator holds the channel lock; try again when their command has finished`);
  }
  return exit.code;
}

/**
 * Runs apt-repo `cmd` with --json and collects its stdout (stderr streams to `stderr`; `stdin`, if
 * given, is sent to the command).
 * @returns the exit code and the parsed JSON (undefined when stdout is empty).
 * @throws as runIndexer; AptRepoError when stdout is not valid JSON.
 */
export async function runIndexerJson(
  conn: Connection,
  cfg: OpsConfig,
  cmd: readonly string[],
  opts: { channel?: string; stdin?: Buffer | string; stderr: Writable | ((b: Buffer) => void) },
): Promise<{ code: number; data: unknown }> {
  const chunks: Buffer[] = [];
  const code = await runIndexer(conn, cfg, cmd, {
    json: true,
    channel: opts.channel,
    stdin: opts.stdin,
    stdout: (b) => chunks.push(b),
    stderr: opts.stderr,
  });
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return { code, data: undefined };
  try {
    return { code, data: JSON.parse(text) };
  } catch {
    throw new AptRepoError(`the remote apt-repo ${cmd[0]} --json on ${cfg.host} printed something that is not JSON: ${text.slice(0, 80)}`);
  }
}

/**
 * Runs a plain command (words quoted with shellQuote, prefixed with remotePrefix) and collects
 * its output; used for the few facts apt-repo does not report (disk use).
 * @throws ConnectionError when the connection drops.
 */
export async function runCapture(
  conn: Connection,
  cfg: Pick<OpsConfig, 'remotePrefix'>,
  words: readonly string[],
): Promise<RemoteExit & { stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const exit = await execStreaming(conn, shellJoin([...splitPrefix(cfg.remotePrefix), ...words]), {
    stdout: (b) => out.push(b),
    stderr: (b) => err.push(b),
  });
  return { ...exit, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
