/** TLS material for tests, made with the system openssl. */
import { execFileSync } from 'child_process';
import * as path from 'path';

/**
 * A self-signed certificate (RSA 2048, valid `days` days, subject CN=`cn`) and its unencrypted key,
 * written as `<dir>/<name>.pem` and `<dir>/<name>.key` (name default 'cert' and 'key': cert.pem,
 * key.pem). Returns their paths. Throws openssl's error when it fails.
 */
export function selfSignedCert(
  dir: string,
  cn: string,
  opts: { certName?: string; keyName?: string; days?: number } = {},
): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, opts.certName ?? 'cert.pem');
  const keyFile = path.join(dir, opts.keyName ?? 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      String(opts.days ?? 2),
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
