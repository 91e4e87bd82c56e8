import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { generateSigningKey } from '../sign/keys';
import { initChannel, loadChannel } from './channel';
import { currentGeneration, generationDir } from './generations';
import { poolPathFor } from './pool';
import { publish } from './publish';
import type { ChannelConfig } from '../core/types';
import { verifyChannel } from './verify';

let root: string;
let ch: ChannelConfig;
let debs: string;
let key: Awaited<ReturnType<typeof generateSigningKey>>;
let other: Awaited<ReturnType<typeof generateSigningKey>>;
const built: string[] = [];

beforeAll(async () => {
  key = await generateSigningKey({ name: 'Verify Test', email: 'test@example.org', type: 'ed25519' });
  other = await generateSigningKey({ name: 'Someone Else', email: 'other@example.org', type: 'ed25519' });
  debs = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-debs-'));
  built.push(buildDeb(debs, { name: 'demo', version: '1.0-1', compression: 'gzip', payloadBytes: 2000 }));
  built.push(buildDeb(debs, { name: 'tool', version: '2.0', architecture: 'amd64', compression: 'gzip' }));
});
afterAll(() => fs.rmSync(debs, { recursive: true, force: true }));

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-test-'));
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'trixie'], architectures: ['amd64'] });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.gpg`), key.publicBinary);
  for (const [file, name, version, architecture] of [
    [built[0], 'demo', '1.0-1', 'all'],
    [built[1], 'tool', '2.0', 'amd64'],
  ]) {
    const dest = path.join(ch.webRoot, poolPathFor({ name, version, architecture, source: name }, 'main'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(file, dest);
  }
  await publish(ch, { rescan: true });
  expect(await verifyChannel(ch)).toEqual([]);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const dist = (f: string) => path.join(fs.realpathSync(path.join(ch.webRoot, 'dists')), 'bookworm', f);
const demo = () => path.join(ch.webRoot, 'pool/main/d/demo/demo_1.0-1_all.deb');

test('a pool file changed in place (same size, same mtime) is caught by re-hashing', async () => {
  const st = fs.statSync(demo());
  const buf = fs.readFileSync(demo());
  buf[buf.length - 10] ^= 0xff;
  fs.writeFileSync(demo(), buf);
  fs.utimesSync(demo(), st.atime, st.mtime);
  const problems = await verifyChannel(ch);
  expect(problems.some((p) => p.startsWith(demo()) && /SHA256 [0-9a-f]+, expected/.test(p))).toBe(true);
});

test('a pool file the web server cannot read is reported', async () => {
  fs.chmodSync(demo(), 0o600);
  expect(await verifyChannel(ch)).toEqual([`${demo()}: mode 0600 is not world-readable; the web server cannot serve it`]);
});

test('a missing pool file is reported with the index entry that names it', async () => {
  fs.rmSync(demo());
  const problems = await verifyChannel(ch);
  expect(problems.some((p) => p.startsWith(`${demo()}: missing (named by ${dist('main/binary-amd64/Packages')}`))).toBe(true);
});

test('an index that no longer matches Release is reported', async () => {
  fs.appendFileSync(dist('main/binary-amd64/Packages'), '\n');
  const problems = await verifyChannel(ch);
  expect(problems).toContainEqual(
    expect.stringMatching(new RegExp(`^${dist('main/binary-amd64/Packages').replace(/[.+]/g, '\\$&')}: size`)),
  );
  expect(problems.some((p) => p.includes('Packages.gz: does not decompress to'))).toBe(true);
});

test('a tampered InRelease and a Release.gpg from another key are reported (and gpgv agrees)', async () => {
  const inRelease = fs.readFileSync(dist('InRelease'), 'utf8');
  fs.writeFileSync(dist('InRelease'), inRelease.replace('Codename: bookworm', 'Codename: bookwurm'));
  const signer = await (await import('../sign/sign')).loadSigner(other.privateArmored);
  fs.writeFileSync(dist('Release.gpg'), (await signer.sign(fs.readFileSync(dist('Release'), 'utf8'))).releaseGpg);
  const problems = await verifyChannel(ch);
  expect(problems.some((p) => p.startsWith(`${dist('InRelease')}: signature does not verify`))).toBe(true);
  expect(problems.some((p) => p.startsWith(`${dist('Release.gpg')}: detached signature does not verify`))).toBe(true);
  const keyring = path.join(ch.webRoot, `${ch.keyName}-archive-keyring.gpg`);
  expect(() => execFileSync('gpgv', ['--keyring', keyring, dist('InRelease')], { stdio: 'pipe' })).toThrow();
  expect(() => execFileSync('gpgv', ['--keyring', keyring, dist('Release.gpg'), dist('Release')], { stdio: 'pipe' })).toThrow();
});

test('a web-root public key that is not the signing key is reported', async () => {
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), other.publicArmored);
  const problems = await verifyChannel(ch);
  expect(problems.some((p) => p.includes('is not the signing key'))).toBe(true);
  expect(problems.some((p) => p.includes('InRelease: signature does not verify'))).toBe(true);
});

test('dists pointing at an incomplete generation, a missing codename, and no dists at all are reported', async () => {
  const id = (await currentGeneration(ch))!;
  fs.rmSync(path.join(generationDir(ch, id), 'generation.json'));
  fs.rmSync(path.join(generationDir(ch, id), 'dists/trixie'), { recursive: true });
  const problems = await verifyChannel(ch);
  expect(problems).toContainEqual(expect.stringContaining('incomplete generation'));
  expect(problems).toContainEqual(expect.stringContaining('trixie/Release: missing'));
  fs.rmSync(path.join(ch.webRoot, 'dists'));
  expect(await verifyChannel(await loadChannel({ root, channel: 'preprod' }))).toEqual([expect.stringContaining('nothing published yet')]);
});

test('an expired Valid-Until and text after the InRelease signature are reported', async () => {
  fs.writeFileSync(path.join(ch.configDir, 'repo.yaml'), 'validUntilDays: 1\n');
  ch = await loadChannel({ root, channel: 'preprod' });
  await publish(ch, { rescan: true, now: new Date(Date.now() - 3 * 86_400_000) });
  fs.appendFileSync(dist('InRelease'), 'trailing\n');
  const problems = await verifyChannel(ch);
  expect(problems).toContainEqual(expect.stringMatching(/bookworm\/Release: Valid-Until .* has passed$/));
  expect(problems).toContain(`${dist('InRelease')}: text after -----END PGP SIGNATURE----- (apt refuses it)`);
});

test('a missing by-hash/SHA512 copy is reported: apt fetches by the strongest hash Release lists', async () => {
  const release = fs.readFileSync(dist('Release'), 'utf8');
  const sha512 = release
    .split('SHA512:\n')[1]
    .split('\n')
    .find((l) => l.endsWith(' main/binary-amd64/Packages.xz'))!
    .trim()
    .split(/\s+/)[0];
  const byHash = path.join(path.dirname(dist('main/binary-amd64/Packages.xz')), 'by-hash', 'SHA512', sha512);
  fs.rmSync(byHash);
  expect(await verifyChannel(ch)).toEqual([`${byHash}: missing (by-hash copy of main/binary-amd64/Packages.xz)`]);
});

test('a symlink in the pool is a problem, and a Filename is never followed through a link (issue 8)', async () => {
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  fs.copyFileSync(built[1], path.join(outside, 'tool_2.0_amd64.deb'));
  // The published tool entry now resolves through a symlinked folder to a file with the same bytes.
  fs.rmSync(path.join(ch.webRoot, 'pool/main/t'), { recursive: true });
  fs.mkdirSync(path.join(outside, 'tool'));
  fs.renameSync(path.join(outside, 'tool_2.0_amd64.deb'), path.join(outside, 'tool/tool_2.0_amd64.deb'));
  fs.symlinkSync(outside, path.join(ch.webRoot, 'pool/main/t'));
  const problems = await verifyChannel(ch);
  expect(problems).toContain(
    `${path.join(ch.webRoot, 'pool/main/t')}: symbolic link in the pool (never followed nor published; remove it)`,
  );
  expect(problems.some((p) => p.startsWith(`${path.join(ch.webRoot, 'pool/main/t')}: symbolic link (never followed) (named by `))).toBe(
    true,
  );
});

describe('the pool against the kept generations (issue 9)', () => {
  const extra = () => path.join(ch.webRoot, 'pool/main/e/extra/extra_1.0_all.deb');
  const putExtra = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-extra-'));
    try {
      fs.mkdirSync(path.dirname(extra()), { recursive: true });
      fs.copyFileSync(buildDeb(dir, { name: 'extra', version: '1.0', compression: 'gzip' }), extra());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  test('a pool file no kept generation serves (stranded by an interrupted writer) is reported, and clean once published', async () => {
    await putExtra();
    expect(await verifyChannel(ch)).toEqual([
      `${extra()}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`,
    ]);
    await publish(ch, { rescan: true });
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('a file a kept generation lists, in neither the pool nor the trash, is reported (rollback to it would fail); in the trash it is fine', async () => {
    await putExtra();
    const older = (await publish(ch, { rescan: true })).generation;
    const { removePackage } = await import('./remove');
    await removePackage(ch, { name: 'extra', version: '1.0' });
    expect(await verifyChannel(ch)).toEqual([]);
    const trashed = path.join(ch.stateDir, 'trash/pool/main/e/extra/extra_1.0_all.deb');
    expect(fs.existsSync(trashed)).toBe(true);
    fs.rmSync(trashed);
    expect(await verifyChannel(ch)).toEqual([
      `${extra()}: listed by kept generation ${older} but in neither the pool nor ${path.join(ch.stateDir, 'trash')} (a rollback to ${older} would fail)`,
    ]);
  });

  test("an interrupted writer's intent record is reported", async () => {
    const { beginIntent } = await import('./intent');
    const intent = await beginIntent(ch, 'ingest');
    intent.record({
      op: 'add',
      poolPath: 'pool/main/e/extra/extra_1.0_all.deb',
      sha256: '0'.repeat(64),
      at: 1,
      from: { kind: 'incoming', rel: 'ci/extra_1.0_all.deb', ino: 1 },
    });
    const problems = await verifyChannel(ch);
    expect(problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${path.join(ch.stateDir, 'intent.jsonl')}: an interrupted ingest \\(pid ${process.pid}, since .*\\) left 1 change\\(s\\) not served yet`,
        ),
      ),
    ]);
    intent.clear();
    expect(await verifyChannel(ch)).toEqual([]);
  });
});
