import * as openpgp from 'openpgp';
import { ConfigError } from '../errors';

/** An archive signing key: the armored private key (unencrypted; stored 0600) and its public parts. */
export interface SigningKey {
  privateArmored: string;
  /** For apt's Signed-By as a `.asc` file. */
  publicArmored: string;
  /** For `gpgv --keyring` and apt's Signed-By as a `.gpg` file (apt picks the format by extension). */
  publicBinary: Uint8Array;
  /** 40 hex digits, upper case, as gpg and apt print it. */
  fingerprint: string;
}

/**
 * openpgp.js settings every key and signature of the project uses: OpenPGP v4 keys (RFC 4880),
 * because Debian 12's gpgv refuses RFC 9580 v6 keys, and SHA-512 signatures (apt refuses SHA-1).
 */
export const OPENPGP_CONFIG: openpgp.PartialConfig = {
  v6Keys: false,
  preferredHashAlgorithm: openpgp.enums.hash.sha512,
};

/**
 * Generates an archive signing key: one OpenPGP v4 primary key that certifies and signs, with no
 * subkey (an archive key never decrypts), no expiry and no passphrase (the file is kept 0600).
 * `type`: 'rsa4096' (default: every gpgv back to jessie's 1.4 checks it, and trixie's policy
 * refuses RSA below 3072 bits from 2030) or 'ed25519' (the legacy v4 EdDSA form, algorithm 22;
 * gpgv 1.4 cannot check it). RSA-4096 takes a few seconds of CPU.
 * @throws ConfigError for an empty name or an email without '@'.
 */
export async function generateSigningKey(opts: { name: string; email: string; type?: 'rsa4096' | 'ed25519' }): Promise<SigningKey> {
  if (!opts.name.trim()) throw new ConfigError('keygen --name', 'must not be empty');
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(opts.email)) throw new ConfigError('keygen --email', `'${opts.email}' is not an email address`);
  const type = opts.type ?? 'rsa4096';
  const algorithm =
    type === 'rsa4096'
      ? { type: 'rsa' as const, rsaBits: 4096 }
      : type === 'ed25519'
        ? { type: 'ecc' as const, curve: 'ed25519Legacy' as const }
        : undefined;
  if (!algorithm) throw new ConfigError('keygen --type', `'${String(type)}' is not rsa4096 or ed25519`);
  const { privateKey } = await openpgp.generateKey({
    ...algorithm,
    userIDs: [{ name: opts.name, email: opts.email }],
    subkeys: [],
    keyExpirationTime: 0,
    format: 'object',
    config: OPENPGP_CONFIG,
  });
  const publicKey = privateKey.toPublic();
  return {
    privateArmored: privateKey.armor(),
    publicArmored: publicKey.armor(),
    publicBinary: publicKey.write(),
    fingerprint: privateKey.getFingerprint().toUpperCase(),
  };
}

/**
 * The file names of a channel's public key in its web root (and, for the binary one, on clients
 * under /usr/share/keyrings): `<keyName>-archive-keyring.asc` (armored) and
 * `<keyName>-archive-keyring.gpg` (binary), as Debian names archive keyrings; apt's Signed-By picks
 * the format by the extension. The one definition of these names.
 */
export function publicKeyFileNames(keyName: string): { asc: string; gpg: string } {
  return { asc: `${keyName}-archive-keyring.asc`, gpg: `${keyName}-archive-keyring.gpg` };
}

/**
 * The public key files of an armored private key (decryption not needed): armored text for `.asc`,
 * binary packets for `.gpg`, and the fingerprint (40 hex digits, upper case).
 * @param source names the key file in error messages.
 * @throws ConfigError when the text is not an armored OpenPGP private key.
 */
export async function publicKeyFiles(
  privateArmored: string,
  source = 'signing key',
): Promise<{ armored: string; binary: Uint8Array; fingerprint: string }> {
  const key = await readPrivate(privateArmored, source);
  const publicKey = key.toPublic();
  return { armored: publicKey.armor(), binary: publicKey.write(), fingerprint: key.getFingerprint().toUpperCase() };
}

/**
 * Parses an armored private key, mapping openpgp.js errors to ConfigError(source, reason).
 * Never puts key material in the message.
 */
export async function readPrivate(privateArmored: string, source: string): Promise<openpgp.PrivateKey> {
  if (typeof privateArmored !== 'string' || !privateArmored.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) {
    throw new ConfigError(source, 'not an armored OpenPGP private key (no BEGIN PGP PRIVATE KEY BLOCK line)');
  }
  try {
    return await openpgp.readPrivateKey({ armoredKey: privateArmored, config: OPENPGP_CONFIG });
  } catch (e) {
    throw new ConfigError(source, `cannot read the OpenPGP private key: ${(e as Error).message}`);
  }
}

/**
 * Fingerprint (hex, upper case), algorithm and expiry (ISO 8601; absent when the key never expires)
 * of an armored OpenPGP public key (RFC 4880 §12.2 fingerprint; expiry from the primary key's
 * self-signature, as openpgp.js getExpirationTime reads it).
 * @throws openpgp's error for text that is not an armored public key.
 */
export async function publicKeyFacts(armored: string): Promise<{ fingerprint: string; algorithm: string; expires?: string }> {
  const key = await openpgp.readKey({ armoredKey: armored });
  const info = key.getAlgorithmInfo();
  const algorithm = `${info.algorithm}${'bits' in info && info.bits ? ` ${info.bits}` : ''}${'curve' in info && info.curve ? ` ${info.curve}` : ''}`;
  const exp = await key.getExpirationTime();
  return {
    fingerprint: key.getFingerprint().toUpperCase(),
    algorithm,
    ...(exp instanceof Date && Number.isFinite(exp.getTime()) ? { expires: exp.toISOString() } : {}),
  };
}
