/**
 * The apt-repo Pulumi program: `pulumi stack select preprod && pulumi up` (then prod) stands up or
 * updates one channel of the APT repository server over SSH. The `dev` stack first starts the
 * server as a local Docker container.
 */
import * as pulumi from '@pulumi/pulumi';
import { renderHtpasswd } from '../infra/htpasswd';
import { HtpasswdSalts } from '../infra/htpasswdSalts';
import { Backups } from '../infra/backups';
import { Channel } from '../infra/channel';
import { DevServer } from '../infra/devServer';
import { HostBase } from '../infra/hostBase';
import { planSource, sshConnection } from '../infra/remoteSteps';
import { SigningKey } from '../infra/signingKey';
import { loadStackConfig } from './config';
import { indexerBundle, tlsFiles } from './material';

const { config: cfg, secrets } = loadStackConfig();
const bundle = indexerBundle();
const tls = tlsFiles(cfg);

const dev = cfg.devContainer ? new DevServer(cfg.channel, { devContainer: cfg.devContainer, httpPort: cfg.httpPort, httpsPort: cfg.httpsPort }) : undefined;
const connection = sshConnection(cfg.ssh, pulumi.secret(secrets.sshPrivateKey));

const key = new SigningKey(`${cfg.channel}-signing-key`, {
  name: `${cfg.label} archive key`,
  email: cfg.keyEmail,
  ...(secrets.signingKey ? { provided: pulumi.secret(secrets.signingKey) } : {}),
  // Recorded after the first up: any other key (a lost state, a wrong secret) stops the program.
  ...(cfg.signingKeyFingerprint ? { expectedFingerprint: cfg.signingKeyFingerprint } : {}),
});
const clientCredentials = pulumi.secret(secrets.clientCredentials);
// Random salts drawn once and kept secret in the state: the htpasswd text is stable across runs.
const htpasswdSalts = new HtpasswdSalts(`${cfg.channel}-htpasswd-salts`, { credentials: clientCredentials });

const plan = planSource(
  cfg,
  { bundlePath: bundle.path, bundleSha256: bundle.sha256, ...(tls.cert ? { tlsCert: tls.cert } : {}) },
  pulumi.all([key.publicArmored, key.publicBinaryBase64]).apply(([publicKeyArmored, publicKeyBinaryBase64]) => ({ publicKeyArmored, publicKeyBinaryBase64 })),
  pulumi.all([key.privateArmored, clientCredentials, htpasswdSalts.salts, tls.key]).apply(([signingKeyArmored, creds, salts, tlsKey]) => ({
    signingKeyArmored,
    htpasswd: renderHtpasswd(creds, salts),
    ...(tlsKey ? { tlsKey } : {}),
  })),
);

const done = new Map<string, pulumi.Resource>();
new HostBase(`${cfg.channel}-host-base`, { connection, plan, done, ...(dev ? { dependsOn: [dev.container] } : {}) });
const channel = new Channel(cfg.channel, { config: cfg, connection, plan, done, publicKeyArmored: key.publicArmored, publicKeyBinaryBase64: key.publicBinaryBase64, clientCredentials });
const backups = new Backups(`${cfg.channel}-backups`, { config: cfg, connection, plan, done });

export const channelName = cfg.channel;
export const url = channel.url;
/** The armored key (kept for compatibility; the same as publicKeyArmored). */
export const publicKey = channel.publicKeyArmored;
export const publicKeyArmored = channel.publicKeyArmored;
/** The binary key, base64: `base64 -d > /usr/share/keyrings/<publicKeyFiles.binary>` (Signed-By). */
export const publicKeyBinary = channel.publicKeyBinaryBase64;
/** `<keyName>-archive-keyring.asc|.gpg` and their URLs (served without credentials to allowed addresses). */
export const publicKeyFiles = channel.publicKeyFiles;
export const keyFingerprint = key.fingerprint;
export const clientFiles = channel.clientFiles;
export const authConf = channel.authConf;
export const backupPaths = backups.paths;
export const backupDir = backups.backupDir;
