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
  return { webRoot: repo.webRoot, incomingDir: repo.incomingDir, indexerPath: path.posix.join(root, 'opt/apt-repo', channel, 'apt-repo.cjs') };
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
}

/** Computes the layout of `cfg`'s channel (pure). */
export function channelLayout(cfg: LayoutConfig): ChannelLayout {
  const r = (...p: string[]) => path.posix.join(cfg.root, ...p);
  // The repository's own paths come from the indexer's defaults, so the server layout the stack
  // creates is the one apt-repo looks for; webRoot and incomingDir may be moved by stack config.
  const repo = channelPaths(cfg.root, cfg.channel);
  const nginxDir = r('etc/nginx');
  const certbotLive = r('etc/letsencrypt/live', cfg.serverName);
  return {
    configDir: repo.configDir,
    webRoot: cfg.webRoot,
    stateDir: repo.stateDir,
    backupDir: repo.backupDir,
    incomingDir: cfg.incomingDir,
    rejectedDir: path.posix.join(cfg.incomingDir, 'rejected'),
    signingKeyFile: repo.signingKeyFile,
    publicKeyAsc: path.posix.join(cfg.webRoot, `${cfg.keyName}-archive-keyring.asc`),
    publicKeyGpg: path.posix.join(cfg.webRoot, `${cfg.keyName}-archive-keyring.gpg`),
    stagingDir: r('var/lib/apt-repo/staging', cfg.channel),
    indexerDir: path.posix.dirname(cfg.indexerPath),
    indexerPath: cfg.indexerPath,
    nginxDir,
    vhostFile: path.posix.join(nginxDir, 'sites-available', `apt-${cfg.channel}.conf`),
    vhostLink: path.posix.join(nginxDir, 'sites-enabled', `apt-${cfg.channel}.conf`),
    htpasswdFile: path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.htpasswd`),
    tlsCertFile: cfg.tls.mode === 'certbot' ? path.posix.join(certbotLive, 'fullchain.pem') : path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.crt`),
    tlsKeyFile: cfg.tls.mode === 'certbot' ? path.posix.join(certbotLive, 'privkey.pem') : path.posix.join(nginxDir, 'apt-repo', `${cfg.channel}.key`),
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
  };
}
