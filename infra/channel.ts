/**
 * One APT channel on the server (preprod, prod): directories, liste_dist/liste_arch/repo.yaml,
 * signing key, htpasswd, TLS, the indexer bundle and a first publish, the nginx vhost, the ingest
 * units — the channel steps of infra/plan.ts attached to remote resources — and what clients need.
 */
import * as pulumi from '@pulumi/pulumi';
import type { ClientCredential } from '../lambda-free-tools/src/settings/stackConfig';
import { renderClientSetupScript } from '../lambda-free-tools/src/client/setupScript';
import { publicKeyFiles, renderAuthConf, renderClientFiles, type ClientFiles, type PublicKeyFiles } from './clientFiles';
import { STEP_OWNERS } from './plan';
import { attachSteps, type Connection, type PlanSource, type StepCommands } from './remoteSteps';

/** Arguments of Channel: where clients reach it, and the plan steps it attaches. */
export interface ChannelArgs {
  /**
   * Where clients reach the channel, e.g. `https://apt-<channel>.<domain>/` (infra/clientFiles.ts
   * stackChannelUrl: the vhost's name and port, or the dev container's published port).
   */
  url: string;
  /** Public key files are `<keyName>-archive-keyring.asc|.gpg`. */
  keyName: string;
  /** Codenames the client files list. */
  codenames: string[];
  connection: Connection;
  plan: PlanSource;
  /** Commands of the steps attached before (HostBase's): 'host-base' must be there. */
  after: StepCommands;
  /** The armored public key (published as .asc by the plan). */
  publicKeyArmored: pulumi.Input<string>;
  /** The binary public key, base64 (published as .gpg by the plan). */
  publicKeyBinaryBase64: pulumi.Input<string>;
  /** Client credentials (secret), for the auth.conf.d entries. */
  clientCredentials: pulumi.Input<ClientCredential[]>;
}

/** A deployed channel. */
export class Channel extends pulumi.ComponentResource {
  /** The commands of the channel's steps, by step name (what Backups depends on). */
  readonly commands: StepCommands;
  /** https://apt-<channel>.<domain>/ (or http:// with tls none). */
  readonly url: pulumi.Output<string>;
  readonly publicKeyArmored: pulumi.Output<string>;
  /** The binary (OpenPGP packets) public key, base64: what Signed-By reads from a `.gpg` file. */
  readonly publicKeyBinaryBase64: pulumi.Output<string>;
  /** The key files' names in the web root and their URLs. */
  readonly publicKeyFiles: pulumi.Output<PublicKeyFiles>;
  /** sources.list lines and deb822 stanzas per codename. */
  readonly clientFiles: pulumi.Output<ClientFiles>;
  /** auth.conf.d entries per user name: secret. */
  readonly authConf: pulumi.Output<Record<string, string>>;
  /**
   * The client setup script (lambda-free-tools/src/client/setupScript.ts): installs the public key,
   * the deb822 .sources and, from the environment of its run, the auth.conf.d entry. Not secret.
   */
  readonly clientSetupScript: pulumi.Output<string>;

  /** Throws Error when `after` lacks the host base command. */
  constructor(name: string, args: ChannelArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:Channel', name, {}, opts);
    if (!args.after['host-base']) throw new Error(`Channel ${name}: attach the host base first`);
    this.commands = attachSteps({
      parent: this,
      baseName: name,
      connection: args.connection,
      plan: args.plan,
      steps: STEP_OWNERS.channel,
      after: args.after,
    });
    const url = args.url;
    this.url = pulumi.output(url);
    this.publicKeyArmored = pulumi.output(args.publicKeyArmored);
    this.publicKeyBinaryBase64 = pulumi.output(args.publicKeyBinaryBase64);
    this.publicKeyFiles = pulumi.output(publicKeyFiles(url, args.keyName));
    this.clientFiles = pulumi.output(renderClientFiles({ url, codenames: args.codenames, component: 'main', keyName: args.keyName }));
    this.authConf = pulumi.secret(pulumi.output(args.clientCredentials).apply((c) => renderAuthConf(url, c)));
    this.clientSetupScript = pulumi.output(args.publicKeyArmored).apply((publicKeyArmored) =>
      renderClientSetupScript({
        channel: name,
        url,
        keyName: args.keyName,
        codenames: args.codenames,
        component: 'main',
        publicKeyArmored,
      }),
    );
    this.registerOutputs({
      url: this.url,
      publicKeyArmored: this.publicKeyArmored,
      publicKeyBinaryBase64: this.publicKeyBinaryBase64,
      publicKeyFiles: this.publicKeyFiles,
      clientFiles: this.clientFiles,
      authConf: this.authConf,
      clientSetupScript: this.clientSetupScript,
    });
  }
}
