/**
 * apt-repo: the indexer that runs on the repository server. Declares the global options and the
 * commands; each command lives in ./commands/<name>.ts and exports `register(program)`.
 * Exit codes: 0 ok, 1 failure, 2 usage error, 3 lock held by another writer.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { AptRepoError } from '../errors';
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

/**
 * Parser of a global option that may be given once. The operators' sudo rule
 * (infra/sudoers.ts) fixes `--root` and `--channel` and ends in `*`: were a later value to win, as
 * commander lets it by default, an operator could point the indexer at a configuration of their own.
 * Throws commander's InvalidArgumentError (a usage error, exit 2) on the second value.
 */
function once(value: string, previous: string | undefined): string {
  if (previous !== undefined) throw new InvalidArgumentError(`given twice: the first value (${JSON.stringify(previous)}) stays, another is refused`);
  return value;
}

/** Builds the commander program (exported for tests that parse arguments without a process). */
export function buildProgram(): Command {
  // No commander defaults for --root and --channel (a default would count as a first value for
  // `once`): context.ts globals() applies '/' and 'preprod'.
  const program = new Command('apt-repo')
    .description('Signed, multi-release, multi-version APT repositories: ingest, publish, promote, roll back.')
    .option('--root <dir>', 'prefix under which every default path lives (default: "/"; once only)', once)
    .option('--channel <name>', 'channel to act on (preprod, prod, …; default: "preprod"; once only)', once)
    .option('--json', 'machine-readable output on stdout (no colours, no progress bar)', false)
    .option('--debug', 'print stack traces on errors', false)
    .exitOverride()
    .showHelpAfterError();
  for (const m of [init, keygen, publish, verify, generations, ingest, pending, promote, versions, remove, rollback, backup, importCmd, sign, status]) m.register(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv form) and resolves to the exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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

if (require.main === module) {
  // The bundle is also the code of the worker threads that read .deb files (deb/parallel.ts).
  if (!serveReadWorker()) {
    // Not when run from the TypeScript sources (ts-node): a worker cannot load a .ts file.
    if (/\.c?js$/.test(__filename)) setReadWorkerEntry(__filename);
    main(process.argv).then((code) => { process.exitCode = code; });
  }
}
