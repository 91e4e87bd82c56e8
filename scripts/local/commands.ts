/**
 * The command lines `npm run local` (scripts/local-stack.ts) prints for its playground, rendered by
 * pure functions so the tests run them exactly as printed. Every line works from any folder, as root:
 * each path is absolute and each word shell-quoted (lambda-free-tools/src/shellQuote.ts); a command
 * that writes a channel runs as that channel's service user (`runuser -u <serviceUser> --`), as on
 * the server, where the indexer refuses to write as anyone else.
 */
import * as path from 'path';
import { shellJoin } from '../../lambda-free-tools/src/shellQuote';

/** What the server-side lines need of a channel's stack (SandboxStack config fields). */
export interface NextCommandsChannel {
  channel: string;
  root: string;
  nodePath: string;
  indexerPath: string;
  serviceUser: string;
}

/**
 * The server-side lines: the deployed indexer run directly. Commands that only read (pending,
 * verify, versions) run as whoever typed them (root); promote runs as prod's service user.
 * `aptConfProd` is the prod client's APT_CONFIG file; `pkg` the package the lines name.
 */
export function nextCommands(preprod: NextCommandsChannel, prod: NextCommandsChannel, aptConfProd: string, pkg = 'hello'): string[] {
  const indexer = (c: NextCommandsChannel, ...args: string[]) => [
    c.nodePath,
    c.indexerPath,
    '--root',
    path.resolve(c.root),
    '--channel',
    c.channel,
    ...args,
  ];
  const asOwner = (c: NextCommandsChannel, ...args: string[]) => shellJoin(['runuser', '-u', c.serviceUser, '--', ...indexer(c, ...args)]);
  const apt = (...args: string[]) => `APT_CONFIG=${shellJoin([path.resolve(aptConfProd)])} ${shellJoin(args)}`;
  return [
    shellJoin(indexer(prod, 'pending')),
    asOwner(prod, 'promote', pkg),
    shellJoin(indexer(prod, 'verify')),
    shellJoin(indexer(preprod, 'versions', pkg)),
    apt('apt-get', 'update'),
    apt('apt-cache', 'policy', pkg),
    apt('apt-get', 'install', '-s', pkg),
  ];
}

/** What apt-ops needs to drive one sandbox channel through the local stack's sshd. */
export interface OpsChannel extends NextCommandsChannel {
  incomingDir: string;
  webRoot: string;
}

/** The local stack's sshd as apt-ops reaches it. */
export interface OpsServer {
  host: string;
  port: number;
  user: string;
  knownHostsFile: string;
  identityFile: string;
  /**
   * A folder holding no Pulumi.<stack>.yaml: apt-ops reads its stack file from the project folder
   * (APT_OPS_PROJECT_DIR), and the real Pulumi.preprod.yaml must not add its settings (opsUser,
   * uploadUser) to the sandbox's.
   */
  projectDir: string;
}

/**
 * The APT_OPS_* settings (lambda-free-tools/src/ops/stackConfig.ts) of one channel, as one
 * `export …` line: every setting apt-ops reads is given, so a second export for the other channel
 * replaces them all. The indexer runs through `runuser -u <serviceUser> --` (root connects).
 */
export function opsExport(c: OpsChannel, server: OpsServer): string {
  const vars: [string, string][] = [
    ['APT_OPS_PROJECT_DIR', server.projectDir],
    ['APT_OPS_STACK', c.channel],
    ['APT_OPS_CHANNEL', c.channel],
    ['APT_OPS_HOST', server.host],
    ['APT_OPS_PORT', String(server.port)],
    ['APT_OPS_USER', server.user],
    ['APT_OPS_KNOWN_HOSTS', server.knownHostsFile],
    ['APT_OPS_IDENTITY', server.identityFile],
    ['APT_OPS_NODE', c.nodePath],
    ['APT_OPS_INDEXER', c.indexerPath],
    ['APT_OPS_REMOTE_PREFIX', `runuser -u ${c.serviceUser} --`],
    ['APT_OPS_ROOT', path.resolve(c.root)],
    ['APT_OPS_INCOMING_DIR', c.incomingDir],
    ['APT_OPS_WEB_ROOT', c.webRoot],
  ];
  return `export ${vars.map(([k, v]) => `${k}=${shellJoin([v])}`).join(' ')}`;
}

/** A block of printed lines: a title, then the lines to paste in order. */
export interface CommandBlock {
  title: string;
  lines: string[];
}

/** What the playground blocks are made of. */
export interface PlaygroundInput {
  preprod: OpsChannel;
  prod: OpsChannel;
  server: OpsServer;
  /** The node that runs apt-ops here, and the bundle (absolute). */
  nodePath: string;
  aptOps: string;
  /** A sample not yet in preprod, for `apt-ops upload`, and the drop folder it goes to. */
  uploadDeb: string;
  uploadSource: string;
  /** Each channel's isolated client (APT_CONFIG file). */
  aptConf: { preprod: string; prod: string };
  /** The package whose versions the lines play with, an older version of it, and every sample name. */
  pkg: string;
  olderVersion: string;
  sampleNames: string[];
  /** How long apt-get waits for the dpkg lock, in seconds. */
  lockTimeout: number;
  /** The line that stops everything (absolute paths). */
  stop: string;
}

/**
 * The blocks `npm run local` prints at the end: apt-ops on preprod (status, upload, versions) and
 * on prod (pending, promote, versions, rollback) through the kept sshd, each block opened by its
 * settings' export line; the preprod client installing an older version and upgrading (waiting for
 * the dpkg lock instead of failing); the server-side indexer lines; the stop line.
 */
export function playgroundBlocks(p: PlaygroundInput): CommandBlock[] {
  const ops = (...args: string[]) => shellJoin([p.nodePath, p.aptOps, ...args]);
  const apt = (conf: string, ...args: string[]) => `APT_CONFIG=${shellJoin([conf])} ${shellJoin(args)}`;
  const lock = `DPkg::Lock::Timeout=${p.lockTimeout}`;
  const server = nextCommands(p.preprod, p.prod, p.aptConf.prod, p.pkg).filter((l) => !l.startsWith('APT_CONFIG='));
  return [
    {
      title: `apt-ops on preprod, through the local sshd (${p.server.host}:${p.server.port}); paste the export line first`,
      lines: [
        opsExport(p.preprod, p.server),
        ops('status'),
        ops('upload', '--source', p.uploadSource, p.uploadDeb),
        ops('versions', p.pkg),
      ],
    },
    {
      title: 'apt-ops on prod: promote from preprod, then roll back; paste the export line first',
      lines: [opsExport(p.prod, p.server), ops('pending'), ops('promote', p.pkg), ops('versions', p.pkg), ops('rollback')],
    },
    {
      title: `isolated apt client of preprod (bookworm; installs on this machine, waits up to ${p.lockTimeout} s for the dpkg lock)`,
      lines: [
        apt(p.aptConf.preprod, 'apt-get', 'update'),
        apt(p.aptConf.preprod, 'apt-cache', 'policy', p.pkg),
        apt(p.aptConf.preprod, 'apt-get', '-o', lock, 'install', '--allow-downgrades', `${p.pkg}=${p.olderVersion}`),
        shellJoin([path.posix.join('/usr/bin', p.pkg)]),
        apt(p.aptConf.preprod, 'apt-get', '-o', lock, 'install', ...p.sampleNames),
        apt(p.aptConf.preprod, 'apt-get', '-o', lock, 'purge', ...p.sampleNames),
      ],
    },
    { title: "on the server: the deployed indexer (reads as root, writes as the channel's service user)", lines: server },
    { title: 'stop sshd, nginx and the signers', lines: [p.stop] },
  ];
}

/** Renders blocks as printed: the title, then each line indented by two spaces. */
export function renderBlocks(blocks: CommandBlock[]): string {
  return blocks.map((b) => [`${b.title}:`, ...b.lines.map((l) => `  ${l}`)].join('\n')).join('\n');
}

/**
 * Reads printed blocks back (the inverse of renderBlocks, for tests): title → lines, for every
 * `<title>:` line followed by lines indented by two spaces.
 */
export function parseBlocks(text: string): CommandBlock[] {
  const out: CommandBlock[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('  ') && out.length) out[out.length - 1].lines.push(line.slice(2));
    else if (line.endsWith(':') && !line.startsWith(' ')) out.push({ title: line.slice(0, -1), lines: [] });
    else if (line.trim() !== '') out.push({ title: '', lines: [] });
  }
  return out.filter((b) => b.title !== '');
}
