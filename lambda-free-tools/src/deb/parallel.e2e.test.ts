/**
 * Publish through the bundled CLI (built with esbuild, run as child processes) reads the same 40
 * packages and one bad file with and without worker threads, and writes the same Packages. In the
 * e2e project: it bundles the CLI and runs it six times.
 */
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../test/harness/cli';
import { buildDebSet } from '../../../test/harness/debs';
import { channelPaths } from '../repo/channel';

let dir: string;
let files: string[];

beforeAll(() => {
  dir = mkTemp('parallel-debs');
  files = buildDebSet(dir);
});
afterAll(() => rmTemp(dir));

test('publish through the bundle reads with worker threads and writes the same Packages as without them', async () => {
  const packagesWith = async (workers: string): Promise<string> => {
    const root = mkTemp('parallel-publish');
    try {
      expect((await runCli(['--root', root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64'])).code).toBe(0);
      expect((await runCli(['--root', root, 'keygen', '--type', 'ed25519'])).code).toBe(0);
      const pool = path.join(channelPaths(root, 'preprod').webRoot, 'pool/main/p');
      fs.mkdirSync(pool, { recursive: true });
      for (const f of files) fs.copyFileSync(f, path.join(pool, path.basename(f)));
      const r = await runCli(['--root', root, 'publish', '--skip-invalid'], { env: { APT_REPO_READ_WORKERS: workers } });
      expect(r.code).toBe(0);
      // The bad file is reported once, with its path, whichever thread read it.
      expect(r.stderr.match(/bad_1\.0_all\.deb/g)).toHaveLength(1);
      expect(r.stdout).toMatch(/^bookworm\s+40$/m);
      return fs.readFileSync(path.join(channelPaths(root, 'preprod').webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    } finally {
      rmTemp(root);
    }
  };
  const inProcess = await packagesWith('0');
  const twoWorkers = await packagesWith('2');
  expect(inProcess.match(/^Package: /gm)).toHaveLength(40);
  expect(twoWorkers).toBe(inProcess);
}, 120000);
