/**
 * apt-ops: the operator CLI. Runs the indexer (apt-repo) that a Pulumi stack deployed on the
 * repository server, over SSH, and uploads packages into its drop zone. Connection settings come
 * from `Pulumi.<stack>.yaml` (plain `apt-repo:*` keys), APT_OPS_* variables and flags.
 * Accounts: commands connect as opsUser (else sshUser) and run the indexer through remotePrefix
 * (`sudo -n -u aptrepo-<channel>`); `upload` with an uploadUser connects as that SFTP-only account.
 * Exit codes: 0 ok, 1 failure (for upload: a file was rejected; for doctor: the server differs
 * from the expected state), 2 usage error, 3 lock held by another operator, 124 upload through
 * uploadUser: a file was still in the drop folder after --wait seconds, 255 connection failure;
 * for indexer commands, the remote exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { AptRepoError, UsageError } from '../errors';
import { connect, Connection } from './connect';
import { runIndexer } from './remote';
import { loadStackConfig, OpsConfig, OpsFlags } from './stackConfig';
import { formatBytes, gatherStatus, renderStatus } from './status';
import { gatherDoctor, readLocalManifest, renderDoctor } from './doctor';
import {
  awaitIngest,
  dropExitCode,
  ingestUploads,
  planUploads,
  renderDropOutcomes,
  renderIngestSummary,
  uploadExitCode,
  Uploader,
  UploadItem,
} from './upload';

/** Options every apt-ops command accepts (root program). */
interface GlobalOpts extends OpsFlags {
  stack?: string;
  json: boolean;
  debug: boolean;
}

/** Drop folder used when `upload` gets no --source. */
export const DEFAULT_SOURCE = 'apt-ops';

function globalsOf(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

/** Resolves the config for the command's global options (stack from --stack or APT_OPS_STACK). */
function configOf(cmd: Command): { cfg: OpsConfig; g: GlobalOpts } {
  const g = globalsOf(cmd);
  const stack = g.stack ?? process.env.APT_OPS_STACK;
  if (!stack) throw new UsageError('--stack <name> is required (or set APT_OPS_STACK)');
  const flags: OpsFlags = {
    projectDir: g.projectDir,
    host: g.host,
    port: g.port,
    user: g.user,
    uploadUser: g.uploadUser,
    hostKey: g.hostKey,
    knownHosts: g.knownHosts,
    identity: g.identity,
    indexer: g.indexer,
    node: g.node,
    remotePrefix: g.remotePrefix,
    mirrorPrefix: g.mirrorPrefix,
    root: g.root,
    channel: g.channel,
    incomingDir: g.incomingDir,
    webRoot: g.webRoot,
    timeout: g.timeout,
  };
  return { cfg: loadStackConfig({ stack, flags }), g };
}

async function withConnection<T>(cfg: OpsConfig, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await connect(cfg);
  try {
    return await fn(conn);
  } finally {
    conn.dispose();
  }
}

const writeErr = (b: Buffer) => void process.stderr.write(b);

/** Runs an indexer command with the global options, output streamed; resolves to the remote exit code. */
async function passThrough(cmd: Command, remote: string[]): Promise<number> {
  const { cfg, g } = configOf(cmd);
  return withConnection(cfg, (conn) => runIndexer(conn, cfg, remote, { json: g.json, stdout: process.stdout, stderr: process.stderr }));
}

/** Runs `apt-repo mirror <args>` as the mirror user (OpsConfig.mirrorPrefix); resolves to the remote exit code. */
async function mirrorPassThrough(cmd: Command, args: string[]): Promise<number> {
  const { cfg, g } = configOf(cmd);
  return withConnection(cfg, (conn) =>
    runIndexer(conn, cfg, ['mirror', ...args], { json: g.json, mirror: true, stdout: process.stdout, stderr: process.stderr }),
  );
}

/**
 * Sends `items` over `conn` (progress bar on a terminal; Ctrl-C or SIGTERM removes the `.part`
 * being written and exits 130). `exec` false: SFTP only (upload account).
 */
async function sendFiles(conn: Connection, cfg: OpsConfig, items: UploadItem[], g: GlobalOpts, exec: boolean): Promise<void> {
  const showBar = !g.json && Boolean(process.stderr.isTTY);
  const total = items.reduce((n, i) => n + i.size, 0);
  const bar = showBar
    ? new SingleBar({
        stream: process.stderr,
        format: '{file} [{bar}] {percentage}% {sentH}/{totalH}',
        hideCursor: true,
        clearOnComplete: false,
      })
    : undefined;
  bar?.start(total, 0, { file: items[0].name, sentH: formatBytes(0), totalH: formatBytes(total) });
  const uploader = new Uploader(
    conn,
    cfg,
    items,
    (sent, _t, file) => bar?.update(sent, { file, sentH: formatBytes(sent), totalH: formatBytes(total) }),
    { exec },
  );
  const onSignal = (sig: NodeJS.Signals) => {
    bar?.stop();
    void uploader.abort().finally(() => {
      process.stderr.write(`apt-ops: upload interrupted by ${sig}; its temporary file was removed\n`);
      conn.dispose();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await uploader.run();
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * `upload` through the upload account (cfg.uploadUser): SFTP only, to chroot-relative paths
 * `/<source>/[<codename>/]<file>`; then waits up to `waitSeconds` for the server's ingest to take
 * each file and reports accepted, or rejected with its `.reason`. Never runs a remote command.
 */
async function uploadAsUploader(
  cfg: OpsConfig,
  g: GlobalOpts,
  files: string[],
  o: { codename?: string; source: string; wait: number },
): Promise<number> {
  const upCfg: OpsConfig = { ...cfg, user: cfg.uploadUser! };
  const items = planUploads(files, { incomingDir: '/', source: o.source, codename: o.codename });
  return withConnection(upCfg, async (conn) => {
    await sendFiles(conn, upCfg, items, g, false);
    const outcomes = await awaitIngest(conn, items, { waitMs: o.wait * 1000 });
    const uploaded = items.map((i) => ({ file: i.local, remote: i.rel, size: i.size }));
    if (g.json) process.stdout.write(JSON.stringify({ uploaded, outcomes }, null, 2) + '\n');
    else process.stdout.write(renderDropOutcomes(outcomes, o.wait) + '\n');
    return dropExitCode(outcomes);
  });
}

/**
 * `upload`: checks the files, sends them, has them ingested and prints what became of them.
 * With an uploadUser, see uploadAsUploader; without, as the operator account: SFTP into
 * `<incomingDir>/…`, then `ingest` through remotePrefix. Resolves to the exit code.
 */
async function uploadCommand(cmd: Command, files: string[], o: { codename?: string; source: string; wait: string }): Promise<number> {
  const { cfg, g } = configOf(cmd);
  const wait = Number(o.wait);
  if (!/^\d+(\.\d+)?$/.test(o.wait) || wait > 3600) throw new UsageError(`--wait '${o.wait}': expected a number of seconds from 0 to 3600`);
  if (cfg.uploadUser) return uploadAsUploader(cfg, g, files, { codename: o.codename, source: o.source, wait });
  const items = planUploads(files, { incomingDir: cfg.incomingDir, source: o.source, codename: o.codename });
  return withConnection(cfg, async (conn) => {
    await sendFiles(conn, cfg, items, g, true);
    const ours = items.map((i) => i.rel);
    const outcome = await ingestUploads(conn, cfg, items, o.source, { stderr: writeErr });
    if (!outcome.ok) {
      process.stderr.write(
        `apt-ops: ingest on ${cfg.host} failed (exit ${outcome.code})${outcome.removed ? `; removed ${outcome.removed} uploaded file(s) it had not taken` : ''}\n`,
      );
      return outcome.code;
    }
    const summary = outcome.summary;
    const uploaded = items.map((i) => ({ file: i.local, remote: i.remoteFinal, size: i.size }));
    if (g.json) process.stdout.write(JSON.stringify({ uploaded, ...summary }, null, 2) + '\n');
    else process.stdout.write(renderIngestSummary(summary, ours) + '\n');
    return uploadExitCode(summary, ours);
  });
}

/** `status`: gathers and prints a StatusReport (JSON with --json). */
async function statusCommand(cmd: Command): Promise<number> {
  const { cfg, g } = configOf(cmd);
  const report = await withConnection(cfg, (conn) => gatherStatus(conn, cfg, writeErr));
  process.stdout.write((g.json ? JSON.stringify(report, null, 2) : renderStatus(report)) + '\n');
  return 0;
}

/**
 * `doctor`: runs the server's `apt-repo doctor --json` (with the local --expected file on its stdin)
 * and prints the differences (stdout) and the summary with the steps to re-apply (stderr); --json
 * prints the report. Resolves to 0 (no difference), 1 (differences) or 2 (the indexer refused:
 * no manifest on the server, a manifest of another channel).
 */
async function doctorCommand(cmd: Command, o: { expected?: string }): Promise<number> {
  const { cfg, g } = configOf(cmd);
  const manifest = o.expected !== undefined ? readLocalManifest(o.expected, cfg.channel) : undefined;
  const r = await withConnection(cfg, (conn) => gatherDoctor(conn, cfg, manifest, writeErr));
  if (!r.report) return r.code;
  if (g.json) {
    process.stdout.write(JSON.stringify(r.report, null, 2) + '\n');
  } else {
    const text = renderDoctor(r.report);
    if (text.stdout) process.stdout.write(text.stdout + '\n');
    process.stderr.write(text.stderr + '\n');
  }
  return r.code;
}

/**
 * Builds the commander program. `setCode` receives each command's exit code.
 * Exported for tests that parse arguments without a process.
 */
export function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('apt-ops')
    .description('Operate the APT repository a Pulumi stack deployed: upload, review pending, promote, roll back, over SSH.')
    .option('--stack <name>', 'Pulumi stack whose Pulumi.<stack>.yaml gives host, port, user, host key, paths (env APT_OPS_STACK)')
    .option('--project-dir <dir>', 'the Pulumi project directory (default: nearest with a Pulumi.yaml)')
    .option('--host <host>', 'SSH host (apt-repo:sshHost)')
    .option('--port <port>', 'SSH port (apt-repo:sshPort, 22)')
    .option('--user <user>', 'SSH user commands connect as (apt-repo:opsUser, else apt-repo:sshUser, root)')
    .option('--upload-user <user>', 'SFTP-only account upload connects as (apt-repo:uploadUser; unset: upload as --user, then ingest)')
    .option('--host-key <key>', "expected host key 'ssh-ed25519 AAAA…' (apt-repo:sshHostKey; else known_hosts)")
    .option('--known-hosts <file>', 'known_hosts file when no host key is pinned (~/.ssh/known_hosts)')
    .option('--identity <file>', 'private key file (env APT_OPS_IDENTITY; else ssh-agent via SSH_AUTH_SOCK)')
    .option('--indexer <path>', 'apt-repo bundle on the server (apt-repo:indexerPath)')
    .option('--node <path>', 'node on the server (apt-repo:nodePath)')
    .option('--remote-prefix <words>', "words run before node, e.g. 'sudo -n' (apt-repo:remotePrefix)")
    .option('--mirror-prefix <words>', "words run before node for `mirror` (default: remotePrefix's sudo as the mirror user)")
    .option('--root <dir>', 'apt-repo --root on the server (apt-repo:root)')
    .option('--channel <name>', 'channel (apt-repo:channel; default: the stack name)')
    .option('--incoming-dir <dir>', 'drop zone on the server (apt-repo:incomingDir)')
    .option('--web-root <dir>', "the channel's web root on the server (apt-repo:webRoot)")
    .option('--timeout <seconds>', 'SSH handshake timeout (20)')
    .option('--json', 'machine-readable output on stdout (the indexer JSON, untouched)', false)
    .option('--debug', 'print stack traces on errors', false)
    .exitOverride()
    .showHelpAfterError();

  const wrap =
    <A extends unknown[]>(fn: (...a: A) => Promise<number>) =>
    async (...a: A) =>
      setCode(await fn(...a));

  program
    .command('pending')
    .description('what the upstream channel holds that the downstream one does not')
    .action(wrap(async (_o, cmd: Command) => passThrough(cmd, ['pending'])));
  program
    .command('promote')
    .description('promote packages (pkg or pkg=version) to the downstream channel')
    .argument('[packages...]', 'pkg or pkg=version')
    .option('--all-pending', 'every pending package')
    .option('--codename <codename>', 'only packages published under this codename')
    .option('--dry-run', 'show what would be promoted')
    .action(
      wrap(async (pkgs: string[], o: { allPending?: boolean; codename?: string; dryRun?: boolean }, cmd: Command) =>
        passThrough(cmd, [
          'promote',
          ...(o.allPending ? ['--all-pending'] : []),
          ...(o.codename ? ['--codename', o.codename] : []),
          ...(o.dryRun ? ['--dry-run'] : []),
          ...(pkgs.length ? ['--', ...pkgs] : []),
        ]),
      ),
    );
  program
    .command('versions')
    .description('every version of a package, in every channel')
    .argument('<package>')
    .action(wrap(async (pkg: string, _o, cmd: Command) => passThrough(cmd, ['versions', '--', pkg])));
  program
    .command('rollback')
    .description('point the channel back at an earlier generation')
    .option('--to <id>', 'generation id (default: the previous one)')
    .action(wrap(async (o: { to?: string }, cmd: Command) => passThrough(cmd, ['rollback', ...(o.to ? ['--to', o.to] : [])])));
  program
    .command('remove')
    .description('take a version out of the channel (after a rollback, before the next publish)')
    .argument('<spec>', 'pkg=version')
    .option('--force', 'needed in a channel fed by promote (prod)')
    .action(
      wrap(async (spec: string, o: { force?: boolean }, cmd: Command) =>
        passThrough(cmd, ['remove', ...(o.force ? ['--force'] : []), '--', spec]),
      ),
    );
  program
    .command('gc')
    .description("delete removed files no kept generation lists; --policy: first withdraw the versions past repo.yaml's retention rules")
    .option('--policy', "apply the channel's retention rules")
    .option('--dry-run', 'with --policy: list what would go and why, change nothing')
    .action(
      wrap(async (o: { policy?: boolean; dryRun?: boolean }, cmd: Command) =>
        passThrough(cmd, ['gc', ...(o.policy ? ['--policy'] : []), ...(o.dryRun ? ['--dry-run'] : [])]),
      ),
    );
  program
    .command('generations')
    .description('published generations, newest first')
    .action(wrap(async (_o, cmd: Command) => passThrough(cmd, ['generations'])));
  program
    .command('history')
    .description('what changed in the channel, oldest first: when, who, which operation, which packages')
    .option('--package <name>', 'only the changes that added or removed this package')
    .option('--limit <n>', 'only the newest n changes')
    .action(
      wrap(async (o: { package?: string; limit?: string }, cmd: Command) =>
        passThrough(cmd, ['history', ...(o.package ? ['--package', o.package] : []), ...(o.limit ? ['--limit', o.limit] : [])]),
      ),
    );
  program
    .command('client-setup')
    .description("print the channel's client setup script (public key, deb822 .sources, auth.conf.d entry; apt >= 1.8)")
    .option('--codename <codename>', "the codename the script uses when run without one (default: the client's /etc/os-release)")
    .option('--url <url>', 'where clients reach the channel (default: the url the stack wrote into repo.yaml)')
    .action(
      wrap(async (o: { codename?: string; url?: string }, cmd: Command) =>
        passThrough(cmd, ['client-setup', ...(o.codename ? ['--codename', o.codename] : []), ...(o.url ? ['--url', o.url] : [])]),
      ),
    );
  program
    .command('catalogue')
    .description("rebuild the channel's web catalogue (<url>/catalogue/) with the pending list and history as they are now")
    .action(wrap(async (_o, cmd: Command) => passThrough(cmd, ['catalogue'])));
  const mirror = program.command('mirror').description("the stack's mirrors (Alpine), run as the mirror user: list, sync, rollback, gc");
  mirror
    .command('list <name>')
    .description('the snapshots, their sizes, which one latest-stable points at')
    .action(wrap(async (name: string, _o, cmd: Command) => mirrorPassThrough(cmd, ['list', name])));
  mirror
    .command('sync <name>')
    .description("make a snapshot of the upstream's current version now (what the timer does)")
    .action(wrap(async (name: string, _o, cmd: Command) => mirrorPassThrough(cmd, ['sync', name])));
  mirror
    .command('rollback <name>')
    .description('point latest-stable at the snapshot before the current one, or at --to <version>')
    .option('--to <version>', 'the snapshot to point at')
    .action(
      wrap(async (name: string, o: { to?: string }, cmd: Command) =>
        mirrorPassThrough(cmd, ['rollback', name, ...(o.to ? ['--to', o.to] : [])]),
      ),
    );
  mirror
    .command('gc <name>')
    .description('delete the snapshots but the --keep newest (never the one latest-stable points at)')
    .option('--keep <n>', 'snapshots to keep (default: the mirror keep setting)')
    .action(
      wrap(async (name: string, o: { keep?: string }, cmd: Command) =>
        mirrorPassThrough(cmd, ['gc', name, ...(o.keep ? ['--keep', o.keep] : [])]),
      ),
    );
  program
    .command('verify')
    .description('check that pool, indexes and signatures agree')
    .action(wrap(async (_o, cmd: Command) => passThrough(cmd, ['verify'])));
  program
    .command('status')
    .description('disk use, package counts, last publish and ingest, rejected uploads')
    .action(wrap(async (_o, cmd: Command) => statusCommand(cmd)));
  program
    .command('doctor')
    .description("compare the server's files with what the stack installed (drift) and name every difference")
    .option('--expected <file>', 'manifest to compare with, e.g. from `pulumi stack output expectedState` (default: the one on the server)')
    .action(wrap(async (o: { expected?: string }, cmd: Command) => doctorCommand(cmd, o)));
  program
    .command('upload')
    .description('upload .deb files into the drop zone and ingest them')
    .argument('<files...>', '.deb files')
    .option('--codename <codename>', 'drop into the codename folder (publishes only there)')
    .addOption(new Option('--source <name>', 'drop folder under the incoming directory').default(DEFAULT_SOURCE))
    .option('--wait <seconds>', 'with an upload account: how long to wait for the server to take the files (exit 124 after)', '120')
    .action(
      wrap(async (files: string[], o: { codename?: string; source: string; wait: string }, cmd: Command) => uploadCommand(cmd, files, o)),
    );
  return program;
}

/** Runs apt-ops on `argv` (process.argv form) and resolves to the exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const debug = argv.includes('--debug');
    const e = err as Error;
    process.stderr.write(`apt-ops: ${oneLine(e?.message ?? String(err))}\n`);
    if (debug && e?.stack) process.stderr.write(e.stack + '\n');
    return err instanceof AptRepoError ? err.exitCode : 1;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

if (require.main === module) {
  // `apt-ops pending | head` closes our stdout early: that is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
