/**
 * Channel configuration: where a channel's files live and what it publishes.
 *
 * Files, under `<root>/etc/epiconcept/apt_repo/<channel>/`:
 * - `liste_dist`: codenames, one per line (`#` comments and blank lines ignored);
 * - `liste_arch`: binary architectures, same format (`all` is implied and may not be listed);
 * - `repo.yaml` (optional): Release fields, paths, routing table, limits (see RepoYaml below);
 * - `signing-key.asc`: the armored private key (0600), written by `apt-repo keygen`.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { z as zod } from 'zod';
import { ConfigError, UnknownChannelError, UsageError } from '../errors';
import { mkdirWithMode } from '../core/files';
import { DEFAULT_ROUTING } from './routing';
import { routingRuleSchema } from '../core/routingRule';
import type { ChannelConfig } from '../core/types';

/** Binary architecture names dpkg knows for Debian/Ubuntu (dpkg-architecture -L, Linux ports). */
export const KNOWN_ARCHITECTURES = [
  'amd64',
  'arm64',
  'armel',
  'armhf',
  'i386',
  'mips64el',
  'mipsel',
  'mips',
  'ppc64el',
  'ppc64',
  'powerpc',
  's390x',
  'riscv64',
  'loong64',
  'alpha',
  'hppa',
  'ia64',
  'm68k',
  'sh4',
  'sparc64',
  'x32',
  'hurd-i386',
  'hurd-amd64',
];

/**
 * The channel-name rule (also a drop-folder name's), as regular-expression source without anchors
 * (to embed it, and to name it in messages): lower-case letters, digits and '-', not '-' first.
 */
export const NAME_PATTERN = '[a-z0-9][a-z0-9-]*';
/** A whole channel name: NAME_PATTERN anchored. The one test of a channel name (stack config, repo.yaml, apt-ops, manifests). */
export const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);
/** Codenames are dist directory names and Release fields: keep them to lower-case words. */
export const CODENAME_RE = /^[a-z][a-z0-9-]*$/;

/**
 * Names of the channels configured under `root`: the folders of channelsConfigRoot whose name is a
 * channel name, sorted; empty when that folder does not exist. Throws the file system's error for
 * any other failure to list it.
 */
export function listChannels(root: string): string[] {
  try {
    return fs
      .readdirSync(channelsConfigRoot(root), { withFileTypes: true })
      .filter((d) => d.isDirectory() && NAME_RE.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * Checks that `channel` is configured under `root` (its configDir is a folder) before anything
 * reads or writes it. Throws UnknownChannelError (exit 2) naming the channels that are, for a name
 * that is not a channel name (NAME_RE) or a channel without its folder; never creates anything.
 */
export function assertKnownChannel(root: string, channel: string): void {
  const r = path.resolve(root);
  if (!NAME_RE.test(channel)) throw new UnknownChannelError(channel, r, listChannels(r), `not a channel name (${NAME_PATTERN})`);
  const configDir = channelPaths(r, channel).configDir;
  let isDir = false;
  try {
    isDir = fs.statSync(configDir).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') {
      throw new ConfigError(configDir, `cannot read: ${(e as Error).message}`);
    }
  }
  if (!isDir) throw new UnknownChannelError(channel, r, listChannels(r), `${configDir} does not exist`);
}

/** Default paths of a channel (all absolute, under `root`); see ChannelConfig for each. */
export type ChannelPaths = Pick<
  ChannelConfig,
  'configDir' | 'webRoot' | 'stateDir' | 'backupDir' | 'incomingDir' | 'rejectedDir' | 'signingKeyFile'
>;

/** `<root>/etc/epiconcept/apt_repo`: the folder holding every channel's configDir. */
export function channelsConfigRoot(root: string): string {
  return path.join(path.resolve(root), 'etc/epiconcept/apt_repo');
}

/**
 * The default paths of channel `name` under the prefix `root` ('/' in production):
 * configDir `<root>/etc/epiconcept/apt_repo/<name>`, webRoot `<root>/srv/apt/<name>`,
 * stateDir `<root>/var/lib/apt-repo/<name>`, backupDir `<root>/var/backups/apt-repo/<name>`,
 * incomingDir `<root>/srv/apt/incoming` (shared by channels), rejectedDir `<incomingDir>/rejected`,
 * signingKeyFile `<configDir>/signing-key.asc`.
 */
export function channelPaths(root: string, name: string): ChannelPaths {
  const r = path.resolve(root);
  const configDir = path.join(channelsConfigRoot(r), name);
  const incomingDir = path.join(r, 'srv/apt/incoming');
  return {
    configDir,
    webRoot: path.join(r, 'srv/apt', name),
    stateDir: path.join(r, 'var/lib/apt-repo', name),
    backupDir: path.join(r, 'var/backups/apt-repo', name),
    incomingDir,
    rejectedDir: path.join(incomingDir, 'rejected'),
    signingKeyFile: path.join(configDir, 'signing-key.asc'),
  };
}

/**
 * Where the signing service of channel `name` listens by default (the Pulumi program writes it
 * into repo.yaml as `signerSocket`): `<root>/run/apt-repo/sign-<name>/sign.sock`. Its folder is
 * mode 0750, owner the signer's account, group the channel's service user.
 */
export function defaultSignerSocket(root: string, name: string): string {
  return path.join(path.resolve(root), 'run/apt-repo', `sign-${name}`, 'sign.sock');
}

/** A URL clients can use for a channel: http or https, no credentials, query or fragment, ending with '/'. */
function isClientUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return (
      (u.protocol === 'https:' || u.protocol === 'http:') && u.pathname.endsWith('/') && !u.username && !u.password && !u.search && !u.hash
    );
  } catch {
    return false;
  }
}

/**
 * The repo.yaml schema: every key optional; unknown keys are refused (a typo must not be ignored
 * silently). Built on first use: zod and yaml are loaded only for a repo.yaml that has settings,
 * which keeps them off the start-up path of every command (see readRepoYaml).
 */
function buildSchema(z: typeof zod) {
  const absPath = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path');
  return z.strictObject({
    origin: z.string().min(1).optional(),
    label: z.string().min(1).optional(),
    description: z.string().optional(),
    url: z
      .string()
      .refine(isClientUrl, 'must be the http or https URL clients use, ending with / (no credentials, query or fragment)')
      .optional(),
    component: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.+-]*$/, 'must be a component name such as main')
      .optional(),
    keyName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a file-name word')
      .optional(),
    webRoot: absPath.optional(),
    stateDir: absPath.optional(),
    backupDir: absPath.optional(),
    metricsDir: absPath.optional(),
    catalogue: z.boolean().optional(),
    incomingDir: absPath.optional(),
    signerSocket: absPath.optional(),
    generationsKeep: z.number().int().min(2).optional(),
    backupKeep: z.number().int().min(1).optional(),
    validUntilDays: z.number().int().min(1).optional(),
    routing: z.array(routingRuleSchema(z)).optional(),
    retention: z
      .array(
        z
          .strictObject({
            pattern: z.string().refine((p) => {
              try {
                new RegExp(p);
                return true;
              } catch {
                return false;
              }
            }, 'must be a JavaScript regular expression'),
            keep: z.number().int().min(1).optional(),
            maxAgeDays: z.number().min(0).optional(),
          })
          .refine((r) => r.keep !== undefined || r.maxAgeDays !== undefined, 'give keep, maxAgeDays or both'),
      )
      .optional(),
    upstream: z.string().regex(NAME_RE, 'must be a channel name').optional(),
    lockTimeoutSeconds: z.number().min(0).optional(),
  });
}
let schema: ReturnType<typeof buildSchema> | undefined;
function repoYamlSchema(): ReturnType<typeof buildSchema> {
  schema ??= buildSchema((require('zod') as { z: typeof zod }).z);
  return schema;
}
/** The settings repo.yaml may hold. */
export type RepoYaml = zod.infer<ReturnType<typeof buildSchema>>;

/** Reads a list file (liste_dist, liste_arch): one item per line, `#` comments and blank lines ignored. */
export function parseList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0);
}

function readOptional(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(file, `cannot read: ${(e as Error).message}`);
  }
}

function readList(file: string, what: string, validate: (item: string) => string | undefined): string[] {
  const text = readOptional(file);
  if (text === undefined) throw new ConfigError(file, `missing (one ${what} per line; run \`apt-repo init\`)`);
  const items = parseList(text);
  if (items.length === 0) throw new ConfigError(file, `no ${what} listed`);
  const seen = new Set<string>();
  for (const item of items) {
    const why = validate(item);
    if (why) throw new ConfigError(`${file}:${item}`, why);
    if (seen.has(item)) throw new ConfigError(`${file}:${item}`, `listed twice`);
    seen.add(item);
  }
  return items;
}

function readRepoYaml(file: string): RepoYaml {
  const text = readOptional(file);
  // Only comments (as `apt-repo init` writes it): nothing to parse.
  if (text === undefined || !text.split('\n').some((l) => /^\s*[^#\s]/.test(l))) return {};
  let raw: unknown;
  try {
    raw = (require('yaml') as typeof import('yaml')).parse(text);
  } catch (e) {
    throw new ConfigError(file, `not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw === null || raw === undefined) return {};
  const RepoYaml = repoYamlSchema();
  const r = RepoYaml.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`${file}:${issue.keys.join(',')}`, `unknown key (known: ${Object.keys(RepoYaml.shape).join(', ')})`);
    }
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new ConfigError(`${file}:${key}`, issue.message);
  }
  return r.data;
}

/**
 * The upstream of a channel whose repo.yaml names none: 'preprod' for 'prod' (the pair every stack
 * has), none for any other channel.
 */
function defaultUpstream(channel: string): string | undefined {
  return channel === 'prod' ? 'preprod' : undefined;
}

/**
 * Loads channel `channel` under prefix `root`: validates the channel name, reads repo.yaml
 * (optional), liste_dist and liste_arch, and returns a fully resolved ChannelConfig (defaults:
 * origin 'Epiconcept', label 'Epiconcept <channel>', component 'main', keyName
 * 'epiconcept-<channel>', generationsKeep 5, backupKeep 7, lock timeout 120 s, routing DEFAULT_ROUTING,
 * upstream defaultUpstream(channel)).
 * Throws UnknownChannelError (exit 2) when the channel's configDir does not exist or its name is
 * not a channel name (see assertKnownChannel), and ConfigError naming the file (and key or item)
 * for a missing or empty list, an unknown architecture, a malformed codename, `all` in liste_arch,
 * or a bad or unknown repo.yaml key.
 */
export async function loadChannel(opts: { root: string; channel: string }): Promise<ChannelConfig> {
  const { channel } = opts;
  assertKnownChannel(opts.root, channel);
  const paths = channelPaths(opts.root, channel);
  const yamlFile = path.join(paths.configDir, 'repo.yaml');
  const y = readRepoYaml(yamlFile);
  const codenames = readList(path.join(paths.configDir, 'liste_dist'), 'codename', (c) =>
    CODENAME_RE.test(c) ? undefined : 'not a codename (lower-case letters, digits and dashes)',
  );
  const architectures = readList(path.join(paths.configDir, 'liste_arch'), 'architecture', (a) => {
    if (a === 'all') return "'all' is implied: Architecture: all packages go into every binary-<arch> index";
    return KNOWN_ARCHITECTURES.includes(a) ? undefined : `unknown architecture (known: ${KNOWN_ARCHITECTURES.join(' ')})`;
  });
  const incomingDir = y.incomingDir ?? paths.incomingDir;
  return {
    name: channel,
    root: path.resolve(opts.root),
    configDir: paths.configDir,
    webRoot: y.webRoot ?? paths.webRoot,
    stateDir: y.stateDir ?? paths.stateDir,
    backupDir: y.backupDir ?? paths.backupDir,
    ...(y.metricsDir ? { metricsDir: y.metricsDir } : {}),
    catalogue: y.catalogue ?? true,
    incomingDir,
    rejectedDir: path.join(incomingDir, 'rejected'),
    codenames,
    architectures,
    origin: y.origin ?? 'Epiconcept',
    label: y.label ?? `Epiconcept ${channel}`,
    description: y.description ?? `Epiconcept packages (${channel})`,
    component: y.component ?? 'main',
    keyName: y.keyName ?? `epiconcept-${channel}`,
    signingKeyFile: paths.signingKeyFile,
    signerSocket: y.signerSocket,
    generationsKeep: y.generationsKeep ?? 5,
    backupKeep: y.backupKeep ?? 7,
    validUntilDays: y.validUntilDays,
    routing: y.routing ?? DEFAULT_ROUTING,
    ...(y.retention ? { retention: y.retention } : {}),
    upstream: y.upstream ?? defaultUpstream(channel),
    ...(y.url ? { url: y.url } : {}),
    lockTimeoutMs: Math.round((y.lockTimeoutSeconds ?? 120) * 1000),
  };
}

function writeIfAbsent(file: string, content: string, mode: number): boolean {
  try {
    fs.writeFileSync(file, content, { flag: 'wx', mode });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Creates whatever is missing of channel `channel` under `root`, never overwriting: configDir
 * (0750), liste_dist (default `bookworm`), liste_arch (default `amd64`), repo.yaml (with the given
 * upstream/origin/label, if any), webRoot/pool, stateDir, backupDir, incomingDir, rejectedDir.
 * Then loads and returns the channel (so it throws ConfigError like loadChannel when existing
 * files are invalid).
 */
export async function initChannel(opts: {
  root: string;
  channel: string;
  codenames?: string[];
  architectures?: string[];
  upstream?: string;
  origin?: string;
  label?: string;
}): Promise<ChannelConfig> {
  if (!NAME_RE.test(opts.channel)) throw new UsageError(`--channel '${opts.channel}' is not a channel name (${NAME_PATTERN})`);
  if (opts.upstream !== undefined && !NAME_RE.test(opts.upstream))
    throw new ConfigError('--upstream', `'${opts.upstream}' is not a channel name`);
  const paths = channelPaths(opts.root, opts.channel);
  const codenames = opts.codenames?.length ? opts.codenames : ['bookworm'];
  const architectures = opts.architectures?.length ? opts.architectures : ['amd64'];
  // Checked before anything is written, so a typo does not leave a broken liste_* behind.
  for (const c of codenames)
    if (!CODENAME_RE.test(c)) throw new ConfigError(`codenames:${c}`, 'not a codename (lower-case letters, digits and dashes)');
  for (const a of architectures) {
    if (!KNOWN_ARCHITECTURES.includes(a))
      throw new ConfigError(`architectures:${a}`, `unknown architecture (known: ${KNOWN_ARCHITECTURES.join(' ')}; 'all' is implied)`);
  }
  // Parents get the usual 0755 (a service user must reach its own channel's directory).
  mkdirWithMode(path.dirname(paths.configDir), 0o755);
  mkdirWithMode(paths.configDir, 0o750);
  // An existing configDir may have been made by hand with a wider mode: it holds the private key.
  fs.chmodSync(paths.configDir, 0o750);
  writeIfAbsent(path.join(paths.configDir, 'liste_dist'), codenames.join('\n') + '\n', 0o644);
  writeIfAbsent(path.join(paths.configDir, 'liste_arch'), architectures.join('\n') + '\n', 0o644);
  const yamlLines = [
    `# apt-repo settings of channel ${opts.channel}. Every key is optional; the defaults are shown commented out.`,
    '# Keep origin and label stable forever: apt asks every client to confirm a change.',
    opts.origin ? `origin: ${JSON.stringify(opts.origin)}` : '# origin: Epiconcept',
    opts.label ? `label: ${JSON.stringify(opts.label)}` : `# label: Epiconcept ${opts.channel}`,
    `# description: Epiconcept packages (${opts.channel})`,
    '# component: main',
    `# keyName: epiconcept-${opts.channel}          # <webRoot>/<keyName>-archive-keyring.asc|.gpg`,
    `# url: https://apt-${opts.channel}.example.org/   # where clients reach the channel (client-setup's default --url)`,
    '# generationsKeep: 5                  # published generations kept for rollback (>= 2)',
    '# backupKeep: 7                       # dated backups kept by backup --to <dir> (>= 1)',
    '# validUntilDays: 30                  # Release Valid-Until (default: none)',
    '# lockTimeoutSeconds: 120',
    '# webRoot: /srv/apt/<channel>         # absolute paths, used as given',
    '# stateDir: /var/lib/apt-repo/<channel>',
    '# backupDir: /var/backups/apt-repo/<channel>',
    '# metricsDir: /var/lib/prometheus/node-exporter   # Prometheus textfile written after each writing command (default: none)',
    '# catalogue: true                     # the web catalogue at <webRoot>/catalogue, rewritten by every publish',
    '# incomingDir: /srv/apt/incoming',
    `# signerSocket: /run/apt-repo/sign-${opts.channel}/sign.sock   # sign through the signing service (the indexer never reads the key)`,
    '# routing:                            # replaces the default version-suffix table (+debNuM, +<codename>N, ~bpoN …)',
    "#   - pattern: '\\+php(\\d+)$'           # JavaScript regular expression over the full version",
    '#     codenames: [bookworm, trixie]   # $1 … expand to groups; a number maps to the Debian codename',
    '# retention:                          # gc --policy: per package-name pattern, the first that matches (off when absent)',
    "#   - pattern: '^voozanoo-'            # JavaScript regular expression over the package name",
    '#     keep: 10                        # the newest 10 versions, and/or',
    '#     maxAgeDays: 180                 # those uploaded less than 180 days ago (the newest, and what prod serves, always stay)',
  ];
  if (opts.upstream) yamlLines.push(`upstream: ${opts.upstream}`);
  else yamlLines.push('# upstream: preprod                   # the channel promote takes packages from');
  writeIfAbsent(path.join(paths.configDir, 'repo.yaml'), yamlLines.join('\n') + '\n', 0o644);
  const ch = await loadChannel(opts);
  // The web root must be readable by nginx whatever the umask; the backups hold the whole channel.
  mkdirWithMode(path.join(ch.webRoot, 'pool'), 0o755);
  mkdirWithMode(ch.stateDir, 0o755);
  mkdirWithMode(ch.backupDir, 0o750);
  mkdirWithMode(ch.incomingDir, 0o755);
  mkdirWithMode(ch.rejectedDir, 0o755);
  return ch;
}

/** An upstream (preprod) and downstream (prod) channel pair. */
export interface ChannelPair {
  upstream: ChannelConfig;
  downstream: ChannelConfig;
}

/**
 * Finds the channel pair of `channel` under `root` (a name, or the channel already loaded): a
 * channel with an upstream (repo.yaml `upstream`, prod's default preprod: see loadChannel) is the
 * downstream side, and only it and its upstream are loaded. Any other channel is the upstream side
 * of the first channel, in name order, whose upstream names it: for that search only the other
 * channels' repo.yaml is read, and one that cannot be read is passed over (its error is thrown only
 * when no channel is found, as that one may have been the partner).
 * Throws UsageError when the upstream is not configured or no channel takes packages from
 * `channel`; UnknownChannelError and ConfigError from loadChannel.
 */
export async function resolveChannelPair(root: string, channel: string | ChannelConfig): Promise<ChannelPair> {
  const ch = typeof channel === 'string' ? await loadChannel({ root, channel }) : channel;
  const names = listChannels(root);
  if (ch.upstream) {
    if (!names.includes(ch.upstream))
      throw new UsageError(`channel ${ch.name}'s upstream ${ch.upstream} is not configured under ${channelsConfigRoot(root)}`);
    return { upstream: await loadChannel({ root, channel: ch.upstream }), downstream: ch };
  }
  let unreadable: unknown;
  for (const n of names) {
    if (n === ch.name) continue;
    let upstream: string | undefined;
    try {
      upstream = readRepoYaml(path.join(channelPaths(root, n).configDir, 'repo.yaml')).upstream ?? defaultUpstream(n);
    } catch (e) {
      unreadable ??= e;
      continue;
    }
    if (upstream === ch.name) return { upstream: ch, downstream: await loadChannel({ root, channel: n }) };
  }
  if (unreadable !== undefined) throw unreadable;
  throw new UsageError(`no channel takes packages from ${ch.name}: none has upstream: ${ch.name} under ${channelsConfigRoot(root)}`);
}
