/** TLS material for tests, made with the system openssl. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
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

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * A test CA and a server certificate it signed for 127.0.0.1 and 127.0.0.2 (P-256, 2 days), made
 * with openssl in `dir`: the CA (what a client trusts), the server's chain (certificate then CA:
 * what nginx serves) and its key. Throws openssl's error when it fails.
 */
export function caSignedCert(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const p = (f: string) => path.join(dir, f);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=apt-repo systemd-host test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  fs.writeFileSync(
    p('server.ext'),
    'subjectAltName=IP:127.0.0.1,IP:127.0.0.2\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.pem'),
    '-days',
    '2',
    '-extfile',
    p('server.ext'),
  ]);
  fs.writeFileSync(p('fullchain.pem'), fs.readFileSync(p('server.pem'), 'utf8') + fs.readFileSync(p('ca.pem'), 'utf8'));
  return { caFile: p('ca.pem'), certFile: p('fullchain.pem'), keyFile: p('server.key') };
}
