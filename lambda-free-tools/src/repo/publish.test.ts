import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { parseStanzas, getField } from '../deb/control';
import { AptRepoError, ConfigError, ConflictError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import { initChannel, loadChannel } from './channel';
import { currentGeneration, listGenerations } from './generations';
import { poolPathFor } from './pool';
import { publish } from './publish';
import { formatOf } from './format';
import type { ChannelConfig } from '../core/types';
import { verifyChannel } from './verify';
import { readPoolStore } from './cache';

let root: string;
let ch: ChannelConfig;
let keyring: string;
let key: Awaited<ReturnType<typeof generateSigningKey>>;

beforeAll(async () => {
  // ed25519 (legacy v4) keys are generated in milliseconds; gpgv checks them like RSA ones.
  key = await generateSigningKey({ name: 'Publish Test', email: 'test@example.org', type: 'ed25519' });
});

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-test-'));
  ch = await setup(['bullseye', 'bookworm'], ['amd64', 'arm64']);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function setup(codenames: string[], architectures: string[], yaml?: string): Promise<ChannelConfig> {
  const c = await initChannel({ root, channel: 'preprod', codenames, architectures });
  if (yaml) {
    fs.writeFileSync(path.join(c.configDir, 'repo.yaml'), yaml);
  }
  fs.writeFileSync(c.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(c.webRoot, `${c.keyName}-archive-keyring.asc`), key.publicArmored);
  fs.writeFileSync(path.join(c.webRoot, `${c.keyName}-archive-keyring.gpg`), key.publicBinary);
  keyring = path.join(c.webRoot, `${c.keyName}-archive-keyring.gpg`);
  return loadChannel({ root, channel: 'preprod' });
}

/** Builds a .deb and places it in the pool where ingest would; returns its pool path. */
function addDeb(spec: Parameters<typeof buildDeb>[1], opts: { codename?: string; as?: string } = {}): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-deb-'));
  try {
    const built = buildDeb(tmp, { compression: 'gzip', ...spec });
    const poolPath =
      opts.as ??
      poolPathFor(
        { name: spec.name, version: spec.version, architecture: spec.architecture ?? 'all', source: spec.name },
        'main',
        opts.codename,
      );
    fs.mkdirSync(path.dirname(path.join(ch.webRoot, poolPath)), { recursive: true });
    fs.copyFileSync(built, path.join(ch.webRoot, poolPath));
    return poolPath;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function packagesOf(codename: string, arch: string): { name: string; version: string; filename: string }[] {
  const text = fs.readFileSync(path.join(ch.webRoot, 'dists', codename, 'main', `binary-${arch}`, 'Packages'), 'utf8');
  return parseStanzas(text, 'Packages').map((s) => ({
    name: getField(s, 'Package')!,
    version: getField(s, 'Version')!,
    filename: getField(s, 'Filename')!,
  }));
}

test('publish routes, keeps every version, puts arch all in every binary-<arch>, and verifies clean (openpgp and gpgv)', async () => {
  addDeb({ name: 'demo', version: '1.0-1' });
  addDeb({ name: 'demo', version: '1.1-1' });
  addDeb({ name: 'tool', version: '2.0-1', architecture: 'amd64' });
  addDeb({ name: 'tool', version: '2.0-1', architecture: 'arm64' });
  addDeb({ name: 'php-app', version: '3.0-1+deb11u1' });
  addDeb({ name: 'php-app', version: '3.0-1+deb12u1' });
  addDeb({ name: 'folder', version: '1.0' }, { codename: 'bookworm' });
  addDeb({ name: 'old', version: '1.0-1+deb9u1' });

  const r = await publish(ch, { rescan: true, now: new Date('2026-11-21T05:30:00Z') });
  expect(r.generation).toMatch(/^20261121T053000Z-000001$/);
  expect(r.debsRead).toBe(8);
  expect(r.packages).toEqual({ bullseye: 5, bookworm: 6 });
  expect(r.problems).toHaveLength(1);
  expect(r.problems[0]).toMatch(/old_1\.0-1\+deb9u1_all\.deb: version 1\.0-1\+deb9u1 routes to stretch, not in liste_dist/);

  const names = (c: string, a: string) => packagesOf(c, a).map((p) => `${p.name}=${p.version}`);
  expect(names('bookworm', 'amd64')).toEqual(['demo=1.0-1', 'demo=1.1-1', 'folder=1.0', 'php-app=3.0-1+deb12u1', 'tool=2.0-1']);
  expect(names('bookworm', 'arm64')).toEqual(['demo=1.0-1', 'demo=1.1-1', 'folder=1.0', 'php-app=3.0-1+deb12u1', 'tool=2.0-1']);
  expect(names('bullseye', 'amd64')).toEqual(['demo=1.0-1', 'demo=1.1-1', 'php-app=3.0-1+deb11u1', 'tool=2.0-1']);
  expect(packagesOf('bookworm', 'arm64').find((p) => p.name === 'tool')!.filename).toBe('pool/main/t/tool/tool_2.0-1_arm64.deb');
  // Routed to no codename of liste_dist: served by nothing, which verify reports (issue 9).
  const unserved = [
    `${path.join(ch.webRoot, 'pool/main/o/old/old_1.0-1+deb9u1_all.deb')}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`,
  ];
  expect(fs.existsSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-all'))).toBe(false);

  // The same entries as the Debian tool finds (it reads every .deb itself).
  const scanned = execFileSync('apt-ftparchive', ['packages', 'pool/main/d'], { cwd: ch.webRoot, encoding: 'utf8' });
  const sha = (text: string) =>
    parseStanzas(text, 'x')
      .map((s) => `${getField(s, 'Filename')} ${getField(s, 'Size')} ${getField(s, 'SHA256')}`)
      .sort();
  const ours = fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  expect(sha(ours).filter((l) => l.startsWith('pool/main/d/'))).toEqual(sha(scanned));

  const release = fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/Release'), 'utf8');
  expect(release).toMatch(/^Origin: Epiconcept$/m);
  expect(release).toMatch(/^Suite: bookworm$/m);
  expect(release).toMatch(/^Codename: bookworm$/m);
  expect(release).toMatch(/^Architectures: amd64 arm64$/m);
  for (const f of ['InRelease', 'Release.gpg']) {
    const args =
      f === 'InRelease'
        ? [path.join(ch.webRoot, 'dists/bookworm/InRelease')]
        : [path.join(ch.webRoot, 'dists/bookworm/Release.gpg'), path.join(ch.webRoot, 'dists/bookworm/Release')];
    execFileSync('gpgv', ['--keyring', keyring, ...args], { stdio: 'pipe' });
  }
  expect(await verifyChannel(ch)).toEqual(unserved);
  expect(fs.readlinkSync(path.join(ch.webRoot, 'dists'))).toBe(`.generations/${r.generation}/dists`);
  const [g] = await listGenerations(ch);
  expect(g).toMatchObject({ id: r.generation, current: true, packages: r.packages });
  expect(g.poolPaths).toContain('pool/main/f/folder/bookworm/folder_1.0_all.deb');
  expect(g.poolPaths).not.toContain('pool/main/o/old/old_1.0-1+deb9u1_all.deb');
});

test('a republish after adding one package reads only that package', async () => {
  for (let i = 0; i < 6; i++) addDeb({ name: `pkg${i}`, version: '1.0' });
  const first = await publish(ch, { rescan: true });
  expect(first.debsRead).toBe(6);
  addDeb({ name: 'newcomer', version: '0.1' });
  const cached = readPoolStore(ch.stateDir);
  expect(cached.stanzaKey).toBe(formatOf().indexes.entryKey);
  expect(Object.values(cached.entries).every((e) => typeof (e as { stanza?: string }).stanza === 'string')).toBe(true);
  const before = fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  const second = await publish(ch, { rescan: true });
  expect(second.debsRead).toBe(1);
  // Cached stanzas give the same text as rendering afresh: the old index plus the new stanza.
  const after = fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  expect(after.replace(/Package: newcomer\n[^]*?\n\n/, '')).toBe(before);
  expect(second.packages.bookworm).toBe(7);
  expect(packagesOf('bookworm', 'amd64').map((p) => p.name)).toContain('newcomer');
  // A file replaced (new inode renamed over the name) is read again, not served from the cache.
  // (Rewriting the same inode is refused: pool-immutable.test.ts.)
  const rebuilt = addDeb(
    { name: 'pkg0', version: '1.0', description: 'rebuilt with another description' },
    { as: 'pool/main/p/pkg0/.rebuilt.deb' },
  );
  fs.renameSync(path.join(ch.webRoot, rebuilt), path.join(ch.webRoot, 'pool/main/p/pkg0/pkg0_1.0_all.deb'));
  const third = await publish(ch, { rescan: true });
  expect(third.debsRead).toBe(1);
  expect(await verifyChannel(ch)).toEqual([]);
});

test('the same name, version and architecture with different content is refused, naming both files, and nothing changes', async () => {
  addDeb({ name: 'demo', version: '1.0' });
  const ok = await publish(ch, { rescan: true });
  const a = addDeb({ name: 'clash', version: '1.0', description: 'first build' });
  const b = addDeb({ name: 'clash', version: '1.0', description: 'second build' }, { codename: 'bookworm' });
  const err = await publish(ch, { rescan: true }).catch((e) => e);
  expect(err).toBeInstanceOf(ConflictError);
  expect(err.message).toContain(path.join(ch.webRoot, a));
  expect(err.message).toContain(path.join(ch.webRoot, b));
  expect(await currentGeneration(ch)).toBe(ok.generation);
  expect((await listGenerations(ch)).map((g) => g.id)).toEqual([ok.generation]);
  expect(fs.readdirSync(path.join(ch.webRoot, '.generations'))).toEqual([ok.generation]);
  // The refused files are in the pool, served by nothing: verify says so (issue 9).
  expect(await verifyChannel(ch)).toEqual(
    [b, a].map(
      (f) =>
        `${path.join(ch.webRoot, f)}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`,
    ),
  );
});

test('different content under one identity in disjoint codenames is fine; identical copies are listed once', async () => {
  addDeb({ name: 'split', version: '1.0', description: 'bullseye build' }, { codename: 'bullseye' });
  addDeb({ name: 'split', version: '1.0', description: 'bookworm build' }, { codename: 'bookworm' });
  const first = addDeb({ name: 'twin', version: '1.0' });
  const copy = 'pool/main/t/twin/copy/twin_1.0_all.deb';
  fs.mkdirSync(path.dirname(path.join(ch.webRoot, copy)), { recursive: true });
  fs.linkSync(path.join(ch.webRoot, first), path.join(ch.webRoot, copy));
  const r = await publish(ch, { rescan: true });
  expect(r.packages).toEqual({ bullseye: 2, bookworm: 2 });
  expect(packagesOf('bookworm', 'amd64').filter((p) => p.name === 'twin')).toHaveLength(1);
  expect(packagesOf('bullseye', 'amd64').find((p) => p.name === 'split')!.filename).toBe('pool/main/s/split/bullseye/split_1.0_all.deb');
  expect(await verifyChannel(ch)).toEqual([]);
});

test('invalid pool files stop the publish, each named; --skip-invalid publishes the rest and reports them', async () => {
  addDeb({ name: 'good', version: '1.0' });
  const ok = await publish(ch, { rescan: true });
  const notDeb = path.join(ch.webRoot, 'pool/main/b/bad/bad_1.0_all.deb');
  const truncated = path.join(ch.webRoot, 'pool/main/t/trunc/trunc_1.0_all.deb');
  fs.mkdirSync(path.dirname(notDeb), { recursive: true });
  fs.mkdirSync(path.dirname(truncated), { recursive: true });
  fs.writeFileSync(notDeb, 'this is not an ar archive\n');
  const full = fs.readFileSync(path.join(ch.webRoot, addDeb({ name: 'whole', version: '1.0' })));
  fs.writeFileSync(truncated, full.subarray(0, 300));
  const err = await publish(ch, { rescan: true }).catch((e) => e);
  expect(err).toBeInstanceOf(AptRepoError);
  expect(err.message).toContain(notDeb);
  expect(err.message).toContain(truncated);
  expect(err.message).toMatch(/2 invalid pool file/);
  expect(await currentGeneration(ch)).toBe(ok.generation);

  const r = await publish(ch, { rescan: true, skipInvalid: true });
  expect(r.problems.filter((p) => p.includes('skipped invalid'))).toHaveLength(2);
  expect(r.packages.bookworm).toBe(2);
  // Skipped, so served by nothing: verify says so (issue 9).
  expect(await verifyChannel(ch)).toEqual(
    [notDeb, truncated].map(
      (f) =>
        `${f}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`,
    ),
  );
});

test('old generations are pruned to generationsKeep, by-hash keeps older indexes reachable', async () => {
  ch = await setup(['bookworm'], ['amd64'], 'generationsKeep: 2\n');
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    addDeb({ name: `p${i}`, version: '1.0' });
    ids.push((await publish(ch, { rescan: true })).generation);
  }
  expect(fs.readdirSync(path.join(ch.webRoot, '.generations')).sort()).toEqual(ids.slice(2));
  expect((await listGenerations(ch)).map((g) => g.id)).toEqual([ids[3], ids[2]]);
  const byHash = fs.readdirSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/by-hash/SHA256'));
  expect(byHash.length).toBeGreaterThan(3);
});

test('an incomplete generation left by a crash is ignored and cleaned by the next publish', async () => {
  addDeb({ name: 'demo', version: '1.0' });
  const ok = await publish(ch, { rescan: true });
  const junk = path.join(ch.webRoot, '.generations/20261121T000000Z-000042');
  fs.mkdirSync(path.join(junk, 'dists/bookworm'), { recursive: true });
  expect((await listGenerations(ch)).map((g) => g.id)).toEqual([ok.generation]);
  const next = await publish(ch, { rescan: true });
  expect(next.generation).toMatch(/-000043$/);
  expect(fs.existsSync(junk)).toBe(false);
});

test('a missing signing key is a ConfigError telling to run keygen, and nothing is published', async () => {
  fs.rmSync(ch.signingKeyFile);
  addDeb({ name: 'demo', version: '1.0' });
  const err = await publish(ch, { rescan: true }).catch((e) => e);
  expect(err).toBeInstanceOf(ConfigError);
  expect(err.message).toContain(ch.signingKeyFile);
  expect(err.message).toContain('keygen');
  expect(fs.existsSync(path.join(ch.webRoot, 'dists'))).toBe(false);
  expect(fs.existsSync(path.join(ch.webRoot, '.generations')) ? fs.readdirSync(path.join(ch.webRoot, '.generations')) : []).toEqual([]);
});

test("the new generation's directory entries are fsynced before dists is flipped to it", async () => {
  addDeb({ name: 'demo', version: '1.0-1' });
  // The module object itself: `import * as fs` gives a read-only view of it that cannot be spied on.
  const nodeFs = require('fs') as typeof fs;
  const events: string[] = [];
  const synced = new Map<number, string>();
  const realOpen = nodeFs.openSync;
  const realFsync = nodeFs.fsyncSync;
  const realRename = nodeFs.renameSync;
  jest.spyOn(nodeFs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode | null) => {
    const fd = realOpen(p, flags ?? 'r', mode);
    synced.set(fd, String(p));
    return fd;
  }) as typeof fs.openSync);
  jest.spyOn(nodeFs, 'fsyncSync').mockImplementation((fd: number) => {
    events.push(`fsync ${synced.get(fd)}`);
    realFsync(fd);
  });
  jest.spyOn(nodeFs, 'renameSync').mockImplementation((a: fs.PathLike, b: fs.PathLike) => {
    events.push(`rename ${String(b)}`);
    realRename(a, b);
  });
  try {
    await publish(ch, { rescan: true });
  } finally {
    jest.restoreAllMocks();
  }
  const flip = events.indexOf(`rename ${path.join(ch.webRoot, 'dists')}`);
  expect(flip).toBeGreaterThan(0);
  expect(events.slice(0, flip)).toContain(`fsync ${path.join(ch.webRoot, '.generations')}`);
  // A first publish also created .generations itself.
  expect(events.slice(0, flip)).toContain(`fsync ${ch.webRoot}`);
});
