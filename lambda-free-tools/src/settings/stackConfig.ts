/**
 * Stack configuration of the `apt-repo` Pulumi project: the one schema (zod) of its keys, read once
 * by the Pulumi program (stacks/config.ts, from pulumi.Config) and, for the plain keys, by apt-ops
 * (ops/stackConfig.ts, from Pulumi.<stack>.yaml). Server paths left unset come from ./layout.ts.
 *
 * Every key lives in the `apt-repo` namespace (`apt-repo:<key>` in Pulumi.<stack>.yaml). A wrong
 * value fails with a ConfigError naming the key and what was expected. Plain keys read by apt-ops
 * straight from the stack file keep their names: sshHost, sshPort, sshUser, sshHostKey, indexerPath,
 * nodePath, remotePrefix, root, channel, incomingDir, webRoot, opsUser, uploadUser.
 *
 * Accounts (provisioned by infra/accounts.ts): serviceUser (the channel's indexer,
 * default aptrepo-<channel>), signerUser (owns the private key, default aptsign-<channel>), the shared
 * groups poolGroup (aptrepo), uploadGroup (aptupload) and operatorGroup (aptops), and the
 * uploaders and operators with their SSH public keys.
 *
 * Secrets (sshPrivateKey, clientCredentials, signingKey) are validated here as plain values and
 * returned apart from the rest (`StackSecrets`), so nothing that takes a StackConfig can leak them.
 */
import { isIP } from 'net';
import * as path from 'path';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { channelPaths, CODENAME_RE, KNOWN_ARCHITECTURES, NAME_PATTERN, NAME_RE } from '../repo/channel';
import { defaultMirrorRoot, mirrorEntrySchema, MIRROR_NAME_RE } from '../mirror/config';
import type { RoutingRule } from '../core/types';
import { routingRuleSchema } from '../core/routingRule';
import { parseCidr } from './cidr';
import { serverDefaults } from './layout';

/** The Pulumi config namespace (the project name). */
export const CONFIG_NAMESPACE = 'apt-repo';

/** Binary architectures dpkg knows (shared with the indexer's liste_arch check); `all` is implied, never listed. */
export { KNOWN_ARCHITECTURES };

/**
 * An OpenPGP fingerprint as the stack records and compares it (apt-repo:signingKeyFingerprint, the
 * SigningKey component): every white space character removed, upper case, so `ab12 CD34…` as gpg
 * prints it and `AB12CD34…` as `pulumi stack output keyFingerprint` gives it are the same. Pure; does
 * not check that the result is 40 hex digits.
 */
export function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/\s+/g, '').toUpperCase();
}

/** Keys whose value is a secret: set with `pulumi config set --secret`. */
export const SECRET_KEYS = ['sshPrivateKey', 'clientCredentials', 'signingKey'] as const;

/** Keys holding JSON (lists and objects) rather than a scalar string. */
const OBJECT_KEYS = new Set([
  'codenames',
  'architectures',
  'allowedCidrs',
  'clientCredentials',
  'tls',
  'ingestSources',
  'devContainer',
  'uploaders',
  'operators',
  'routing',
  'mirrors',
]);

/** Accounts the stack must never create, join to a group or restrict (Debian's base system accounts). */
const RESERVED_ACCOUNTS = [
  'root',
  'daemon',
  'bin',
  'sys',
  'sync',
  'games',
  'man',
  'lp',
  'mail',
  'news',
  'uucp',
  'proxy',
  'www-data',
  'backup',
  'list',
  'irc',
  'gnats',
  'nobody',
  'nogroup',
  'sshd',
  'sudo',
  'adm',
  'staff',
  'users',
  'systemd-network',
  'messagebus',
  '_apt',
];

const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

// Paths go unquoted into the nginx vhost (where white space, ';', '{', '$' are syntax) and systemd
// units (where '%' is a specifier and '$' a variable): only characters neither interprets.
const SAFE_PATH_RE = /^[A-Za-z0-9._@+/-]+$/;
// systemd reads a leading @ - : + ! (and white space) of an ExecStart= command as flags, not as part
// of the path (systemd.service(5), "Command lines"): "+" would run it with full privileges.
const UNIT_PREFIX_RE = /^[-+@!:\s]/;
const UNIT_PREFIX_REASON =
  'cannot start with + - @ ! : or white space (systemd reads them as ExecStart= prefixes, e.g. + runs the command with full privileges)';
const absolutePath = z
  .string()
  .refine((p) => !UNIT_PREFIX_RE.test(p), UNIT_PREFIX_REASON)
  .refine((p) => path.posix.isAbsolute(p) && !p.split('/').includes('..'), 'expected an absolute path without ..')
  .refine(
    (p) => SAFE_PATH_RE.test(p),
    'expected a path of letters, digits and . _ - + @ / only (it is written unquoted into the nginx vhost and systemd units)',
  );
/**
 * Where a metricsDir cannot be (metricsDirProblem). The stack makes that folder root:poolGroup 1775,
 * so it must be a folder of its own: never a system folder (its owner and mode would change), nor
 * one the hardened units (infra/systemd.ts) keep from the host: PrivateTmp= gives each unit its own
 * /tmp and /var/tmp, ProtectHome= hides /home, /root and /run/user; /run is emptied at boot.
 */
const METRICS_DIR_REFUSED_UNDER = ['/tmp', '/var/tmp', '/home', '/root', '/run', '/etc', '/usr', '/boot', '/proc', '/sys', '/dev'];
/** System folders a metricsDir cannot be (it may be inside one: /var/lib/prometheus/node-exporter). */
const SYSTEM_DIRS = [
  '/var/lib',
  '/var/cache',
  '/var/log',
  '/var/spool',
  '/var/backups',
  '/var/mail',
  '/var/opt',
  '/var/local',
  '/var/www',
  '/srv',
  '/opt',
  '/mnt',
  '/media',
];

/** `a` is `b` or inside it. */
const within = (a: string, b: string) => a === b || a.startsWith(b === '/' ? '/' : `${b}/`);

/**
 * Why `dir` (normalised, absolute) cannot be the metrics folder of a channel whose own folders are
 * `own` (key → path), or undefined when it can.
 */
function metricsDirProblem(dir: string, own: Record<string, string>): string | undefined {
  const under = METRICS_DIR_REFUSED_UNDER.find((d) => within(dir, d));
  if (under)
    return `cannot be under ${under} (the hardened units do not share /tmp, /var/tmp, /home, /root, /run/user with the host; /run is emptied at boot; /etc, /usr … are system folders): expected a folder of its own, e.g. /var/lib/prometheus/node-exporter`;
  if (dir.split('/').filter(Boolean).length < 2 || SYSTEM_DIRS.includes(dir))
    return `'${dir}' is a system folder, and the stack sets the metrics folder's owner and mode (root:poolGroup 1775): expected a folder of its own, e.g. /var/lib/prometheus/node-exporter`;
  for (const [key, p] of Object.entries(own)) {
    if (within(dir, p) || within(p, dir))
      return `cannot be inside ${key} (${p}) nor hold it: expected a folder of its own, e.g. /var/lib/prometheus/node-exporter`;
  }
  return undefined;
}
const port = z.coerce
  .number({ error: 'expected a port number' })
  .int('expected an integer')
  .min(1, 'expected a port 1-65535')
  .max(65535, 'expected a port 1-65535');
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')], { error: 'expected true or false' });
const hostLine = z
  .string()
  .trim()
  .regex(
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( .*)?$/,
    "expected the server's public host key line, e.g. 'ssh-ed25519 AAAA…' (from /etc/ssh/ssh_host_ed25519_key.pub)",
  );

const credential = z.strictObject({
  username: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'expected a user name of letters, digits, . _ @ - (no colon, no space)'),
  password: z
    .string()
    .min(12, 'expected a password of at least 12 characters')
    .refine((p) => !/[\n\r\0]/.test(p) && !/\s/.test(p), 'a password cannot hold white space (apt auth.conf splits on it)'),
});

const tls = z.discriminatedUnion(
  'mode',
  [
    z.strictObject({
      mode: z.literal('files'),
      certFile: z
        .string({ error: 'expected the path of the PEM certificate chain' })
        .min(1, 'expected the path of the PEM certificate chain'),
      keyFile: z.string({ error: 'expected the path of the PEM private key' }).min(1, 'expected the path of the PEM private key'),
    }),
    z.strictObject({ mode: z.literal('certbot'), email: z.email('expected the e-mail address certbot registers with') }),
    z.strictObject({ mode: z.literal('none') }),
  ],
  { error: "expected { mode: 'files', certFile, keyFile } | { mode: 'certbot', email } | { mode: 'none' }" },
);

const devContainer = z.strictObject({
  sshPort: port.default(2222),
  httpPort: port.default(8080),
  httpsPort: port.default(8443),
  imageName: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$/, 'expected a Docker image name')
    .default('apt-repo-dev:bookworm'),
  /** The image the server image is built FROM: debian:bookworm, or scripts/debian-base-image.sh's apt-repo-base:bookworm without Docker's registry. */
  baseImage: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$/, 'expected a Docker image name')
    .default('debian:bookworm'),
  /** The SSH public key authorised for root in the container (the pair of sshPrivateKey). */
  authorizedKey: z
    .string()
    .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-\S+) [A-Za-z0-9+/]+={0,2}( .*)?$/, 'expected an OpenSSH public key line'),
});

// useradd(8)'s portable names (lower case, at most 32 characters): also sshd's Match and sudoers words.
const ACCOUNT_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const accountName = (what: string) => z.string().regex(ACCOUNT_RE, `expected ${what}: [a-z_][a-z0-9_-]*, at most 32 characters`);
/**
 * One OpenSSH public key line (sshd(8) AUTHORIZED_KEYS FILE FORMAT) WITHOUT options: the stack writes
 * the options itself (restrict, …), so a line must start with the key type. An optional comment of
 * printable characters may follow.
 */
export const AUTHORIZED_KEY_RE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( [\x20-\x7e]*)?$/;
const sshAccount = (what: string) =>
  z.strictObject(
    {
      name: accountName(`${what} user name`),
      authorizedKeys: z
        .array(
          z.string().regex(AUTHORIZED_KEY_RE, "expected one OpenSSH public key per line, without options: 'ssh-ed25519 AAAA… comment'"),
          { error: 'expected a list of public key lines' },
        )
        .min(1, 'expected at least one public key'),
    },
    { error: `expected { name, authorizedKeys: [ 'ssh-ed25519 AAAA…' ] }` },
  );

/** A proxy URL as written into a unit's Environment= line: no white space, quote, backslash, % or $. */
const PROXY_URL_RE = /^[A-Za-z0-9:/._[\]-]+$/;
/** A file name a mirror's key is installed under (the APKINDEX signature names its key by it). */
const KEY_FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]*$/;
/**
 * The mirrors this stack serves (infra/mirrors.ts): the settings of lambda-free-tools/src/mirror/config.ts
 * per mirror, where `keys` are files on the machine running `pulumi up` (relative to the project
 * folder), and how they are served and synced.
 */
const mirrorsSchema = z.strictObject(
  {
    serverName: z.string().regex(HOSTNAME_RE, 'expected a host name').optional(),
    mirrorRoot: absolutePath.optional(),
    allowedCidrs: z
      .array(z.string(), { error: 'expected a list of CIDR blocks' })
      .min(1, "expected at least one CIDR block ('0.0.0.0/0' and '::/0', the default, allow every address)")
      .default(['0.0.0.0/0', '::/0']),
    user: accountName('a system user name').default('aptmirror'),
    schedule: z
      .string()
      .regex(/^[^\n]+$/, 'expected a systemd OnCalendar expression')
      .default('*-*-* 04:00:00'),
    backup: bool.default(false),
    proxy: z
      .string()
      .refine((u) => {
        try {
          const x = new URL(u);
          return (x.protocol === 'http:' || x.protocol === 'https:') && !x.username && !x.password && PROXY_URL_RE.test(u);
        } catch {
          return false;
        }
      }, "expected the proxy's URL, http(s)://host:port, without credentials (the unit files are world-readable)")
      .optional(),
    noProxy: z.array(z.string().regex(/^(\*|\.?[A-Za-z0-9.:-]+)$/, 'expected a host name, a .domain, an address or *')).optional(),
    mirrors: z
      .record(
        z.string().regex(MIRROR_NAME_RE, 'expected a mirror name [a-z0-9][a-z0-9-]* (at most 63 characters)'),
        mirrorEntrySchema(
          z,
          z
            .string()
            .min(1)
            .refine(
              (p) => KEY_FILE_NAME_RE.test(path.posix.basename(p)),
              'expected a key file whose name is letters, digits and . _ @ + -',
            ),
        ),
      )
      .refine((m) => Object.keys(m).length > 0, 'expected at least one mirror'),
  },
  {
    error:
      'expected { mirrors: { <name>: { url, paths, version | versionFrom, keys?, postSync?, keep? } }, serverName?, mirrorRoot?, allowedCidrs?, user?, schedule?, backup?, proxy?, noProxy? }',
  },
);

/** The raw schema: one entry per key, defaults that do not depend on other keys. */
const RawSchema = z.strictObject({
  channel: z.string().regex(NAME_RE, `expected a channel name ${NAME_PATTERN}`).optional(),
  domain: z
    .string({ error: 'expected a DNS domain (e.g. epiconcept.fr)' })
    .regex(HOSTNAME_RE, 'expected a DNS domain (e.g. epiconcept.fr)'),
  serverName: z.string().regex(HOSTNAME_RE, 'expected a host name').optional(),
  sshHost: z
    .string()
    .regex(/^[A-Za-z0-9_.:%[\]-]+$/, 'expected a host name or IP address')
    .refine((s) => !s.startsWith('-'), 'a host cannot start with -')
    .optional(),
  sshPort: port.default(22),
  sshUser: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a user name')
    .default('root'),
  sshHostKey: hostLine.optional(),
  sshPrivateKey: z
    .string({ error: 'expected the SSH private key (set it with --secret)' })
    .refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), 'expected an OpenSSH or PEM private key'),
  root: absolutePath.default('/'),
  webRoot: absolutePath.optional(),
  indexerPath: absolutePath.optional(),
  nodePath: z
    .string()
    .refine((p) => !UNIT_PREFIX_RE.test(p), UNIT_PREFIX_REASON)
    .regex(SAFE_PATH_RE, 'expected a command name or path of letters, digits and . _ - + @ / (it is written unquoted into systemd units)')
    .default('node'),
  remotePrefix: z
    .string()
    .regex(/^[^\0\n]*$/, 'expected one line')
    .default(''),
  incomingDir: absolutePath.optional(),
  codenames: z
    .array(z.string().regex(CODENAME_RE, 'expected a codename such as bookworm'), { error: 'expected a list of codenames' })
    .min(1, 'expected at least one codename'),
  architectures: z
    .array(
      z.string().refine((a) => KNOWN_ARCHITECTURES.includes(a), {
        error: (i) => `unknown architecture '${String(i.input)}' (known: ${KNOWN_ARCHITECTURES.join(' ')})`,
      }),
      { error: 'expected a list of architectures' },
    )
    .min(1, 'expected at least one architecture'),
  allowedCidrs: z
    .array(z.string(), { error: 'expected a list of CIDR blocks' })
    .min(1, "expected at least one CIDR block (use '0.0.0.0/0' and '::/0' to allow every address)"),
  clientCredentials: z.array(credential, { error: 'expected a list of { username, password }' }).default([]),
  tls: tls.default({ mode: 'none' }),
  allowPlainHttp: bool.default(false),
  httpPort: port.default(80),
  httpsPort: port.default(443),
  listenAddress: z
    .string()
    .refine((a) => isIP(a) !== 0, 'expected an IP address')
    .optional(),
  signingKey: z
    .string()
    .refine((k) => k.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----'), 'expected an armored OpenPGP private key')
    .optional(),
  // Recorded after the first `pulumi up` (pulumi stack output keyFingerprint): the key may not change silently.
  signingKeyFingerprint: z
    .string()
    .refine(
      (f) => /^[0-9A-F]{40}$/.test(normaliseFingerprint(f)),
      'expected the 40 hex digits of the signing key fingerprint (pulumi stack output keyFingerprint)',
    )
    .optional(),
  upstream: z.string().regex(NAME_RE, 'expected a channel name').optional(),
  origin: z
    .string()
    .regex(/^[^\n:]+$/, 'expected one line without colon')
    .default('Epiconcept'),
  label: z
    .string()
    .regex(/^[^\n:]+$/, 'expected one line without colon')
    .optional(),
  description: z
    .string()
    .regex(/^[^\n]*$/, 'expected one line')
    .optional(),
  keyName: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a file-name word')
    .optional(),
  keyEmail: z.email('expected an e-mail address').optional(),
  generationsKeep: z.coerce
    .number({ error: 'expected a number' })
    .int('expected an integer')
    .min(2, 'expected at least 2 (the current generation and one to roll back to)')
    .default(5),
  backupKeep: z.coerce
    .number({ error: 'expected a number' })
    .int('expected an integer')
    .min(1, 'expected at least 1 (the backup just made)')
    .default(7),
  validUntilDays: z.coerce.number({ error: 'expected a number' }).int('expected an integer').min(1, 'expected at least 1 day').optional(),
  // node_exporter's textfile collector folder (repo.yaml metricsDir): unset, no metrics file and no metrics timer.
  metricsDir: absolutePath.optional(),
  // The indexer's version-suffix table (repo.yaml routing, lambda-free-tools/src/repo/routing.ts); unset: its default.
  routing: z.array(routingRuleSchema(z), { error: "expected a list of { pattern, codenames: ['bookworm' | '$1'] }" }).optional(),
  serviceUser: accountName('a system user name').optional(),
  poolGroup: accountName('a group name').default('aptrepo'),
  signerUser: accountName('a system user name').optional(),
  uploadGroup: accountName('a group name').default('aptupload'),
  uploaders: z.array(sshAccount('an uploader'), { error: 'expected a list of { name, authorizedKeys }' }).default([]),
  operatorGroup: accountName('a group name').default('aptops'),
  operators: z.array(sshAccount('an operator'), { error: 'expected a list of { name, authorizedKeys }' }).default([]),
  opsUser: accountName('a user name').optional(),
  uploadUser: accountName('a user name').optional(),
  services: z.enum(['systemd', 'none'], { error: "expected 'systemd' or 'none'" }).optional(),
  installPackages: bool.default(true),
  backupSchedule: z
    .string()
    .regex(/^[^\n]+$/, 'expected a systemd OnCalendar expression')
    .default('*-*-* 02:30:00'),
  ingestSources: z.array(z.string().regex(NAME_RE, `expected a drop-zone name ${NAME_PATTERN}`)).default(['build', 'ci', 'php']),
  devContainer: devContainer.optional(),
  // Versioned mirrors of upstream repositories (Alpine) served by this stack: infra/mirrors.ts.
  mirrors: mirrorsSchema.optional(),
  // Any new value re-runs every step once (a forced re-apply, e.g. after drift `apt-ops doctor` reported).
  reapply: z
    .string()
    .regex(/^[^\n]*$/, 'expected a one-line string')
    .default(''),
});

/** TLS settings after validation; files are paths on the machine running `pulumi up`. */
export type TlsConfig = { mode: 'files'; certFile: string; keyFile: string } | { mode: 'certbot'; email: string } | { mode: 'none' };

/** A client server's basic-auth credential. */
export interface ClientCredential {
  username: string;
  password: string;
}

/** The validated, non-secret stack configuration. Paths are real paths on the server (root already applied). */
export interface StackConfig {
  /** The Pulumi stack name. */
  stack: string;
  channel: string;
  domain: string;
  /** apt-<channel>.<domain> unless overridden. */
  serverName: string;
  ssh: { host: string; port: number; user: string; hostKey?: string };
  root: string;
  webRoot: string;
  indexerPath: string;
  nodePath: string;
  remotePrefix: string;
  incomingDir: string;
  codenames: string[];
  architectures: string[];
  /** Normalised CIDR blocks, in config order. */
  allowedCidrs: string[];
  /** User names of clientCredentials (not secret); empty: no basic auth. */
  usernames: string[];
  tls: TlsConfig;
  allowPlainHttp: boolean;
  httpPort: number;
  httpsPort: number;
  listenAddress?: string;
  upstream?: string;
  origin: string;
  label: string;
  description: string;
  keyName: string;
  keyEmail: string;
  /** The signing key's fingerprint the stack recorded (upper-case hex, no space); unset: no check. */
  signingKeyFingerprint?: string;
  generationsKeep: number;
  /** Dated backups kept in backupDir by the nightly `backup --to` (repo.yaml backupKeep). */
  backupKeep: number;
  validUntilDays?: number;
  /**
   * node_exporter's textfile collector folder (repo.yaml `metricsDir`): every writing command and
   * the metrics timer write `apt_repo_<channel>.prom` there; shared by the channels of a host
   * (root:poolGroup 1775: infra/steps/metrics.ts says why). Unset: no metrics.
   */
  metricsDir?: string;
  /** Version-suffix routing table written to repo.yaml; unset: the indexer's default (repo/routing.ts). */
  routing?: RoutingRule[];
  /** System user owning the channel's repository files and running its indexer (aptrepo-<channel>). */
  serviceUser: string;
  /** Shared group of every channel's serviceUser; group of the pool directories (aptrepo). */
  poolGroup: string;
  /** System user that owns the private key and runs the signer (aptsign-<channel>). */
  signerUser: string;
  /** Group of the upload accounts: chrooted SFTP into incomingDir (aptupload). */
  uploadGroup: string;
  /** Upload accounts (channels without upstream only): user name and public key lines. */
  uploaders: SshAccount[];
  /** Group of the operators' accounts (aptops). */
  operatorGroup: string;
  /** Operators: may run this channel's indexer as serviceUser through sudo. */
  operators: SshAccount[];
  /** The account apt-ops connects as (default: sshUser). */
  opsUser: string;
  /** The account apt-ops uploads as over SFTP (unset: apt-ops has no upload account). */
  uploadUser?: string;
  /** 'systemd': enable units and reload nginx; 'none': install files only (sandbox, container). */
  services: 'systemd' | 'none';
  /** Install missing Debian packages in the host base step. */
  installPackages: boolean;
  /** OnCalendar expression of the nightly backup (systemd.time(7)). */
  backupSchedule: string;
  /** Drop-zone folders under incomingDir the ingest path unit watches. */
  ingestSources: string[];
  /** Set on the `dev` stack: the server is a local Docker container. */
  devContainer?: { sshPort: number; httpPort: number; httpsPort: number; imageName: string; baseImage: string; authorizedKey: string };
  /** Versioned mirrors this stack serves and syncs (one stack of a host only); unset: none. */
  mirrors?: MirrorsConfig;
  /** A value carried in every step's `triggers`: changing it re-runs every step once ('' by default). */
  reapply: string;
}

/** One mirror of the stack's `mirrors` (lambda-free-tools/src/mirror/config.ts MirrorConfig's settings). */
export interface StackMirror {
  name: string;
  url: string;
  paths: string[];
  version?: string;
  versionFrom?: string;
  /** Trusted APKINDEX keys: files on the machine running `pulumi up` (relative to the project folder). */
  keys: string[];
  postSync?: string;
  keep?: number;
}

/** The stack's mirrors and how they are served and synced (infra/mirrors.ts). */
export interface MirrorsConfig {
  /** mirror.<domain> unless set: the plain-HTTP vhost serving mirrorRoot. */
  serverName: string;
  /** Where the snapshots are (`<mirrorRoot>/<name>/<version>/`, `latest-stable`); default <root>/srv/mirrors. */
  mirrorRoot: string;
  /** Normalised CIDR blocks allowed to read the mirrors (default: every address). */
  allowedCidrs: string[];
  /** System user that runs the syncs and owns the snapshots (aptmirror). */
  user: string;
  /** OnCalendar expression of the sync timers (systemd.time(7)). */
  schedule: string;
  /** Whether mirrorRoot is in the stack's backupPaths (default no: a mirror can be fetched again). */
  backup: boolean;
  /** The HTTP proxy the syncs go through (http_proxy and https_proxy of their units); unset: direct. */
  proxy?: string;
  /** Hosts reached without the proxy (no_proxy). */
  noProxy?: string[];
  /** The mirrors, in name order. */
  mirrors: StackMirror[];
}

/** An SSH account the stack provisions: its name and its public key lines (no options). */
export interface SshAccount {
  name: string;
  authorizedKeys: string[];
}

/** The secret values, validated; wrap them with pulumi.secret before use. */
export interface StackSecrets {
  sshPrivateKey: string;
  clientCredentials: ClientCredential[];
  signingKey?: string;
}

/** Raw config as Pulumi stores it: key (without namespace) → string value (JSON for lists/objects). */
export type RawConfig = Record<string, string | undefined>;

function describeIssue(issue: z.core.$ZodIssue): { key: string; reason: string } {
  const [first, ...rest] = issue.path.map(String);
  const key = `${CONFIG_NAMESPACE}:${first ?? '(top level)'}${rest.length ? '.' + rest.join('.') : ''}`;
  if (issue.code === 'unrecognized_keys') {
    // At the top level, a stack key; inside an object value (mirrors, tls …), one of its settings.
    const at = [...issue.path.map(String), issue.keys.join(',')].join('.');
    return {
      key: `${CONFIG_NAMESPACE}:${at}`,
      reason: issue.path.length ? 'unknown setting' : `unknown key (known: ${Object.keys(RawSchema.shape).join(', ')})`,
    };
  }
  // A record's key (a mirror's name) that its rule refuses: zod nests the rule's message.
  if (issue.code === 'invalid_key' && issue.issues[0]) return { key, reason: issue.issues[0].message };
  // A missing key reports zod's "expected string, received undefined": say it plainly.
  if (issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined) {
    return { key, reason: `is required: ${issue.message}` };
  }
  return { key, reason: issue.message };
}

/** Keys holding an armored key block: line breaks (LF, CR LF) allowed, no other control character. */
const MULTILINE_KEYS = new Set(['sshPrivateKey', 'signingKey']);
const CONTROL_RE = /[\0-\x1f\x7f]/;
const CONTROL_BUT_LINE_BREAK_RE = /[\0-\x09\x0b\x0c\x0e-\x1f\x7f]/;

/** The first string under `v` (a config value, parsed JSON included) that `re` matches: its key path and the character's code. */
function findControlCharacter(v: unknown, re: RegExp, at: string[]): { at: string[]; code: number } | undefined {
  if (typeof v === 'string') {
    const m = re.exec(v);
    return m ? { at, code: m[0].charCodeAt(0) } : undefined;
  }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const found = findControlCharacter(x, re, [...at, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The stack's `mirrors` after the schema: defaults filled (serverName mirror.<domain>, mirrorRoot
 * <root>/srv/mirrors), CIDR blocks normalised, and what the schema cannot see refused through
 * `fail`: a mirrorRoot that is a system folder or inside (or holding) the channel's folders, and
 * two keys of one mirror with the same file name.
 */
function mirrorsConfig(
  m: z.infer<typeof mirrorsSchema>,
  root: string,
  domain: string,
  own: { webRoot: string; incomingDir: string; metricsDir: string | undefined },
  fail: (key: string, reason: string) => never,
): MirrorsConfig {
  const mirrorRoot = m.mirrorRoot === undefined ? defaultMirrorRoot(root) : path.posix.normalize(m.mirrorRoot).replace(/(.)\/$/, '$1');
  if (mirrorRoot.split('/').filter(Boolean).length < 2 || SYSTEM_DIRS.includes(mirrorRoot))
    fail('mirrors.mirrorRoot', `'${mirrorRoot}' is a system folder: expected a folder of its own, e.g. /srv/mirrors`);
  const repo = channelPaths(root, 'x');
  for (const [key, p] of Object.entries({
    webRoot: own.webRoot,
    incomingDir: own.incomingDir,
    'the web roots': path.posix.dirname(repo.webRoot),
    'the configuration folders': path.posix.dirname(repo.configDir),
    'the state folders': path.posix.dirname(repo.stateDir),
    ...(own.metricsDir ? { metricsDir: own.metricsDir } : {}),
  })) {
    if (within(mirrorRoot, p) || within(p, mirrorRoot))
      fail('mirrors.mirrorRoot', `cannot be inside ${key} (${p}) nor hold it: expected a folder of its own, e.g. /srv/mirrors`);
  }
  const allowedCidrs = m.allowedCidrs.map((c, i) => {
    const p = parseCidr(c);
    return typeof p === 'string' ? fail(`mirrors.allowedCidrs.${i}`, p) : p.text;
  });
  const mirrors = Object.keys(m.mirrors)
    .sort()
    .map((name): StackMirror => {
      const e = m.mirrors[name];
      const keys = e.keys ?? [];
      const names = keys.map((k) => path.posix.basename(k));
      const dup = names.findIndex((n, i) => names.indexOf(n) !== i);
      if (dup >= 0)
        fail(`mirrors.mirrors.${name}.keys.${dup}`, `a second key named '${names[dup]}': the signature names its key by file name`);
      return {
        name,
        url: e.url,
        paths: e.paths,
        ...(e.version !== undefined ? { version: e.version } : {}),
        ...(e.versionFrom !== undefined ? { versionFrom: e.versionFrom } : {}),
        keys,
        ...(e.postSync !== undefined ? { postSync: e.postSync } : {}),
        ...(e.keep !== undefined ? { keep: e.keep } : {}),
      };
    });
  return {
    serverName: m.serverName ?? `mirror.${domain}`,
    mirrorRoot,
    allowedCidrs,
    user: m.user,
    schedule: m.schedule,
    backup: m.backup,
    ...(m.proxy ? { proxy: m.proxy } : {}),
    ...(m.noProxy?.length ? { noProxy: m.noProxy } : {}),
    mirrors,
  };
}

/**
 * Validates raw stack config (`raw`: key without namespace → string as Pulumi stores it) for the
 * stack `stack`, fills the defaults and derives the paths. Returns the non-secret config and the
 * secrets apart. Throws ConfigError(`apt-repo:<key>`, reason) on the first wrong value, with the
 * reason saying what was expected; secret values never appear in a message.
 */
export function parseStackConfig(raw: RawConfig, stack: string): { config: StackConfig; secrets: StackSecrets } {
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === '') continue;
    if (OBJECT_KEYS.has(k)) {
      try {
        input[k] = JSON.parse(v);
      } catch {
        throw new ConfigError(
          `${CONFIG_NAMESPACE}:${k}`,
          SECRET_KEYS.includes(k as (typeof SECRET_KEYS)[number]) ? 'is not valid JSON' : `is not valid JSON: ${v.slice(0, 80)}`,
        );
      }
    } else {
      input[k] = v;
    }
  }
  // Every string, whatever its key (those added later too): a control character is never wanted,
  // and a CR or LF in a value written into a systemd unit or a config file injects a line.
  for (const [k, v] of Object.entries(input)) {
    const bad = findControlCharacter(v, MULTILINE_KEYS.has(k) ? CONTROL_BUT_LINE_BREAK_RE : CONTROL_RE, [k]);
    if (bad) {
      throw new ConfigError(
        `${CONFIG_NAMESPACE}:${bad.at.join('.')}`,
        `holds a control character (U+${bad.code.toString(16).toUpperCase().padStart(4, '0')}): only printable text is allowed`,
      );
    }
  }
  const parsed = RawSchema.safeParse(input);
  if (!parsed.success) {
    const { key, reason } = describeIssue(parsed.error.issues[0]);
    throw new ConfigError(key, reason);
  }
  const r = parsed.data;
  const fail = (key: string, reason: string): never => {
    throw new ConfigError(`${CONFIG_NAMESPACE}:${key}`, reason);
  };

  const channel = r.channel ?? stack;
  if (!NAME_RE.test(channel)) fail('channel', `not set, and the stack name '${stack}' is not a channel name ${NAME_PATTERN}`);
  const allowedCidrs = r.allowedCidrs.map((c, i) => {
    const p = parseCidr(c);
    return typeof p === 'string' ? fail(`allowedCidrs.${i}`, p) : p.text;
  });
  const sshHost = r.sshHost ?? (r.devContainer ? '127.0.0.1' : undefined);
  if (!sshHost) fail('sshHost', 'is required: expected the host name or IP address of the repository server');
  if (!r.sshHostKey && !r.devContainer)
    fail(
      'sshHostKey',
      "is required: expected the server's public host key line (ssh-keyscan -t ed25519 <host>), so the SSH connection is checked",
    );
  const users = r.clientCredentials.map((c) => c.username);
  const dup = users.find((u, i) => users.indexOf(u) !== i);
  if (dup) fail('clientCredentials', `user name '${dup}' appears twice`);
  if (r.tls.mode === 'none' && !r.allowPlainHttp) {
    fail(
      'allowPlainHttp',
      r.clientCredentials.length
        ? 'tls.mode is none: basic auth credentials would cross the network in clear over plain HTTP; set tls (files or certbot) or allowPlainHttp: true'
        : 'tls.mode is none: serving plain HTTP needs allowPlainHttp: true',
    );
  }
  if (r.upstream && r.upstream === channel) fail('upstream', `cannot be the channel itself ('${channel}')`);
  if (r.httpPort === r.httpsPort) fail('httpsPort', `must differ from httpPort (${r.httpPort})`);
  const root = path.posix.normalize(r.root);
  const defaults = serverDefaults(root, channel);
  // The dev container runs systemd as PID 1 (infra/devDockerfile.ts), like a real server.
  const services = r.services ?? (root === '/' ? 'systemd' : 'none');
  if (r.devContainer && services !== 'systemd') fail('services', "the dev container runs systemd: use 'systemd' (or leave it unset)");
  if (r.tls.mode === 'certbot' && services !== 'systemd')
    fail('tls.mode', "certbot needs services: systemd (nginx running on the host) and root '/'");
  const serviceUser = r.serviceUser ?? `aptrepo-${channel}`;
  const signerUser = r.signerUser ?? `aptsign-${channel}`;
  if (!ACCOUNT_RE.test(serviceUser))
    fail('serviceUser', `not set, and aptrepo-${channel} is longer than 32 characters: set a shorter name`);
  if (!ACCOUNT_RE.test(signerUser)) fail('signerUser', `not set, and aptsign-${channel} is longer than 32 characters: set a shorter name`);
  if (r.upstream && r.uploaders.length)
    fail(
      'uploaders',
      `a channel with an upstream ('${r.upstream}') takes packages by promotion only: list the upload accounts in the ${r.upstream} stack`,
    );
  if (r.operators.length && !path.posix.isAbsolute(r.nodePath))
    fail('nodePath', `expected an absolute path (e.g. /usr/bin/node) when operators are set: sudoers(5) names commands by absolute path`);
  {
    // Users and groups share one name space here: every user also gets a group of its own name.
    const names: [string, string][] = [
      ['serviceUser', serviceUser],
      ['signerUser', signerUser],
      ['poolGroup', r.poolGroup],
      ['uploadGroup', r.uploadGroup],
      ['operatorGroup', r.operatorGroup],
      ...r.uploaders.map((u, i): [string, string] => [`uploaders.${i}.name`, u.name]),
      ...r.operators.map((o, i): [string, string] => [`operators.${i}.name`, o.name]),
      ...(r.mirrors ? [['mirrors.user', r.mirrors.user] as [string, string]] : []),
    ];
    for (const [i, [key, name]] of names.entries()) {
      const first = names.findIndex(([, n]) => n === name);
      if (first !== i) fail(key, `'${name}' is already the name of ${names[first][0]}: accounts and groups need distinct names`);
      if (RESERVED_ACCOUNTS.includes(name) || name === r.sshUser)
        fail(key, `'${name}' is a system or SSH account: choose a name of the stack's own`);
    }
  }

  const webRoot = r.webRoot ?? defaults.webRoot;
  const incomingDir = r.incomingDir ?? defaults.incomingDir;
  const metricsDir = r.metricsDir === undefined ? undefined : path.posix.normalize(r.metricsDir).replace(/(.)\/$/, '$1');
  if (metricsDir) {
    // nginx serves the web root, uploaders are chrooted into incomingDir, the rest is the channel's own.
    const repo = channelPaths(root, channel);
    const problem = metricsDirProblem(metricsDir, {
      webRoot,
      incomingDir,
      // Where every channel's web root is by default (another stack's too).
      'the web roots': path.posix.dirname(repo.webRoot),
      configDir: repo.configDir,
      'the service home': path.posix.dirname(repo.stateDir),
      backupDir: repo.backupDir,
      indexerPath: path.posix.dirname(r.indexerPath ?? defaults.indexerPath),
    });
    if (problem) fail('metricsDir', problem);
  }

  const mirrors = r.mirrors ? mirrorsConfig(r.mirrors, root, r.domain, { webRoot, incomingDir, metricsDir }, fail) : undefined;
  const serverName = r.serverName ?? `apt-${channel}.${r.domain}`;
  if (mirrors && mirrors.serverName === serverName)
    fail(
      'mirrors.serverName',
      `'${serverName}' is the channel's own server name: the mirrors need a name of their own (default mirror.<domain>)`,
    );

  const config: StackConfig = {
    stack,
    channel,
    domain: r.domain,
    serverName,
    ssh: {
      host: sshHost as string,
      port: r.devContainer && !raw.sshPort ? r.devContainer.sshPort : r.sshPort,
      user: r.sshUser,
      ...(r.sshHostKey ? { hostKey: r.sshHostKey } : {}),
    },
    root,
    webRoot,
    indexerPath: r.indexerPath ?? defaults.indexerPath,
    nodePath: r.nodePath,
    remotePrefix: r.remotePrefix,
    incomingDir,
    codenames: r.codenames,
    architectures: r.architectures,
    allowedCidrs,
    usernames: users,
    tls: r.tls as TlsConfig,
    allowPlainHttp: r.allowPlainHttp,
    httpPort: r.httpPort,
    httpsPort: r.httpsPort,
    ...(r.listenAddress ? { listenAddress: r.listenAddress } : {}),
    ...(r.upstream ? { upstream: r.upstream } : {}),
    origin: r.origin,
    label: r.label ?? `${r.origin} ${channel}`,
    description: r.description ?? `${r.origin} packages, ${channel} channel`,
    keyName: r.keyName ?? `${r.origin.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${channel}`,
    keyEmail: r.keyEmail ?? `apt-${channel}@${r.domain}`,
    ...(r.signingKeyFingerprint ? { signingKeyFingerprint: normaliseFingerprint(r.signingKeyFingerprint) } : {}),
    generationsKeep: r.generationsKeep,
    backupKeep: r.backupKeep,
    ...(r.validUntilDays ? { validUntilDays: r.validUntilDays } : {}),
    ...(metricsDir ? { metricsDir } : {}),
    ...(r.routing ? { routing: r.routing } : {}),
    serviceUser,
    poolGroup: r.poolGroup,
    signerUser,
    uploadGroup: r.uploadGroup,
    uploaders: r.uploaders,
    operatorGroup: r.operatorGroup,
    operators: r.operators,
    opsUser: r.opsUser ?? r.sshUser,
    ...(r.uploadUser ? { uploadUser: r.uploadUser } : {}),
    services,
    installPackages: r.installPackages,
    backupSchedule: r.backupSchedule,
    ingestSources: r.ingestSources,
    ...(r.devContainer ? { devContainer: r.devContainer } : {}),
    ...(mirrors ? { mirrors } : {}),
    reapply: r.reapply,
  };
  const secrets: StackSecrets = {
    sshPrivateKey: r.sshPrivateKey,
    clientCredentials: r.clientCredentials,
    ...(r.signingKey ? { signingKey: r.signingKey } : {}),
  };
  return { config, secrets };
}

/** Every key the schema knows (for reading them from Pulumi config one by one). */
export const CONFIG_KEYS: string[] = Object.keys(RawSchema.shape);

/** The raw zod schema, one entry per key (stacks/pulumiYaml.test.ts checks Pulumi.yaml declares each with its type and default). */
export const CONFIG_SCHEMA = RawSchema;

/**
 * The schema of one key without its default and optionality: the rule a value of `key` must follow,
 * wherever it comes from (apt-ops checks the plain keys it reads, and its flags and environment
 * variables for them, with these). Same messages as parseStackConfig's, without the key's name.
 */
export function keySchema(key: keyof typeof RawSchema.shape): z.ZodType {
  const s: z.ZodType = RawSchema.shape[key];
  return s instanceof z.ZodOptional || s instanceof z.ZodDefault ? (s.unwrap() as z.ZodType) : s;
}
