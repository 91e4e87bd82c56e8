import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as channelModule from './channel';
import { initChannel } from './channel';
import { ConfigError, UnknownChannelError } from '../errors';
import { createHash } from 'crypto';
import { EXPECTED_STATE_FILE } from './expectedState';
import { channelStatus, diskUse, listRejected, lockHolder, parseReason } from './status';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'status-test-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('parseReason', () => {
  test('reads the three-line format', () => {
    expect(
      parseReason('reason: not an ar archive (no !<arch> header)\nfile: ci/bookworm/broken_1.0_all.deb\ntime: 2026-11-21T05:38:45Z\n'),
    ).toEqual({
      reason: 'not an ar archive (no !<arch> header)',
      file: 'ci/bookworm/broken_1.0_all.deb',
      time: '2026-11-21T05:38:45.000Z',
    });
  });
  test('reads the older one-line format', () => {
    expect(parseReason('not an ar archive\n')).toEqual({ reason: 'not an ar archive' });
    expect(parseReason('')).toEqual({});
  });
  test('control characters never reach the report; a bad time is ignored', () => {
    expect(parseReason('reason: a\x1b[31mb\rc\nfile: x\ntime: soon\n')).toEqual({ reason: 'a [31mb c', file: 'x' });
  });
});

describe('listRejected', () => {
  test('pairs each file with its .reason, newest first, and never follows a link', async () => {
    const dir = path.join(root, 'rejected');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, '20261121T053845Z-broken_1.0_all.deb'), 'not ar\n');
    fs.writeFileSync(
      path.join(dir, '20261121T053845Z-broken_1.0_all.deb.reason'),
      'reason: not an ar archive\nfile: ci/bookworm/broken_1.0_all.deb\ntime: 2026-11-21T05:38:45Z\n',
    );
    fs.writeFileSync(path.join(dir, '20261120T000000Z-old.deb'), 'x');
    fs.writeFileSync(path.join(dir, '20261120T000000Z-old.deb.reason'), 'too old\n');
    fs.utimesSync(path.join(dir, '20261120T000000Z-old.deb.reason'), new Date('2026-11-20T00:00:00Z'), new Date('2026-11-20T00:00:00Z'));
    // A .reason that is a link to a secret: never read (what apt-ops status as root printed before).
    const secret = path.join(root, 'shadow');
    fs.writeFileSync(secret, 'root:$6$secret:19000:0:99999:7:::\n');
    fs.writeFileSync(path.join(dir, '20261122T000000Z-planted.deb'), 'y');
    fs.symlinkSync(secret, path.join(dir, '20261122T000000Z-planted.deb.reason'));
    fs.writeFileSync(path.join(dir, '.20261122T000000Z-tmp.deb.part'), '');
    const list = listRejected(dir);
    expect(list.map((r) => r.name)).toEqual([
      '20261122T000000Z-planted.deb',
      '20261121T053845Z-broken_1.0_all.deb',
      '20261120T000000Z-old.deb',
    ]);
    expect(list[0].reason).toBeUndefined();
    expect(JSON.stringify(list)).not.toContain('secret');
    expect(list[1]).toEqual({
      name: '20261121T053845Z-broken_1.0_all.deb',
      file: 'ci/bookworm/broken_1.0_all.deb',
      size: 7,
      date: '2026-11-21T05:38:45.000Z',
      reason: 'not an ar archive',
    });
    expect(list[2]).toEqual({
      name: '20261120T000000Z-old.deb',
      file: undefined,
      size: 1,
      date: '2026-11-20T00:00:00.000Z',
      reason: 'too old',
    });
    expect(listRejected(path.join(root, 'none'))).toEqual([]);
  });
});

test('diskUse counts every inode once, like du -sb', () => {
  const d = path.join(root, 'w');
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'a'), Buffer.alloc(1000));
  fs.linkSync(path.join(d, 'a'), path.join(d, 'b'));
  const dirSize = fs.lstatSync(d).size;
  expect(diskUse(d)).toBe(dirSize + 1000);
});

test('channelStatus of a fresh pair: nothing published, pending 0, lock free then held', async () => {
  await initChannel({ root, channel: 'preprod' });
  const prod = await initChannel({ root, channel: 'prod', upstream: 'preprod' });
  const s = await channelStatus(root, prod);
  expect(s).toMatchObject({
    channel: 'prod',
    webRoot: prod.webRoot,
    generationsKept: 0,
    pair: { upstream: 'preprod', downstream: 'prod' },
    pending: 0,
    channels: { prod: {}, preprod: {} },
    rejectedDir: prod.rejectedDir,
    rejectedCount: 0,
    rejected: [],
    problems: [],
  });
  expect(s.current).toBeUndefined();
  expect(s.lock).toBeUndefined();
  fs.writeFileSync(
    path.join(prod.stateDir, 'lock'),
    JSON.stringify({ pid: 77, host: 'repo', start: '1', since: '2026-11-21T05:00:00.000Z' }),
  );
  expect(lockHolder(prod)).toEqual({ pid: 77, host: 'repo', since: '2026-11-21T05:00:00.000Z' });
});

test('channelStatus: no pair (a usage error, its subclasses included) is no problem; any other pairing error is one', async () => {
  const ch = await initChannel({ root, channel: 'lonely' });
  expect((await channelStatus(root, ch)).problems).toEqual([]);
  const pairing = jest.spyOn(channelModule, 'resolveChannelPair');
  try {
    pairing.mockRejectedValueOnce(new UnknownChannelError('gone', root, ['lonely'], 'no folder'));
    const s = await channelStatus(root, ch);
    expect([s.problems, s.pair, s.pending]).toEqual([[], undefined, undefined]);
    pairing.mockRejectedValueOnce(new ConfigError('/x/repo.yaml', 'not valid YAML'));
    expect((await channelStatus(root, ch)).problems).toEqual(['pending: /x/repo.yaml: not valid YAML']);
  } finally {
    pairing.mockRestore();
  }
});

test('channelStatus counts drift when the channel has an expected-state manifest, and omits it otherwise', async () => {
  const ch = await initChannel({ root, channel: 'preprod' });
  expect(Object.keys(await channelStatus(root, ch))).not.toContain('drift');
  const repoYaml = path.join(ch.configDir, 'repo.yaml');
  const manifest = path.join(ch.configDir, EXPECTED_STATE_FILE);
  const write = (channel: string) =>
    fs.writeFileSync(
      manifest,
      JSON.stringify({
        format: 1,
        channel,
        root,
        secretDigests: path.join(ch.configDir, 'secret-digests'),
        entries: [
          {
            type: 'file',
            path: repoYaml,
            mode: '0644',
            owner: 'root',
            group: 'root',
            sha256: createHash('sha256').update(fs.readFileSync(repoYaml)).digest('hex'),
            step: 'repo-config',
          },
          { type: 'file', path: path.join(ch.configDir, 'gone'), mode: '0644', owner: 'root', group: 'root', step: 'repo-config' },
        ],
      }),
    );
  write('preprod');
  fs.chmodSync(repoYaml, 0o644);
  let s = await channelStatus(root, ch);
  expect([s.drift, s.problems]).toEqual([{ differences: 1, notChecked: 0 }, []]);
  fs.appendFileSync(repoYaml, '# edited by hand\n');
  s = await channelStatus(root, ch);
  expect(s.drift).toEqual({ differences: 2, notChecked: 0 });
  // Another channel's manifest, or one that does not parse: a problem line, no drift count.
  write('prod');
  s = await channelStatus(root, ch);
  expect([s.drift, s.problems]).toEqual([
    undefined,
    [expect.stringMatching(/^drift: .*expected-state\.json is the expected state of channel 'prod'/)],
  ]);
  fs.writeFileSync(manifest, '{');
  s = await channelStatus(root, ch);
  expect([s.drift, s.problems]).toEqual([
    undefined,
    [expect.stringMatching(/^drift: .*expected-state\.json: not an expected-state manifest: not JSON/)],
  ]);
});

describe('channelStatus after real work: figures equal what the tree holds', () => {
  const { execFileSync } = require('child_process') as typeof import('child_process');
  const { buildDeb } = require('../../../test/harness/debs') as typeof import('../../../test/harness/debs');

  test('index counts per codename and architecture, last ingest and who ran it, disk by part, last backup, signing key, Valid-Until', async () => {
    const { generateSigningKey } = await import('../sign/keys');
    const { ingest } = await import('./ingest');
    const { backup } = await import('./backup');
    const ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64', 'arm64'] });
    fs.appendFileSync(path.join(ch.configDir, 'repo.yaml'), 'validUntilDays: 30\n');
    const loaded = await channelModule.loadChannel({ root, channel: 'preprod' });
    const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
    fs.writeFileSync(loaded.signingKeyFile, key.privateArmored, { mode: 0o600 });
    const ascFile = path.join(loaded.webRoot, `${loaded.keyName}-archive-keyring.asc`);
    fs.writeFileSync(ascFile, key.publicArmored);
    const ci = path.join(loaded.incomingDir, 'ci');
    buildDeb(ci, { name: 'app', version: '1.0' });
    buildDeb(ci, { name: 'app', version: '1.1' });
    buildDeb(ci, { name: 'tool', version: '2', architecture: 'amd64' });
    buildDeb(ci, { name: 'armonly', version: '1', architecture: 'arm64' });
    buildDeb(path.join(ci, 'bullseye'), { name: 'legacy', version: '3' });
    fs.writeFileSync(path.join(ci, 'junk_1_all.deb'), 'not a deb');
    const saved = process.env.SUDO_USER;
    process.env.SUDO_USER = 'alice';
    try {
      await ingest(loaded, { settleMs: 0 });
    } finally {
      if (saved === undefined) delete process.env.SUDO_USER;
      else process.env.SUDO_USER = saved;
    }
    const made = await backup(loaded, loaded.backupDir, { warn: () => undefined });

    const s = await channelStatus(root, loaded);
    expect(s.problems).toEqual([]);
    // Counts: what the served Packages files hold, counted here independently.
    for (const codename of loaded.codenames) {
      for (const arch of loaded.architectures) {
        const text = fs.readFileSync(path.join(loaded.webRoot, 'dists', codename, 'main', `binary-${arch}`, 'Packages'), 'utf8');
        const names = [...text.matchAll(/^Package: (.+)$/gm)].map((m) => m[1]);
        expect([codename, arch, s.counts?.[codename]?.[arch]]).toEqual([
          codename,
          arch,
          { packages: new Set(names).size, versions: names.length },
        ]);
      }
    }
    expect(s.counts?.bookworm.amd64).toEqual({ packages: 2, versions: 3 });
    expect(s.counts?.bullseye.arm64).toEqual({ packages: 3, versions: 4 });
    expect(s.lastIngest).toMatchObject({ who: 'alice', accepted: 5, rejected: 1, generation: s.current?.id });
    // Disk by part, against du's apparent sizes (each inode once).
    const du = (p: string) => Number(execFileSync('du', ['-sb', p]).toString().split('\t')[0]);
    expect(s.disk).toEqual({
      pool: du(path.join(loaded.webRoot, 'pool')),
      generations: du(path.join(loaded.webRoot, '.generations')),
      trash: 0,
      backups: du(loaded.backupDir),
    });
    expect(s.lastBackup).toMatchObject({ stamp: made.stamp, generation: s.current?.id });
    expect(s.lastBackup!.ageSeconds).toBeLessThan(120);
    // The key as gpg shows it.
    const gpg = execFileSync('gpg', ['--batch', '--with-colons', '--show-keys', ascFile], {
      env: { ...process.env, GNUPGHOME: root },
    }).toString();
    const fpr = /^fpr:+([0-9A-F]+):/m.exec(gpg)![1];
    expect(s.signingKey).toEqual({ fingerprint: fpr, algorithm: expect.stringMatching(/^(eddsa|ed25519)/) });
    // Valid-Until: the earliest of the served Releases.
    const validUntil = loaded.codenames
      .map((c) => /^Valid-Until: (.+)$/m.exec(fs.readFileSync(path.join(loaded.webRoot, 'dists', c, 'Release'), 'utf8'))![1])
      .map((d) => Date.parse(d))
      .sort()[0];
    expect(Date.parse(s.validUntil!.date)).toBe(validUntil);
    expect(Date.parse(s.validUntil!.refreshAt!)).toBe(validUntil - 10 * 86_400_000);
    // The catalogue describes the served generation.
    expect(s.catalogue).toEqual({ generation: s.current?.id, builtAt: expect.any(String), current: true });
  });
});
