import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ConfigError } from '../errors';
import { generateSigningKey, publicKeyFiles, SigningKey } from './keys';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keys-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs gpg with a throw-away home directory. */
function gpg(args: string[]): string {
  const home = mkdtempSync(join(dir, 'gnupg-'));
  return execFileSync('gpg', ['--homedir', home, '--batch', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.each([
  ['rsa4096', 1, 4096],
  ['ed25519', 22, 255],
] as const)('generateSigningKey %s', (type, algo, bits) => {
  let key: SigningKey;
  beforeAll(async () => {
    key = await generateSigningKey({ name: 'Epiconcept test archive', email: 'apt@epiconcept.fr', type });
  });

  it('makes a v4 signing key with no subkey and no expiry, as gpg reads it', () => {
    const file = join(dir, `${type}.gpg`);
    writeFileSync(file, key.publicBinary);
    const colons = gpg(['--with-colons', '--show-keys', file]);
    // pub:<validity>:<bits>:<algo>:<keyid>:<created>:<expires>:…:<capabilities>
    const pub = colons
      .split('\n')
      .find((l) => l.startsWith('pub:'))!
      .split(':');
    expect(Number(pub[2])).toBe(bits);
    expect(Number(pub[3])).toBe(algo);
    expect(pub[6]).toBe(''); // no expiry
    expect(pub[11]).toMatch(/s/i); // can sign
    expect(colons).not.toMatch(/^sub:/m);
    expect(colons).toMatch(new RegExp(`^fpr:+${key.fingerprint}:`, 'm'));
    expect(colons).toMatch(/^uid:.*Epiconcept test archive <apt@epiconcept\.fr>/m);
    expect(gpg(['--list-packets', file])).toMatch(new RegExp(`:public key packet:\\n\\s+version 4, algo ${algo},`));
    expect(key.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  });

  it('gives the same public files back from the private key', async () => {
    const pub = await publicKeyFiles(key.privateArmored);
    expect(pub.fingerprint).toBe(key.fingerprint);
    expect(Buffer.from(pub.binary).equals(Buffer.from(key.publicBinary))).toBe(true);
    expect(pub.armored).toBe(key.publicArmored);
    expect(key.publicArmored).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n/);
    expect(key.privateArmored).toMatch(/^-----BEGIN PGP PRIVATE KEY BLOCK-----\n/);
    // The armored public key is the binary one, as gpg --dearmor sees it.
    const asc = join(dir, `${type}.asc`);
    writeFileSync(asc, key.publicArmored);
    const home = mkdtempSync(join(dir, 'gnupg-'));
    const dearmored = execFileSync('gpg', ['--homedir', home, '--batch', '--dearmor', '-o', '-', asc]);
    expect(dearmored.equals(Buffer.from(key.publicBinary))).toBe(true);
  });
});

describe('key errors', () => {
  it('refuses bad generation options with ConfigError', async () => {
    await expect(generateSigningKey({ name: '', email: 'a@b' })).rejects.toThrow(ConfigError);
    await expect(generateSigningKey({ name: 'a', email: 'nope' })).rejects.toThrow(/keygen --email/);
    await expect(generateSigningKey({ name: 'a', email: 'a@b', type: 'dsa' as never })).rejects.toThrow(/keygen --type/);
  });

  it('publicKeyFiles refuses garbage and public keys with ConfigError naming the source', async () => {
    await expect(publicKeyFiles('garbage', '/etc/x/signing-key.asc')).rejects.toThrow(/^\/etc\/x\/signing-key\.asc: not an armored/);
    const ed = await generateSigningKey({ name: 'T', email: 't@e.fr', type: 'ed25519' });
    await expect(publicKeyFiles(ed.publicArmored)).rejects.toThrow(ConfigError);
  });
});
