/**
 * Rollback as an apt client sees it: the bundled `apt-repo` publishes three generations of a
 * package, a real nginx serves the web root, and an isolated `apt-get` (APT_CONFIG, see
 * test/harness/apt.ts) that already ran `apt-get update` on the newest generation must see the
 * earlier candidate after `rollback` and one more `apt-get update`: apt keeps a Release newer than
 * the one it is offered, so rollback has to publish a new generation with a fresh Date, and keep
 * the current indexes in by-hash so the update never hits a Hash Sum mismatch.
 */
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { AptClient, createAptClient, oneLineSource, aptProblems } from '../../test/harness/apt';
import { NginxServer, startNginx, staticServerBlock } from '../../test/harness/nginx';
import { channelPaths } from '../src/repo/channel';

/** Fails with the CLI's output when a command did not exit 0. */
describe('rollback reaches apt clients that already updated', () => {
  let root: string;
  let webRoot: string;
  let nginx: NginxServer;
  let client: AptClient;
  /** Generation ids published by ingest, for app 1.0, 1.1 and 1.2 in turn. */
  const published: string[] = [];

  const cli = (...args: string[]) => runCli(['--root', root, '--channel', 'preprod', ...args]);
  const json = async (...args: string[]) => JSON.parse(ok(await cli('--json', ...args), args.join(' ')).stdout);
  /** `apt-get update` without any apt warning or error, then the candidate version of app. */
  async function candidateAfterUpdate(): Promise<string> {
    const update = await client.update();
    expect({ code: update.code, problems: aptProblems(update) }).toEqual({ code: 0, problems: [] });
    const policy = (await client.policy('app')).stdout;
    const m = /Candidate: (\S+)/.exec(policy);
    if (!m) throw new Error(`no candidate for app:\n${policy}`);
    return m[1];
  }

  beforeAll(async () => {
    root = mkTemp('rollback-apt-e2e');
    webRoot = channelPaths(root, 'preprod').webRoot;
    ok(await cli('init', '--codenames', 'bookworm', '--architectures', 'amd64'), 'init');
    ok(await cli('keygen'), 'keygen');
    for (const version of ['1.0-1', '1.1-1', '1.2-1']) {
      // Release's Date has whole seconds: one publish per second, as in real life, so each
      // generation's Date is newer than the one before (the situation apt's rule is about).
      if (published.length) await new Promise((r) => setTimeout(r, 1100));
      buildDeb(path.join(channelPaths(root, 'preprod').incomingDir, 'ci'), { name: 'app', version });
      published.push((await json('ingest', '--settle-ms', '0')).generation);
    }
    nginx = await startNginx({ serverBlocks: (port) => staticServerBlock(port, webRoot) });
    const keyring = fs.readdirSync(webRoot).find((f) => f.endsWith('-archive-keyring.gpg'))!;
    client = createAptClient({ sources: oneLineSource(`${nginx.url}/`, 'bookworm', { signedBy: path.join(webRoot, keyring) }) });
  });

  afterAll(async () => {
    client?.dispose();
    await nginx?.stop();
    if (root) rmTemp(root);
  });

  test('a client updated on generation N sees N-1 after rollback and one update; twice, --to, forward again', async () => {
    expect(await candidateAfterUpdate()).toBe('1.2-1');

    // Why a re-point is not enough: `dists` pointed back at N-1 itself (what rollback used to do)
    // offers a Release older than the one this client holds, and apt keeps its newer one.
    const dists = path.join(webRoot, 'dists');
    fs.symlinkSync(`.generations/${published[1]}/dists`, `${dists}.test`);
    fs.renameSync(`${dists}.test`, dists);
    const stale = await client.update();
    expect(stale.code).toBe(0);
    expect((await client.policy('app')).stdout).toMatch(/Candidate: 1\.2-1/);
    fs.symlinkSync(`.generations/${published[2]}/dists`, `${dists}.test`);
    fs.renameSync(`${dists}.test`, dists);

    const first = await json('rollback');
    expect(first).toMatchObject({ from: published[2], to: published[1], rolledBackFrom: published[1] });
    expect(published).not.toContain(first.generation);
    expect(await candidateAfterUpdate()).toBe('1.1-1');
    // Every version stays installable: the rolled-back-from version is just not in the index.
    expect((await client.installSimulate('app')).stdout).toMatch(/^Inst app \(1\.1-1 /m);

    const gens = await json('generations');
    expect(gens[0]).toMatchObject({ id: first.generation, current: true, rolledBackFrom: published[1] });
    expect((await cli('generations')).stdout).toMatch(new RegExp(`^\\*\\s+${first.generation}\\s.*rollback to ${published[1]}$`, 'm'));
    ok(await cli('verify'), 'verify after rollback');

    // A second rollback goes one more step back, not forward to the generation rolled back from.
    const second = await json('rollback');
    expect(second).toMatchObject({ from: first.generation, to: published[0], rolledBackFrom: published[0] });
    expect(await candidateAfterUpdate()).toBe('1.0-1');

    // --to an older or newer kept generation, a rollback generation included.
    const forward = await json('rollback', '--to', published[2]);
    expect(forward.rolledBackFrom).toBe(published[2]);
    expect(await candidateAfterUpdate()).toBe('1.2-1');
    const again = await json('rollback', '--to', first.generation);
    expect(again.rolledBackFrom).toBe(published[1]);
    expect(await candidateAfterUpdate()).toBe('1.1-1');
    ok(await cli('verify'), 'verify after four rollbacks');

    // The next publish lists the pool again, newest version included, and the client follows.
    ok(await cli('publish'), 'publish');
    expect(await candidateAfterUpdate()).toBe('1.2-1');
  });
});
