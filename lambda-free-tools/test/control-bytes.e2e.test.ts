/**
 * Control bytes that are not UTF-8 (a Latin-1 Description, as old build scripts write them) reach
 * Packages exactly as dpkg-scanpackages writes them, through ingest, publish, the pool cache (a
 * republish from cache.json, and a cache written by the earlier format that decoded them as
 * U+FFFD). The .deb is built by hand (test/harness/debs.ts rawControlDeb): dpkg-deb would refuse
 * nothing here, but builds its control file from our bytes anyway.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { mkTemp, rmTemp, runCli, type RunResult } from '../../test/harness/cli';
import { rawControlDeb } from '../../test/harness/debs';
import { channelPaths } from '../src/repo/channel';

let root: string;
beforeEach(async () => {
  root = mkTemp('control-bytes');
  const ok = (r: RunResult) => expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  ok(await runCli(['--root', root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64']));
  ok(await runCli(['--root', root, 'keygen', '--type', 'ed25519']));
});
afterEach(() => rmTemp(root));

const latin1 = (s: string) => Buffer.from(s, 'latin1');
/**
 * Latin-1 bytes in Maintainer and Description (é = E9, è = E8, no-break space = A0, also at a line
 * end), valid UTF-8 beside them (C3 A9, and a UTF-8 no-break space C2 A0 ending a line: data for
 * dpkg, whose blanks are ASCII), an overlong '/' (C0 AF) and an encoded surrogate (ED A0 80).
 */
const CONTROL = Buffer.concat([
  latin1('Package: latin\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Andr\xe9 Dupr\xe9 <andre@example.org>\nInstalled-Size: 1\n'),
  latin1('Description: caf\xe9 cr\xe8me\xa0\n deuxi\xe8me ligne \xa0\n .\n valid '),
  Buffer.from('\u00e9t\u00e9 \u00a0', 'utf8'),
  latin1('\n overlong \xc0\xaf and surrogate \xed\xa0\x80\n'),
]);

const web = () => channelPaths(root, 'preprod').webRoot;
const packagesFile = () => path.join(web(), 'dists/bookworm/main/binary-amd64/Packages');

/** dpkg-scanpackages -m over the web root's pool, as bytes. */
function scanpackages(): Buffer {
  return execFileSync('dpkg-scanpackages', ['-m', 'pool'], { cwd: web(), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The published Packages without its SHA512 lines (dpkg-scanpackages writes none), as bytes. */
function published(): Buffer {
  const raw = fs.readFileSync(packagesFile());
  expect(zlib.gunzipSync(fs.readFileSync(`${packagesFile()}.gz`)).equals(raw)).toBe(true);
  const lines: Buffer[] = [];
  for (let start = 0; start < raw.length;) {
    const end = raw.indexOf(0x0a, start);
    const line = raw.subarray(start, end + 1);
    if (!line.subarray(0, 7).equals(Buffer.from('SHA512:'))) lines.push(line);
    start = end + 1;
  }
  return Buffer.concat(lines);
}

test('Packages holds the control bytes dpkg-scanpackages -m writes, after ingest, a republish from the cache and a cache of the old format', async () => {
  const drop = path.join(root, 'srv/apt/incoming/build');
  fs.mkdirSync(drop, { recursive: true });
  fs.writeFileSync(path.join(drop, 'latin_1.0-1_all.deb'), await rawControlDeb(CONTROL));
  const ingest = await runCli(['--root', root, '--json', 'ingest', '--settle-ms', '0']);
  expect({ code: ingest.code, stderr: ingest.stderr }).toEqual({ code: 0, stderr: '' });

  const expected = scanpackages();
  expect(expected.includes(latin1('Andr\xe9 Dupr\xe9'))).toBe(true); // the case under test is really there
  expect(expected.includes(latin1(' deuxi\xe8me ligne \xa0\n'))).toBe(true);
  expect(published().equals(expected)).toBe(true);
  expect((await runCli(['--root', root, 'verify'])).code).toBe(0);

  // A republish takes the file from cache.json (not read again) and writes the same bytes.
  const again = await runCli(['--root', root, '--json', 'publish']);
  expect(again.code).toBe(0);
  expect((JSON.parse(again.stdout) as { debsRead: number }).debsRead).toBe(0);
  expect(published().equals(expected)).toBe(true);

  // A cache.json of the earlier format (control decoded as UTF-8: each bad byte became U+FFFD):
  // that file is read again, and Packages keeps the bytes.
  const cacheFile = path.join(root, 'var/lib/apt-repo/preprod/cache.json');
  const cache = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as {
    version: number;
    entries: Record<string, { control?: [string, string][]; controlJson?: string; id?: string[]; stanza?: string }>;
  };
  // Format 1 kept control as pairs (no JSON text, no identity beside it).
  const entry = cache.entries['pool/main/l/latin/latin_1.0-1_all.deb'];
  const pairs = JSON.parse(entry.controlJson!) as [string, string][];
  entry.control = pairs.map(([k, v]) => [k, v.replace(/[\udc80-\udcff]/gu, '\ufffd')]);
  delete entry.controlJson;
  delete entry.id;
  delete entry.stanza;
  fs.writeFileSync(cacheFile, JSON.stringify({ ...cache, version: 1 }));
  const upgraded = await runCli(['--root', root, '--json', 'publish']);
  expect(upgraded.code).toBe(0);
  expect((JSON.parse(upgraded.stdout) as { debsRead: number }).debsRead).toBe(1);
  expect(published().equals(expected)).toBe(true);

  // Human output shows the text (the bad bytes as U+FFFD); it does not fail.
  const versions = await runCli(['--root', root, 'versions', 'latin']);
  expect(versions.code).toBe(0);
  expect(versions.stdout).toContain('1.0-1');
});
