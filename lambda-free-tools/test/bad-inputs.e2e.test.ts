/**
 * Bad pool files through the real CLI: each publish attempt fails with exit 1 and a message that
 * names the file and what is wrong, and the published index stays the previous, valid generation.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { pack } from 'tar-stream';
import { arArchive, buildDeb } from '../../test/harness/debs';
import { mkTemp, rmTemp, runCli } from '../../test/harness/cli';
import { channelPaths } from '../src/repo/channel';

/** A gzip-compressed tar holding `./control` with the given text (no validation, on purpose). */
async function controlTarGz(control: string): Promise<Buffer> {
  const p = pack();
  p.entry({ name: './control', mode: 0o644 }, control);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return zlib.gzipSync(Buffer.concat(chunks));
}

async function handMadeDeb(control: string): Promise<Buffer> {
  const emptyData = zlib.gzipSync(Buffer.alloc(1024));
  return arArchive([
    ['debian-binary', '2.0\n'],
    ['control.tar.gz', await controlTarGz(control)],
    ['data.tar.gz', emptyData],
  ]);
}

let root: string;
let pool: string;
let debs: string;
const cli = (...args: string[]) => runCli(['--root', root, ...args]);
const currentTarget = () => fs.readlinkSync(path.join(channelPaths(root, 'preprod').webRoot, 'dists'));
/** verify's problems: the served index is valid when the only ones are the refused files, which no generation serves (issue 9). */
const verifyProblems = async () => JSON.parse((await cli('--json', 'verify')).stdout).problems as string[];
const unservedLine = (f: string) =>
  `${f}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`;

beforeAll(async () => {
  root = mkTemp('bad-inputs');
  debs = mkTemp('bad-inputs-debs');
  expect((await cli('init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64')).code).toBe(0);
  expect((await cli('keygen', '--type', 'ed25519')).code).toBe(0);
  pool = path.join(channelPaths(root, 'preprod').webRoot, 'pool/main');
  const good = buildDeb(debs, { name: 'good', version: '1.0-1', architecture: 'amd64' });
  fs.mkdirSync(path.join(pool, 'g/good'), { recursive: true });
  fs.copyFileSync(good, path.join(pool, 'g/good', path.basename(good)));
  expect((await cli('publish', '--rescan')).code).toBe(0);
});

afterAll(() => {
  rmTemp(root);
  rmTemp(debs);
});

const fullDeb = () => fs.readFileSync(buildDeb(debs, { name: 'whole', version: '2.0-1', architecture: 'amd64', payloadBytes: 20000 }));

const cases: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
  ['empty file', () => Buffer.alloc(0), /empty/i],
  ['random bytes', () => crypto.randomBytes(4096), /not an ar archive/i],
  ['truncated deb', () => fullDeb().subarray(0, 2000), /truncated/i],
  [
    'deb without control member',
    () =>
      arArchive([
        ['debian-binary', '2.0\n'],
        ['data.tar.gz', zlib.gzipSync(Buffer.alloc(1024))],
      ]),
    /control/i,
  ],
  ['control without Package', () => handMadeDeb('Version: 1.0\nArchitecture: amd64\nDescription: x\n'), /Package/],
  ['control without Version', () => handMadeDeb('Package: nov\nArchitecture: amd64\nDescription: x\n'), /Version/],
  ['control without Architecture', () => handMadeDeb('Package: noarch\nVersion: 1.0\nDescription: x\n'), /Architecture/],
  ['invalid version string', () => handMadeDeb('Package: badver\nVersion: 1.0 beta\nArchitecture: amd64\nDescription: x\n'), /version/i],
];

test.each(cases)(
  '%s: publish names the file and the reason, exits 1, and the published index stays valid',
  async (_label, make, reason) => {
    const before = currentTarget();
    const file = path.join(pool, 'b/bad', `bad-${crypto.randomBytes(3).toString('hex')}_1.0_amd64.deb`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, await make());
    try {
      const r = await cli('publish', '--rescan');
      expect(r.code).toBe(1);
      const line = r.stderr.split('\n').find((l) => l.includes(file));
      expect(line).toBeDefined();
      expect(line).toMatch(reason);
      expect(currentTarget()).toBe(before);
      expect(await verifyProblems()).toEqual([unservedLine(file)]);
    } finally {
      fs.rmSync(file);
    }
  },
);

test('same name, version and architecture with different content: publish refuses naming both files, index unchanged', async () => {
  const before = currentTarget();
  const other = buildDeb(mkTemp('bad-inputs-other'), {
    name: 'good',
    version: '1.0-1',
    architecture: 'amd64',
    description: 'a different build',
  });
  const dup = path.join(pool, 'g/good/copy/good_1.0-1_amd64.deb');
  fs.mkdirSync(path.dirname(dup), { recursive: true });
  fs.copyFileSync(other, dup);
  try {
    const r = await cli('publish', '--rescan');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(dup);
    expect(r.stderr).toContain('good_1.0-1_amd64.deb');
    expect(currentTarget()).toBe(before);
    expect(await verifyProblems()).toEqual([unservedLine(dup)]);
  } finally {
    fs.rmSync(path.dirname(dup), { recursive: true });
    rmTemp(path.dirname(other));
  }
  // With the bad files gone, the next publish succeeds.
  expect((await cli('publish', '--rescan')).code).toBe(0);
});
