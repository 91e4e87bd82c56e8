import { execFileSync, spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { createAptClient, oneLineSource } from '../../../test/harness/apt';
import { startNginx, staticServerBlock } from '../../../test/harness/nginx';
import { ConfigError } from '../errors';
import { generateSigningKey, SigningKey } from '../sign/keys';
import { loadSigner, Signer } from '../sign/sign';
import { digestFile } from '../core/digests';
import { DistributionInput, writeDistribution } from './dist';
import { parseReleaseFiles } from './release';
import * as compress from './compress';

const INDEXES = ['Packages', 'Packages.gz', 'Packages.xz'];

/** A Packages text of `n` fake stanzas (apt only parses it), marked with `tag` so each generation differs. */
function packagesText(tag: string, n = 3): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    out +=
      `Package: demo-${tag}-${i}\nVersion: 1.${i}-1\nArchitecture: all\nMaintainer: Epiconcept <ops@epiconcept.fr>\n` +
      `Filename: pool/main/d/demo/demo-${tag}-${i}_1.${i}-1_all.deb\nSize: 1234\nMD5sum: ${'a'.repeat(32)}\nSHA1: ${'b'.repeat(40)}\n` +
      `SHA256: ${'c'.repeat(64)}\nDescription: demo ${tag} ${i}\n\n`;
  }
  return out;
}

function input(amd64: string, arm64 = ''): DistributionInput {
  return {
    codename: 'bookworm',
    suite: 'bookworm',
    component: 'main',
    architectures: ['amd64', 'arm64'],
    packages: new Map(
      arm64
        ? [
            ['amd64', amd64],
            ['arm64', arm64],
          ]
        : [['amd64', amd64]],
    ),
    meta: { origin: 'Epiconcept', label: 'Epiconcept test', description: 'test repo', date: new Date(Date.UTC(2026, 10, 21, 5, 15)) },
  };
}

const ino = (p: string) => statSync(p).ino;
const byHashDir = (dist: string, arch: string) => join(dist, 'bookworm', 'main', `binary-${arch}`, 'by-hash', 'SHA256');
const releaseOf = (dist: string) => parseReleaseFiles(readFileSync(join(dist, 'bookworm', 'Release'), 'utf8'));
const sha = (dist: string, path: string) => releaseOf(dist).find((e) => e.path === path)!.digests.SHA256;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
}

describe('writeDistribution', () => {
  let root: string;
  let key: SigningKey;
  let signer: Signer;
  let keyring: string;
  let n = 0;
  const newDists = () => join(root, `gen${++n}`, 'dists');

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dist-'));
    key = await generateSigningKey({ name: 'Epiconcept test', email: 'apt@epiconcept.fr', type: 'ed25519' });
    signer = await loadSigner(key.privateArmored);
    keyring = join(root, 'key.gpg');
    writeFileSync(keyring, key.publicBinary);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes a signed distribution whose Release matches every file, with by-hash links', async () => {
    const dists = newDists();
    const text = packagesText('one');
    const entries = await writeDistribution(dists, input(text), signer);
    const dist = join(dists, 'bookworm');

    expect(spawnSync('gpgv', ['--keyring', keyring, join(dist, 'InRelease')]).status).toBe(0);
    expect(spawnSync('gpgv', ['--keyring', keyring, join(dist, 'Release.gpg'), join(dist, 'Release')]).status).toBe(0);

    const listed = releaseOf(dists);
    expect(listed.map((e) => e.path).sort()).toEqual(['amd64', 'arm64'].flatMap((a) => INDEXES.map((i) => `main/binary-${a}/${i}`)).sort());
    expect(entries).toEqual(listed);
    for (const e of listed) {
      expect(await digestFile(join(dist, e.path))).toEqual({ size: e.size, digests: e.digests });
      // apt fetches by the strongest hash Release lists (SHA512 here); SHA256 is the Debian archive's.
      for (const h of ['SHA256', 'SHA512'] as const) {
        const link = join(dist, e.path.replace(/[^/]+$/, `by-hash/${h}/`), e.digests[h]!);
        expect(ino(link)).toBe(ino(join(dist, e.path)));
      }
    }
    expect(readFileSync(join(dist, 'main/binary-amd64/Packages'), 'utf8')).toBe(text);
    expect(execFileSync('gzip', ['-dc', join(dist, 'main/binary-amd64/Packages.gz')], { encoding: 'utf8' })).toBe(text);
    expect(execFileSync('xz', ['-dc', join(dist, 'main/binary-amd64/Packages.xz')], { encoding: 'utf8' })).toBe(text);
    expect(statSync(join(dist, 'main/binary-arm64/Packages')).size).toBe(0); // an empty index is valid
    expect(readFileSync(join(dist, 'Release'), 'utf8')).toMatch(/^Architectures: amd64 arm64\nComponents: main\n/m);
    expect(walk(dists).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('reuses unchanged compressed files from the previous generation and carries its by-hash entries over', async () => {
    const first = newDists();
    await writeDistribution(first, input(packagesText('a'), packagesText('arm')), signer);
    const second = newDists();
    await writeDistribution(second, input(packagesText('b'), packagesText('arm')), signer, { previousDistsDir: first });

    // arm64 did not change: same inodes; amd64 did: new files.
    for (const i of INDEXES) {
      expect(ino(join(second, 'bookworm/main/binary-arm64', i))).toBe(ino(join(first, 'bookworm/main/binary-arm64', i)));
      expect(ino(join(second, 'bookworm/main/binary-amd64', i))).not.toBe(ino(join(first, 'bookworm/main/binary-amd64', i)));
    }
    // amd64's by-hash holds both versions; the old entries are the old files.
    const oldAmd = INDEXES.map((i) => sha(first, `main/binary-amd64/${i}`));
    const newAmd = INDEXES.map((i) => sha(second, `main/binary-amd64/${i}`));
    expect(readdirSync(byHashDir(second, 'amd64')).sort()).toEqual([...oldAmd, ...newAmd].sort());
    for (const h of oldAmd) expect(ino(join(byHashDir(second, 'amd64'), h))).toBe(ino(join(byHashDir(first, 'amd64'), h)));
    expect(readdirSync(byHashDir(second, 'arm64'))).toHaveLength(3);
    expect(readdirSync(byHashDir(second, 'amd64').replace(/SHA256$/, 'SHA512'))).toHaveLength(6);

    const dist = join(second, 'bookworm');
    expect(spawnSync('gpgv', ['--keyring', keyring, join(dist, 'InRelease')]).status).toBe(0);
    for (const e of releaseOf(second)) expect(await digestFile(join(dist, e.path))).toEqual({ size: e.size, digests: e.digests });
  });

  it('keeps at most byHashKeep older versions, and reuses an older version seen again', async () => {
    const gens: string[] = [];
    let prev: string | undefined;
    for (const tag of ['v1', 'v2', 'v3', 'v4', 'v2']) {
      const d = newDists();
      await writeDistribution(d, input(packagesText(tag)), signer, { previousDistsDir: prev, byHashKeep: 2 });
      gens.push(d);
      prev = d;
    }
    const shas = (d: string) => INDEXES.map((i) => sha(d, `main/binary-amd64/${i}`));
    // Last generation: v2 is current; v3 and v4 are the two older ones kept; v1 is gone.
    expect(readdirSync(byHashDir(gens[4], 'amd64')).sort()).toEqual([...shas(gens[2]), ...shas(gens[3]), ...shas(gens[4])].sort());
    expect(shas(gens[4])).toEqual(shas(gens[1]));
    // v2's compressed files come back by hard link from the kept by-hash copy, not recompressed.
    for (const i of ['Packages.gz', 'Packages.xz']) {
      expect(ino(join(gens[4], 'bookworm/main/binary-amd64', i))).toBe(ino(join(gens[1], 'bookworm/main/binary-amd64', i)));
    }
    // Generation 4 (keep 2 older: v2, v3) had no v1 either.
    expect(readdirSync(byHashDir(gens[3], 'amd64'))).toHaveLength(9);
    expect(readdirSync(byHashDir(gens[3], 'amd64'))).not.toContain(shas(gens[0])[0]);
  });

  it('reuses from a previous generation that has only a Release (no by-hash bookkeeping)', async () => {
    const first = newDists();
    await writeDistribution(first, input(packagesText('x')), signer);
    rmSync(join(first, 'bookworm', '.by-hash.json'));
    const second = newDists();
    await writeDistribution(second, input(packagesText('x')), signer, { previousDistsDir: first });
    for (const i of INDEXES)
      expect(ino(join(second, 'bookworm/main/binary-amd64', i))).toBe(ino(join(first, 'bookworm/main/binary-amd64', i)));
  });

  it('ignores by-hash bookkeeping whose digests are not hex (they would become paths)', async () => {
    const first = newDists();
    await writeDistribution(first, input(packagesText('s')), signer);
    const bad = { size: 1, digests: { MD5sum: '../../x', SHA1: '../../x', SHA256: '../../../../../x', SHA512: '../../x' } };
    writeFileSync(
      join(first, 'bookworm', '.by-hash.json'),
      JSON.stringify({ version: 1, indexes: { 'main/binary-amd64': [{ Packages: bad, 'Packages.gz': bad, 'Packages.xz': bad }] } }),
    );
    const second = newDists();
    await writeDistribution(second, input(packagesText('t')), signer, { previousDistsDir: first });
    // Only the Release's current version (and the new one) are in by-hash.
    expect(readdirSync(byHashDir(second, 'amd64'))).toHaveLength(6);
    expect(readdirSync(byHashDir(second, 'amd64')).every((f) => /^[0-9a-f]{64}$/.test(f))).toBe(true);
  });

  it('rewrites a distribution in place without leaving stale by-hash entries or temp files', async () => {
    const d = newDists();
    await writeDistribution(d, input(packagesText('p1')), signer);
    await writeDistribution(d, input(packagesText('p2')), signer, { previousDistsDir: d, byHashKeep: 0 });
    expect(readdirSync(byHashDir(d, 'amd64')).sort()).toEqual(INDEXES.map((i) => sha(d, `main/binary-amd64/${i}`)).sort());
    expect(readdirSync(byHashDir(d, 'amd64').replace(/SHA256$/, 'SHA512'))).toHaveLength(3);
    await writeDistribution(d, input(packagesText('p2')), signer, { previousDistsDir: d });
    for (const e of releaseOf(d)) expect((await digestFile(join(d, 'bookworm', e.path))).digests).toEqual(e.digests);
    expect(walk(d).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses bad input with clear errors', async () => {
    const d = newDists();
    await expect(writeDistribution(d, { ...input(''), codename: '../x' }, signer)).rejects.toThrow(ConfigError);
    await expect(writeDistribution(d, { ...input(''), architectures: [] }, signer)).rejects.toThrow(/no architecture/);
    await expect(writeDistribution(d, { ...input(''), architectures: ['amd64', 'amd64'] }, signer)).rejects.toThrow(/repeated/);
    await expect(writeDistribution(d, { ...input(''), packages: new Map([['i386', '']]) }, signer)).rejects.toThrow(/i386/);
    await expect(writeDistribution(d, input(''), signer, { byHashKeep: -1 })).rejects.toThrow(/byHashKeep/);
    expect(existsSync(join(d, 'bookworm', 'Release'))).toBe(false);
  });

  it('compresses by chunks, copying the chunks the previous generation had; apt-get reads the result as xz and as gz', async () => {
    // About 1 MB of stanzas: several chunks (chunks.ts MIN_CHUNK is 64 KiB).
    const many = (extra: string) => packagesText('chunk', 2500).replace('Package: demo-chunk-1200\n', `${extra}Package: demo-chunk-1200\n`);
    const first = newDists();
    await writeDistribution(first, input(many('')), signer);
    const state = () => JSON.parse(readFileSync(join(second, 'bookworm/.by-hash.json'), 'utf8'));
    const second = newDists();
    const added = packagesText('added', 1);
    const xz = jest.spyOn(compress, 'xzBuffer');
    try {
      await writeDistribution(second, input(many(added)), signer, { previousDistsDir: first });
      // One xz run, for the chunk that holds the new stanza (and at most a neighbour); the rest copied.
      expect(xz).toHaveBeenCalledTimes(1);
      const chunks = state().indexes['main/binary-amd64'];
      const current = chunks[chunks.length - 1].chunks;
      expect(current.length).toBeGreaterThan(5);
      expect(xz.mock.calls[0][1]!.blockList!.length).toBeLessThanOrEqual(2);
      // Older versions carry no chunk list (only the current one is copied from).
      expect(chunks.slice(0, -1).every((v: { chunks?: unknown }) => v.chunks === undefined)).toBe(true);
    } finally {
      xz.mockRestore();
    }
    const folder = join(second, 'bookworm/main/binary-amd64');
    const text = readFileSync(join(folder, 'Packages'));
    expect(execFileSync('xz', ['-dc', join(folder, 'Packages.xz')], { maxBuffer: 64 << 20 }).equals(text)).toBe(true);
    expect(execFileSync('gzip', ['-dc', join(folder, 'Packages.gz')], { maxBuffer: 64 << 20 }).equals(text)).toBe(true);

    const web = join(root, 'web-chunks');
    execFileSync('mkdir', ['-p', web]);
    execFileSync('cp', ['-a', second, join(web, 'dists')]);
    const nginx = await startNginx({ serverBlocks: (port) => staticServerBlock(port, web) });
    try {
      for (const type of ['xz', 'gz']) {
        const apt = createAptClient({
          sources: oneLineSource(nginx.url, 'bookworm', { signedBy: keyring }),
          arch: 'amd64',
          extraConf: `Acquire::CompressionTypes::Order { "${type}"; };\nAcquire::GzipIndexes "false";\n`,
        });
        try {
          const update = await apt.update();
          expect(update.stderr).not.toMatch(/^(W|E):/m);
          expect(update.code).toBe(0);
          expect(nginx.accessLog()).toMatch(
            new RegExp(`binary-amd64/by-hash/SHA(256|512)/[0-9a-f]+ HTTP[^\n]*" 200 ${statSync(join(folder, `Packages.${type}`)).size} `),
          );
          expect((await apt.madison('demo-added-0')).stdout).toMatch(/demo-added-0 \| +1\.0-1 \|/);
          expect((await apt.madison('demo-chunk-2499')).stdout).toMatch(/demo-chunk-2499 \| +1\.2499-1 \|/);
        } finally {
          apt.dispose();
        }
      }
    } finally {
      await nginx.stop();
    }
  });

  it('is accepted by apt-get update over HTTP, fetching the indexes by hash', async () => {
    const web = join(root, 'web');
    const dists = join(web, 'dists');
    await writeDistribution(dists, input(packagesText('apt'), packagesText('apt')), signer);
    // With Acquire-By-Hash apt asks for by-hash/SHA256/<digest>; without the plain files only that can work.
    for (const a of ['amd64', 'arm64']) for (const i of INDEXES) rmSync(join(dists, 'bookworm/main', `binary-${a}`, i));
    const nginx = await startNginx({ serverBlocks: (port) => staticServerBlock(port, web) });
    const apt = createAptClient({ sources: oneLineSource(nginx.url, 'bookworm', { signedBy: keyring }), arch: 'amd64' });
    try {
      const update = await apt.update();
      expect(update.stderr).not.toMatch(/^(W|E):/m);
      expect(update.code).toBe(0);
      const madison = await apt.madison('demo-apt-1');
      expect(madison.stdout).toMatch(/demo-apt-1 \| +1\.1-1 \|/);
    } finally {
      apt.dispose();
      await nginx.stop();
    }
  });
});
