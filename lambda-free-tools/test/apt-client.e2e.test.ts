/**
 * End-to-end proof of the indexer: the bundled `apt-repo` CLI initialises a channel, generates its
 * signing key and publishes a pool of real .deb files (built with dpkg-deb and downloaded from the
 * Debian archive); a real nginx serves the web root and isolated `apt-get` / `apt-cache` clients
 * (and gpgv) check what Debian's own tools make of it: signatures, per-codename and
 * per-architecture indexes, every version installable, bytes intact, tampering detected.
 */
import { execFileSync, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli, RunResult } from '../../test/harness/cli';
import { buildDeb, fetchRealDebs } from '../../test/harness/debs';
import { AptClient, createAptClient, oneLineSource, aptProblems } from '../../test/harness/apt';
import { httpGet, NginxServer, startNginx, staticServerBlock } from '../../test/harness/nginx';
import { channelPaths } from '../src/repo/channel';

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Fails with the CLI's output when a command did not exit 0. */
/** Reads one control field of a .deb with dpkg-deb (independent of the project's reader). */
const debField = (deb: string, field: string) => execFileSync('dpkg-deb', ['-f', deb, field]).toString().trim();

/** Moves a .deb into the Debian pool layout `pool/main/<prefix>/<source>/` of webRoot; returns its new path. */
function intoPool(webRoot: string, deb: string, copy: boolean): string {
  const name = debField(deb, 'Package');
  const source = (debField(deb, 'Source') || name).split(' ')[0];
  const prefix = source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source[0];
  const dir = path.join(webRoot, 'pool', 'main', prefix, source);
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, path.basename(deb));
  if (copy) fs.copyFileSync(deb, dest);
  else fs.renameSync(deb, dest);
  return dest;
}

describe('apt-repo publish, served by nginx, read by apt', () => {
  let root: string;
  let webRoot: string;
  let nginx: NginxServer;
  let keyringGpg: string;
  const pool: Record<string, string> = {};
  const clients: AptClient[] = [];

  const cli = (...args: string[]) => runCli(['--root', root, '--channel', 'preprod', ...args]);
  /** A fresh isolated client of `codename` on this nginx, updated; `arch` defaults to amd64. */
  async function updatedClient(
    codename: string,
    opts: { arch?: string; server?: NginxServer } = {},
  ): Promise<{ client: AptClient; update: RunResult }> {
    const client = createAptClient({
      sources: oneLineSource(`${(opts.server ?? nginx).url}/`, codename, { signedBy: keyringGpg }),
      arch: opts.arch,
    });
    clients.push(client);
    const update = await client.update();
    return { client, update };
  }

  beforeAll(async () => {
    root = mkTemp('apt-client-e2e');
    webRoot = channelPaths(root, 'preprod').webRoot;
    ok(await cli('init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64,i386'), 'init');
    ok(await cli('keygen'), 'keygen');
    const keys = fs.readdirSync(webRoot).filter((f) => f.endsWith('-archive-keyring.gpg'));
    expect(keys).toHaveLength(1);
    keyringGpg = path.join(webRoot, keys[0]);

    const build = mkTemp('apt-client-e2e-debs');
    try {
      const specs = [
        { key: 'demo=1.0-1', spec: { name: 'demo', version: '1.0-1', description: 'demo package, first version' } },
        { key: 'demo=1.1-1', spec: { name: 'demo', version: '1.1-1', description: 'demo package, second version' } },
        { key: 'demotool=2.0-1', spec: { name: 'demotool', version: '2.0-1', architecture: 'amd64', compression: 'xz' as const } },
        { key: 'demophp=1.0-1+deb12u1', spec: { name: 'demophp', version: '1.0-1+deb12u1', compression: 'zstd' as const } },
      ];
      for (const { key, spec } of specs) pool[key] = intoPool(webRoot, buildDeb(build, spec), false);
    } finally {
      rmTemp(build);
    }
    for (const deb of fetchRealDebs(['hello', 'tree'])) {
      pool[`${debField(deb, 'Package')}=${debField(deb, 'Version')}`] = intoPool(webRoot, deb, true);
    }

    ok(await cli('publish', '--rescan'), 'publish');
    nginx = await startNginx({ serverBlocks: (port) => staticServerBlock(port, webRoot) });
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    await nginx?.stop();
    if (root) rmTemp(root);
  });

  it('apt-get update verifies the signed bookworm index with signed-by', async () => {
    const { client, update } = await updatedClient('bookworm');
    expect(aptProblems(update)).toEqual([]);
    expect(update.code).toBe(0);
    expect(update.stdout).toMatch(/Get:\d+ http:\/\/127\.0\.0\.1:\d+ bookworm InRelease/);
    const policy = await client.policy('demo');
    expect(policy.stdout).toMatch(/Candidate: 1\.1-1/);
  });

  it('install -s picks the newest version; an older version resolves and downloads intact', async () => {
    const { client } = await updatedClient('bookworm');
    const madison = (await client.madison('demo')).stdout;
    expect(madison).toMatch(/demo \|\s+1\.1-1 \|/);
    expect(madison).toMatch(/demo \|\s+1\.0-1 \|/);
    const newest = await client.installSimulate('demo');
    expect(newest.code).toBe(0);
    expect(newest.stdout).toMatch(/^Inst demo \(1\.1-1 /m);
    const older = await client.installSimulate('demo=1.0-1');
    expect(older.code).toBe(0);
    expect(older.stdout).toMatch(/^Inst demo \(1\.0-1 /m);
    const dl = await client.download('demo=1.0-1');
    expect(dl.code).toBe(0);
    expect(dl.files.map((f) => path.basename(f))).toEqual(['demo_1.0-1_all.deb']);
    expect(sha256(dl.files[0])).toBe(sha256(pool['demo=1.0-1']));
  });

  it('real Debian packages install (simulated) and download byte for byte', async () => {
    const { client } = await updatedClient('bookworm');
    const hello = Object.keys(pool).find((k) => k.startsWith('hello='))!;
    const sim = await client.installSimulate('hello');
    expect(sim.code).toBe(0);
    expect(sim.stdout).toMatch(/^Inst hello /m);
    const dl = await client.download(hello);
    expect(dl.code).toBe(0);
    expect(dl.files).toHaveLength(1);
    expect(sha256(dl.files[0])).toBe(sha256(pool[hello]));
  });

  it('publishes per architecture: amd64 packages for amd64 only, arch all for both', async () => {
    const amd64 = (await updatedClient('bookworm')).client;
    expect((await amd64.madison('demotool')).stdout).toMatch(/demotool \|\s+2\.0-1 \|/);
    const { client: i386, update } = await updatedClient('bookworm', { arch: 'i386' });
    expect(aptProblems(update)).toEqual([]);
    expect((await i386.madison('demotool')).stdout).toBe('');
    expect((await i386.madison('demo')).stdout).toMatch(/demo \|\s+1\.1-1 \| .* i386 Packages/);
  });

  it('routes the +deb12u1 package to bookworm only', async () => {
    const bookworm = (await updatedClient('bookworm')).client;
    expect((await bookworm.madison('demophp')).stdout).toMatch(/demophp \|\s+1\.0-1\+deb12u1 \|/);
    expect((await bookworm.installSimulate('demophp')).code).toBe(0);
    const { client: bullseye, update } = await updatedClient('bullseye');
    expect(aptProblems(update)).toEqual([]);
    expect(update.code).toBe(0);
    expect((await bullseye.madison('demophp')).stdout).toBe('');
    expect((await bullseye.installSimulate('demophp')).code).not.toBe(0);
    // Packages without a routing suffix are in every codename.
    expect((await bullseye.madison('demo')).stdout).toMatch(/demo \|\s+1\.1-1 \|/);
  });

  it('gpgv accepts InRelease and Release.gpg with the published binary keyring', () => {
    for (const codename of ['bookworm', 'bullseye']) {
      const dist = path.join(webRoot, 'dists', codename);
      const inRelease = spawnSync('gpgv', ['--keyring', keyringGpg, path.join(dist, 'InRelease')]);
      expect({ codename, status: inRelease.status, err: inRelease.status === 0 ? '' : inRelease.stderr.toString() }).toEqual({
        codename,
        status: 0,
        err: '',
      });
      const detached = spawnSync('gpgv', ['--keyring', keyringGpg, path.join(dist, 'Release.gpg'), path.join(dist, 'Release')]);
      expect({ codename, status: detached.status, err: detached.status === 0 ? '' : detached.stderr.toString() }).toEqual({
        codename,
        status: 0,
        err: '',
      });
    }
  });

  it('fetches indexes by hash, and a second publish keeps the old by-hash files for clients mid-update', async () => {
    const { client } = await updatedClient('bookworm');
    // apt fetches index files by the strongest hash Release lists (Acquire-By-Hash: yes).
    expect(nginx.accessLog()).toMatch(/GET \/dists\/bookworm\/main\/binary-amd64\/by-hash\/SHA(256|512)\/[0-9a-f]{64,128} HTTP\/1\.1" 200/);
    // The Packages.xz a client holding the current InRelease would fetch next, by the hash apt would use.
    const inRelease = fs.readFileSync(path.join(webRoot, 'dists/bookworm/InRelease'), 'utf8');
    const hashName = /^SHA512:$/m.test(inRelease) ? 'SHA512' : 'SHA256';
    const section = inRelease.split(new RegExp(`^${hashName}:\\n`, 'm'))[1];
    const line = section.split('\n').find((l) => / main\/binary-amd64\/Packages\.xz$/.test(l));
    expect(line).toBeDefined();
    const oldDigest = line!.trim().split(/\s+/)[0];

    const build = mkTemp('apt-client-e2e-debs2');
    try {
      pool['demo=1.2-1'] = intoPool(webRoot, buildDeb(build, { name: 'demo', version: '1.2-1' }), false);
    } finally {
      rmTemp(build);
    }
    ok(await cli('publish', '--rescan'), 'second publish');

    expect(fs.readFileSync(path.join(webRoot, 'dists/bookworm/InRelease'), 'utf8')).not.toContain(oldDigest);
    const old = await httpGet(`${nginx.url}/dists/bookworm/main/binary-amd64/by-hash/${hashName}/${oldDigest}`);
    expect(old.status).toBe(200);
    expect(createHash(hashName.toLowerCase()).update(old.bytes).digest('hex')).toBe(oldDigest);
    // The client updated before the publish updates again and sees the new version.
    const again = await client.update();
    expect(aptProblems(again)).toEqual([]);
    expect((await client.installSimulate('demo')).stdout).toMatch(/^Inst demo \(1\.2-1 /m);
    const dl = await client.download('demo=1.2-1');
    expect(sha256(dl.files.find((f) => path.basename(f) === 'demo_1.2-1_all.deb')!)).toBe(sha256(pool['demo=1.2-1']));
  });

  describe('tampering', () => {
    let noInRelease: NginxServer;

    beforeAll(async () => {
      // Without InRelease apt falls back to Release + Release.gpg: the detached signature path.
      noInRelease = await startNginx({
        serverBlocks: (port) => staticServerBlock(port, webRoot, { extra: 'location ~ /InRelease$ { return 404; }' }),
      });
    });

    afterAll(async () => {
      await noInRelease?.stop();
    });

    /** Replaces the first letter of the Label value in `file` by another letter (one byte changed). */
    function flipLabelByte(file: string): void {
      const b = fs.readFileSync(file);
      const field = b.indexOf('\nLabel: ');
      expect(field).toBeGreaterThanOrEqual(0);
      const at = field + '\nLabel: '.length;
      b[at] = b[at] === 0x58 ? 0x59 : 0x58; // 'X' or 'Y'
      fs.writeFileSync(file, b);
    }

    it('apt also verifies through Release.gpg before any change', async () => {
      const { update } = await updatedClient('bookworm', { server: noInRelease });
      expect(aptProblems(update)).toEqual([]);
      expect(update.code).toBe(0);
      expect(update.stdout).toMatch(/bookworm Release\.gpg/);
    });

    it('a changed byte in Release makes gpgv and a fresh client fail', async () => {
      const dist = path.join(webRoot, 'dists', 'bookworm');
      flipLabelByte(path.join(dist, 'Release'));
      const detached = spawnSync('gpgv', ['--keyring', keyringGpg, path.join(dist, 'Release.gpg'), path.join(dist, 'Release')]);
      expect(detached.status).not.toBe(0);
      expect(detached.stderr.toString()).toMatch(/BAD signature/);
      const { client, update } = await updatedClient('bookworm', { server: noInRelease });
      expect(update.code).not.toBe(0);
      expect(aptProblems(update).join('\n')).toMatch(/BADSIG|not signed|invalid/i);
      expect((await client.madison('demo')).stdout).toBe('');
    });

    it('a changed byte in InRelease makes a fresh client fail', async () => {
      const inRelease = path.join(webRoot, 'dists', 'bookworm', 'InRelease');
      flipLabelByte(inRelease);
      expect(spawnSync('gpgv', ['--keyring', keyringGpg, inRelease]).status).not.toBe(0);
      const { client, update } = await updatedClient('bookworm');
      expect(update.code).not.toBe(0);
      expect(aptProblems(update).join('\n')).toMatch(/BADSIG|not signed|invalid/i);
      expect((await client.madison('demo')).stdout).toBe('');
      // bullseye was not touched and still verifies.
      const { update: other } = await updatedClient('bullseye');
      expect(aptProblems(other)).toEqual([]);
    });
  });
});
