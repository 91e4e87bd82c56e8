import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, loadChannel, resolveChannelPair } from './channel';
import { ingest } from './ingest';
import { promote, parsePackageSpec } from './promote';
import { applyRetention, retentionPlan } from './retention';
import { currentGeneration, readGenerationInfo } from './generations';
import { trashDir } from './trash';
import { readHistory } from './history';
import { compareVersions } from '../deb/version';
import { generateSigningKey } from '../sign/keys';
import { UsageError } from '../errors';
import type { ChannelConfig, PoolPackage } from '../core/types';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 29);

/** 25 versions of one package, 1.0 … 1.24 (1.9 < 1.10 in Debian order), one uploaded per day, the newest today. */
function history25(name: string): PoolPackage[] {
  return Array.from({ length: 25 }, (_, i) => ({
    poolPath: `pool/main/v/${name}/${name}_1.${i}_all.deb`,
    name,
    version: `1.${i}`,
    architecture: 'all',
    source: name,
    control: [],
    size: 1,
    digests: { MD5sum: 'a', SHA1: 'b', SHA256: `s${i}` },
    codenames: ['bookworm'],
    addedMs: NOW - (24 - i) * DAY,
  }));
}

const kept = (d: ReturnType<typeof retentionPlan>) => d.filter((x) => x.verdict === 'keep').map((x) => x.version);

describe('retentionPlan', () => {
  const pkgs = [...history25('voozanoo-core'), ...history25('untouched')];
  const opts = { protectedVersions: new Set(['voozanoo-core=1.3']), nowMs: NOW, compare: compareVersions };

  it('keeps the newest N (Debian order), the version prod serves, and never touches names no rule matches', () => {
    const d = retentionPlan(pkgs, [{ pattern: '^voozanoo-', keep: 5 }], opts);
    expect(d.every((x) => x.name === 'voozanoo-core')).toBe(true);
    expect(d.map((x) => x.version)).toEqual(Array.from({ length: 25 }, (_, i) => `1.${24 - i}`));
    expect(kept(d)).toEqual(['1.24', '1.23', '1.22', '1.21', '1.20', '1.3']);
    expect(d.find((x) => x.version === '1.24')!.reason).toBe('the newest');
    expect(d.find((x) => x.version === '1.3')!.reason).toBe('served by the downstream channel');
    expect(d.find((x) => x.version === '1.19')).toMatchObject({ verdict: 'remove', reason: 'not among the newest 5', rule: '^voozanoo-' });
  });

  it('keeps what is younger than maxAgeDays, and with both, what either keeps; the newest even when old', () => {
    expect(kept(retentionPlan(pkgs, [{ pattern: '^voozanoo-', maxAgeDays: 10 }], opts))).toEqual([
      '1.24',
      '1.23',
      '1.22',
      '1.21',
      '1.20',
      '1.19',
      '1.18',
      '1.17',
      '1.16',
      '1.15',
      '1.3',
    ]);
    expect(kept(retentionPlan(pkgs, [{ pattern: '^voozanoo-', keep: 2, maxAgeDays: 4 }], opts))).toEqual([
      '1.24',
      '1.23',
      '1.22',
      '1.21',
      '1.3',
    ]);
    const old = retentionPlan(pkgs, [{ pattern: '^voozanoo-', maxAgeDays: 1 }], { ...opts, nowMs: NOW + 400 * DAY });
    expect(kept(old)).toEqual(['1.24', '1.3']);
    expect(old.find((x) => x.version === '1.0')!.reason).toBe('uploaded 424 day(s) ago (over 1)');
  });

  it('takes the first rule whose pattern matches the name', () => {
    const d = retentionPlan(
      pkgs,
      [
        { pattern: '^untouched$', keep: 1 },
        { pattern: '.', keep: 24 },
      ],
      opts,
    );
    expect(kept(d.filter((x) => x.name === 'untouched'))).toEqual(['1.24']);
    expect(kept(d.filter((x) => x.name === 'voozanoo-core'))).toHaveLength(24);
  });
});

describe('gc --policy on a pair', () => {
  let root: string;
  let preprod: ChannelConfig;
  let prod: ChannelConfig;

  beforeAll(async () => {
    root = mkTemp('retention-test');
    const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
    const init = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
    fs.appendFileSync(path.join(init.configDir, 'repo.yaml'), "retention:\n  - pattern: '^app$'\n    keep: 3\n");
    await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
    preprod = await loadChannel({ root, channel: 'preprod' });
    prod = await loadChannel({ root, channel: 'prod' });
    for (const ch of [preprod, prod]) {
      fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
      fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
    }
    const ci = path.join(preprod.incomingDir, 'ci');
    for (let i = 1; i <= 8; i++) buildDeb(ci, { name: 'app', version: `1.${i}` });
    buildDeb(ci, { name: 'other', version: '1' });
    buildDeb(ci, { name: 'other', version: '2' });
    await ingest(preprod, { settleMs: 0 });
    await promote(await resolveChannelPair(root, 'prod'), [parsePackageSpec('app=1.2')]);
  });
  afterAll(() => rmTemp(root));

  const servedNames = async (ch: ChannelConfig) =>
    readGenerationInfo(ch, (await currentGeneration(ch))!)!
      .poolPaths.map((p) => path.basename(p))
      .sort();

  it('dry run: says what would go and why, changes nothing', async () => {
    const before = await servedNames(preprod);
    const r = await applyRetention(preprod, { dryRun: true, downstream: prod });
    expect(r.publish).toBeUndefined();
    expect(r.decisions.filter((d) => d.verdict === 'remove').map((d) => d.version)).toEqual(['1.5', '1.4', '1.3', '1.1']);
    expect(r.decisions.find((d) => d.version === '1.2')!.reason).toBe('served by the downstream channel');
    expect(await servedNames(preprod)).toEqual(before);
  });

  it('run: the versions past the rule stop being served, their files go to the trash, prod and other packages untouched, history says who', async () => {
    process.env.SUDO_USER = 'retention-operator';
    try {
      const r = await applyRetention(preprod, { downstream: prod });
      expect(r.publish?.generation).toBe(await currentGeneration(preprod));
    } finally {
      delete process.env.SUDO_USER;
    }
    expect(await servedNames(preprod)).toEqual([
      'app_1.2_all.deb',
      'app_1.6_all.deb',
      'app_1.7_all.deb',
      'app_1.8_all.deb',
      'other_1_all.deb',
      'other_2_all.deb',
    ]);
    for (const v of ['1.1', '1.3', '1.4', '1.5']) {
      expect(fs.existsSync(path.join(preprod.webRoot, `pool/main/a/app/app_${v}_all.deb`))).toBe(false);
      expect(fs.existsSync(path.join(trashDir(preprod), `pool/main/a/app/app_${v}_all.deb`))).toBe(true);
    }
    expect(await servedNames(prod)).toEqual(['app_1.2_all.deb']);
    const last = (await readHistory(preprod)).pop()!;
    expect(last).toMatchObject({ op: 'gc', who: { user: 'retention-operator' }, detail: 'retention: 4 version(s) past their rule' });
    expect(last.removed!.map((p) => p.version).sort()).toEqual(['1.1', '1.3', '1.4', '1.5']);
    // Nothing more to take out.
    const again = await applyRetention(preprod, { downstream: prod });
    expect(again.publish).toBeUndefined();
    expect(again.decisions.every((d) => d.verdict === 'keep')).toBe(true);
  });

  it('runs from the CLI as gc --policy [--dry-run]; --dry-run alone is a usage error', async () => {
    const { main } = await import('../cli/apt-repo');
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['node', 'apt-repo', '--root', root, '--json', 'gc', '--policy', '--dry-run'])).toBe(0);
      const data = JSON.parse(out.join('')) as { dryRun: boolean; decisions: { verdict: string }[] };
      expect(data.dryRun).toBe(true);
      expect(data.decisions.filter((d) => d.verdict === 'keep')).toHaveLength(4);
      expect(await main(['node', 'apt-repo', '--root', root, 'gc', '--dry-run'])).toBe(2);
    } finally {
      spy.mockRestore();
      err.mockRestore();
      process.exitCode = undefined;
    }
  });

  it('refuses to run without rules', async () => {
    await expect(applyRetention(prod)).rejects.toThrow(UsageError);
    await expect(applyRetention(prod)).rejects.toThrow(/repo.yaml has no retention rules/);
  });
});

describe('gc --policy against planted links', () => {
  it('a symlink planted in the pool (named like an old version) is never followed nor moved: the retention refuses, naming it, and withdraws nothing', async () => {
    const root = mkTemp('retention-link');
    try {
      const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
      const init = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
      fs.appendFileSync(path.join(init.configDir, 'repo.yaml'), "retention:\n  - pattern: '^app$'\n    keep: 1\n");
      const ch = await loadChannel({ root, channel: 'preprod' });
      fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
      for (const v of ['1.0', '1.1', '1.2']) buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: v });
      await ingest(ch, { settleMs: 0 });
      const servedBefore = await currentGeneration(ch);
      const secret = path.join(root, 'secret.deb');
      fs.writeFileSync(secret, 'not ours');
      const planted = path.join(ch.webRoot, 'pool/main/a/app/app_0.1_all.deb');
      fs.symlinkSync(secret, planted);
      await expect(applyRetention(ch)).rejects.toThrow(/app_0\.1_all\.deb: symbolic link in the pool/);
      // Nothing withdrawn: the old versions are back in the pool, the same generation serves, the trash is empty.
      for (const v of ['1.0', '1.1', '1.2']) expect(fs.existsSync(path.join(ch.webRoot, `pool/main/a/app/app_${v}_all.deb`))).toBe(true);
      expect(await currentGeneration(ch)).toBe(servedBefore);
      const trashed = (fs.readdirSync(trashDir(ch), { recursive: true }) as string[]).filter((f) =>
        fs.lstatSync(path.join(trashDir(ch), f)).isFile(),
      );
      expect(trashed).toEqual([]);
      expect(fs.lstatSync(planted).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(secret, 'utf8')).toBe('not ours');
    } finally {
      rmTemp(root);
    }
  });
});
