/**
 * The archive signing key of a channel: taken from the `signingKey` secret config value when set,
 * else generated once by a dynamic resource (infra/signingKeyProvider.ts) and kept, secret, in the
 * stack state. Either way the key is stable across `pulumi up` runs.
 */
import * as pulumi from '@pulumi/pulumi';
import { publicKeyFiles } from '../lambda-free-tools/src/sign/keys';
import { GeneratedSigningKey } from './signingKeyProvider';

/** Arguments of SigningKey. */
export interface SigningKeyArgs {
  /** User ID name and e-mail of a generated key ('Epiconcept prod archive key', 'apt-prod@…'). */
  name: string;
  email: string;
  /** An existing armored private key (secret config); when set nothing is generated. */
  provided?: pulumi.Input<string>;
  /** Algorithm of a generated key (default rsa4096, see sign/keys.ts). */
  type?: 'rsa4096' | 'ed25519';
}

/** The channel's signing key: private part secret, public parts plain. */
export class SigningKey extends pulumi.ComponentResource {
  readonly privateArmored: pulumi.Output<string>;
  readonly publicArmored: pulumi.Output<string>;
  readonly publicBinaryBase64: pulumi.Output<string>;
  readonly fingerprint: pulumi.Output<string>;

  /** Throws Error when name or email is empty. */
  constructor(name: string, args: SigningKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:SigningKey', name, {}, opts);
    if (!args.name.trim() || !args.email.includes('@')) throw new Error(`SigningKey ${name}: name and email are required (got '${args.name}', '${args.email}')`);
    if (args.provided !== undefined) {
      const priv = pulumi.secret(args.provided);
      const files = priv.apply((k) => publicKeyFiles(k, 'apt-repo:signingKey'));
      this.privateArmored = priv;
      // The public parts derive from the secret but are public by nature.
      this.publicArmored = pulumi.unsecret(files.apply((f) => f.armored));
      this.publicBinaryBase64 = pulumi.unsecret(files.apply((f) => Buffer.from(f.binary).toString('base64')));
      this.fingerprint = pulumi.unsecret(files.apply((f) => f.fingerprint));
    } else {
      const key = new GeneratedSigningKey(`${name}-generated`, { name: args.name, email: args.email, ...(args.type ? { type: args.type } : {}) }, { parent: this, protect: true });
      this.privateArmored = pulumi.secret(key.privateArmored);
      this.publicArmored = key.publicArmored;
      this.publicBinaryBase64 = key.publicBinaryBase64;
      this.fingerprint = key.fingerprint;
    }
    this.registerOutputs({ publicArmored: this.publicArmored, fingerprint: this.fingerprint });
  }
}
