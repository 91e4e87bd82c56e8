import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, listChannels } from './channel';
import { DEFAULT_ROUTING } from './routing';
import { diffPools, pendingPackages, servedRecordsOf } from './pending';
import { parsePackageSpec, promote } from './promote';
import { currentGeneration, generationDir, readGenerationInfo } from './generations';
import { resolveChannelPair } from './channel';
import { ingest } from './ingest';
import { UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig, PoolPackage } from '../core/types';

function pkg(
  name: string,
  version: string,
  sha: string,
  poolPath = `pool/main/${name[0]}/${name}/${name}_${version}_all.deb`,
  codenames = ['bookworm', 'bullseye'],
): PoolPackage {
  return {
    poolPath,
    name,
    version,
    architecture: 'all',
    source: name,
    control: [],
    size: 1,
    digests: { MD5sum: '', SHA1: '', SHA256: sha },
    codenames,
    addedMs: 1000,
  };
}

const prodCfg = { codenames: ['bookworm', 'bullseye'], routing: DEFAULT_ROUTING };

describe('diffPools', () => {
  test('lists what is upstream and not downstream, newest version first, flags conflicts', () => {
    const up = [pkg('aa', '1.0', 's1'), pkg('aa', '1.10', 's2'), pkg('aa', '1.9', 's3'), pkg('bb', '1', 's4'), pkg('cc', '1', 's5')];
    const down = [pkg('aa', '1.0', 's1'), pkg('cc', '1', 'other')];
    const rows = diffPools(up, down, prodCfg);
    expect(rows.map((r) => [r.name, r.version, r.conflict])).toEqual([
      ['aa', '1.10', undefined],
      ['aa', '1.9', undefined],
      ['bb', '1', undefined],
      ['cc', '1', 'pool/main/c/cc/cc_1_all.deb'],
    ]);
    expect(rows[0]).toMatchObject({ codenames: ['bookworm', 'bullseye'], addedMs: 1000, sha256: 's2' });
  });

  test('an epoch-0 spelling matches; the same bytes at another path count only if they cover every codename', () => {
    const up = [
      pkg('aa', '0:1.0', 's1', 'pool/main/a/aa/aa_1.0_all.deb'),
      pkg('dd', '1', 's9', 'pool/main/d/dd/bullseye/dd_1_all.deb', ['bullseye']),
    ];
    const down = [pkg('aa', '1.0', 's1'), pkg('dd', '1', 's9', 'pool/main/d/dd/bookworm/dd_1_all.deb', ['bookworm'])];
    expect(diffPools(up, down, prodCfg).map((r) => [r.name, r.codenames, r.conflict])).toEqual([['dd', ['bullseye'], undefined]]);
  });

  test("codenames are the downstream channel's routing", () => {
    const rows = diffPools([pkg('ee', '1.0-1+deb12u1', 's1')], [], { codenames: ['bookworm'], routing: DEFAULT_ROUTING });
    expect(rows[0].codenames).toEqual(['bookworm']);
  });
});

describe('channel pairs and pending', () => {
  let root: string;
  let preprod: ChannelConfig;
  beforeAll(async () => {
    root = mkTemp('pending-test');
    preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
    await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
    const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
    fs.writeFileSync(preprod.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.mkdirSync(path.join(preprod.incomingDir, 'ci'), { recursive: true });
    buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'hello', version: '2.0' });
    await ingest(preprod, { settleMs: 0 });
  });
  afterAll(() => rmTemp(root));

  test('lists the channels under the root', async () => {
    expect(listChannels(root)).toEqual(['preprod', 'prod']);
    expect(listChannels(path.join(root, 'nothing'))).toEqual([]);
  });

  test('resolves the pair from either side', async () => {
    const a = await resolveChannelPair(root, 'prod');
    const b = await resolveChannelPair(root, 'preprod');
    expect([a.upstream.name, a.downstream.name]).toEqual(['preprod', 'prod']);
    expect([b.upstream.name, b.downstream.name]).toEqual(['preprod', 'prod']);
  });

  test('a channel with no partner is a usage error', async () => {
    await initChannel({ root, channel: 'lonely', codenames: ['bookworm'] });
    fs.renameSync(path.join(root, 'etc/epiconcept/apt_repo/prod'), path.join(root, 'etc/epiconcept/apt_repo/.prod'));
    try {
      await expect(resolveChannelPair(root, 'lonely')).rejects.toThrow(UsageError);
    } finally {
      fs.renameSync(path.join(root, 'etc/epiconcept/apt_repo/.prod'), path.join(root, 'etc/epiconcept/apt_repo/prod'));
      fs.rmSync(path.join(root, 'etc/epiconcept/apt_repo/lonely'), { recursive: true });
    }
  });

  test('pendingPackages reads both pools', async () => {
    const { rows, problems } = await pendingPackages(await resolveChannelPair(root, 'prod'));
    expect(problems).toEqual([]);
    expect(rows.map((r) => [r.name, r.version, r.architecture, r.codenames, r.poolPath])).toEqual([
      ['hello', '2.0', 'all', ['bookworm'], 'pool/main/h/hello/hello_2.0_all.deb'],
    ]);
    expect(rows[0].addedMs).toBeGreaterThan(Date.now() - 600_000);
  });

  test('pending reads the served sets the generations recorded, and gives what scanning both pools gives', async () => {
    const pair = await resolveChannelPair(root, 'prod');
    const key = await generateSigningKey({ name: 'P', email: 'p@example.org', type: 'ed25519' });
    fs.writeFileSync(pair.downstream.signingKeyFile, key.privateArmored, { mode: 0o600 });
    const drop = path.join(preprod.incomingDir, 'ci');
    buildDeb(drop, { name: 'hello', version: '2.1' });
    buildDeb(drop, { name: 'world', version: '1.0+deb12u1', architecture: 'amd64' });
    buildDeb(drop, { name: 'world', version: '0.9', architecture: 'amd64' });
    await ingest(preprod, { settleMs: 0 });
    await promote(pair, [parsePackageSpec('world=0.9')]);

    const servedFile = async (ch: ChannelConfig) => path.join(generationDir(ch, (await currentGeneration(ch))!), 'served.json');
    // The record lists exactly what the generation serves.
    for (const ch of [pair.upstream, pair.downstream]) {
      const id = (await currentGeneration(ch))!;
      expect((await servedRecordsOf(ch))!.map((r) => r.poolPath).sort()).toEqual(readGenerationInfo(ch, id)!.poolPaths);
    }
    const recorded = await pendingPackages(pair);
    expect(recorded.rows.map((r) => `${r.name} ${r.version}`)).toEqual(['hello 2.1', 'hello 2.0', 'world 1.0+deb12u1']);

    // Without the records (a generation written by an older apt-repo), or with a damaged one, both
    // pools are scanned: the same rows.
    const file = await servedFile(pair.upstream);
    const saved = fs.readFileSync(file);
    try {
      fs.rmSync(file);
      expect(await servedRecordsOf(pair.upstream)).toBeUndefined();
      expect(await pendingPackages(pair)).toEqual(recorded);
      fs.writeFileSync(file, saved.toString('utf8').replace(/"[0-9a-f]{64}"/, '"not-a-digest"'));
      expect(await servedRecordsOf(pair.upstream)).toBeUndefined();
      expect(await pendingPackages(pair)).toEqual(recorded);
      expect(saved.toString('utf8')).toContain(',"hello",');
      fs.writeFileSync(file, saved.toString('utf8').replace(',"hello",', ',"../Hello",'));
      expect(await servedRecordsOf(pair.upstream)).toBeUndefined();
    } finally {
      fs.writeFileSync(file, saved);
    }
    expect(await servedRecordsOf(pair.upstream)).toBeDefined();

    // With the records no pool is read: a broken file in the pool (never served) is verify's and
    // publish's to report, while a listing of the pool reports it.
    const junk = path.join(pair.upstream.webRoot, 'pool/main/j/junk/junk_1_all.deb');
    fs.mkdirSync(path.dirname(junk), { recursive: true });
    fs.writeFileSync(junk, 'not a deb');
    try {
      expect((await pendingPackages(pair)).problems).toEqual([]);
      fs.rmSync(file);
      // Nor without them while the store is the pool preprod's last publish listed (readPool).
      expect((await pendingPackages(pair)).problems).toEqual([]);
      fs.rmSync(path.join(pair.upstream.stateDir, 'cache.json'));
      expect((await pendingPackages(pair)).problems.join('\n')).toContain('junk_1_all.deb');
    } finally {
      fs.rmSync(junk);
      fs.writeFileSync(file, saved);
    }
  });
});
