import { spawnSync } from 'child_process';
import * as path from 'path';
import { htpasswdSaltsProvider, randomSalt, saltsFor } from './htpasswdSalts';

const projectRoot = path.resolve(__dirname, '..');
const creds = [
  { username: 'web1', password: 'correct-horse-battery' },
  { username: 'web2', password: 'correct-horse-battery' },
];

describe('htpasswdSaltsProvider', () => {
  it('draws a random 16-character crypt salt per user at create', async () => {
    const { outs } = await htpasswdSaltsProvider.create({ credentials: creds });
    expect(Object.keys(outs.salts)).toEqual(['web1', 'web2']);
    for (const s of Object.values(outs.salts)) expect(s).toMatch(/^[./0-9A-Za-z]{16}$/);
    expect(outs.salts.web1).not.toBe(outs.salts.web2);
    const again = await htpasswdSaltsProvider.create({ credentials: creds });
    expect(again.outs.salts.web1).not.toBe(outs.salts.web1);
    // 96 random bits each: 500 draws never collide, and use the whole alphabet.
    const many = Array.from({ length: 500 }, () => randomSalt());
    expect(new Set(many).size).toBe(500);
    expect(new Set(many.join('')).size).toBe(64);
  });

  it('reports a change only when a user or a password changed', async () => {
    const { outs } = await htpasswdSaltsProvider.create({ credentials: creds });
    expect(await htpasswdSaltsProvider.diff('id', outs, { credentials: creds.map((c) => ({ ...c })) })).toEqual({ changes: false });
    expect(
      await htpasswdSaltsProvider.diff('id', outs, { credentials: [creds[0], { ...creds[1], password: 'another-password-2' }] }),
    ).toEqual({ changes: true });
    expect(await htpasswdSaltsProvider.diff('id', outs, { credentials: [creds[0]] })).toEqual({ changes: true });
    expect(
      await htpasswdSaltsProvider.diff('id', outs, { credentials: [...creds, { username: 'web3', password: 'third-password-3' }] }),
    ).toEqual({ changes: true });
  });

  it('keeps the salt of an unchanged user and draws a new one for a new user or a new password', async () => {
    const { outs } = await htpasswdSaltsProvider.create({ credentials: creds });
    const news = [{ ...creds[1], password: 'another-password-2' }, { username: 'web3', password: 'third-password-3' }, creds[0]];
    const updated = (await htpasswdSaltsProvider.update('id', outs, { credentials: news })).outs as {
      salts: Record<string, string>;
      credentials: unknown;
    };
    expect(Object.keys(updated.salts).sort()).toEqual(['web1', 'web2', 'web3']);
    expect(updated.salts.web1).toBe(outs.salts.web1);
    expect(updated.salts.web2).not.toBe(outs.salts.web2);
    expect(updated.salts.web3).toMatch(/^[./0-9A-Za-z]{16}$/);
    expect(updated.credentials).toEqual(news);
    // A removed user's salt is gone; a state without salts (or a broken one) gets fresh salts.
    expect(Object.keys(saltsFor([creds[1]], outs))).toEqual(['web2']);
    expect(saltsFor(creds, { credentials: creds, salts: { web1: 'short' } }).web1).toMatch(/^[./0-9A-Za-z]{16}$/);
  });

  it('serializes for the dynamic provider host', () => {
    // Outside jest: Pulumi's closure serializer needs Node's own require cache.
    const code = `
      const pulumi = require('@pulumi/pulumi');
      const { htpasswdSaltsProvider } = require(${JSON.stringify(path.join(projectRoot, 'infra/htpasswdSalts.ts'))});
      pulumi.runtime.serializeFunction(() => htpasswdSaltsProvider, { allowSecrets: true })
        .then((sf) => process.stdout.write(sf.text), (e) => { process.stderr.write(String(e && e.message || e)); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--no-warnings', '-r', 'ts-node/register/transpile-only', '-e', code], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 110000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("require('crypto')");
    expect(r.stdout.length).toBeLessThan(20000);
  });
});
