/** TLS material for tests, made with the system openssl. */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
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
/** openssl's arguments for a new P-256 key. */
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A test CA in `dir` (P-256, 2 days): `ca.key` and its self-signed `ca.pem`. Throws openssl's error. */
export function testCa(dir: string): { caFile: string; caKey: string } {
  const caFile = path.join(dir, 'ca.pem');
  const caKey = path.join(dir, 'ca.key');
  openssl([
    'req',
    '-x509',
    ...P256,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=apt-repo test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { caFile, caKey };
}

/**
 * A server certificate for the IP addresses `ips` signed by testCa's CA in `dir` (P-256, 2 days):
 * `<name>.key` and `<name>.pem` (the certificate alone). Returns their paths and the certificate's
 * SHA-256 fingerprint as Node prints it (upper-case hex pairs joined by ':', tls getPeerCertificate
 * fingerprint256). Throws openssl's error.
 */
export function issueServerCert(dir: string, name: string, ips: string[]): { certFile: string; keyFile: string; fingerprint: string } {
  const p = (f: string) => path.join(dir, f);
  openssl(['req', ...P256, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${ips[0]} ${name}`]);
  fs.writeFileSync(
    p(`${name}.ext`),
    `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  openssl([
    'x509',
    '-req',
    '-in',
    p(`${name}.csr`),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p(`${name}.pem`),
    '-days',
    '2',
    '-extfile',
    p(`${name}.ext`),
  ]);
  const fingerprint = new crypto.X509Certificate(fs.readFileSync(p(`${name}.pem`))).fingerprint256;
  return { certFile: p(`${name}.pem`), keyFile: p(`${name}.key`), fingerprint };
}

/**
 * A test CA and a server certificate it signed for 127.0.0.1 and 127.0.0.2 (testCa, issueServerCert),
 * in `dir`: the CA (what a client trusts), the server's chain (certificate then CA: what nginx
 * serves) and its key. Throws openssl's error when it fails.
 */
export function caSignedCert(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const { caFile } = testCa(dir);
  const server = issueServerCert(dir, 'server', ['127.0.0.1', '127.0.0.2']);
  const chain = path.join(dir, 'fullchain.pem');
  fs.writeFileSync(chain, fs.readFileSync(server.certFile, 'utf8') + fs.readFileSync(caFile, 'utf8'));
  return { caFile, certFile: chain, keyFile: server.keyFile };
}
