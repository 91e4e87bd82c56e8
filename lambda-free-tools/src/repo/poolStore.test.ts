/**
 * The pool cache as the store of the pool's contents (PoolCache.markListed / isListingOf): a
 * publish without problems marks the cache as the pool of the generation it wrote, and the next
 * writer of the channel (ingest, promote) takes the pool from it instead of listing and stat-ing
 * every file, as long as that generation is served and no run without the lock rewrote the cache.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { generateSigningKey } from '../sign/keys';
import { ingest } from './ingest';
import { publish } from './publish';
import { rollback } from './rollback';
import { scanPool } from './pool';
import { currentGeneration } from './generations';
import { readPoolStore } from './cache';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
let t = Date.now();
/** Each publish one second later than the last (rollback needs distinct Release dates). */
const later = () => new Date((t += 2000));

const cacheFile = () => readPoolStore(ch.stateDir);
const served = () => fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
const names = () => [...served().matchAll(/^Package: (.+)\nVersion: (.+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
const drop = (name: string, version: string) => buildDeb(path.join(ch.incomingDir, 'ci'), { name, version });
/** A valid package put into the pool behind apt-repo's back (not through a writer). */
const plant = (name: string, version: string) => {
  const dir = path.join(ch.webRoot, 'pool/main', name[0], name);
  fs.mkdirSync(dir, { recursive: true });
  return buildDeb(dir, { name, version });
};

beforeEach(async () => {
  root = mkTemp('pool-store');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
  drop('hello', '1.0');
  await ingest(ch, { settleMs: 0, now: later() });
});
afterEach(() => rmTemp(root));

test('a publish marks the cache as the pool it serves; the next ingest or publish takes the pool from it, publish --rescan lists it', async () => {
  expect(cacheFile().listedFor).toBe(await currentGeneration(ch));
  // Behind apt-repo's back: the next ingest does not list the pool, so it does not see this file.
  plant('world', '1.0');
  drop('hello', '2.0');
  const r = await ingest(ch, { settleMs: 0, now: later() });
  expect(r.publish!.debsRead).toBe(0);
  expect(names()).toEqual(['hello 1.0', 'hello 2.0']);
  const fastText = served();
  expect(cacheFile().listedFor).toBe(await currentGeneration(ch));

  // A publish takes the pool from the store too: it reads nothing and does not see the file …
  const plain = await publish(ch, { now: later() });
  expect(plain.debsRead).toBe(0);
  expect(names()).toEqual(['hello 1.0', 'hello 2.0']);
  expect(served()).toBe(fastText);
  // Nor a link planted in the pool (the store holds only what writers placed).
  const outside = buildDeb(path.join(root, 'outside'), { name: 'evil', version: '1.0' });
  const link = path.join(ch.webRoot, 'pool/main/e/evil/evil_1.0_all.deb');
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(outside, link);
  await publish(ch, { now: later() });
  expect(served()).toBe(fastText);
  fs.rmSync(link);
  // … publish --rescan lists the pool: the planted file is published, the rest is the same text.
  const rescan = await publish(ch, { rescan: true, now: later() });
  expect(rescan.debsRead).toBe(1);
  expect(names()).toEqual(['hello 1.0', 'hello 2.0', 'world 1.0']);
  expect(served().replace(/Package: world\n(?:.+\n)+\n/, '')).toBe(fastText);
});

test('a generation written without the cache (rollback) makes the next ingest list the pool', async () => {
  drop('hello', '2.0');
  await ingest(ch, { settleMs: 0, now: later() });
  await rollback(ch, { now: later() });
  expect(cacheFile().listedFor).not.toBe(await currentGeneration(ch));
  plant('world', '1.0');
  drop('hello', '3.0');
  await ingest(ch, { settleMs: 0, now: later() });
  // Listed: the planted file is seen (and hello 2.0, which the rollback withdrew but left in the pool, comes back).
  expect(names()).toEqual(['hello 1.0', 'hello 2.0', 'hello 3.0', 'world 1.0']);
});

test('a run without the lock (pending, versions) reads the store and never writes it', async () => {
  const stateFiles = () => fs.readdirSync(ch.stateDir).map((f) => [f, fs.readFileSync(path.join(ch.stateDir, f), 'latin1')]);
  const before = stateFiles();
  plant('world', '1.0');
  const scan = await scanPool(ch); // lists the pool: it sees the planted file
  expect(scan.packages.map((p) => p.name)).toEqual(['hello', 'world']);
  expect(stateFiles()).toEqual(before);
  expect(cacheFile().listedFor).toBe(await currentGeneration(ch));
  // The store is the writers' view: the planted file waits for publish --rescan.
  drop('hello', '2.0');
  await ingest(ch, { settleMs: 0, now: later() });
  expect(names()).toEqual(['hello 1.0', 'hello 2.0']);
  await publish(ch, { rescan: true, now: later() });
  expect(names()).toEqual(['hello 1.0', 'hello 2.0', 'world 1.0']);
});

test('a publish whose scan found a problem does not mark the cache', async () => {
  const junk = path.join(ch.webRoot, 'pool/main/j/junk/junk_1_all.deb');
  fs.mkdirSync(path.dirname(junk), { recursive: true });
  fs.writeFileSync(junk, 'not a deb');
  await publish(ch, { rescan: true, skipInvalid: true, now: later() });
  expect(cacheFile().listedFor).not.toBe(await currentGeneration(ch));
  // So the next ingest lists the pool, finds the bad file again and refuses to publish over it.
  drop('hello', '2.0');
  await expect(ingest(ch, { settleMs: 0, now: later() })).rejects.toThrow(/junk_1_all\.deb/);
});
