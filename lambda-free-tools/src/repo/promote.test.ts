import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { pendingPackages } from './pending';
import { resolveChannelPair, ChannelPair } from './channel';
import { beginIntent } from './intent';
import { sha256File } from '../core/files';
import { parsePackageSpec, promote } from './promote';
import * as generations from './generations';
import { currentGeneration, readGenerationInfo } from './generations';
import { verifyChannel } from './verify';
import { publish } from './publish';
import { readAdded } from './pool';
import { ConflictError, UsageError } from '../errors';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let preprod: ChannelConfig;
let prod: ChannelConfig;
let pair: ChannelPair;
let key: Awaited<ReturnType<typeof generateSigningKey>>;

function pool(ch: ChannelConfig): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(ch.webRoot, path.join(d, e.name)));
    }
  };
  walk(path.join(ch.webRoot, 'pool'));
  return out.sort();
}

beforeAll(async () => {
  key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
});

beforeEach(async () => {
  root = mkTemp('promote-test');
  preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'] });
  prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  }
  const ci = path.join(preprod.incomingDir, 'ci');
  buildDeb(ci, { name: 'app', version: '1.0' });
  buildDeb(ci, { name: 'app', version: '1.10' });
  buildDeb(ci, { name: 'app', version: '1.9' });
  buildDeb(ci, { name: 'tool', version: '2', architecture: 'amd64' });
  buildDeb(path.join(ci, 'bullseye'), { name: 'legacy', version: '3' });
  buildDeb(ci, { name: 'php-x', version: '1.0-1+deb12u1' });
  const r = await ingest(preprod, { settleMs: 0 });
  expect(r.entries.every((e) => e.status === 'accepted')).toBe(true);
  pair = await resolveChannelPair(root, 'prod');
});
afterEach(() => rmTemp(root));

describe('promote', () => {
  test('many files at once: what each holds comes from the upstream store (stat-checked), the same as reading them', async () => {
    const ci = path.join(preprod.incomingDir, 'ci');
    for (let i = 0; i < 70; i++) buildDeb(ci, { name: `many${i}`, version: '1.0' });
    await ingest(preprod, { settleMs: 0 });
    const r = await promote(pair, [], { allPending: true });
    expect(r.promoted.filter((p) => p.name.startsWith('many')).every((p) => p.how === 'linked')).toBe(true);
    expect(r.publish!.debsRead).toBe(0); // nothing read again: the upstream store described them
    const packages = () => fs.readFileSync(path.join(prod.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    const fast = packages();
    expect(fast.match(/^Package: many/gm)).toHaveLength(70);
    // The same index as a publish that lists and reads prod's pool afresh.
    fs.rmSync(path.join(prod.stateDir, 'cache.json'));
    const again = await publish(prod);
    expect(again.debsRead).toBeGreaterThan(70);
    expect(packages()).toBe(fast);
  });

  test("reads no upstream pool; a file replaced behind the indexer's back is caught by its SHA256 and not promoted", async () => {
    const upTree = () => JSON.stringify([pool(preprod), fs.readdirSync(preprod.stateDir).sort()]);
    const before = upTree();
    const ok = await promote(pair, [parsePackageSpec('tool=2')], {});
    expect(ok.promoted.map((p) => p.how)).toEqual(['linked']);
    expect(upTree()).toBe(before); // the upstream store is read, never written
    // Replace preprod's app 1.10 by other bytes (a new inode), without a publish.
    const rel = 'pool/main/a/app/app_1.10_all.deb';
    const other = buildDeb(path.join(root, 'other'), { name: 'app', version: '1.10', payloadBytes: 999 });
    fs.renameSync(other, path.join(preprod.webRoot, rel));
    const prodBefore = pool(prod);
    await expect(promote(pair, [parsePackageSpec('app=1.10')], {})).rejects.toThrow(/the upstream file changed since it was indexed/);
    expect(pool(prod)).toEqual(prodBefore);
    expect(await verifyChannel(prod)).toEqual([]);
  });

  test('without a version takes the newest pending one; with one, exactly it; prod shares the inode and is published', async () => {
    const warn = jest.fn();
    const r = await promote(pair, [parsePackageSpec('app'), parsePackageSpec('tool=2')], { warn });
    expect(r.promoted.map((p) => [p.name, p.version, p.architecture, p.how, p.codenames])).toEqual([
      ['app', '1.10', 'all', 'linked', ['bookworm', 'bullseye']],
      ['tool', '2', 'amd64', 'linked', ['bookworm', 'bullseye']],
    ]);
    expect(warn).not.toHaveBeenCalled();
    for (const p of r.promoted) {
      expect(fs.statSync(path.join(prod.webRoot, p.poolPath)).ino).toBe(fs.statSync(path.join(preprod.webRoot, p.poolPath)).ino);
    }
    expect(r.publish?.packages).toEqual({ bookworm: 2, bullseye: 2 });
    expect(await currentGeneration(prod)).toBe(r.publish?.generation);
    expect(Object.keys(readAdded(prod)).sort()).toEqual(r.promoted.map((p) => p.poolPath).sort());
    expect(await verifyChannel(prod)).toEqual([]);
    // Next one without version: 1.9 is now the newest pending.
    const r2 = await promote(pair, [parsePackageSpec('app')]);
    expect(r2.promoted.map((p) => p.version)).toEqual(['1.9']);
  });

  test('promoting again is a no-op reported as present, without a publish', async () => {
    await promote(pair, [parsePackageSpec('app=1.0')]);
    const gen = await currentGeneration(prod);
    const r = await promote(pair, [parsePackageSpec('app=1.0')]);
    expect(r.promoted.map((p) => p.how)).toEqual(['present']);
    expect(r.publish).toBeUndefined();
    expect(await currentGeneration(prod)).toBe(gen);
  });

  test('--dry-run changes nothing', async () => {
    const r = await promote(pair, [], { allPending: true, dryRun: true });
    expect(r.promoted).toHaveLength(6);
    expect(r.promoted.every((p) => p.how === 'planned')).toBe(true);
    expect(pool(prod)).toEqual([]);
    expect(await currentGeneration(prod)).toBeUndefined();
  });

  test('--codename restricts to what is routed there and must be published by prod', async () => {
    const r = await promote(pair, [], { allPending: true, codename: 'bullseye', dryRun: true });
    // legacy (bullseye folder) and every unrouted package; php-x (+deb12u1) goes to bookworm only.
    expect(r.promoted.map((p) => p.name).sort()).toEqual(['app', 'app', 'app', 'legacy', 'tool']);
    await expect(promote(pair, [], { allPending: true, codename: 'sid' })).rejects.toThrow(/does not publish it/);
    await expect(promote(pair, [parsePackageSpec('php-x=1.0-1+deb12u1')], { codename: 'bullseye' })).rejects.toThrow(UsageError);
    const b = await promote(pair, [parsePackageSpec('legacy')], { codename: 'bullseye' });
    expect(b.promoted.map((p) => [p.name, p.codenames])).toEqual([['legacy', ['bullseye']]]);
  });

  test('packages routed to no codename of prod: refused when named, skipped with a warning by --all-pending', async () => {
    fs.writeFileSync(path.join(prod.configDir, 'liste_dist'), 'bullseye\n');
    const p2 = await resolveChannelPair(root, 'prod');
    await expect(promote(p2, [parsePackageSpec('php-x=1.0-1+deb12u1')])).rejects.toThrow(
      /php-x=1.0-1\+deb12u1 is not routed to any codename of prod \(liste_dist: bullseye\) \(routed to: none\)/,
    );
    await expect(promote(p2, [parsePackageSpec('php-x')])).rejects.toThrow(/php-x has no version routed/);
    const warn = jest.fn();
    const r = await promote(p2, [], { allPending: true, dryRun: true, warn });
    expect(r.promoted.map((p) => p.name).sort()).toEqual(['app', 'app', 'app', 'legacy', 'tool']);
    expect(warn).toHaveBeenCalledWith('php-x 1.0-1+deb12u1 all: routed to no codename of prod; left in preprod');
    expect(r.warnings).toEqual(['php-x 1.0-1+deb12u1 all: routed to no codename of prod; left in preprod']);
  });

  test('absent package or version, bad spec, nothing asked: usage errors, nothing changed', async () => {
    await expect(promote(pair, [parsePackageSpec('nope')])).rejects.toThrow(/not in preprod's pool/);
    await expect(promote(pair, [parsePackageSpec('app'), parsePackageSpec('app=9.9')])).rejects.toThrow(
      /app=9.9 is not in preprod's pool \(versions there: 1.10, 1.9, 1.0\)/,
    );
    await expect(promote(pair, [])).rejects.toThrow(UsageError);
    expect(() => parsePackageSpec('Bad_Name')).toThrow(UsageError);
    expect(() => parsePackageSpec('app=not a version')).toThrow(UsageError);
    expect(() => parsePackageSpec('app', true)).toThrow(/app=<version>/);
    expect(parsePackageSpec('app=1:2.0-1')).toEqual({ name: 'app', version: '1:2.0-1' });
    expect(pool(prod)).toEqual([]);
  });

  test('same identity with other bytes in prod is a conflict; nothing promoted', async () => {
    const other = buildDeb(path.join(root, 'other'), { name: 'tool', version: '2', architecture: 'amd64', description: 'other bytes' });
    const dest = path.join(prod.webRoot, 'pool/main/t/tool/tool_2_amd64.deb');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(other, dest);
    await expect(promote(pair, [parsePackageSpec('app'), parsePackageSpec('tool')])).rejects.toThrow(ConflictError);
    expect(pool(prod)).toEqual(['pool/main/t/tool/tool_2_amd64.deb']);
  });

  test('a failure after the new generation is served (pruning) keeps the links it lists', async () => {
    const spy = jest.spyOn(generations, 'pruneGenerations').mockRejectedValueOnce(new Error('EACCES: cannot prune'));
    try {
      await expect(promote(pair, [parsePackageSpec('app')])).rejects.toThrow(/cannot prune/);
    } finally {
      spy.mockRestore();
    }
    expect(await currentGeneration(prod)).toBeDefined();
    expect(pool(prod)).toEqual(['pool/main/a/app/app_1.10_all.deb']);
    expect(await verifyChannel(prod)).toEqual([]);
  });

  test('a failed publish takes the new links back out', async () => {
    fs.rmSync(prod.signingKeyFile);
    await expect(promote(pair, [parsePackageSpec('app')])).rejects.toThrow(/signing key/);
    expect(pool(prod)).toEqual([]);
  });
});

describe('promote and pending compare what each channel serves (issue 9)', () => {
  const ghost = () => path.join(preprod.webRoot, 'pool/main/g/ghost/ghost_1_all.deb');
  async function strandInPreprod(): Promise<void> {
    // In preprod's pool, never published there (an ingest killed before its publish).
    fs.mkdirSync(path.dirname(ghost()), { recursive: true });
    fs.copyFileSync(buildDeb(path.join(root, 'build'), { name: 'ghost', version: '1' }), ghost());
  }

  test("a file in preprod's pool that preprod does not serve is neither pending nor promotable", async () => {
    await strandInPreprod();
    const { rows, problems } = await pendingPackages(pair);
    expect(rows.map((r) => r.name)).not.toContain('ghost');
    expect(problems).toEqual([]);
    // Preprod's store is the pool its last publish listed: the file put there since is not in it.
    await expect(promote(pair, [parsePackageSpec('ghost')])).rejects.toThrow(/package ghost is not in preprod's pool/);
    // Without the store (lost), preprod's pool is listed: the file is found, and still not promotable.
    fs.rmSync(path.join(preprod.stateDir, 'cache.json'));
    await expect(promote(pair, [parsePackageSpec('ghost')])).rejects.toThrow(
      /package ghost is in preprod's pool but preprod does not serve it/,
    );
    const all = await promote(pair, [], { allPending: true });
    expect(all.promoted.map((p) => p.name)).not.toContain('ghost');
    expect(fs.existsSync(path.join(prod.webRoot, 'pool/main/g/ghost/ghost_1_all.deb'))).toBe(false);
  });

  test("a file in prod's pool that prod does not serve is pending, and promote serves it (its store claiming the pool, or not)", async () => {
    // With prod's store claiming its pool (a promote before), a file linked in by hand is not in it.
    await promote(pair, [parsePackageSpec('legacy')]);
    const q = 'pool/main/a/app/app_1.9_all.deb';
    fs.mkdirSync(path.dirname(path.join(prod.webRoot, q)), { recursive: true });
    fs.linkSync(path.join(preprod.webRoot, q), path.join(prod.webRoot, q));
    const present = await promote(pair, [parsePackageSpec('app=1.9')]);
    expect(present.promoted.map((x) => [x.name, x.how])).toEqual([['app', 'present']]);
    expect(readGenerationInfo(prod, (await currentGeneration(prod))!)!.poolPaths).toContain(q);
    const p = 'pool/main/t/tool/tool_2_amd64.deb';
    fs.mkdirSync(path.dirname(path.join(prod.webRoot, p)), { recursive: true });
    fs.linkSync(path.join(preprod.webRoot, p), path.join(prod.webRoot, p));
    expect((await pendingPackages(pair)).rows.map((r) => r.poolPath)).toContain(p);
    const r = await promote(pair, [parsePackageSpec('tool')]);
    expect(r.promoted.map((x) => [x.name, x.how])).toEqual([['tool', 'present']]);
    expect(r.publish).toBeDefined();
    expect(readGenerationInfo(prod, (await currentGeneration(prod))!)!.poolPaths).toContain(p);
    expect((await pendingPackages(pair)).rows.map((r) => r.poolPath)).not.toContain(p);
  });

  test('a promote killed after linking (its intent record left) is finished by the next promote, which then does its own work', async () => {
    const p = 'pool/main/t/tool/tool_2_amd64.deb';
    const intent = await beginIntent(prod, 'promote');
    intent.record({
      op: 'add',
      poolPath: p,
      sha256: await sha256File(path.join(preprod.webRoot, p)),
      at: 1,
      from: { kind: 'upstream', webRoot: preprod.webRoot },
    });
    fs.mkdirSync(path.dirname(path.join(prod.webRoot, p)), { recursive: true });
    fs.linkSync(path.join(preprod.webRoot, p), path.join(prod.webRoot, p));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const r = await promote(pair, [parsePackageSpec('legacy')]);
      expect(r.promoted.map((x) => [x.name, x.how])).toEqual([['legacy', 'linked']]);
    } finally {
      stderr.mockRestore();
    }
    const served = readGenerationInfo(prod, (await currentGeneration(prod))!)!.poolPaths;
    expect(served).toEqual(['pool/main/l/legacy/bullseye/legacy_3_all.deb', p]);
    expect(await verifyChannel(prod)).toEqual([]);
  });

  test('pending and promote warn about an interrupted writer of preprod (promote cannot finish it)', async () => {
    (await beginIntent(preprod, 'ingest')).record({ op: 'reject', rel: 'ci/x.deb', name: 'x' });
    const { problems } = await pendingPackages(pair);
    const warning = expect.stringMatching(
      /^preprod: an interrupted ingest \(pid \d+, since .*\) left changes that preprod does not serve yet; the next writing command of preprod finishes it/,
    );
    expect(problems).toEqual([warning]);
    const warn = jest.fn();
    const r = await promote(pair, [parsePackageSpec('app')], { warn });
    expect(warn).toHaveBeenCalledWith(warning);
    expect(r.warnings).toEqual([warning]);
  });

  test("a remove of preprod cut short (a served file already out of the pool): pending and promote leave that package out, from a listing of preprod's pool", async () => {
    const gone = 'pool/main/t/tool/tool_2_amd64.deb';
    // What remove does before its publish: the intent record, then the file out of the pool.
    (await beginIntent(preprod, 'remove')).record({ op: 'reject', rel: 'ci/x.deb', name: 'x' });
    fs.renameSync(path.join(preprod.webRoot, gone), path.join(root, 'removed.deb'));
    expect(readGenerationInfo(preprod, (await currentGeneration(preprod))!)!.poolPaths).toContain(gone);
    const { rows } = await pendingPackages(pair);
    expect(rows.map((r) => r.poolPath)).not.toContain(gone);
    expect(rows.map((r) => r.name)).toContain('app');
    const r = await promote(pair, [], { allPending: true, warn: () => undefined });
    expect(r.promoted.map((p) => p.poolPath)).not.toContain(gone);
    expect(r.promoted.map((p) => p.name)).toContain('app');
    await expect(promote(pair, [parsePackageSpec('tool')], { warn: () => undefined })).rejects.toThrow(
      /package tool is not in preprod's pool/,
    );
  });
});

describe('promote confines both pools (issue 8)', () => {
  test("a folder of prod's pool swapped for a symlink is refused: the link target gets nothing", async () => {
    const victimDir = path.join(root, 'victim');
    fs.mkdirSync(victimDir);
    fs.mkdirSync(path.join(prod.webRoot, 'pool/main'), { recursive: true });
    fs.symlinkSync(victimDir, path.join(prod.webRoot, 'pool/main/t'));
    await expect(promote(pair, [{ name: 'tool' }])).rejects.toThrow(/pool\/main\/t: symbolic link/);
    expect(fs.readdirSync(victimDir)).toEqual([]);
    expect(fs.existsSync(path.join(prod.webRoot, 'dists'))).toBe(false);
  });

  test('a served preprod file swapped for a symlink (to its own bytes) is refused: prod gets neither link nor file', async () => {
    const rel = 'pool/main/t/tool/tool_2_amd64.deb';
    const moved = path.join(root, 'elsewhere.deb');
    fs.renameSync(path.join(preprod.webRoot, rel), moved);
    fs.symlinkSync(moved, path.join(preprod.webRoot, rel));
    await expect(promote(pair, [{ name: 'tool' }])).rejects.toThrow(/tool_2_amd64.deb: symbolic link \(never followed\)/);
    expect(fs.existsSync(path.join(prod.webRoot, rel))).toBe(false);
    expect(fs.lstatSync(path.join(prod.webRoot, 'pool/main/t/tool'), { throwIfNoEntry: false })?.isSymbolicLink() ?? false).toBe(false);
  });

  test("a symlink planted at the promoted file's place in prod's pool (to the same bytes) is refused, never served", async () => {
    // Prod's store claims its pool (a promote before): the planted link is in neither the store nor the index.
    await promote(pair, [{ name: 'legacy' }]);
    const rel = 'pool/main/t/tool/tool_2_amd64.deb';
    fs.mkdirSync(path.dirname(path.join(prod.webRoot, rel)), { recursive: true });
    fs.symlinkSync(path.join(preprod.webRoot, rel), path.join(prod.webRoot, rel));
    await expect(promote(pair, [{ name: 'tool' }])).rejects.toThrow(
      /prod\/pool\/main\/t\/tool\/tool_2_amd64.deb: symbolic link \(never followed\)/,
    );
    expect(readGenerationInfo(prod, (await currentGeneration(prod))!)!.poolPaths).not.toContain(rel);
    expect(fs.readFileSync(path.join(prod.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8')).not.toContain('Package: tool');
  });

  test("promoted files keep the pool file mode 0664 (prod's indexer may hard-link them)", async () => {
    await promote(pair, [{ name: 'tool' }]);
    expect(fs.statSync(path.join(prod.webRoot, 'pool/main/t/tool/tool_2_amd64.deb')).mode & 0o777).toBe(0o664);
  });
});
