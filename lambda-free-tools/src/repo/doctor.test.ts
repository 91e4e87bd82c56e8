/**
 * doctor against a real temp tree and a hand-built manifest: clean, then each kind of drift in
 * turn, each reported as exactly its own difference. Runs as root (chown to `nobody`), like CI.
 */
import { createHash } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateSigningKey, SigningKey } from '../sign/keys';
import { checkExpectedState, keyFingerprints, modeString, parseSecretDigests, SECRET_NOT_CHECKED, stepsToReapply } from './doctor';
import { ExpectedState, ExpectedStateError, parseExpectedState } from './expectedState';

const sha = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

let key: SigningKey;
let other: SigningKey;
let root: string;
let state: ExpectedState;

beforeAll(async () => {
  [key, other] = await Promise.all([
    generateSigningKey({ name: 'Doctor Test', email: 'doctor@example.org', type: 'ed25519' }),
    generateSigningKey({ name: 'Intruder', email: 'intruder@example.org', type: 'ed25519' }),
  ]);
});

/** The tree: a config folder (2755) with repo.yaml and the secret key, a web root with the public keys, a sites-enabled link. */
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-test-'));
  const p = (rel: string) => path.join(root, rel);
  for (const d of ['etc/apt_repo/preprod', 'srv/apt/preprod', 'etc/nginx/sites-available', 'etc/nginx/sites-enabled'])
    fs.mkdirSync(p(d), { recursive: true });
  fs.chmodSync(p('etc/apt_repo/preprod'), 0o2755);
  fs.writeFileSync(p('etc/apt_repo/preprod/repo.yaml'), 'codenames: [bookworm]\n', { mode: 0o644 });
  fs.writeFileSync(p('etc/apt_repo/preprod/signing-key.asc'), key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(p('etc/apt_repo/preprod/secret-digests'), `${sha(key.privateArmored)}  ${p('etc/apt_repo/preprod/signing-key.asc')}\n`, {
    mode: 0o600,
  });
  fs.writeFileSync(p('srv/apt/preprod/test-archive-keyring.asc'), key.publicArmored, { mode: 0o644 });
  fs.writeFileSync(p('srv/apt/preprod/test-archive-keyring.gpg'), key.publicBinary, { mode: 0o644 });
  fs.writeFileSync(p('etc/nginx/sites-available/apt-preprod.conf'), 'server {}\n', { mode: 0o644 });
  fs.symlinkSync(p('etc/nginx/sites-available/apt-preprod.conf'), p('etc/nginx/sites-enabled/apt-preprod.conf'));
  state = {
    format: 1,
    channel: 'preprod',
    root,
    secretDigests: p('etc/apt_repo/preprod/secret-digests'),
    entries: [
      { type: 'dir', path: p('etc/apt_repo/preprod'), mode: '2755', owner: 'root', group: 'root', step: 'dirs' },
      {
        type: 'file',
        path: p('etc/apt_repo/preprod/repo.yaml'),
        mode: '0644',
        owner: 'root',
        group: 'root',
        sha256: sha('codenames: [bookworm]\n'),
        step: 'repo-config',
      },
      {
        type: 'file',
        path: p('etc/apt_repo/preprod/signing-key.asc'),
        mode: '0600',
        owner: 'root',
        group: 'root',
        secret: true,
        step: 'signing-key',
      },
      {
        type: 'file',
        path: p('srv/apt/preprod/test-archive-keyring.asc'),
        mode: '0644',
        owner: 'root',
        group: 'root',
        sha256: sha(key.publicArmored),
        openpgpFingerprint: key.fingerprint,
        step: 'public-key',
      },
      {
        type: 'file',
        path: p('srv/apt/preprod/test-archive-keyring.gpg'),
        mode: '0644',
        owner: 'root',
        group: 'root',
        openpgpFingerprint: key.fingerprint,
        step: 'public-key',
      },
      {
        type: 'file',
        path: p('etc/nginx/sites-available/apt-preprod.conf'),
        mode: '0644',
        owner: 'root',
        group: 'root',
        sha256: sha('server {}\n'),
        step: 'vhost',
      },
      {
        type: 'symlink',
        path: p('etc/nginx/sites-enabled/apt-preprod.conf'),
        target: p('etc/nginx/sites-available/apt-preprod.conf'),
        step: 'vhost',
      },
    ],
  };
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const p = (rel: string) => path.join(root, rel);
/** The differences as [path relative to root, field, expected, found, step]. */
async function diffs(s: ExpectedState = state) {
  const r = await checkExpectedState(s);
  return r.differences.map((d) => [path.relative(root, d.path), d.field, d.expected, d.found, d.step]);
}

test('a clean tree: every entry checked, no difference, nothing left unchecked', async () => {
  expect(await checkExpectedState(state)).toEqual({ channel: 'preprod', checked: 7, differences: [], notChecked: [] });
});

test('edited content: the sha256 difference of that file only', async () => {
  fs.appendFileSync(p('etc/apt_repo/preprod/repo.yaml'), 'label: hacked\n');
  expect(await diffs()).toEqual([
    [
      'etc/apt_repo/preprod/repo.yaml',
      'sha256',
      sha('codenames: [bookworm]\n'),
      sha('codenames: [bookworm]\nlabel: hacked\n'),
      'repo-config',
    ],
  ]);
});

test('chmod: the setgid bit of a folder and a file made group-writable', async () => {
  fs.chmodSync(p('etc/apt_repo/preprod'), 0o755);
  expect(await diffs()).toEqual([['etc/apt_repo/preprod', 'mode', '2755', '0755', 'dirs']]);
  fs.chmodSync(p('etc/apt_repo/preprod'), 0o2755);
  fs.chmodSync(p('etc/nginx/sites-available/apt-preprod.conf'), 0o664);
  expect(await diffs()).toEqual([['etc/nginx/sites-available/apt-preprod.conf', 'mode', '0644', '0664', 'vhost']]);
});

test('chown to another user, then chgrp: owner, then group, by name', async () => {
  execFileSync('chown', ['nobody', p('etc/apt_repo/preprod/repo.yaml')]);
  expect(await diffs()).toEqual([['etc/apt_repo/preprod/repo.yaml', 'owner', 'root', 'nobody', 'repo-config']]);
  execFileSync('chown', ['root:nogroup', p('etc/apt_repo/preprod/repo.yaml')]);
  expect(await diffs()).toEqual([['etc/apt_repo/preprod/repo.yaml', 'group', 'root', 'nogroup', 'repo-config']]);
  // An id the host has no name for is shown as a number.
  fs.chownSync(p('etc/apt_repo/preprod/repo.yaml'), 0, 0);
  fs.chownSync(p('srv/apt/preprod/test-archive-keyring.gpg'), 64999, 0);
  expect(await diffs()).toEqual([['srv/apt/preprod/test-archive-keyring.gpg', 'owner', 'root', 'uid 64999', 'public-key']]);
});

test('the names come from the given passwd and group files', async () => {
  const passwd = p('passwd');
  fs.writeFileSync(passwd, 'admin:x:0:0::/:/bin/sh\n');
  const group = p('group');
  fs.writeFileSync(group, 'wheel:x:0:\n');
  const r = await checkExpectedState({ ...state, entries: [state.entries[0]] }, { passwdFile: passwd, groupFile: group });
  expect(r.differences.map((d) => [d.field, d.expected, d.found])).toEqual([
    ['owner', 'root', 'admin'],
    ['group', 'root', 'wheel'],
  ]);
});

test('a symlink pointing elsewhere, then replaced by a file', async () => {
  const link = p('etc/nginx/sites-enabled/apt-preprod.conf');
  fs.unlinkSync(link);
  fs.symlinkSync('/etc/passwd', link);
  expect(await diffs()).toEqual([
    ['etc/nginx/sites-enabled/apt-preprod.conf', 'target', p('etc/nginx/sites-available/apt-preprod.conf'), '/etc/passwd', 'vhost'],
  ]);
  fs.unlinkSync(link);
  fs.writeFileSync(link, 'server {}\n');
  expect(await diffs()).toEqual([['etc/nginx/sites-enabled/apt-preprod.conf', 'type', 'symlink', 'file', 'vhost']]);
});

test('a file replaced by a link is a type difference and is never followed', async () => {
  const f = p('etc/apt_repo/preprod/repo.yaml');
  fs.renameSync(f, p('elsewhere.yaml'));
  fs.symlinkSync(p('elsewhere.yaml'), f);
  expect(await diffs()).toEqual([['etc/apt_repo/preprod/repo.yaml', 'type', 'file', `symlink to ${p('elsewhere.yaml')}`, 'repo-config']]);
});

test('a FIFO under an expected name is a type difference and does not block', async () => {
  const f = p('etc/nginx/sites-available/apt-preprod.conf');
  fs.unlinkSync(f);
  execFileSync('mkfifo', ['-m', '0644', f]);
  expect(await diffs()).toEqual([['etc/nginx/sites-available/apt-preprod.conf', 'type', 'file', 'fifo', 'vhost']]);
});

test('a replaced public key: its fingerprint (and the digest where recorded) for .asc and .gpg', async () => {
  fs.writeFileSync(p('srv/apt/preprod/test-archive-keyring.asc'), other.publicArmored);
  fs.writeFileSync(p('srv/apt/preprod/test-archive-keyring.gpg'), other.publicBinary);
  expect(await diffs()).toEqual([
    ['srv/apt/preprod/test-archive-keyring.asc', 'sha256', sha(key.publicArmored), sha(other.publicArmored), 'public-key'],
    ['srv/apt/preprod/test-archive-keyring.asc', 'openpgpFingerprint', key.fingerprint, other.fingerprint, 'public-key'],
    ['srv/apt/preprod/test-archive-keyring.gpg', 'openpgpFingerprint', key.fingerprint, other.fingerprint, 'public-key'],
  ]);
  // Not a key at all: named as such.
  fs.writeFileSync(p('srv/apt/preprod/test-archive-keyring.gpg'), 'garbage');
  const d = await diffs();
  expect(d.find((x) => x[0] === 'srv/apt/preprod/test-archive-keyring.gpg')).toEqual([
    'srv/apt/preprod/test-archive-keyring.gpg',
    'openpgpFingerprint',
    key.fingerprint,
    expect.stringMatching(/^no OpenPGP public key/),
    'public-key',
  ]);
});

test('a deleted file, and a missing folder making everything under it missing', async () => {
  fs.unlinkSync(p('srv/apt/preprod/test-archive-keyring.gpg'));
  expect(await diffs()).toEqual([['srv/apt/preprod/test-archive-keyring.gpg', 'missing', 'file', 'missing', 'public-key']]);
  fs.rmSync(p('etc/nginx'), { recursive: true });
  expect((await diffs()).map((d) => [d[0], d[1]])).toEqual([
    ['etc/nginx/sites-available/apt-preprod.conf', 'missing'],
    ['etc/nginx/sites-enabled/apt-preprod.conf', 'missing'],
    ['srv/apt/preprod/test-archive-keyring.gpg', 'missing'],
  ]);
});

test('an edited secret file: a content difference that shows neither digest', async () => {
  fs.appendFileSync(p('etc/apt_repo/preprod/signing-key.asc'), '\n');
  const r = await checkExpectedState(state);
  expect(r.differences).toEqual([
    {
      path: p('etc/apt_repo/preprod/signing-key.asc'),
      field: 'content',
      expected: `as recorded in ${state.secretDigests}`,
      found: 'other content',
      step: 'signing-key',
    },
  ]);
  expect(JSON.stringify(r)).not.toContain(sha(key.privateArmored));
  expect(JSON.stringify(r)).not.toContain(sha(key.privateArmored + '\n'));
});

test('a secret file without its digest record or its line: not checked, with the reason', async () => {
  fs.writeFileSync(state.secretDigests, `${'0'.repeat(64)}  /some/other/file\n`);
  let r = await checkExpectedState(state);
  expect(r.differences).toEqual([]);
  expect(r.notChecked).toEqual([
    {
      path: p('etc/apt_repo/preprod/signing-key.asc'),
      reason: expect.stringMatching(/no line for it in .*secret-digests \(re-apply step signing-key\)/),
    },
  ]);
  fs.unlinkSync(state.secretDigests);
  r = await checkExpectedState(state);
  expect(r.notChecked).toEqual([
    { path: p('etc/apt_repo/preprod/signing-key.asc'), reason: expect.stringMatching(/digest record .*secret-digests is missing/) },
  ]);
});

test('content another user cannot read is not checked, never a difference', async () => {
  // As `nobody`: the secret key (0600 root) and a 0600 file with a digest cannot be read.
  fs.chmodSync(p('etc/apt_repo/preprod/repo.yaml'), 0o600);
  state.entries[1] = { ...state.entries[1], mode: '0600' } as ExpectedState['entries'][number];
  fs.chmodSync(root, 0o755);
  const script = `require(${JSON.stringify(require.resolve('ts-node/register/transpile-only'))});
    require(${JSON.stringify(path.join(__dirname, 'doctor.ts'))}).checkExpectedState(JSON.parse(process.argv[1])).then((r) => process.stdout.write(JSON.stringify(r)));`;
  const out = execFileSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script, JSON.stringify(state)], { encoding: 'utf8' });
  const r = JSON.parse(out);
  expect(r.differences).toEqual([]);
  expect(r.notChecked).toEqual([
    { path: p('etc/apt_repo/preprod/repo.yaml'), reason: 'content not readable by nobody (EACCES): run as root to check' },
    { path: p('etc/apt_repo/preprod/signing-key.asc'), reason: SECRET_NOT_CHECKED },
  ]);
});

test('the report is in path order whatever the manifest order', async () => {
  fs.chmodSync(p('etc/apt_repo/preprod'), 0o700);
  fs.unlinkSync(p('srv/apt/preprod/test-archive-keyring.asc'));
  fs.appendFileSync(p('etc/nginx/sites-available/apt-preprod.conf'), '#\n');
  const a = await checkExpectedState(state);
  const b = await checkExpectedState({ ...state, entries: [...state.entries].reverse() });
  expect(b).toEqual(a);
  expect(a.differences.map((d) => path.relative(root, d.path))).toEqual([
    'etc/apt_repo/preprod',
    'etc/nginx/sites-available/apt-preprod.conf',
    'srv/apt/preprod/test-archive-keyring.asc',
  ]);
  expect(stepsToReapply(a.differences)).toEqual(['dirs', 'public-key', 'vhost']);
});

describe('helpers', () => {
  test('modeString pads like stat -c %a and keeps setgid and sticky', () => {
    expect([modeString(0o100644), modeString(0o42755), modeString(0o43775), modeString(0o40700)]).toEqual(['0644', '2755', '3775', '0700']);
    const f = p('m');
    fs.writeFileSync(f, '');
    fs.chmodSync(f, 0o1640);
    expect(modeString(fs.statSync(f).mode)).toBe(execFileSync('stat', ['-c', '%a', f], { encoding: 'utf8' }).trim().padStart(4, '0'));
  });
  test('keyFingerprints reads armored and binary keys', async () => {
    expect(await keyFingerprints(Buffer.from(key.publicArmored), 'k.asc')).toEqual([key.fingerprint]);
    expect(await keyFingerprints(Buffer.from(key.publicBinary), 'k.gpg')).toEqual([key.fingerprint]);
  });
  test('parseSecretDigests reads sha256sum lines, the last line of a path wins', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect([...parseSecretDigests(`${a}  /x\nnoise\n${a} */y z\n${b}  /x\n`)]).toEqual([
      ['/x', b],
      ['/y z', a],
    ]);
  });
});

describe('parseExpectedState', () => {
  test('accepts a format 1 manifest', () => {
    expect(parseExpectedState(JSON.stringify(state), 'm.json')).toEqual(state);
  });
  test.each<[string, (s: ExpectedState) => string, RegExp]>([
    ['not JSON', () => '{', /^m\.json: not an expected-state manifest: not JSON/],
    ['another format', (s) => JSON.stringify({ ...s, format: 2 }), /^m\.json: not an expected-state manifest: format: /],
    [
      'a bad mode',
      (s) => JSON.stringify({ ...s, entries: [{ ...s.entries[0], mode: '755' }] }),
      /entries\.0\.mode: expected a 4-digit octal mode/,
    ],
  ])('refuses %s, naming the file and the issue (exit 2)', (_what, text, message) => {
    let err: unknown;
    try {
      parseExpectedState(text(state), 'm.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ExpectedStateError);
    expect((err as ExpectedStateError).message).toMatch(message);
    expect((err as ExpectedStateError).exitCode).toBe(2);
  });
});
