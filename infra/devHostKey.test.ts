import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { devHostKeyProvider } from './devHostKey';

const projectRoot = path.resolve(__dirname, '..');

describe('devHostKeyProvider', () => {
  it('creates an ed25519 pair whose public half ssh-keygen derives from the private half, id its fingerprint', async () => {
    const { id, outs } = await devHostKeyProvider.create({ comment: 'dev-apt-repo' });
    expect(outs.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
    expect(outs.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-host-key-test-'));
    try {
      const f = path.join(dir, 'key');
      fs.writeFileSync(f, outs.privateKey, { mode: 0o600 });
      const derived = spawnSync('ssh-keygen', ['-y', '-f', f], { encoding: 'utf8' });
      expect(derived.stdout.trim().split(/\s+/).slice(0, 2).join(' ')).toBe(outs.publicKey);
      fs.writeFileSync(`${f}.pub`, `${outs.publicKey}\n`);
      const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${f}.pub`], { encoding: 'utf8' });
      expect(fp.stdout.split(/\s+/)[1]).toBe(id);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a different key each time it is created, and never reports a change (the key stays)', async () => {
    const a = await devHostKeyProvider.create({ comment: 'a' });
    const b = await devHostKeyProvider.create({ comment: 'a' });
    expect(a.outs.publicKey).not.toBe(b.outs.publicKey);
    expect(await devHostKeyProvider.diff()).toEqual({ changes: false });
  });

  it('serializes for the dynamic provider host', () => {
    // Outside jest: Pulumi's closure serializer needs Node's own require cache.
    const code = `
      const pulumi = require('@pulumi/pulumi');
      const { devHostKeyProvider } = require(${JSON.stringify(path.join(projectRoot, 'infra/devHostKey.ts'))});
      pulumi.runtime.serializeFunction(() => devHostKeyProvider, { allowSecrets: true })
        .then((sf) => process.stdout.write(sf.text), (e) => { process.stderr.write(String(e && e.message || e)); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--no-warnings', '-r', 'ts-node/register/transpile-only', '-e', code], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 110000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("require('child_process')");
    expect(r.stdout.length).toBeLessThan(20000);
  });
});
