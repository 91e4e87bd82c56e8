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
import type { IndexedPackage, IndexLayout, ListedEntry, PackageFormat, PackageIdentity, PackageRead } from '../core/format';
import { AptRepoError } from '../errors';
import type { ChannelConfig } from '../core/types';
import { initChannel } from './channel';
import { formatOf } from './format';
import { ingest } from './ingest';
import { pendingPackages } from './pending';
import { parsePackageSpec, promote } from './promote';
import { versionsIn } from './versions';
import { verifyChannel } from './verify';
import { releaseFreshness } from './freshness';
import { publish } from './publish';
import { rollback } from './rollback';
import { refreshChannel } from './resign';
import { currentGeneration, readGenerationInfo } from './generations';
import { generateSigningKey, publicKeyFileNames } from '../sign/keys';
import * as openpgp from 'openpgp';

const NAME = /^[a-z][a-z0-9-]*$/;
const VERSION = /^[1-9][0-9]*$/;

function field(control: readonly [string, string][], name: string): string | undefined {
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

/** A toy index line of one package: JSON, one per line. */
interface ToyLine {
  name: string;
  version: string;
  arch: string;
  poolPath: string;
  size: number;
  sha256: string;
}

interface ToyManifest {
  date: string;
  validUntil?: string;
  files: Record<string, { size: number; sha256: string }>;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * The toy index layout: `<codename>/<arch>.idx` (JSON lines sorted by name then numeric version),
 * `<codename>/manifest.json` (dates, each index's size and SHA256) and `<codename>/manifest.asc`
 * (the manifest clear-signed). No Release, no Packages, no by-hash.
 */
function toyLayout(): IndexLayout {
  const manifestOf = (dir: string): ToyManifest => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as ToyManifest;
  const linesOf = (text: string): ToyLine[] =>
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ToyLine);
  return {
    entryKey: 'toy-1',
    render(perCodename, architectures, cache) {
      const out = new Map<string, Map<string, string>>();
      for (const [codename, list] of perCodename) {
        const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : Number(a.version) - Number(b.version)));
        const line = (p: IndexedPackage) => {
          const cached = cache?.stanza(p.poolPath);
          if (cached !== undefined) return cached;
          const l =
            JSON.stringify({
              name: p.name,
              version: p.version,
              arch: p.architecture,
              poolPath: p.poolPath,
              size: p.size,
              sha256: p.digests.SHA256,
            }) + '\n';
          cache?.setStanza(p.poolPath, l);
          return l;
        };
        out.set(
          codename,
          new Map(
            architectures.map((a) => [
              a,
              sorted
                .filter((p) => p.architecture === a || p.architecture === 'all')
                .map(line)
                .join(''),
            ]),
          ),
        );
      }
      return out;
    },
    async write(distsDir, input, signer) {
      const dir = path.join(distsDir, input.codename);
      fs.mkdirSync(dir, { recursive: true });
      const manifest: ToyManifest = { date: input.meta.date.toISOString(), validUntil: input.meta.validUntil?.toISOString(), files: {} };
      for (const a of input.architectures) {
        const text = input.indexes.get(a) ?? '';
        fs.writeFileSync(path.join(dir, `${a}.idx`), text);
        manifest.files[a] = { size: Buffer.byteLength(text), sha256: sha256(text) };
      }
      const text = JSON.stringify(manifest);
      fs.writeFileSync(path.join(dir, 'manifest.asc'), (await signer.sign(text)).inRelease);
      fs.writeFileSync(path.join(dir, 'manifest.json'), text);
    },
    async read(distsDir, codename, shape) {
      const dir = path.join(distsDir, codename);
      const m = manifestOf(dir);
      return new Map(
        shape.architectures.map((a) => {
          const bytes = fs.readFileSync(path.join(dir, `${a}.idx`));
          if (sha256(bytes) !== m.files[a]?.sha256) throw new AptRepoError(`${dir}/${a}.idx differs from its manifest`);
          return [a, bytes.toString('utf8')];
        }),
      );
    },
    poolPathsOf: (text) => linesOf(text).map((l) => l.poolPath),
    manifestDates(distsDir, codename) {
      const file = path.join(distsDir, codename, 'manifest.json');
      if (!fs.existsSync(file)) return { file, found: false };
      const m = manifestOf(path.dirname(file));
      return { file, found: true, date: new Date(m.date), validUntil: m.validUntil ? new Date(m.validUntil) : undefined };
    },
    async verify(distsDir, codename, shape, opts) {
      const dir = path.join(distsDir, codename);
      const problems: string[] = [];
      const entries: ListedEntry[] = [];
      const m = manifestOf(dir);
      if (opts.key) {
        const message = await openpgp.readCleartextMessage({ cleartextMessage: fs.readFileSync(path.join(dir, 'manifest.asc'), 'utf8') });
        const r = await openpgp.verify({ message, verificationKeys: opts.key });
        const ok = await r.signatures[0].verified.catch(() => false);
        if (!ok || r.data !== fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) problems.push(`${dir}/manifest.asc: bad signature`);
      }
      for (const a of shape.architectures) {
        const file = path.join(dir, `${a}.idx`);
        const bytes = fs.readFileSync(file);
        if (sha256(bytes) !== m.files[a]?.sha256) problems.push(`${file}: differs from its manifest`);
        linesOf(bytes.toString('utf8')).forEach((l, i) => {
          if (!opts.isPoolPath(l.poolPath)) problems.push(`${file} line ${i + 1}: not a pool path`);
          else entries.push({ where: `${file} line ${i + 1}`, poolPath: l.poolPath, size: l.size, digests: { SHA256: l.sha256 } });
        });
      }
      return { problems, entries };
    },
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
  nameOf: (control) => field(control, 'Name'),
  identify(control): PackageIdentity | string {
    const name = field(control, 'Name');
    const version = field(control, 'Version');
    const architecture = field(control, 'Arch');
    if (!name || !version || !architecture) return 'incomplete toy control';
    return { name, version, architecture, source: name };
  },
  checkIdentity: (id) => (NAME.test(id.name) && VERSION.test(id.version) ? id : 'invalid toy identity'),
  isValidName: (n) => NAME.test(n),
  isValidVersion: (v) => VERSION.test(v),
  compareVersions: (a, b) => Number(a) - Number(b),
  versionKey: (v) => String(Number(v)),
  describe: (control) => ({ summary: field(control, 'Summary') ?? '', text: '' }),
  installCommand: (name, version) => `toy-install ${name}@${version}`,
  poolPath: (p, component, codename) =>
    ['pool', component, p.name, ...(codename ? [codename] : []), `${p.name}-${p.version}.${p.architecture}.toy.json`].join('/'),
  indexes: toyLayout(),
};

let root: string;
let up: ChannelConfig;
let down: ChannelConfig;

beforeAll(async () => {
  root = mkTemp('format-test');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  const preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc), key.publicArmored);
  }
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
  // The published index is the format's own layout, its entries in the format's version order; nothing Debian is written.
  const index = fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/amd64.idx'), 'utf8');
  expect(
    index
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { version: string }).version),
  ).toEqual(['1', '9', '10']);
  expect(index).toContain('"poolPath":"pool/main/app/app-10.all.toy.json"');
  expect(fs.readdirSync(path.join(up.webRoot, 'dists/bookworm')).sort()).toEqual(['amd64.idx', 'manifest.asc', 'manifest.json']);

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

test('verify, freshness, rollback and re-signing read the indexes through the format layout', async () => {
  // A channel published in the toy layout verifies clean: its index entries name pool files whose
  // size and SHA256 match, and every pool file is served.
  expect(await verifyChannel(up)).toEqual([]);
  // Freshness reads the layout's manifest dates (no Valid-Until here: never due).
  expect(releaseFreshness({ ...up, validUntilDays: 30 }, new Date())).toMatchObject({ due: true, kind: 'incomplete' });
  expect(releaseFreshness({ ...up, validUntilDays: 30 }, new Date()).reason).toMatch(/manifest\.json has no Valid-Until/);

  // A damaged index is found by the layout's check, and verify reports it.
  const idx = path.join(up.webRoot, 'dists/bookworm/amd64.idx');
  const saved = fs.readFileSync(idx);
  fs.writeFileSync(idx, saved.toString('utf8').replace(/\n[^\n]*\n$/, '\n'));
  expect((await verifyChannel(up)).join('\n')).toMatch(/amd64\.idx: differs from its manifest/);
  fs.writeFileSync(idx, saved);
  // The layout is given the channel's public key: a manifest changed after signing is reported.
  const manifest = path.join(up.webRoot, 'dists/bookworm/manifest.json');
  const signed = fs.readFileSync(manifest, 'utf8');
  fs.writeFileSync(manifest, signed.replace('"files"', '"x":1,"files"'));
  expect((await verifyChannel(up)).join('\n')).toMatch(/manifest\.asc: bad signature/);
  fs.writeFileSync(manifest, signed);

  // Withdraw version 10 by publishing without it, then roll back: the layout reads back what the
  // older generation served, and the new generation lists 10 again.
  const before = await currentGeneration(up);
  const pool10 = path.join(up.webRoot, 'pool/main/app/app-10.all.toy.json');
  const aside = path.join(root, 'app-10.aside');
  fs.renameSync(pool10, aside);
  await publish(up, { rescan: true, now: new Date(Date.now() + 2000) });
  expect(fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/amd64.idx'), 'utf8')).not.toContain('app-10');
  fs.renameSync(aside, pool10);
  const r = await rollback(up, { to: before, now: new Date(Date.now() + 4000) });
  expect(r.generation).not.toBe(before);
  const served = fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/amd64.idx'), 'utf8');
  expect(served).toContain('"poolPath":"pool/main/app/app-10.all.toy.json"');
  expect(readGenerationInfo(up, r.generation)!.poolPaths).toContain('pool/main/app/app-10.all.toy.json');
  expect(await verifyChannel(up)).toEqual([]);

  // Re-signing: without Valid-Until a refresh publishes; near expiry it re-signs the served indexes as they are.
  const expiring = { ...up, validUntilDays: 3 };
  expect((await refreshChannel(expiring, { now: new Date(Date.now() + 6000) })).action).toBe('published');
  const text = fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/amd64.idx'), 'utf8');
  const later = new Date(Date.now() + 2.5 * 86_400_000);
  const re = await refreshChannel(expiring, { now: later });
  expect(re.action).toBe('resigned');
  expect(fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/amd64.idx'), 'utf8')).toBe(text);
  const m = JSON.parse(fs.readFileSync(path.join(up.webRoot, 'dists/bookworm/manifest.json'), 'utf8')) as { validUntil: string };
  expect(Date.parse(m.validUntil)).toBe(later.getTime() + 3 * 86_400_000);
});
