import * as openpgp from 'openpgp';
import { ConfigError } from '../errors';
import { OPENPGP_CONFIG, readPrivate } from './keys';

/** A signed Release: the two files apt fetches beside Release. */
export interface SignedRelease {
  /** The cleartext-signed Release (RFC 4880 §7), ending right after '-----END PGP SIGNATURE-----\n'. */
  inRelease: string;
  /** An armored detached signature of the exact Release bytes (apt refuses a binary Release.gpg). */
  releaseGpg: string;
}

/**
 * Whatever signs Release files for publish: the in-process Signer below, or the signing service
 * reached over its socket (sign/client.ts), which never lets the indexer see the key.
 */
export interface ReleaseSigner {
  /** Signs a Release text (see SignedRelease). */
  sign(releaseText: string): Promise<SignedRelease>;
}

/** Signs Release files with one archive key held in this process. */
export interface Signer extends ReleaseSigner {
  /** 40 hex digits, upper case. */
  fingerprint: string;
}

/** Public-key algorithms Debian's gpgv checks (RSA, legacy v4 EdDSA, ECDSA); not RFC 9580's Ed25519/Ed448. */
const ACCEPTED_ALGORITHMS = new Set(['rsaEncryptSign', 'rsaSign', 'eddsaLegacy', 'ecdsa']);

/**
 * Parses an armored private key once and returns a Signer for it.
 * Signatures are OpenPGP v4 with SHA-512 (apt refuses SHA-1 signatures since 2.1).
 * InRelease: the cleartext message is the Release text minus exactly one trailing newline, since
 * the line break before '-----BEGIN PGP SIGNATURE-----' belongs to the armor (RFC 4880 §7.1);
 * apt rejects any text after '-----END PGP SIGNATURE-----', so the output ends with that line.
 * openpgp.js writes the cleartext with CRLF line ends; they are turned back into LF (the signature
 * covers the canonical CRLF form either way, and apt's parser expects LF).
 * Release.gpg: a binary-document (type 0x00) signature over the exact bytes, armored.
 * @param passphrase for a passphrase-protected key.
 * @param source names the key file in error messages (default 'signing key').
 * @throws ConfigError when the text is not a private key, the key is a v6 key, uses an algorithm
 *   gpgv cannot check, is RSA below 2048 bits, is protected and no (or a wrong) passphrase is
 *   given, or has no valid signing key (expired, revoked, no signing flag).
 */
export async function loadSigner(privateArmored: string, passphrase?: string, source = 'signing key'): Promise<Signer> {
  let key = await readPrivate(privateArmored, source);
  if (key.keyPacket.version !== 4) {
    throw new ConfigError(source, `OpenPGP v${key.keyPacket.version} key; apt's gpgv needs a v4 key (regenerate it with keygen)`);
  }
  if (!key.isDecrypted()) {
    if (passphrase === undefined) throw new ConfigError(source, 'the key is passphrase-protected and no passphrase was given');
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase, config: OPENPGP_CONFIG });
    } catch (e) {
      throw new ConfigError(source, `cannot unlock the key: ${(e as Error).message}`);
    }
  }
  let signingKey: Awaited<ReturnType<openpgp.PrivateKey['getSigningKey']>>;
  try {
    signingKey = await key.getSigningKey(undefined, undefined, undefined, { ...openpgp.config, ...OPENPGP_CONFIG });
  } catch (e) {
    throw new ConfigError(source, `no usable signing key: ${(e as Error).message}`);
  }
  const info = signingKey.getAlgorithmInfo();
  if (!ACCEPTED_ALGORITHMS.has(info.algorithm)) {
    throw new ConfigError(source, `key algorithm ${info.algorithm} is not checked by Debian's gpgv (use RSA-4096 or legacy ed25519)`);
  }
  if (info.algorithm.startsWith('rsa') && (info.bits ?? 0) < 2048) {
    throw new ConfigError(source, `RSA key of ${info.bits} bits is too weak for apt (need >= 2048, 4096 recommended)`);
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  const privateKey = key;
  return {
    fingerprint,
    async sign(releaseText: string) {
      const text = releaseText.endsWith('\n') ? releaseText.slice(0, -1) : releaseText;
      const cleartext = await openpgp.sign({
        message: await openpgp.createCleartextMessage({ text }),
        signingKeys: privateKey,
        config: OPENPGP_CONFIG,
      });
      const inRelease = cleartext.replace(/\r\n/g, '\n').replace(/\n*$/, '\n');
      const releaseGpg = await openpgp.sign({
        message: await openpgp.createMessage({ binary: Buffer.from(releaseText, 'utf8') }),
        signingKeys: privateKey,
        detached: true,
        format: 'armored',
        config: OPENPGP_CONFIG,
      });
      return { inRelease, releaseGpg: String(releaseGpg).replace(/\n*$/, '\n') };
    },
  };
}
