import { execFileSync, spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import * as openpgp from 'openpgp';
import { ConfigError } from '../errors';
import { generateSigningKey, publicKeyFiles, SigningKey } from './keys';
import { loadSigner } from './sign';

const RELEASE = [
  'Origin: Epiconcept',
  'Label: Epiconcept preprod',
  'Suite: bookworm',
  'Codename: bookworm',
  'Date: Sat, 21 Nov 2026 05:15:00 UTC',
  'SHA256:',
  ' e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855                0 main/binary-amd64/Packages',
  '',
].join('\n');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sign-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs gpgv with the binary public key as its only keyring; returns the exit status and stderr. */
function gpgv(key: SigningKey, args: string[]): { status: number | null; stderr: string } {
  const keyring = join(dir, `${key.fingerprint}.gpg`);
  writeFileSync(keyring, key.publicBinary);
  const r = spawnSync('gpgv', ['--keyring', keyring, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** `gpg --list-packets` of a file, with a throw-away home directory. */
function listPackets(file: string): string {
  const home = mkdtempSync(join(dir, 'gnupg-'));
  return execFileSync('gpg', ['--homedir', home, '--batch', '--list-packets', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe.each(['rsa4096', 'ed25519'] as const)('signing with a %s key', (type) => {
  let key: SigningKey;
  beforeAll(async () => {
    key = await generateSigningKey({ name: 'Epiconcept test archive', email: 'apt@epiconcept.fr', type });
  });

  it('signs InRelease and Release.gpg that gpgv accepts, with SHA-512 v4 signatures', async () => {
    const signer = await loadSigner(key.privateArmored);
    expect(signer.fingerprint).toBe(key.fingerprint);
    const { inRelease, releaseGpg } = await signer.sign(RELEASE);
    writeFileSync(join(dir, 'Release'), RELEASE);
    writeFileSync(join(dir, 'InRelease'), inRelease);
    writeFileSync(join(dir, 'Release.gpg'), releaseGpg);

    expect(gpgv(key, [join(dir, 'InRelease')]).status).toBe(0);
    expect(gpgv(key, [join(dir, 'Release.gpg'), join(dir, 'Release')]).status).toBe(0);

    // apt rejects text after the signature; the cleartext keeps LF line ends and the Release text.
    expect(inRelease.endsWith('\n-----END PGP SIGNATURE-----\n')).toBe(true);
    expect(inRelease).not.toContain('\r');
    expect(inRelease).toContain(`\n\n${RELEASE}-----BEGIN PGP SIGNATURE-----\n`);
    expect(releaseGpg.startsWith('-----BEGIN PGP SIGNATURE-----\n')).toBe(true);
    expect(releaseGpg.endsWith('\n-----END PGP SIGNATURE-----\n')).toBe(true);

    // gpgv hands back exactly the signed text, which is the Release text minus its final newline … plus the one gpg adds.
    const out = join(dir, 'extracted');
    rmSync(out, { force: true });
    expect(gpgv(key, ['--output', out, join(dir, 'InRelease')]).status).toBe(0);
    expect(execFileSync('cat', [out], { encoding: 'utf8' })).toBe(RELEASE);

    // gpg --list-packets shows a cleartext file's signature only when given the signature block alone.
    writeFileSync(join(dir, 'InRelease.sig'), inRelease.slice(inRelease.indexOf('-----BEGIN PGP SIGNATURE-----')));
    for (const f of ['InRelease.sig', 'Release.gpg']) {
      const packets = listPackets(join(dir, f));
      expect(packets).toMatch(/:signature packet: algo \d+/);
      expect(packets).toMatch(/version 4, created \d+, md5len 0, sigclass 0x0[01]/);
      expect(packets).toMatch(/digest algo 10,/); // SHA-512
    }
    expect(listPackets(join(dir, 'Release.gpg'))).toMatch(/sigclass 0x00/); // binary document: the exact bytes
  });

  it('gives signatures that fail on a tampered Release', async () => {
    const signer = await loadSigner(key.privateArmored);
    const { inRelease, releaseGpg } = await signer.sign(RELEASE);
    const tampered = RELEASE.replace('Epiconcept preprod', 'Epiconcept prod');
    writeFileSync(join(dir, 'Release.t'), tampered);
    writeFileSync(join(dir, 'Release.t.gpg'), releaseGpg);
    writeFileSync(join(dir, 'InRelease.t'), inRelease.replace('Epiconcept preprod', 'Epiconcept prod'));
    expect(gpgv(key, [join(dir, 'Release.t.gpg'), join(dir, 'Release.t')]).status).not.toBe(0);
    expect(gpgv(key, [join(dir, 'InRelease.t')]).status).not.toBe(0);
  });
});

describe('loadSigner refuses unusable keys with ConfigError', () => {
  let ed: SigningKey;
  beforeAll(async () => {
    ed = await generateSigningKey({ name: 'T', email: 't@epiconcept.fr', type: 'ed25519' });
  });

  it('garbage text', async () => {
    await expect(loadSigner('hello', undefined, '/etc/key.asc')).rejects.toThrow(ConfigError);
    await expect(loadSigner('hello', undefined, '/etc/key.asc')).rejects.toThrow(/^\/etc\/key\.asc: not an armored OpenPGP private key/);
    const broken = ed.privateArmored.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    await expect(loadSigner(broken)).rejects.toThrow(ConfigError);
  });

  it('a public key instead of a private one', async () => {
    await expect(loadSigner(ed.publicArmored)).rejects.toThrow(ConfigError);
    await expect(publicKeyFiles(ed.publicArmored)).rejects.toThrow(ConfigError);
  });

  it('a passphrase-protected key without (or with a wrong) passphrase; the right one works', async () => {
    const privateKey = await openpgp.readPrivateKey({ armoredKey: ed.privateArmored });
    const locked = (await openpgp.encryptKey({ privateKey, passphrase: 's3cret' })).armor();
    await expect(loadSigner(locked)).rejects.toThrow(/passphrase-protected and no passphrase was given/);
    await expect(loadSigner(locked, 'wrong')).rejects.toThrow(ConfigError);
    const signer = await loadSigner(locked, 's3cret');
    const { inRelease } = await signer.sign(RELEASE);
    writeFileSync(join(dir, 'InRelease.locked'), inRelease);
    expect(gpgv(ed, [join(dir, 'InRelease.locked')]).status).toBe(0);
  });

  it('an RFC 9580 v6 key (Debian 12 gpgv refuses it)', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'v6@epiconcept.fr' }],
      config: { v6Keys: true },
    });
    await expect(loadSigner(privateKey)).rejects.toThrow(/v6 key/);
  });

  it('a v4 key with the new Ed25519 algorithm (27)', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'x@epiconcept.fr' }],
      config: { v6Keys: false },
    });
    await expect(loadSigner(privateKey)).rejects.toThrow(/ed25519 is not checked by Debian's gpgv/);
  });
});
