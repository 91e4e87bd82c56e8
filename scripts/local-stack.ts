/**
 * `npm run local`: a complete preprod + prod repository on this machine, without Pulumi and
 * without Docker, built by the very steps the Pulumi program runs on a server, and left running as
 * a playground for apt-ops, apt-get and the indexer.
 *
 * On Debian 12, as root:
 * 1. builds dist/ (node scripts/build.mjs; LOCAL_STACK_SKIP_BUILD=1 uses dist/ as it is) and
 *    installs what is missing (nginx, openssh-server, xz-utils, dpkg-dev) with apt-get, waiting for
 *    the dpkg lock (-o DPkg::Lock::Timeout) rather than failing while another apt-get runs;
 * 2. starts a private sshd on 127.0.0.1 (scripts/local/sshd.ts startKeptSshd: its host key and the
 *    operator's key made once and kept, pid in <sandbox>/run/sshd.pid, the plan's sshd drop-ins
 *    included; a live one is reused) and applies, over SSH, the plan of infra/plan.ts for a preprod
 *    and a prod stack whose `root` is the sandbox (`./sandbox` by default), exactly as the replay
 *    tests do (scripts/local/replayer.ts and stack.ts, which they share), deploying a copy of
 *    dist/apt-repo.cjs taken at the start (a rebuild meanwhile cannot split its hash from its upload);
 * 3. leaves nginx running in the background on 127.0.0.1 (preprod 8081, prod 8082; plain HTTP,
 *    allowed explicitly), with its pid in <sandbox>/run/nginx.pid; sshd stays running too;
 * 4. builds its sample packages with dpkg-deb (scripts/local/sampleDebs.ts: epi-hello 1.0-1, 1.1-1
 *    and 2.0-1, epi-php-tools 1.0-1+deb12u1 for bookworm only, epi-docs 1.0-1 Architecture: all;
 *    names Debian does not have, deterministic bytes), drops those preprod lacks (all but
 *    epi-hello 2.0-1, left for `apt-ops upload`) into <sandbox>/srv/apt/incoming/build/ and runs
 *    the deployed indexer's `ingest` as the service user;
 * 5. prints each channel's client configuration, then ready-to-paste command lines, every path
 *    absolute (scripts/local/commands.ts): the APT_OPS_* settings of each channel as an export line
 *    followed by apt-ops status, upload, versions, pending, promote and rollback through the kept
 *    sshd; the isolated apt client installing epi-hello=1.0-1, then upgrading (it installs on this
 *    machine and waits for the dpkg lock); the deployed indexer run directly, writers through
 *    `runuser -u <service user> --`; and the stop line.
 * Re-running changes nothing (the plan is idempotent; sample files are never rebuilt and those
 * already in the pool are not dropped again) and prints the same commands again. `--stop` stops
 * sshd, nginx and the signers (sign-server, one per channel). `--help` prints the usage and builds
 * nothing.
 *
 * Environment: LOCAL_STACK_ROOT (sandbox, absolute or relative to the project),
 * LOCAL_STACK_PREPROD_PORT, LOCAL_STACK_PROD_PORT (nginx ports), LOCAL_STACK_SSH_PORT (sshd's
 * port; default: the previous run's when free, else a free one), LOCAL_STACK_STATE (operator-side
 * state: signing keys, client credentials, the operator's SSH key, the client apt configurations,
 * the sample packages; default <project>/.cache/local-stack, mode 0700, kept so that keys do not
 * change between runs), LOCAL_STACK_SKIP_BUILD=1 (no build).
 * Exit code 0 on success, 1 with a one-line reason on failure, 2 for a wrong argument.
 */
import * as path from 'path';
import { shellJoin } from '../lambda-free-tools/src/shellQuote';
import { unreachableParent } from './local/reach';

export { nextCommands, type NextCommandsChannel } from './local/commands';

const projectRoot = path.resolve(__dirname, '..');
/** The sandbox when the project's own folder is not reachable by other users. */
const FALLBACK_ROOT = '/srv/apt-local-stack';

const USAGE = `usage: npm run local [-- --stop | --help]
  (no argument)  build dist/, set up or re-check the preprod + prod sandbox, keep sshd and nginx
                 running, ingest the sample packages and print the commands to try
  --stop         stop the sandbox's sshd, nginx and signers
  --help         this text
environment: LOCAL_STACK_ROOT (sandbox, default ./sandbox), LOCAL_STACK_PREPROD_PORT (8081),
  LOCAL_STACK_PROD_PORT (8082), LOCAL_STACK_SSH_PORT (previous or free), LOCAL_STACK_STATE
  (default .cache/local-stack), LOCAL_STACK_SKIP_BUILD=1 (use dist/ as it is)
`;

/** A wrong setting, reported as one line (exit 1). */
class SettingError extends Error {}

function log(msg: string): void {
  process.stderr.write(`local-stack: ${msg}\n`);
}

/** The run's settings, from the environment. Throws SettingError naming a wrong variable. */
function readSettings() {
  const env = process.env;
  const port = (name: string, dflt: number | undefined) => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new SettingError(`${name}: '${v}' is not a port number 1-65535`);
    return n;
  };
  const ports = { preprod: port('LOCAL_STACK_PREPROD_PORT', 8081)!, prod: port('LOCAL_STACK_PROD_PORT', 8082)! };
  if (ports.preprod === ports.prod) throw new SettingError('LOCAL_STACK_PREPROD_PORT and LOCAL_STACK_PROD_PORT must differ');
  let root = path.resolve(projectRoot, env.LOCAL_STACK_ROOT || 'sandbox');
  // A project cloned under a private home (/root is 0700) cannot host the sandbox: aptrepo and
  // nginx's workers must reach it. Without an explicit LOCAL_STACK_ROOT, use a folder under /srv.
  if (!env.LOCAL_STACK_ROOT && unreachableParent(root) !== undefined) {
    root = FALLBACK_ROOT;
    log(`${projectRoot} is not reachable by other users: the sandbox goes to ${root} (set LOCAL_STACK_ROOT to choose)`);
  }
  return {
    projectRoot,
    root,
    ports,
    sshPort: port('LOCAL_STACK_SSH_PORT', undefined),
    stateDir: path.resolve(projectRoot, env.LOCAL_STACK_STATE || path.join('.cache', 'local-stack')),
    bundlePath: path.join(projectRoot, 'dist', 'apt-repo.cjs'),
    opsBundlePath: path.join(projectRoot, 'dist', 'apt-ops.cjs'),
    skipBuild: env.LOCAL_STACK_SKIP_BUILD === '1',
    // The sandbox is all --stop needs: named, the line works from any folder and in any environment.
    stopCommand: `LOCAL_STACK_ROOT=${shellJoin([root])} ${shellJoin(['npm', '--prefix', projectRoot, 'run', 'local', '--', '--stop'])}`,
  };
}

async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = args.filter((a) => a !== '--stop');
  if (unknown.length) {
    process.stderr.write(`local-stack: unknown argument ${unknown[0]}\n${USAGE}`);
    return 2;
  }
  let LocalStackError: (new (...a: never[]) => Error) | undefined;
  try {
    const st = readSettings();
    // Loaded here, not above: --help must not evaluate the plan and its dependencies.
    const local = await import('./local/up');
    LocalStackError = local.LocalStackError;
    if (args.includes('--stop')) await local.stop(st.root);
    else await local.up(st);
    return 0;
  } catch (err) {
    process.stderr.write(`local-stack: ${(err as Error).message}\n`);
    const expected = err instanceof SettingError || (LocalStackError !== undefined && err instanceof LocalStackError);
    if (!expected && process.env.DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
