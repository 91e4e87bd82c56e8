/**
 * The archive signing key of a channel: taken from the `signingKey` secret config value when set,
 * else generated once by a dynamic resource (infra/signingKeyProvider.ts) and kept, secret, in the
 * stack state. Either way the key is stable across `pulumi up` runs.
 *
 * `expectedFingerprint` (apt-repo:signingKeyFingerprint, recorded after the first `pulumi up`) makes a
 * key change explicit: a provided or kept key with another fingerprint fails the program, and a lost
 * generated key is not generated again (infra/signingKeyProvider.ts).
 */
import * as pulumi from '@pulumi/pulumi';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { normaliseFingerprint } from '../lambda-free-tools/src/settings/stackConfig';
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
  /** The fingerprint the stack recorded (40 hex digits, any case, spaces allowed); unset: no check. */
  expectedFingerprint?: string;
}

/** The stack config key holding the recorded fingerprint. */
const FINGERPRINT_KEY = 'apt-repo:signingKeyFingerprint';

/**
 * Returns `actual` when `expected` is unset or names the same fingerprint (normalised); throws
 * ConfigError(apt-repo:signingKeyFingerprint) naming both otherwise. `source` says where the key
 * came from ('apt-repo:signingKey', 'the stack state').
 */
export function checkFingerprint(actual: string, expected: string | undefined, source: string): string {
  if (expected === undefined || normaliseFingerprint(actual) === normaliseFingerprint(expected)) return actual;
  throw new ConfigError(
    FINGERPRINT_KEY,
    `is ${normaliseFingerprint(expected)} but the key from ${source} is ${normaliseFingerprint(actual)}: clients trust the recorded key. ` +
      `Set the recorded key back (apt-repo:signingKey), or set ${FINGERPRINT_KEY} to ${normaliseFingerprint(actual)} to change the key on purpose`,
  );
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
    if (!args.name.trim() || !args.email.includes('@'))
      throw new Error(`SigningKey ${name}: name and email are required (got '${args.name}', '${args.email}')`);
    const expected = args.expectedFingerprint === undefined ? undefined : normaliseFingerprint(args.expectedFingerprint);
    if (expected !== undefined && !/^[0-9A-F]{40}$/.test(expected))
      throw new ConfigError(FINGERPRINT_KEY, `expected the 40 hex digits of an OpenPGP v4 fingerprint (got '${args.expectedFingerprint}')`);
    if (args.provided !== undefined) {
      const priv = pulumi.secret(args.provided);
      const files = priv.apply((k) => publicKeyFiles(k, 'apt-repo:signingKey'));
      // Every output waits for the check, so no step installs a key the stack did not record.
      const checked = files.apply((f) => checkFingerprint(f.fingerprint, expected, 'apt-repo:signingKey'));
      this.privateArmored = pulumi.all([checked, priv]).apply(([, k]) => k);
      // The public parts derive from the secret but are public by nature.
      const armored = files.apply((f) => f.armored);
      const binaryBase64 = files.apply((f) => Buffer.from(f.binary).toString('base64'));
      this.publicArmored = pulumi.unsecret(pulumi.all([checked, armored]).apply(([, k]) => k));
      this.publicBinaryBase64 = pulumi.unsecret(pulumi.all([checked, binaryBase64]).apply(([, k]) => k));
      this.fingerprint = pulumi.unsecret(checked);
    } else {
      const key = new GeneratedSigningKey(
        `${name}-generated`,
        {
          name: args.name,
          email: args.email,
          ...(args.type ? { type: args.type } : {}),
          ...(expected ? { expectedFingerprint: expected } : {}),
        },
        { parent: this, protect: true },
      );
      const checked = key.fingerprint.apply((f) => checkFingerprint(f, expected, 'the stack state'));
      this.privateArmored = pulumi.secret(pulumi.all([checked, key.privateArmored]).apply(([, k]) => k));
      this.publicArmored = pulumi.all([checked, key.publicArmored]).apply(([, k]) => k);
      this.publicBinaryBase64 = pulumi.all([checked, key.publicBinaryBase64]).apply(([, k]) => k);
      this.fingerprint = checked;
    }
    this.registerOutputs({ publicArmored: this.publicArmored, fingerprint: this.fingerprint });
  }
}
