/**
 * Where a channel's files live on the server: the one place that derives every server path and file
 * name of a stack (the defaults of webRoot, incomingDir and indexerPath included), for the Pulumi
 * program (infra/), apt-ops (ops/stackConfig.ts) and the tests. Built on the indexer's own defaults
 * (repo/channel.ts channelPaths), so the layout the stack creates is the one apt-repo looks for.
 * Every path is under `root` (the sandbox prefix in tests, '/' in production).
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { channelPaths, type ChannelPaths } from '../repo/channel';
import { EXPECTED_STATE_FILE, SECRET_DIGESTS_FILE } from '../repo/expectedState';
import { publicKeyFileNames } from '../sign/keys';

/** The server paths a stack may move with its config; unset, they are serverDefaults'. */
export interface ServerDefaults {
  /** `<root>/srv/apt/<channel>` (repo/channel.ts channelPaths). */
  webRoot: string;
  /** `<root>/srv/apt/incoming`, shared by the channels (channelPaths). */
  incomingDir: string;
  /** `<root>/opt/apt-repo/<channel>/apt-repo.cjs`: the indexer bundle this channel's stack deploys. */
  indexerPath: string;
}

/**
 * The default webRoot, incomingDir and indexerPath of `channel` under `root` (an absolute POSIX
 * path, '/' in production). Pure; read by the stack config and by apt-ops alike.
 */
export function serverDefaults(root: string, channel: string): ServerDefaults {
  const repo = channelPaths(root, channel);
  return {
    webRoot: repo.webRoot,
    incomingDir: repo.incomingDir,
    indexerPath: path.posix.join(root, 'opt/apt-repo', channel, 'apt-repo.cjs'),
  };
}

/** What channelLayout reads of the stack config (StackConfig fits). */
export interface LayoutConfig {
  root: string;
  channel: string;
  webRoot: string;
  incomingDir: string;
  indexerPath: string;
  keyName: string;
  serverName: string;
  tls: { mode: string };
}

/** Absolute server paths of one channel: the repository's (ChannelPaths) and the web server's and systemd's. */
export interface ChannelLayout extends ChannelPaths {
  publicKeyAsc: string;
  publicKeyGpg: string;
  /** Where copy resources put files before a step installs them (owned by the SSH user). */
  stagingDir: string;
  indexerDir: string;
  indexerPath: string;
  nginxDir: string;
  vhostFile: string;
  vhostLink: string;
  htpasswdFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  acmeRoot: string;
  logDir: string;
  systemdDir: string;
  /** `<root>/run/apt-repo/sign-<channel>`: the signer's socket folder (0750 signerUser:serviceUser). */
  signerSocketDir: string;
  /** `<signerSocketDir>/sign.sock`: repo.yaml `signerSocket`. */
  signerSocket: string;
  /** Pid file of `sign-server` on hosts without systemd (in the socket folder, written by the signer). */
  signerPidFile: string;
  /** Root-owned record of what the running `sign-server` was started from (hosts without systemd). */
  signerStamp: string;
  /** Where `sign-server` logs (opened by root, appended to by the signer): one line per signature. */
  signerLog: string;
  /** `<root>/etc/tmpfiles.d/apt-repo-<channel>.conf`: recreates the socket folder at boot (/run is a tmpfs). */
  tmpfilesFile: string;
  /** `<root>/etc/ssh/sshd_config.d/apt-repo-<channel>.conf`: the Match blocks of uploaders and operators. */
  sshdDropIn: string;
  /** `<root>/etc/ssh/apt-repo-keys`: root-owned AuthorizedKeysFile folder, one file per account (`%u`). */
  authorizedKeysDir: string;
  /**
   * The operators' sudo rule: `/etc/sudoers.d/apt-repo-<channel>` (sudo reads only /etc/sudoers, so
   * this path ignores `root`); with a sandbox root, `apt-repo-<channel>-<8 hex of SHA-256(root)>` so
   * that parallel sandboxes never share a file.
   */
  sudoersFile: string;
  /** `<webRoot>/pool`: the Debian pool (setgid, group poolGroup). */
  poolDir: string;
  /** `<webRoot>/dists`: the published index, a link the indexer flips (absent before the first publish). */
  distsLink: string;
  /** `<configDir>/liste_dist`, `liste_arch` and `repo.yaml`: what the indexer reads (repo/channel.ts). */
  listeDistFile: string;
  listeArchFile: string;
  repoYamlFile: string;
  /** `<configDir>/expected-state.json`: what the steps installed, for `apt-repo doctor`. */
  expectedStateFile: string;
  /** `<configDir>/secret-digests`: root-only digests of the secret files the steps installed. */
  secretDigestsFile: string;
  /** `<stagingDir>/nginx-test`: root-only folder where a new vhost is checked alone with `nginx -t`. */
  nginxTestDir: string;
  /** `<root>/etc/nginx/nginx.conf` and `<root>/run/nginx.pid`: the nginx to reload without systemd. */
  nginxConf: string;
  nginxPidFile: string;
  /** `<root>/run/sshd.pid`: the sshd to reload without systemd. */
  sshdPidFile: string;
  /** Stamps in stateDir of what the last publish and the last pre-update backup were made from. */
  publishStamp: string;
  backupStamp: string;
  /** `<root>/var/lib/apt-repo`: home folder of the indexer's and signer's system users. */
  serviceHome: string;
  /** `<root>/home`: the operators' home folders (`<operatorsHome>/<name>`). */
  operatorsHome: string;
}

/** Computes the layout of `cfg`'s channel (pure). */
export function channelLayout(cfg: LayoutConfig): ChannelLayout {
  const r = (...p: string[]) => path.posix.join(cfg.root, ...p);
  // The repository's own paths come from the indexer's defaults, so the server layout the stack
  // creates is the one apt-repo looks for; webRoot and incomingDir may be moved by stack config.
  const repo = channelPaths(cfg.root, cfg.channel);
  const nginxDir = r('etc/nginx');
  const certbotLive = r('etc/letsencrypt/live', cfg.serverName);
  const stagingDir = r('var/lib/apt-repo/staging', cfg.channel);
  const keyFiles = publicKeyFileNames(cfg.keyName);
  return {
    configDir: repo.configDir,
    webRoot: cfg.webRoot,
    stateDir: repo.stateDir,
    backupDir: repo.backupDir,
    incomingDir: cfg.incomingDir,
    rejectedDir: path.posix.join(cfg.incomingDir, 'rejected'),
    signingKeyFile: repo.signingKeyFile,
    publicKeyAsc: path.posix.join(cfg.webRoot, keyFiles.asc),
    publicKeyGpg: path.posix.join(cfg.webRoot, keyFiles.gpg),
    stagingDir,
    indexerDir: path.posix.dirname(cfg.indexerPath),
    indexerPath: cfg.indexerPath,
    nginxDir,
    vhostFile: path.posix.join(nginxDir, 'sites-available', `apt-${cfg.channel}.conf`),
    vhostLink: path.posix.join(nginxDir, 'sites-enabled', `apt-${cfg.channel}.conf`),
    htpasswdFile: path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.htpasswd`),
    tlsCertFile:
      cfg.tls.mode === 'certbot'
        ? path.posix.join(certbotLive, 'fullchain.pem')
        : path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.crt`),
    tlsKeyFile:
      cfg.tls.mode === 'certbot'
        ? path.posix.join(certbotLive, 'privkey.pem')
        : path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.key`),
    acmeRoot: r('var/www/acme'),
    logDir: r('var/log/nginx'),
    systemdDir: r('etc/systemd/system'),
    signerSocketDir: r('run/apt-repo', `sign-${cfg.channel}`),
    signerSocket: r('run/apt-repo', `sign-${cfg.channel}`, 'sign.sock'),
    signerPidFile: r('run/apt-repo', `sign-${cfg.channel}`, 'sign-server.pid'),
    signerStamp: r('run/apt-repo', `sign-${cfg.channel}.inputs`),
    signerLog: r('var/log/apt-repo', `sign-${cfg.channel}.log`),
    tmpfilesFile: r('etc/tmpfiles.d', `apt-repo-${cfg.channel}.conf`),
    sshdDropIn: r('etc/ssh/sshd_config.d', `apt-repo-${cfg.channel}.conf`),
    authorizedKeysDir: r('etc/ssh/apt-repo-keys'),
    sudoersFile: `/etc/sudoers.d/apt-repo-${cfg.channel}${cfg.root === '/' ? '' : '-' + crypto.createHash('sha256').update(cfg.root).digest('hex').slice(0, 8)}`,
    poolDir: path.posix.join(cfg.webRoot, 'pool'),
    distsLink: path.posix.join(cfg.webRoot, 'dists'),
    listeDistFile: path.posix.join(repo.configDir, 'liste_dist'),
    listeArchFile: path.posix.join(repo.configDir, 'liste_arch'),
    repoYamlFile: path.posix.join(repo.configDir, 'repo.yaml'),
    expectedStateFile: path.posix.join(repo.configDir, EXPECTED_STATE_FILE),
    secretDigestsFile: path.posix.join(repo.configDir, SECRET_DIGESTS_FILE),
    nginxTestDir: path.posix.join(stagingDir, 'nginx-test'),
    nginxConf: path.posix.join(nginxDir, 'nginx.conf'),
    nginxPidFile: r('run/nginx.pid'),
    sshdPidFile: r('run/sshd.pid'),
    publishStamp: path.posix.join(repo.stateDir, 'pulumi-publish.sha256'),
    backupStamp: path.posix.join(repo.stateDir, 'pulumi-backup.sha256'),
    serviceHome: r('var/lib/apt-repo'),
    operatorsHome: r('home'),
  };
}

/**
 * What backupPaths reads: the layout's inputs, whether the channel has an upstream (then no drop
 * zones), and the stack's mirrors (their folder is backed up only when `backup` says so).
 */
export type BackupConfig = LayoutConfig & { upstream?: string; mirrors?: { mirrorRoot: string; backup: boolean } };

/**
 * The server paths that hold everything needed to restore the channel identically (a stack
 * output): its configDir (with the signing key), webRoot, stateDir, the drop zones of a channel
 * that ingests (no upstream), and the mirrors' mirrorRoot when the stack's `mirrors.backup` is set
 * (by default it is not: a mirror can be fetched again from its upstream, and the stack re-renders
 * mirrors.yaml and the keys).
 */
export function backupPaths(cfg: BackupConfig): string[] {
  const l = channelLayout(cfg);
  return [
    l.configDir,
    l.webRoot,
    l.stateDir,
    ...(cfg.upstream ? [] : [l.incomingDir]),
    ...(cfg.mirrors?.backup ? [cfg.mirrors.mirrorRoot] : []),
  ];
}

/** Names of a channel's systemd units (the ones to enable are the .path, .timer and .socket units). */
export interface UnitNames {
  /** The ingest units: channels without an upstream only. */
  ingest?: { service: string; path: string; timer: string };
  /** The re-signing units (rendered only with validUntilDays; named always, so a plan can remove them). */
  refresh: { service: string; timer: string };
  backup: { service: string; timer: string };
  /** The web catalogue's refresh timer (installed with the backup units). */
  catalogue: { service: string; timer: string };
  /** The metrics timer (rendered only with metricsDir; named always, so a plan can remove them). */
  metrics: { service: string; timer: string };
  signer: { socket: string; service: string };
}

/** Names of the units of `cfg.channel` (`apt-repo-<kind>-<channel>.<type>`); no ingest units with an upstream. */
export function unitNames(cfg: { channel: string; upstream?: string }): UnitNames {
  const b = `apt-repo-backup-${cfg.channel}`;
  const i = `apt-repo-ingest-${cfg.channel}`;
  const r = `apt-repo-refresh-${cfg.channel}`;
  const m = `apt-repo-metrics-${cfg.channel}`;
  const c = `apt-repo-catalogue-${cfg.channel}`;
  const s = `apt-repo-sign-${cfg.channel}`;
  return {
    ...(cfg.upstream ? {} : { ingest: { service: `${i}.service`, path: `${i}.path`, timer: `${i}.timer` } }),
    refresh: { service: `${r}.service`, timer: `${r}.timer` },
    backup: { service: `${b}.service`, timer: `${b}.timer` },
    catalogue: { service: `${c}.service`, timer: `${c}.timer` },
    metrics: { service: `${m}.service`, timer: `${m}.timer` },
    signer: { socket: `${s}.socket`, service: `${s}@.service` },
  };
}
