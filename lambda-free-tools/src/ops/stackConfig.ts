/**
 * apt-ops settings: read from the Pulumi stack file `Pulumi.<stack>.yaml` (plain `apt-repo:*` keys,
 * so no Pulumi CLI is needed), then overridden by APT_OPS_* environment variables, then by flags.
 * Every value is validated; an error names the key and where it came from (file, variable, flag).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, UsageError } from '../errors';
import { NAME_RE } from '../repo/channel';
import { serverDefaults } from '../settings/layout';
import { CONFIG_NAMESPACE, keySchema } from '../settings/stackConfig';
import { parsePublicKey } from './hostKey';

/** The resolved settings apt-ops connects and runs with. Remote paths are absolute POSIX paths. */
export interface OpsConfig {
  stack: string;
  /** Absolute path of the Pulumi.<stack>.yaml that was read; undefined when none was needed. */
  stackFile?: string;
  host: string;
  /** TCP port, 1–65535. */
  port: number;
  /**
   * The account commands connect as: the operator account (stack key opsUser, which runs the
   * indexer through remotePrefix, e.g. `sudo -n -u aptrepo-<channel>`), else sshUser.
   */
  user: string;
  /**
   * The upload account (stack key uploadUser): when set, `upload` connects as it, writes over SFTP
   * only, to paths relative to its chroot (incomingDir), and never runs a command.
   */
  uploadUser?: string;
  /** Pinned host key line ('ssh-ed25519 AAAA…'); undefined: known_hosts decides. */
  hostKey?: string;
  /** Where hostKey came from, for messages ('/p/Pulumi.prod.yaml: apt-repo:sshHostKey', '--host-key', …). */
  hostKeySource?: string;
  /** known_hosts file consulted when hostKey is unset. */
  knownHostsFile: string;
  /** Private key file (OpenSSH/PEM) to authenticate with, besides the agent. */
  identityFile?: string;
  /** Passphrase of identityFile (environment only: never a flag, it would show in `ps`). */
  passphrase?: string;
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agentSocket?: string;
  /** The apt-repo bundle this channel's stack deployed on the server. */
  indexerPath: string;
  /** Node.js executable on the server. */
  nodePath: string;
  /** Words run before node (e.g. 'sudo -n -u aptrepo'); split on white space, each quoted. */
  remotePrefix: string;
  /**
   * Words run before node for `apt-ops mirror` (the mirrors' commands run as the mirror user, who owns
   * their folders): --mirror-prefix, APT_OPS_MIRROR_PREFIX, else mirrorPrefixFor(remotePrefix, …);
   * undefined when none can be derived (a remotePrefix of another shape).
   */
  mirrorPrefix?: string;
  /** apt-repo --root. */
  root: string;
  /** apt-repo --channel. */
  channel: string;
  /** Drop-zone directory on the server (uploads go to <incomingDir>/<source>/[<codename>/]). */
  incomingDir: string;
  /** The channel's web root on the server (status: disk use). */
  webRoot: string;
  /** How long to wait for the SSH handshake, in ms. */
  connectTimeoutMs: number;
}

/** Settings given on the command line (each overrides the environment and the stack file). */
export interface OpsFlags {
  projectDir?: string;
  host?: string;
  port?: string;
  user?: string;
  uploadUser?: string;
  hostKey?: string;
  knownHosts?: string;
  identity?: string;
  indexer?: string;
  node?: string;
  remotePrefix?: string;
  mirrorPrefix?: string;
  root?: string;
  channel?: string;
  incomingDir?: string;
  webRoot?: string;
  timeout?: string;
}

/** The Pulumi config namespace of the stack's plain settings (settings/stackConfig.ts). */
export { CONFIG_NAMESPACE };

type Field =
  | 'host'
  | 'port'
  | 'user'
  | 'opsUser'
  | 'uploadUser'
  | 'hostKey'
  | 'indexerPath'
  | 'nodePath'
  | 'remotePrefix'
  | 'mirrorPrefix'
  | 'root'
  | 'channel'
  | 'incomingDir'
  | 'webRoot'
  | 'knownHosts'
  | 'identity'
  | 'timeout';

interface FieldSpec {
  /** Key under `config:` in the stack file (without namespace); undefined: not a stack setting. */
  yamlKey?: string;
  env: string;
  flag: keyof OpsFlags;
  flagName: string;
  schema: z.ZodType<unknown>;
}

// Host, port, channel and remotePrefix follow the stack schema's rules (settings/stackConfig.ts).
// Paths and account names are looser than the schema on purpose: a flag or variable may name a
// sandbox path or an existing account that the stack would not create, and apt-ops quotes them.
const absolutePath = z.string().regex(/^\/[^\0\n]*$/, 'expected an absolute path (starting with /)');
const nonEmptyWord = z
  .string()
  .regex(/^[^\0\n]+$/, 'expected a non-empty value on one line')
  .refine((s) => s.trim() === s, 'no leading or trailing spaces');

const userName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, 'expected a user name');

const FIELDS: Record<Field, FieldSpec> = {
  host: { yamlKey: 'sshHost', env: 'APT_OPS_HOST', flag: 'host', flagName: '--host', schema: keySchema('sshHost') },
  port: { yamlKey: 'sshPort', env: 'APT_OPS_PORT', flag: 'port', flagName: '--port', schema: keySchema('sshPort') },
  user: { yamlKey: 'sshUser', env: 'APT_OPS_USER', flag: 'user', flagName: '--user', schema: userName },
  // The same --user flag: it names the account commands connect as, whichever key it replaces.
  opsUser: { yamlKey: 'opsUser', env: 'APT_OPS_OPS_USER', flag: 'user', flagName: '--user', schema: userName },
  uploadUser: { yamlKey: 'uploadUser', env: 'APT_OPS_UPLOAD_USER', flag: 'uploadUser', flagName: '--upload-user', schema: userName },
  hostKey: {
    yamlKey: 'sshHostKey',
    env: 'APT_OPS_HOST_KEY',
    flag: 'hostKey',
    flagName: '--host-key',
    schema: z.string().min(1, 'expected a public key line'),
  },
  indexerPath: { yamlKey: 'indexerPath', env: 'APT_OPS_INDEXER', flag: 'indexer', flagName: '--indexer', schema: absolutePath },
  nodePath: { yamlKey: 'nodePath', env: 'APT_OPS_NODE', flag: 'node', flagName: '--node', schema: nonEmptyWord },
  remotePrefix: {
    yamlKey: 'remotePrefix',
    env: 'APT_OPS_REMOTE_PREFIX',
    flag: 'remotePrefix',
    flagName: '--remote-prefix',
    schema: keySchema('remotePrefix'),
  },
  // Not a stack key: derived from remotePrefix and the stack's mirrors.user unless given.
  mirrorPrefix: { env: 'APT_OPS_MIRROR_PREFIX', flag: 'mirrorPrefix', flagName: '--mirror-prefix', schema: keySchema('remotePrefix') },
  root: { yamlKey: 'root', env: 'APT_OPS_ROOT', flag: 'root', flagName: '--root', schema: absolutePath },
  channel: { yamlKey: 'channel', env: 'APT_OPS_CHANNEL', flag: 'channel', flagName: '--channel', schema: keySchema('channel') },
  incomingDir: {
    yamlKey: 'incomingDir',
    env: 'APT_OPS_INCOMING_DIR',
    flag: 'incomingDir',
    flagName: '--incoming-dir',
    schema: absolutePath,
  },
  webRoot: { yamlKey: 'webRoot', env: 'APT_OPS_WEB_ROOT', flag: 'webRoot', flagName: '--web-root', schema: absolutePath },
  knownHosts: { env: 'APT_OPS_KNOWN_HOSTS', flag: 'knownHosts', flagName: '--known-hosts', schema: nonEmptyWord },
  identity: { env: 'APT_OPS_IDENTITY', flag: 'identity', flagName: '--identity', schema: nonEmptyWord },
  timeout: {
    env: 'APT_OPS_TIMEOUT',
    flag: 'timeout',
    flagName: '--timeout',
    schema: z.coerce
      .number({ error: 'expected a number of seconds' })
      .positive('expected a positive number of seconds')
      .max(3600, 'at most 3600 seconds'),
  },
};

/** Stack names as Pulumi accepts them in a stack file name. */
const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Finds the Pulumi project directory: `explicit` if given, else the nearest ancestor of `cwd`
 * (itself included) holding a Pulumi.yaml, else `cwd`.
 */
export function findProjectDir(cwd: string, explicit?: string): string {
  if (explicit) return path.resolve(cwd, explicit);
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'Pulumi.yaml')) || fs.existsSync(path.join(dir, 'Pulumi.yml'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(cwd);
  }
}

/**
 * Reads the plain `apt-repo:*` values of a stack file.
 * @returns key (without namespace) → raw value (string, number or boolean as YAML gave it).
 * @throws ConfigError(file, …) for unreadable or invalid YAML or a `config` that is not a mapping;
 *         ConfigError(`file: apt-repo:key`, …) for a secret (`secure:`) or structured value.
 */
export function readStackFile(file: string): Record<string, string | number | boolean> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(file, `invalid YAML: ${String((e as Error).message).split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(file, 'expected a YAML mapping at the top level');
  const config = (doc as Record<string, unknown>).config;
  if (config === undefined || config === null) return {};
  if (typeof config !== 'object' || Array.isArray(config))
    throw new ConfigError(`${file}: config`, 'expected a mapping of <namespace>:<key> to values');
  const out: Record<string, string | number | boolean> = {};
  const wanted = new Set(
    Object.values(FIELDS)
      .map((f) => f.yamlKey)
      .filter(Boolean) as string[],
  );
  for (const [fullKey, value] of Object.entries(config as Record<string, unknown>)) {
    if (!fullKey.startsWith(CONFIG_NAMESPACE + ':')) continue;
    const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
    if (!wanted.has(key)) continue;
    const where = `${file}: ${fullKey}`;
    if (value !== null && typeof value === 'object') {
      if ('secure' in (value as object)) {
        throw new ConfigError(
          where,
          'is a Pulumi secret (secure:) but apt-ops needs it in plain text; set it without --secret, or pass the matching flag or APT_OPS_* variable',
        );
      }
      throw new ConfigError(where, 'expected a plain value, got a structured one');
    }
    if (value === null || value === undefined) continue;
    out[key] = value as string | number | boolean;
  }
  return out;
}

/**
 * The prefix that runs the indexer as the mirror user `mirrorUser`, from the one that runs it as the
 * channel's (`remotePrefix`): `sudo [-n] -u <user>` becomes the same sudo with `-u <mirrorUser>` (the
 * operators' sudo rule allows the mirrors' commands as that user: infra/sudoers.ts); no prefix (a
 * root connection) becomes `runuser -u <mirrorUser> --`, or `sudo -n -u <mirrorUser>` for another
 * account. Any other shape: undefined (`apt-ops mirror` then asks for --mirror-prefix). Pure.
 */
export function mirrorPrefixFor(remotePrefix: string, connectUser: string, mirrorUser: string): string | undefined {
  const words = remotePrefix.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return connectUser === 'root' ? `runuser -u ${mirrorUser} --` : `sudo -n -u ${mirrorUser}`;
  const sudo = /^sudo((?: -n)?) -u \S+$/.exec(words.join(' '));
  return sudo ? `sudo${sudo[1]} -u ${mirrorUser}` : undefined;
}

/**
 * The stack's mirror user: `apt-repo:mirrors` `user` in the stack file (a structured value, which
 * readStackFile leaves out), else aptmirror (the stack's default). Never throws: a file it cannot
 * read gives the default (loadStackConfig reports the file's own errors).
 */
function stackMirrorUser(file: string | undefined): string {
  if (!file) return 'aptmirror';
  try {
    const doc = parseYaml(fs.readFileSync(file, 'utf8')) as { config?: Record<string, unknown> } | null;
    const user = (doc?.config?.[`${CONFIG_NAMESPACE}:mirrors`] as { user?: unknown } | undefined)?.user;
    return typeof user === 'string' && /^[a-z_][a-z0-9_-]{0,31}$/.test(user) ? user : 'aptmirror';
  } catch {
    return 'aptmirror';
  }
}

/**
 * Resolves the apt-ops settings for `stack`.
 * Order (last wins): built-in defaults, `config: apt-repo:<key>` in `<projectDir>/Pulumi.<stack>.yaml`,
 * environment (APT_OPS_HOST, APT_OPS_PORT, APT_OPS_USER, APT_OPS_OPS_USER, APT_OPS_UPLOAD_USER, APT_OPS_HOST_KEY, APT_OPS_INDEXER,
 * APT_OPS_NODE, APT_OPS_REMOTE_PREFIX, APT_OPS_MIRROR_PREFIX, APT_OPS_ROOT, APT_OPS_CHANNEL, APT_OPS_INCOMING_DIR,
 * APT_OPS_WEB_ROOT, APT_OPS_KNOWN_HOSTS, APT_OPS_IDENTITY, APT_OPS_TIMEOUT, APT_OPS_PROJECT_DIR;
 * APT_OPS_PASSPHRASE; SSH_AUTH_SOCK), then flags.
 * The account commands connect as is opsUser (flag --user, APT_OPS_OPS_USER, stack opsUser), else
 * sshUser (APT_OPS_USER, stack sshUser); uploadUser (--upload-user, APT_OPS_UPLOAD_USER, stack
 * uploadUser) has no default.
 * Defaults: port 22, user root, nodePath node, remotePrefix '', mirrorPrefix mirrorPrefixFor(…), root '/', channel = stack name,
 * indexerPath <root>/opt/apt-repo/<channel>/apt-repo.cjs, incomingDir <root>/srv/apt/incoming,
 * webRoot <root>/srv/apt/<channel>, known_hosts ~/.ssh/known_hosts, timeout 20 s.
 * The stack file may be absent only when the host comes from a flag or the environment.
 * @throws UsageError for a bad stack name; ConfigError naming the key and its source otherwise.
 */
export function loadStackConfig(opts: {
  stack: string;
  flags?: OpsFlags;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  homeDir?: string;
}): OpsConfig {
  const flags = opts.flags ?? {};
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const home = opts.homeDir ?? os.homedir();
  const stack = opts.stack;
  if (!STACK_NAME.test(stack)) throw new UsageError(`invalid stack name '${stack}': expected letters, digits, '_', '.', '-'`);

  const projectDir = findProjectDir(cwd, flags.projectDir ?? (env.APT_OPS_PROJECT_DIR || undefined));
  const file = path.join(projectDir, `Pulumi.${stack}.yaml`);
  const hostGivenOutside = Boolean(flags.host ?? env.APT_OPS_HOST);
  let fromFile: Record<string, string | number | boolean> = {};
  let stackFile: string | undefined;
  if (fs.existsSync(file)) {
    fromFile = readStackFile(file);
    stackFile = file;
  } else if (!hostGivenOutside) {
    throw new ConfigError(
      file,
      'not found: run apt-ops in the Pulumi project directory, pass --project-dir, or give --host / APT_OPS_HOST',
    );
  }

  const pick = (field: Field): { value: unknown; source: string } | undefined => {
    const spec = FIELDS[field];
    const flagValue = flags[spec.flag];
    if (flagValue !== undefined) return { value: flagValue, source: spec.flagName };
    const envValue = env[spec.env];
    if (envValue !== undefined && envValue !== '') return { value: envValue, source: `${spec.env} (environment)` };
    if (spec.yamlKey && fromFile[spec.yamlKey] !== undefined) {
      const v = fromFile[spec.yamlKey];
      return { value: typeof v === 'boolean' ? String(v) : v, source: `${file}: ${CONFIG_NAMESPACE}:${spec.yamlKey}` };
    }
    return undefined;
  };
  const value = <T>(field: Field, fallback?: () => T): { v: T | undefined; source: string } => {
    const got = pick(field);
    if (!got) return { v: fallback?.(), source: 'default' };
    const schema =
      field === 'port' || field === 'timeout'
        ? FIELDS[field].schema
        : z
            .union([z.string(), z.number()])
            .transform(String)
            .pipe(FIELDS[field].schema as z.ZodType<string, string>);
    const r = schema.safeParse(got.value);
    if (!r.success)
      throw new ConfigError(got.source, `${r.error.issues[0]?.message ?? 'invalid value'} (got ${JSON.stringify(got.value)})`);
    return { v: r.data as T, source: got.source };
  };

  const host = value<string>('host').v;
  if (!host)
    throw new ConfigError(`${file}: ${CONFIG_NAMESPACE}:sshHost`, 'is not set (set it in the stack, or pass --host / APT_OPS_HOST)');
  const port = value<number>('port', () => 22).v!;
  // opsUser (flag --user, APT_OPS_OPS_USER, stack opsUser), else sshUser (APT_OPS_USER, stack sshUser), else root.
  const user = value<string>('opsUser', () => value<string>('user', () => 'root').v!).v!;
  const uploadUser = value<string>('uploadUser').v;
  const hostKeyPick = value<string>('hostKey');
  if (hostKeyPick.v !== undefined) parsePublicKey(hostKeyPick.v, hostKeyPick.source);
  const root = value<string>('root', () => '/').v!;
  const channelPick = value<string>('channel');
  let channel = channelPick.v;
  if (channel === undefined) {
    if (!NAME_RE.test(stack))
      throw new ConfigError(`${file}: ${CONFIG_NAMESPACE}:channel`, `is not set and the stack name '${stack}' is not a valid channel name`);
    channel = stack;
  }
  const defaults = serverDefaults(root, channel);
  const indexerPath = value<string>('indexerPath', () => defaults.indexerPath).v!;
  const nodePath = value<string>('nodePath', () => 'node').v!;
  const remotePrefix = value<string>('remotePrefix', () => '').v!;
  const mirrorPrefix = value<string | undefined>('mirrorPrefix', () => mirrorPrefixFor(remotePrefix, user, stackMirrorUser(stackFile))).v;
  const incomingDir = value<string>('incomingDir', () => defaults.incomingDir).v!;
  const webRoot = value<string>('webRoot', () => defaults.webRoot).v!;
  const knownHosts = value<string>('knownHosts', () => path.join(home, '.ssh', 'known_hosts')).v!;
  const identity = value<string>('identity').v;
  const timeout = value<number>('timeout', () => 20).v!;

  return {
    stack,
    stackFile,
    host,
    port,
    user,
    uploadUser,
    hostKey: hostKeyPick.v,
    hostKeySource: hostKeyPick.v !== undefined ? hostKeyPick.source : undefined,
    knownHostsFile: path.resolve(cwd, knownHosts.replace(/^~(?=\/)/, home)),
    identityFile: identity !== undefined ? path.resolve(cwd, identity.replace(/^~(?=\/)/, home)) : undefined,
    passphrase: env.APT_OPS_PASSPHRASE || undefined,
    agentSocket: env.SSH_AUTH_SOCK || undefined,
    indexerPath,
    nodePath,
    remotePrefix,
    ...(mirrorPrefix !== undefined ? { mirrorPrefix } : {}),
    root,
    channel,
    incomingDir,
    webRoot,
    connectTimeoutMs: Math.round(timeout * 1000),
  };
}
