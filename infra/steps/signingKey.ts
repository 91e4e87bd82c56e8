/**
 * The 'signing-key' step [dirs, pre-update-backup]: the private key (from stdin) for the signer
 * alone, and the public key files, armored and binary, in the web root.
 */
import { shq } from '../shell';
import { b64line, makeStep, StepFiles, type PlanContext, type PlanStep } from './context';
import { recordSecretDigest } from './secretDigests';

/** Builds the 'signing-key' step of `ctx` (pure). */
export function signingKeyStep(ctx: PlanContext): PlanStep {
  const { cfg, material, layout: l, expected: x, keyFingerprint } = ctx;
  const u = shq(cfg.serviceUser);
  const secretDigests = l.secretDigestsFile;
  const b = new StepFiles(l, 'signing-key', x);
  const asc = b.stage('public.asc', material.publicKeyArmored, '0644', cfg.serviceUser);
  const gpgB64 = b.stage('public.gpg.b64', material.publicKeyBinaryBase64 + '\n', '0644', cfg.serviceUser);
  const body = [
    '# stdin: the armored private key, base64 on one line.',
    'read_secret "$APT_REPO_TMP/signing-key.asc"',
    // The signer's alone: the indexer (serviceUser), which parses uploads, cannot read it.
    `install_file "$APT_REPO_TMP/signing-key.asc" ${shq(l.signingKeyFile)} 0600 ${shq(cfg.signerUser)} ${shq(cfg.signerUser)}`,
    recordSecretDigest(secretDigests, l.signingKeyFile),
    `install_file ${asc} ${shq(l.publicKeyAsc)} 0644 ${u} ${u}`,
    `base64 -d ${gpgB64} > "$APT_REPO_TMP/public.gpg"`,
    `install_file "$APT_REPO_TMP/public.gpg" ${shq(l.publicKeyGpg)} 0644 ${u} ${u}`,
  ].join('\n');
  b.expect(l.signingKeyFile, '0600', cfg.signerUser, cfg.signerUser, { secret: true });
  b.expect(l.publicKeyAsc, '0644', cfg.serviceUser, cfg.serviceUser, { content: material.publicKeyArmored }, keyFingerprint);
  b.expect(
    l.publicKeyGpg,
    '0644',
    cfg.serviceUser,
    cfg.serviceUser,
    { content: Buffer.from(material.publicKeyBinaryBase64, 'base64') },
    keyFingerprint,
  );
  return makeStep(cfg, 'signing-key', ['dirs', 'pre-update-backup'], body, b.files, b64line(material.signingKeyArmored));
}
