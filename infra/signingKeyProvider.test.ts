import { spawnSync } from 'child_process';
import * as openpgp from 'openpgp';
import * as path from 'path';
import { loadSigner } from '../lambda-free-tools/src/sign/sign';
import { publicKeyFiles } from '../lambda-free-tools/src/sign/keys';
import { signingKeyProvider } from './signingKeyProvider';

const projectRoot = path.resolve(__dirname, '..');

describe('signingKeyProvider', () => {
  it('creates a v4 key that keys.ts and sign.ts accept, with matching public parts', async () => {
    const { id, outs } = await signingKeyProvider.create({
      name: 'Test preprod archive key',
      email: 'apt-preprod@example.org',
      type: 'ed25519',
    });
    expect(id).toMatch(/^[0-9A-F]{40}$/);
    expect(outs.fingerprint).toBe(id);
    const derived = await publicKeyFiles(outs.privateArmored);
    expect(derived.fingerprint).toBe(id);
    expect(derived.armored).toBe(outs.publicArmored);
    expect(Buffer.from(derived.binary).toString('base64')).toBe(outs.publicBinaryBase64);
    const key = await openpgp.readPrivateKey({ armoredKey: outs.privateArmored });
    expect(key.keyPacket.version).toBe(4);
    expect(key.getSubkeys()).toHaveLength(0);
    expect(key.users[0].userID?.userID).toBe('Test preprod archive key <apt-preprod@example.org>');
    const signer = await loadSigner(outs.privateArmored);
    expect(signer.fingerprint.toUpperCase()).toBe(id);
  });

  it('refuses to generate when the stack recorded a fingerprint (the key it had is lost), naming the key', async () => {
    const fingerprint = 'C'.repeat(40);
    await expect(
      signingKeyProvider.create({ name: 'T', email: 't@example.org', type: 'ed25519', expectedFingerprint: fingerprint }),
    ).rejects.toThrow(
      new RegExp(`^apt-repo:signingKeyFingerprint: the stack recorded the signing key ${fingerprint} but its state holds no key`),
    );
  });

  it('never reports a change, so the key is never regenerated', async () => {
    expect(await signingKeyProvider.diff()).toEqual({ changes: false });
  });

  it('serializes for the dynamic provider host, loading openpgp with require', () => {
    // Outside jest: Pulumi's closure serializer needs Node's own require cache.
    const code = `
      const pulumi = require('@pulumi/pulumi');
      const { signingKeyProvider } = require(${JSON.stringify(path.join(projectRoot, 'infra/signingKeyProvider.ts'))});
      pulumi.runtime.serializeFunction(() => signingKeyProvider, { allowSecrets: true })
        .then((sf) => process.stdout.write(sf.text), (e) => { process.stderr.write(String(e && e.message || e)); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--no-warnings', '-r', 'ts-node/register/transpile-only', '-e', code], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 110000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("require('openpgp')");
    expect(r.stdout.length).toBeLessThan(20000);
  });
});
