/**
 * A dynamic resource that generates the channel's archive signing key once, at create, and keeps
 * it in the stack state as a secret output. It never changes afterwards: `diff` reports no change
 * whatever the inputs, so a renamed key or new e-mail never rotates a key clients trust.
 *
 * Why the provider does not call lambda-free-tools/src/sign/keys.ts `generateSigningKey`: Pulumi
 * serializes a dynamic provider's code into the state, and keys.ts's `import * as openpgp` is an
 * esModuleInterop wrapper that the serializer cannot recognise as a node_modules package, so it
 * tries to serialize openpgp.js itself and fails. The provider therefore loads openpgp with a
 * `require` inside `create` (left as-is by the serializer) and makes the same key keys.ts makes:
 * an OpenPGP v4 primary key (RFC 4880; Debian 12's gpgv refuses v6), sign + certify, no subkey,
 * no expiry, no passphrase, SHA-512 preferred; RSA-4096 by default or legacy ed25519.
 * signingKeyProvider.test.ts checks the result with keys.ts (publicKeyFiles, loadSigner) and that
 * the provider serializes.
 *
 * `expectedFingerprint` (the stack's apt-repo:signingKeyFingerprint) guards a lost key: create runs
 * only when the state holds no key, so a stack that records a fingerprint and reaches create has lost
 * the key it had (state unprotect + destroy, a new state): create refuses instead of generating a
 * different key that every client would reject.
 */
import * as pulumi from '@pulumi/pulumi';

/** Inputs: the key's user ID and algorithm (used at creation only). */
export interface GeneratedSigningKeyArgs {
  name: pulumi.Input<string>;
  email: pulumi.Input<string>;
  type?: pulumi.Input<'rsa4096' | 'ed25519'>;
  /** The fingerprint the stack recorded (apt-repo:signingKeyFingerprint): when set, create refuses to generate. */
  expectedFingerprint?: pulumi.Input<string>;
}

interface Inputs {
  name: string;
  email: string;
  type?: 'rsa4096' | 'ed25519';
  expectedFingerprint?: string;
}

/** Outputs of create (`privateArmored` is secret). */
export interface GeneratedKeyOutputs extends Inputs {
  privateArmored: string;
  publicArmored: string;
  publicBinaryBase64: string;
  fingerprint: string;
}

/**
 * The provider: create generates the key, nothing else ever changes it. create throws an Error naming
 * apt-repo:signingKeyFingerprint when `expectedFingerprint` is set (the stack had a key and lost it).
 */
export const signingKeyProvider = {
  async create(inputs: Inputs): Promise<{ id: string; outs: GeneratedKeyOutputs }> {
    if (inputs.expectedFingerprint) {
      throw new Error(
        `apt-repo:signingKeyFingerprint: the stack recorded the signing key ${inputs.expectedFingerprint} but its state holds no key; ` +
          'generating a new one would break every client. Restore that key (pulumi config set --secret apt-repo:signingKey < key.asc), ' +
          'or remove apt-repo:signingKeyFingerprint to generate a different key on purpose',
      );
    }

    const openpgp = require('openpgp') as typeof import('openpgp');
    const type = inputs.type ?? 'rsa4096';
    if (type !== 'rsa4096' && type !== 'ed25519') throw new Error(`signing key type '${String(type)}' is not rsa4096 or ed25519`);
    const { privateKey } = await openpgp.generateKey({
      ...(type === 'rsa4096' ? { type: 'rsa' as const, rsaBits: 4096 } : { type: 'ecc' as const, curve: 'ed25519Legacy' as const }),
      userIDs: [{ name: inputs.name, email: inputs.email }],
      subkeys: [],
      keyExpirationTime: 0,
      format: 'object',
      config: { v6Keys: false, preferredHashAlgorithm: openpgp.enums.hash.sha512 },
    });
    const publicKey = privateKey.toPublic();
    const fingerprint = privateKey.getFingerprint().toUpperCase();
    return {
      id: fingerprint,
      outs: {
        ...inputs,
        privateArmored: privateKey.armor(),
        publicArmored: publicKey.armor(),
        publicBinaryBase64: Buffer.from(publicKey.write()).toString('base64'),
        fingerprint,
      },
    };
  },
  async diff(): Promise<pulumi.dynamic.DiffResult> {
    return { changes: false };
  },
};

/** The generated key: `privateArmored` is a secret output. Protect it: deleting it loses the key. */
export class GeneratedSigningKey extends pulumi.dynamic.Resource {
  declare readonly privateArmored: pulumi.Output<string>;
  declare readonly publicArmored: pulumi.Output<string>;
  declare readonly publicBinaryBase64: pulumi.Output<string>;
  declare readonly fingerprint: pulumi.Output<string>;

  constructor(name: string, args: GeneratedSigningKeyArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      signingKeyProvider as pulumi.dynamic.ResourceProvider,
      name,
      { ...args, privateArmored: undefined, publicArmored: undefined, publicBinaryBase64: undefined, fingerprint: undefined },
      { ...opts, additionalSecretOutputs: ['privateArmored'] },
      'apt-repo',
      'SigningKey',
    );
  }
}
