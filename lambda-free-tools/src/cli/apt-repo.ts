/**
 * apt-repo: the indexer that runs on the repository server. Declares the global options and the
 * commands; each command lives in ./commands/<name>.ts and exports `register(program)`.
 * Exit codes: 0 ok, 1 failure, 2 usage error (an unknown channel, a writing command run by another
 * user than the channel's owner among them), 3 lock held by another writer.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { AptRepoError } from '../errors';
import { assertKnownChannel, channelPaths } from '../repo/channel';
import { commandChannel, globals } from './context';
import { assertChannelOwner } from './owner';
import { serveReadWorker, setReadWorkerEntry } from '../deb/parallel';
import * as init from './commands/init';
import * as keygen from './commands/keygen';
import * as publish from './commands/publish';
import * as verify from './commands/verify';
import * as generations from './commands/generations';
import * as ingest from './commands/ingest';
import * as pending from './commands/pending';
import * as promote from './commands/promote';
import * as versions from './commands/versions';
import * as remove from './commands/remove';
import * as rollback from './commands/rollback';
import * as backup from './commands/backup';
import * as importCmd from './commands/import';
import * as sign from './commands/sign';
import * as status from './commands/status';
import * as doctor from './commands/doctor';
import * as history from './commands/history';
import * as metrics from './commands/metrics';
import * as catalogue from './commands/catalogue';
import * as mirror from './commands/mirror';
import * as clientSetup from './commands/clientSetup';
import { phaseRss, phaseTimes } from '../core/timings';

/**
 * Parser of a global option that may be given once. The operators' sudo rule
 * (infra/sudoers.ts) fixes `--root` and `--channel` and ends in `*`: were a later value to win, as
 * commander lets it by default, an operator could point the indexer at a configuration of their own.
 * Throws commander's InvalidArgumentError (a usage error, exit 2) on the second value.
 */
function once(value: string, previous: string | undefined): string {
  if (previous !== undefined)
    throw new InvalidArgumentError(`given twice: the first value (${JSON.stringify(previous)}) stays, another is refused`);
  return value;
}

/** Commands that may create a channel: an unknown --channel is theirs to make. */
const CREATORS = new Set(['init', 'restore']);
/**
 * Commands that write a channel's files (pool, generations, state, keys, backups): run only by the
 * owner of its web root (cli/owner.ts). The others (status, verify, generations, pending, versions,
 * doctor, sign, sign-server, client-setup) only read it, and run as anyone who can read it (the
 * signer runs as its own account).
 */
const WRITING_COMMANDS = new Set([
  'init',
  'keygen',
  'publish',
  'ingest',
  'promote',
  'remove',
  'gc',
  'rollback',
  'backup',
  'restore',
  'import',
  'catalogue',
]);

/**
 * Checks run before any command's action: the channel is configured (UnknownChannelError, exit 2,
 * except for init and restore, which create it), and a writing command runs as the owner of the
 * channel's web root (WrongUserError, exit 2). The channel loaded for that check is the one the
 * action gets (context.ts commandChannel). `argv` is the command line, quoted back in the message
 * that tells whom to run as.
 */
async function beforeAction(cmd: Command, argv: string[]): Promise<void> {
  // The mirrors are not channels: their configuration is mirrors.yaml (cli/commands/mirror.ts). A
  // command that writes a mirror runs as the owner of its folder, as a channel's writer does.
  if (cmd.parent?.name() === 'mirror') {
    if (cmd.name() !== 'list' && cmd.args[0] !== undefined) {
      assertChannelOwner((await mirror.commandMirror(cmd, cmd.args[0])).dir, argv, { what: 'the mirror' });
    }
    return;
  }
  const name = cmd.name();
  const g = globals(cmd);
  if (!CREATORS.has(name)) assertKnownChannel(g.root, g.channel);
  if (!WRITING_COMMANDS.has(name)) return;
  let webRoot: string;
  try {
    webRoot = (await commandChannel(cmd)).webRoot;
  } catch (e) {
    // The command itself reports a channel it cannot load; init repairs one and restore makes it.
    if (!CREATORS.has(name)) throw e;
    webRoot = channelPaths(g.root, g.channel).webRoot;
  }
  assertChannelOwner(webRoot, argv);
}

/**
 * After a writing command that ran to its end (commander calls it only when the action did not
 * throw; an ingest that rejected uploads exits 1 and is reported too), on a channel with repo.yaml
 * `metricsDir`: writes its metrics file there (cli/commands/metrics.ts). A failure to write them
 * is a warning on stderr; the command's own result and exit code stand.
 */
async function afterAction(cmd: Command): Promise<void> {
  if (!WRITING_COMMANDS.has(cmd.name())) return;
  let ch;
  try {
    ch = await commandChannel(cmd);
  } catch {
    return; // a channel that cannot be loaded any more (restore of another layout): nothing to report on
  }
  if (!ch.metricsDir) return;
  try {
    const { writeChannelMetrics } = await import('./commands/metrics');
    await writeChannelMetrics(ch, ch.metricsDir);
  } catch (e) {
    process.stderr.write(`apt-repo: warning: metrics not written to ${ch.metricsDir}: ${(e as Error).message}\n`);
  }
}

/**
 * Builds the commander program (exported for tests that parse arguments without a process).
 * `argv` is the command line the program will parse (quoted back in WrongUserError).
 */
export function buildProgram(argv: string[] = process.argv): Command {
  // No commander defaults for --root and --channel (a default would count as a first value for
  // `once`): context.ts globals() applies '/' and 'preprod'.
  const program = new Command('apt-repo')
    .description('Signed, multi-release, multi-version APT repositories: ingest, publish, promote, roll back.')
    .option('--root <dir>', 'prefix under which every default path lives (default: "/"; once only)', once)
    .option('--channel <name>', 'channel to act on (preprod, prod, …; default: "preprod"; once only)', once)
    .option('--json', 'machine-readable output on stdout (no colours, no progress bar)', false)
    .option('--debug', 'print stack traces on errors', false)
    .exitOverride()
    .showHelpAfterError()
    .hook('preAction', (_program, actionCommand) => beforeAction(actionCommand, argv))
    .hook('postAction', (_program, actionCommand) => afterAction(actionCommand));
  for (const m of [
    init,
    keygen,
    publish,
    verify,
    generations,
    ingest,
    pending,
    promote,
    versions,
    remove,
    rollback,
    backup,
    importCmd,
    sign,
    status,
    doctor,
    history,
    metrics,
    catalogue,
    clientSetup,
    mirror,
  ])
    m.register(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv form) and resolves to the exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    const debug = argv.includes('--debug');
    if (err instanceof AptRepoError) {
      process.stderr.write(`apt-repo: ${err.message}\n`);
      if (debug && err.stack) process.stderr.write(err.stack + '\n');
      return err.exitCode;
    }
    const e = err as Error;
    process.stderr.write(`apt-repo: ${e?.message ?? String(err)}\n`);
    if (debug && e?.stack) process.stderr.write(e.stack + '\n');
    return 1;
  }
}

/**
 * Makes a closed pipe on `stream` (stdout or stderr) end output quietly: `apt-repo pending | head -1`
 * closes the pipe after one line, and Node then emits EPIPE as an 'error' event that, unhandled,
 * crashed the process with a stack trace (and, before the command's work was done, could stop a
 * writer halfway). With this, the lost output is dropped, the command runs to its end (a writer
 * finishes under its lock and releases it) and exits with its own code. Other write errors are
 * rethrown as before.
 */
function dropOutputOnClosedPipe(stream: NodeJS.WritableStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    process.nextTick(() => {
      throw e;
    });
  });
}

if (require.main === module) {
  dropOutputOnClosedPipe(process.stdout);
  dropOutputOnClosedPipe(process.stderr);
  // The bundle is also the code of the worker threads that read .deb files (deb/parallel.ts).
  if (!serveReadWorker()) {
    // Not when run from the TypeScript sources (ts-node): a worker cannot load a .ts file.
    if (/\.c?js$/.test(__filename)) setReadWorkerEntry(__filename);
    void main(process.argv).then((code) => {
      process.exitCode = code;
      // Where the run's time went (core/timings.ts), for benchmarks and operators.
      if (process.env.APT_REPO_TIMINGS === '1')
        process.stderr.write(`apt-repo: timings (ms): ${JSON.stringify(phaseTimes())}; RSS after (MiB): ${JSON.stringify(phaseRss())}\n`);
    });
  }
}
