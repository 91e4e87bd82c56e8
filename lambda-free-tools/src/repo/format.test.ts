/**
 * The package-format seam (core/format.ts) proved with a test double: a toy format whose
 * "packages" are small JSON files and whose versions are plain integers ordered numerically
 * (so `10` is newer than `9`, which byte order would not say). ingest → publish → pending →
 * promote → versions run on it unchanged: the channel modules take the format from the channel
 * (repo/format.ts formatOf) and name no format themselves.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import type { PackageFormat, PackageIdentity, PackageRead } from '../core/format';
import type { ChannelConfig } from '../core/types';
import { initChannel } from './channel';
import { formatOf } from './format';
import { ingest } from './ingest';
import { pendingPackages } from './pending';
import { parsePackageSpec, promote } from './promote';
import { versionsIn } from './versions';
import { generateSigningKey } from '../sign/keys';

const NAME = /^[a-z][a-z0-9-]*$/;
const VERSION = /^[1-9][0-9]*$/;

function field(control: [string, string][], name: string): string | undefined {
  return control.find(([k]) => k === name)?.[1];
}

function readToy(file: string, opts: { fd?: number } = {}): PackageRead {
  const bytes = opts.fd === undefined ? fs.readFileSync(file) : fs.readFileSync(opts.fd);
  const j = JSON.parse(bytes.toString('utf8')) as { name: string; version: string; arch: string };
  if (!NAME.test(j.name) || !VERSION.test(j.version))
    throw Object.assign(new Error(`${file}: not a toy package`), { reason: 'not a toy package' });
  const h = (a: string) => createHash(a).update(bytes).digest('hex');
  return {
    control: [
      ['Name', j.name],
      ['Version', j.version],
      ['Arch', j.arch],
    ],
    size: bytes.length,
    digests: { MD5sum: h('md5'), SHA1: h('sha1'), SHA256: h('sha256') },
  };
}

/** The test double: nothing Debian in it. */
const toyFormat: PackageFormat = {
  id: 'toy',
  extension: '.toy.json',
  nameRule: 'toy names',
  versionRule: 'toy versions',
  versionKind: 'toy',
  read: async (file, opts) => readToy(file, opts),
  async readMany(files, opts) {
    files.forEach((f, i) => {
      let r: PackageRead | Error;
      try {
        r = readToy(f);
      } catch (e) {
        r = e as Error;
      }
      opts.onResult(i, r);
    });
  },
  identify(control): PackageIdentity | string {
    const name = field(control, 'Name');
    const version = field(control, 'Version');
    const architecture = field(control, 'Arch');
    if (!name || !version || !architecture) return 'incomplete toy control';
    return { name, version, architecture, source: name };
  },
  isValidName: (n) => NAME.test(n),
  isValidVersion: (v) => VERSION.test(v),
  compareVersions: (a, b) => Number(a) - Number(b),
  versionKey: (v) => String(Number(v)),
  poolPath: (p, component, codename) =>
    ['pool', component, p.name, ...(codename ? [codename] : []), `${p.name}-${p.version}.${p.architecture}.toy.json`].join('/'),
  renderIndexEntry: (e) =>
    `Package: ${field(e.control, 'Name')}\nVersion: ${field(e.control, 'Version')}\nArchitecture: ${field(e.control, 'Arch')}\nFilename: ${e.filename}\nSize: ${e.size}\nSHA256: ${e.digests.SHA256}\n`,
};

let root: string;
let up: ChannelConfig;
let down: ChannelConfig;

beforeAll(async () => {
  root = mkTemp('format-test');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  const preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  up = { ...preprod, format: toyFormat };
  down = { ...prod, format: toyFormat };
  const drop = path.join(up.incomingDir, 'ci');
  fs.mkdirSync(drop, { recursive: true });
  for (const v of ['1', '9', '10'])
    fs.writeFileSync(path.join(drop, `app_${v}.toy.json`), JSON.stringify({ name: 'app', version: v, arch: 'all' }));
  fs.writeFileSync(path.join(drop, 'ignored.deb'), "a Debian file is not this channel's format");
});
afterAll(() => rmTemp(root));

test('a channel is Debian unless it names another format', () => {
  expect(formatOf({}).id).toBe('deb');
  expect(formatOf(up)).toBe(toyFormat);
});

test('ingest, publish, pending, promote and versions run on a test double format', async () => {
  const r = await ingest(up, { settleMs: 0 });
  expect(r.entries.map((e) => [e.status, e.file, e.poolPath])).toEqual([
    ['accepted', 'ci/app_1.toy.json', 'pool/main/app/app-1.all.toy.json'],
    ['accepted', 'ci/app_10.toy.json', 'pool/main/app/app-10.all.toy.json'],
    ['accepted', 'ci/app_9.toy.json', 'pool/main/app/app-9.all.toy.json'],
    ['skipped', 'ci/ignored.deb', undefined],
  ]);
  // The published index holds the format's entries, in the format's version order.
  const packages = fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  expect([...packages.matchAll(/^Version: (\d+)$/gm)].map((m) => m[1])).toEqual(['1', '9', '10']);
  expect(packages).toContain('Filename: pool/main/app/app-10.all.toy.json\n');

  const pending = await pendingPackages({ upstream: up, downstream: down });
  expect(pending.problems).toEqual([]);
  expect(pending.rows.map((p) => p.version)).toEqual(['10', '9', '1']);

  expect(() => parsePackageSpec('App', false, toyFormat)).toThrow(/toy names/);
  const p = await promote({ upstream: up, downstream: down }, [parsePackageSpec('app', false, toyFormat)]);
  expect(p.promoted.map((x) => [x.version, x.how, x.poolPath])).toEqual([['10', 'linked', 'pool/main/app/app-10.all.toy.json']]);
  expect(fs.statSync(path.join(down.webRoot, 'pool/main/app/app-10.all.toy.json')).ino).toBe(
    fs.statSync(path.join(up.webRoot, 'pool/main/app/app-10.all.toy.json')).ino,
  );
  expect((await pendingPackages({ upstream: up, downstream: down })).rows.map((x) => x.version)).toEqual(['9', '1']);

  const versions = await versionsIn([up, down], 'app');
  expect(versions.map((v) => [v.version, v.channels])).toEqual([
    ['10', ['preprod', 'prod']],
    ['9', ['preprod']],
    ['1', ['preprod']],
  ]);
});
