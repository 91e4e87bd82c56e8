import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../test/harness/cli';
import { buildDeb } from '../../../test/harness/debs';
import { DebError } from '../errors';
import { readDeb, type DebInfo } from './debfile';
import { readDebs } from './parallel';

let dir: string;
let files: string[];

beforeAll(() => {
  dir = mkTemp('parallel-debs');
  const compressions = ['gzip', 'xz', 'zstd', 'none'] as const;
  files = Array.from({ length: 40 }, (_, i) =>
    buildDeb(dir, {
      name: `par${i}`,
      version: `1.${i}-1`,
      compression: compressions[i % 4],
      payloadBytes: 1000 + i * 50,
    }),
  );
  // A bad file in the middle: its error must come back at its index, the others unaffected.
  const bad = path.join(dir, 'bad_1.0_all.deb');
  fs.writeFileSync(bad, 'not a deb');
  files.splice(17, 0, bad);
});
afterAll(() => rmTemp(dir));

test('readDebs on the calling thread: every result at its index, the same as readDeb, errors as DebError', async () => {
  const got = new Map<number, DebInfo | Error>();
  await readDebs(files, { onResult: (i, r) => got.set(i, r) });
  expect(got.size).toBe(files.length);
  for (let i = 0; i < files.length; i++) {
    const r = got.get(i)!;
    if (i === 17) {
      expect(r).toBeInstanceOf(DebError);
      expect((r as DebError).file).toBe(files[17]);
      continue;
    }
    expect(r).toEqual(await readDeb(files[i]));
  }
});

test('publish through the bundle reads with worker threads and writes the same Packages as without them', async () => {
  const packagesWith = async (workers: string): Promise<string> => {
    const root = mkTemp('parallel-publish');
    try {
      expect((await runCli(['--root', root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64'])).code).toBe(0);
      expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
      const pool = path.join(root, 'srv/apt/preprod/pool/main/p');
      fs.mkdirSync(pool, { recursive: true });
      for (const f of files) fs.copyFileSync(f, path.join(pool, path.basename(f)));
      const r = await runCli(['--root', root, 'publish', '--skip-invalid'], { env: { APT_REPO_READ_WORKERS: workers } });
      expect(r.code).toBe(0);
      // The bad file is reported once, with its path, whichever thread read it.
      expect(r.stderr.match(/bad_1\.0_all\.deb/g)).toHaveLength(1);
      expect(r.stdout).toMatch(/^bookworm\s+40$/m);
      return fs.readFileSync(path.join(root, 'srv/apt/preprod/dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    } finally {
      rmTemp(root);
    }
  };
  const inProcess = await packagesWith('0');
  const twoWorkers = await packagesWith('2');
  expect(inProcess.match(/^Package: /gm)).toHaveLength(40);
  expect(twoWorkers).toBe(inProcess);
}, 120000);

test("an error thrown by onResult rejects readDebs; it is never passed back as the file's result", async () => {
  const calls: [number, DebInfo | Error][] = [];
  const boom = new Error('callback failed');
  const err = await readDebs(files.slice(0, 3), {
    onResult: (i, r) => {
      calls.push([i, r]);
      if (i === 1) throw boom;
    },
  }).catch((e: unknown) => e);
  expect(err).toBe(boom);
  expect(calls.map(([i]) => i)).toEqual([0, 1]);
  expect(calls.every(([, r]) => !(r instanceof Error))).toBe(true);
});
