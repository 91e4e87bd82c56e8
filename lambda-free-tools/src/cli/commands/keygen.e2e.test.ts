import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../../test/harness/cli';

let root: string;
beforeAll(async () => {
  root = mkTemp('keygen-cli');
  expect((await runCli(['--root', root, 'init'])).code).toBe(0);
});
afterAll(() => rmTemp(root));

const configDir = () => path.join(root, 'etc/epiconcept/apt_repo/preprod');
const webRoot = () => path.join(root, 'srv/apt/preprod');

/** What gpg (a separate implementation from openpgp.js) reads from a public key file, in --with-colons form. */
function gpgShowKeys(file: string): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gnupg-'));
  try {
    return execFileSync('gpg', ['--homedir', home, '--batch', '--with-colons', '--show-keys', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}
const gpgFingerprint = (file: string) =>
  gpgShowKeys(file)
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9];

test('keygen writes a 0600 private key and 0644 public keys, prints only the fingerprint, and defaults the user id', async () => {
  const r = await runCli(['--root', root, '--json', 'keygen']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const data = JSON.parse(r.stdout);
  expect(r.stdout).not.toMatch(/PRIVATE KEY/);
  const key = path.join(configDir(), 'signing-key.asc');
  expect(fs.statSync(key).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(key, 'utf8')).toContain('BEGIN PGP PRIVATE KEY BLOCK');
  const asc = path.join(webRoot(), 'epiconcept-preprod-archive-keyring.asc');
  const gpg = path.join(webRoot(), 'epiconcept-preprod-archive-keyring.gpg');
  expect(data.publicKeyFiles).toEqual([asc, gpg]);
  for (const f of [asc, gpg]) {
    expect(fs.statSync(f).mode & 0o777).toBe(0o644);
    expect(gpgFingerprint(f)).toBe(data.fingerprint);
  }
  const uid = gpgShowKeys(asc);
  expect(uid).toContain(`Epiconcept preprod Archive Signing Key <apt@${os.hostname()}>`);
  expect(uid).toMatch(/^pub:[^:]*:4096:1:/m); // RSA (algorithm 1), 4096 bits by default
});

test('keygen refuses to replace a key without --force (exit 2), and replaces it with --force', async () => {
  const key = path.join(configDir(), 'signing-key.asc');
  const before = fs.readFileSync(key, 'utf8');
  const refused = await runCli(['--root', root, 'keygen', '--type', 'ed25519']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(key);
  expect(refused.stderr).toContain('--force');
  expect(fs.readFileSync(key, 'utf8')).toBe(before);

  const forced = await runCli([
    '--root',
    root,
    'keygen',
    '--type',
    'ed25519',
    '--force',
    '--name',
    'Other Name',
    '--email',
    'ops@example.org',
  ]);
  expect(forced.code).toBe(0);
  const fpr = /fingerprint\s+([0-9A-F]{40})/.exec(forced.stdout)![1];
  expect(fs.readFileSync(key, 'utf8')).not.toBe(before);
  expect(fs.statSync(key).mode & 0o777).toBe(0o600);
  expect(gpgFingerprint(path.join(webRoot(), 'epiconcept-preprod-archive-keyring.gpg'))).toBe(fpr);
  // Both key changes are in the history, the refused one is not: which key, and who.
  const history = await runCli(['--root', root, '--json', 'history']);
  expect(history.code).toBe(0);
  const records = (JSON.parse(history.stdout) as { op: string; detail: string; who: { user: string } }[]).filter((r) => r.op === 'keygen');
  for (const r of records) expect(r.who.user).toMatch(/./);
  expect(records.map((r) => r.detail)).toEqual([
    expect.stringMatching(/^created rsa4096 key [0-9A-F]{40}$/),
    `replaced the signing key by ed25519 key ${fpr}`,
  ]);
});

test('keygen rejects an unknown --type as a usage error', async () => {
  const r = await runCli(['--root', root, 'keygen', '--type', 'dsa', '--force']);
  expect(r.code).toBe(2);
});
