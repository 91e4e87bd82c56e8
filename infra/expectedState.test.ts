import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateSigningKey } from '../lambda-free-tools/src/sign/keys';
import { ExpectedStateBuilder, openpgpV4Fingerprint } from './expectedState';

jest.setTimeout(60_000);

describe('openpgpV4Fingerprint', () => {
  it.each(['ed25519', 'rsa4096'] as const)('gives the fingerprint openpgp.js and gpg give for a %s key', async (type) => {
    const key = await generateSigningKey({ name: 'Fingerprint test', email: 'fp@example.org', type });
    const binary = Buffer.from(key.publicBinary);
    expect(openpgpV4Fingerprint(binary)).toBe(key.fingerprint);
    // gpg, reading the same binary key, agrees.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-'));
    try {
      fs.writeFileSync(path.join(dir, 'key.gpg'), binary);
      const out = execFileSync('gpg', ['--homedir', dir, '--batch', '--with-colons', '--show-keys', path.join(dir, 'key.gpg')], {
        encoding: 'utf8',
      });
      const fpr = out
        .split('\n')
        .find((l) => l.startsWith('fpr:'))!
        .split(':')[9];
      expect(openpgpV4Fingerprint(binary)).toBe(fpr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives undefined for what is not a v4 public-key packet', () => {
    for (const b of [
      Buffer.alloc(0),
      Buffer.from('A'),
      Buffer.from('binary-public-key'),
      Buffer.from([0x99, 0x00, 0x01, 0x05]),
      Buffer.from([0xc6, 0x03, 0x05, 0x00, 0x00]),
    ])
      expect(openpgpV4Fingerprint(b)).toBeUndefined();
  });

  it('reads a truncated packet as no key rather than a wrong one', async () => {
    const key = await generateSigningKey({ name: 'Truncated', email: 't@example.org', type: 'ed25519' });
    expect(openpgpV4Fingerprint(Buffer.from(key.publicBinary).subarray(0, 20))).toBeUndefined();
  });
});

describe('ExpectedStateBuilder', () => {
  it('sorts by path, pads modes, keeps the last word per path, never a digest for a secret', () => {
    const x = new ExpectedStateBuilder('preprod', '/', '/etc/epiconcept/apt_repo/preprod/secret-digests');
    x.file('vhost', '/etc/nginx/sites-available/apt-preprod.conf', '644', 'root', 'root', { content: 'bootstrap' });
    x.dir('dirs', '/srv/apt/preprod/pool', '2755', 'aptrepo-preprod', 'aptrepo');
    x.file('vhost', '/etc/nginx/sites-available/apt-preprod.conf', '0644', 'root', 'root', { content: 'server {}\n' });
    x.file('htpasswd', '/etc/nginx/apt-repo/preprod.htpasswd', '0640', 'root', 'www-data', { secret: true });
    x.symlink('vhost', '/etc/nginx/sites-enabled/apt-preprod.conf', '/etc/nginx/sites-available/apt-preprod.conf');
    const s = x.build();
    expect(s.entries.map((e) => e.path)).toEqual([
      '/etc/nginx/apt-repo/preprod.htpasswd',
      '/etc/nginx/sites-available/apt-preprod.conf',
      '/etc/nginx/sites-enabled/apt-preprod.conf',
      '/srv/apt/preprod/pool',
    ]);
    expect(s.entries[0]).toEqual({
      type: 'file',
      path: '/etc/nginx/apt-repo/preprod.htpasswd',
      mode: '0640',
      owner: 'root',
      group: 'www-data',
      secret: true,
      step: 'htpasswd',
    });
    expect(s.entries[1]).toMatchObject({ mode: '0644', sha256: crypto.createHash('sha256').update('server {}\n').digest('hex') });
  });

  it('refuses a mode that is not octal', () => {
    const x = new ExpectedStateBuilder('preprod', '/', '/x/secret-digests');
    expect(() => x.dir('dirs', '/srv', '0899', 'root', 'root')).toThrow(/mode '0899' is not octal/);
  });
});
