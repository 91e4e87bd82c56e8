/**
 * End-to-end test of the channel commands through the bundled `apt-repo` CLI, each run a separate
 * process as operators run them: preprod and prod channels, uploads dropped into incoming →
 * ingest → pending → promote (hard links) → what a real apt client sees in prod through nginx →
 * rollback → versions; bad input to every command; two ingests and a promote racing as separate
 * processes; backup then restore into an empty root.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runCli, RunResult } from '../../test/harness/cli';
import { fileTree } from '../../test/harness/fileTree';
import { buildDeb } from '../../test/harness/debs';
import { AptClient, createAptClient, oneLineSource } from '../../test/harness/apt';
import { NginxServer, startNginx, staticServerBlock } from '../../test/harness/nginx';
import { channelPaths } from '../src/repo/channel';

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

const json = <T = any>(r: RunResult): T => JSON.parse(r.stdout) as T;

/** Package names listed in one Packages file of a channel's served dists. */
function packagesIn(webRoot: string, codename: string, arch = 'amd64'): string[] {
  const text = fs.readFileSync(path.join(webRoot, 'dists', codename, 'main', `binary-${arch}`, 'Packages'), 'utf8');
  return [...text.matchAll(/^Package: (.+)\nVersion: (.+)$/gm)].map((m) => `${m[1]}=${m[2]}`).sort();
}

describe('channels: ingest, pending, promote, rollback, versions, backup/restore', () => {
  let root: string;
  let build: string;
  const preprodWeb = () => channelPaths(root, 'preprod').webRoot;
  const prodWeb = () => channelPaths(root, 'prod').webRoot;
  const incoming = () => path.join(root, 'srv/apt/incoming');
  const cli = (channel: string, ...args: string[]) => runCli(['--root', root, '--channel', channel, ...args]);

  beforeAll(async () => {
    root = mkTemp('channels-e2e');
    build = mkTemp('channels-e2e-debs');
    ok(await cli('preprod', 'init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64'), 'init preprod');
    ok(await cli('prod', 'init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64', '--upstream', 'preprod'), 'init prod');
    // ed25519 keeps the test quick; the RSA default is covered by the publish tests.
    ok(await cli('preprod', 'keygen', '--type', 'ed25519'), 'keygen preprod');
    ok(await cli('prod', 'keygen', '--type', 'ed25519'), 'keygen prod');
  });
  afterAll(() => {
    rmTemp(root);
    rmTemp(build);
  });

  describe('the operator flow', () => {
    let nginx: NginxServer | undefined;
    const clients: AptClient[] = [];
    afterAll(async () => {
      for (const c of clients) c.dispose();
      await nginx?.stop();
    });

    /** A fresh isolated apt client of prod's `codename`, updated. */
    async function prodClient(codename: string): Promise<AptClient> {
      nginx ??= await startNginx({ serverBlocks: (port) => staticServerBlock(port, prodWeb()) });
      const client = createAptClient({
        sources: oneLineSource(`${nginx.url}/`, codename, { signedBy: path.join(prodWeb(), 'epiconcept-prod-archive-keyring.gpg') }),
      });
      clients.push(client);
      const u = await client.update();
      expect((u.stdout + u.stderr).split('\n').filter((l) => /^(W|E|Err):/.test(l))).toEqual([]);
      expect(u.code).toBe(0);
      return client;
    }
    const madison = async (c: AptClient, pkg: string) =>
      (await c.madison(pkg)).stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('|')[1].trim())
        .sort();

    test('drop → ingest → pending → promote (hard links, apt sees exactly it) → rollback → versions', async () => {
      const ci = path.join(incoming(), 'ci');
      buildDeb(ci, { name: 'app', version: '1.0-1' });
      buildDeb(ci, { name: 'app', version: '1.1-1' });
      buildDeb(ci, { name: 'tool', version: '2.0', architecture: 'amd64' });
      buildDeb(path.join(incoming(), 'php', 'bookworm'), { name: 'php-site', version: '3.0-1' });
      const ing = ok(await cli('preprod', '--json', 'ingest', '--settle-ms', '0'), 'ingest');
      const ingested = json(ing);
      expect(ingested.entries.map((e: any) => [e.status, e.file])).toEqual([
        ['accepted', 'ci/app_1.0-1_all.deb'],
        ['accepted', 'ci/app_1.1-1_all.deb'],
        ['accepted', 'ci/tool_2.0_amd64.deb'],
        ['accepted', 'php/bookworm/php-site_3.0-1_all.deb'],
      ]);
      expect(fs.readdirSync(ci)).toEqual([]);
      expect(packagesIn(preprodWeb(), 'bookworm')).toEqual(['app=1.0-1', 'app=1.1-1', 'php-site=3.0-1', 'tool=2.0']);
      expect(packagesIn(preprodWeb(), 'bullseye')).toEqual(['app=1.0-1', 'app=1.1-1', 'tool=2.0']);

      // pending, from either side, and the human table.
      const pendProd = json(ok(await cli('prod', '--json', 'pending'), 'pending prod'));
      const pendPre = json(ok(await cli('preprod', '--json', 'pending'), 'pending preprod'));
      expect(pendPre).toEqual(pendProd);
      expect(pendProd.pending.map((r: any) => [r.name, r.version, r.architecture, r.codenames.join(',')])).toEqual([
        ['app', '1.1-1', 'all', 'bookworm,bullseye'],
        ['app', '1.0-1', 'all', 'bookworm,bullseye'],
        ['php-site', '3.0-1', 'all', 'bookworm'],
        ['tool', '2.0', 'amd64', 'bookworm,bullseye'],
      ]);
      expect((await cli('prod', 'pending')).stdout).toMatch(/^package\s+version\s+arch\s+codenames\s+uploaded\napp\s+1\.1-1/);

      // dry run changes nothing, then promote two packages.
      const dry = json(ok(await cli('prod', '--json', 'promote', 'app', 'tool', '--dry-run'), 'promote --dry-run'));
      expect(dry.promoted.map((p: any) => p.how)).toEqual(['planned', 'planned']);
      expect(fs.existsSync(path.join(prodWeb(), 'dists'))).toBe(false);
      const prom = ok(await cli('prod', 'promote', 'app', 'tool=2.0'), 'promote');
      expect(prom.stdout).toMatch(/^live in prod/);
      expect(prom.stdout).toMatch(/app\s+1\.1-1\s+all\s+bookworm bullseye\s+linked/);
      expect(prom.stdout).toMatch(/tool\s+2\.0\s+amd64\s+bookworm bullseye\s+linked/);
      for (const f of ['pool/main/a/app/app_1.1-1_all.deb', 'pool/main/t/tool/tool_2.0_amd64.deb']) {
        expect(fs.statSync(path.join(prodWeb(), f)).ino).toBe(fs.statSync(path.join(preprodWeb(), f)).ino);
      }
      expect(fs.existsSync(path.join(prodWeb(), 'pool/main/a/app/app_1.0-1_all.deb'))).toBe(false);
      ok(await cli('prod', 'verify'), 'verify prod');
      ok(await cli('preprod', 'verify'), 'verify preprod');

      // A real apt client of prod sees exactly the promoted versions.
      const bookworm = await prodClient('bookworm');
      expect(await madison(bookworm, 'app')).toEqual(['1.1-1']);
      expect(await madison(bookworm, 'tool')).toEqual(['2.0']);
      expect(await madison(bookworm, 'php-site')).toEqual([]);
      const dl = await bookworm.download('app=1.1-1');
      expect(dl.code).toBe(0);
      expect(dl.files.map((f) => sha256(f))).toEqual([sha256(path.join(preprodWeb(), 'pool/main/a/app/app_1.1-1_all.deb'))]);

      // Promote the older version too, then roll prod back: apt sees 1.1-1 only again.
      const gensBefore = json(ok(await cli('prod', '--json', 'generations'), 'generations'));
      ok(await cli('prod', 'promote', 'app=1.0-1'), 'promote app=1.0-1');
      expect(await madison(await prodClient('bookworm'), 'app')).toEqual(['1.0-1', '1.1-1']);
      const rb = json(ok(await cli('prod', '--json', 'rollback'), 'rollback'));
      expect(rb.to).toBe(gensBefore[0].id);
      expect(await madison(await prodClient('bookworm'), 'app')).toEqual(['1.1-1']);
      ok(await cli('prod', 'verify'), 'verify after rollback');

      // versions: every channel, newest first.
      const v = json(ok(await cli('prod', '--json', 'versions', 'app'), 'versions'));
      expect(v.versions.map((r: any) => [r.version, r.channels])).toEqual([
        ['1.1-1', ['preprod', 'prod']],
        ['1.0-1', ['preprod', 'prod']],
      ]);
      expect((await cli('preprod', 'versions', 'php-site')).stdout).toMatch(/3\.0-1\s+preprod\s+all\s+preprod:bookworm/);
    });
  });

  test('bad inputs: each command says what is wrong, with the documented exit code', async () => {
    const expectFail = async (code: number, pattern: RegExp, channel: string, ...args: string[]) => {
      const r = await cli(channel, ...args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(pattern);
    };
    await expectFail(2, /package nope is in no channel/, 'preprod', 'versions', 'nope');
    await expectFail(2, /not a valid package name/, 'preprod', 'versions', 'Not_A_Name');
    await expectFail(2, /package nope is not in preprod's pool/, 'prod', 'promote', 'nope');
    await expectFail(2, /app=9\.9 is not in preprod's pool/, 'prod', 'promote', 'app=9.9');
    await expectFail(2, /not a valid Debian version/, 'prod', 'promote', 'app=1.0 beta');
    await expectFail(2, /--codename sid: channel prod does not publish it/, 'prod', 'promote', '--all-pending', '--codename', 'sid');
    await expectFail(2, /name packages/, 'prod', 'promote');
    await expectFail(2, /promote runs on the channel that receives packages: --channel prod/, 'preprod', 'promote', 'app');
    // An unknown channel is a usage error naming the configured ones (issue 9), not a missing liste_dist.
    await expectFail(2, /unknown channel 'nochannel' under --root .*known channels: preprod, prod$/m, 'nochannel', 'ingest');
    await expectFail(2, /unknown channel 'Bad!' under --root .*not a channel name/, 'Bad!', 'pending');
    await expectFail(2, /ingest is for the channel uploads land in/, 'prod', 'ingest');
    await expectFail(2, /--settle-ms x/, 'preprod', 'ingest', '--settle-ms', 'x');
    await expectFail(2, /--source nope: no folder/, 'preprod', 'ingest', '--source', 'nope');
    await expectFail(2, /give the version as app=<version>/, 'preprod', 'remove', 'app');
    await expectFail(2, /app=7 is not in preprod's pool/, 'preprod', 'remove', 'app=7');
    await expectFail(2, /add --force/, 'prod', 'remove', 'app=1.1-1');
    await expectFail(2, /generation yesterday is not kept/, 'prod', 'rollback', '--to', 'yesterday');
    await expectFail(2, /not a folder/, 'preprod', 'import', path.join(root, 'missing'));
    await expectFail(1, /manifest/, 'preprod', 'restore', '--from', path.join(root, 'missing'));
    // backup --to makes a dated folder per run (a folder holding older backups is fine), never inside what it copies.
    await expectFail(2, /itself backed up/, 'preprod', 'backup', '--to', path.join(channelPaths(root, 'preprod').webRoot, 'bk'));

    // Garbage in incoming: each rejected with its reason, nothing followed, nothing deleted.
    const ci = path.join(incoming(), 'ci');
    fs.mkdirSync(path.join(ci, 'sid'), { recursive: true });
    fs.writeFileSync(path.join(ci, 'garbage.deb'), 'this is not a debian package\n');
    const outside = path.join(root, 'outside.deb');
    fs.copyFileSync(buildDeb(build, { name: 'outside', version: '1' }), outside);
    const outsideSha = sha256(outside);
    fs.symlinkSync(outside, path.join(ci, 'escape.deb'));
    execFileSync('mkfifo', [path.join(ci, 'pipe.deb')]);
    fs.mkdirSync(path.join(ci, 'folder.deb'));
    buildDeb(path.join(ci, 'sid'), { name: 'unstable-only', version: '1' });
    fs.writeFileSync(path.join(ci, 'upload.deb.part'), 'half');
    const pre = fileTree(preprodWeb(), { modes: false });
    const r = await cli('preprod', '--json', 'ingest', '--settle-ms', '0');
    expect(r.code).toBe(1);
    const byFile = Object.fromEntries(json(r).entries.map((e: any) => [e.file, e]));
    expect(Object.fromEntries(Object.entries(byFile).map(([f, e]: [string, any]) => [f, e.status]))).toEqual({
      'ci/escape.deb': 'rejected',
      'ci/folder.deb': 'rejected',
      'ci/garbage.deb': 'rejected',
      'ci/pipe.deb': 'rejected',
      'ci/sid/unstable-only_1_all.deb': 'rejected',
      'ci/upload.deb.part': 'skipped',
    });
    expect(byFile['ci/escape.deb'].reason).toMatch(/symbolic link/);
    expect(byFile['ci/pipe.deb'].reason).toMatch(/FIFO/);
    expect(byFile['ci/folder.deb'].reason).toMatch(/directory/);
    expect(byFile['ci/sid/unstable-only_1_all.deb'].reason).toMatch(/'sid' is not in liste_dist/);
    const rejectedDir = path.join(incoming(), 'rejected');
    for (const e of Object.values(byFile) as any[]) {
      if (e.status !== 'rejected') continue;
      // contracts.md: `reason:`, `file:` (relative to incomingDir), `time:` (ISO 8601 UTC).
      expect(fs.readFileSync(`${e.movedTo}.reason`, 'utf8')).toMatch(
        new RegExp(`^reason: .+\\nfile: ${e.file}\\ntime: \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`),
      );
      expect(fs.readFileSync(`${e.movedTo}.reason`, 'utf8').split('\n')[0]).toBe(`reason: ${e.reason}`);
      expect(path.dirname(e.movedTo)).toBe(rejectedDir);
    }
    expect(sha256(outside)).toBe(outsideSha);
    expect(fs.existsSync(path.join(ci, 'upload.deb.part'))).toBe(true);
    expect(fileTree(preprodWeb(), { modes: false })).toEqual(pre); // nothing published, pool untouched
    expect((await cli('preprod', 'ingest', '--settle-ms', '0')).stdout).toMatch(/skipped\s+ci\/upload\.deb\.part/);
    fs.rmSync(path.join(ci, 'upload.deb.part'));
  });

  test('two ingests and a promote started at once: every accepted file published exactly once, verify clean', async () => {
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      buildDeb(path.join(incoming(), i % 2 ? 'ci' : 'build'), { name: `race${i}`, version: '1.0', payloadBytes: 200_000 });
      names.push(`race${i}=1.0`);
    }
    const [a, b, p] = await Promise.all([
      cli('preprod', '--json', 'ingest', '--settle-ms', '0'),
      cli('preprod', '--json', 'ingest', '--settle-ms', '0'),
      cli('prod', '--json', 'promote', 'php-site'),
    ]);
    ok(a, 'ingest A');
    ok(b, 'ingest B');
    ok(p, 'promote');
    const accepted = [...json(a).entries, ...json(b).entries]
      .filter((e: any) => e.status === 'accepted')
      .map((e: any) => `${e.package}=${e.version}`)
      .sort();
    expect(accepted).toEqual(names);
    for (const c of ['bookworm', 'bullseye']) {
      const listed = packagesIn(preprodWeb(), c).filter((n) => n.startsWith('race'));
      expect(listed).toEqual(names);
    }
    expect(json(p).promoted.map((x: any) => x.name)).toEqual(['php-site']);
    expect(packagesIn(prodWeb(), 'bookworm')).toContain('php-site=3.0-1');
    ok(await cli('preprod', 'verify'), 'verify preprod');
    ok(await cli('prod', 'verify'), 'verify prod');
  });

  test('backup then restore into an empty root: identical published files, verify clean', async () => {
    const backups = mkTemp('channels-e2e-backup');
    const root2 = mkTemp('channels-e2e-restored');
    try {
      for (const ch of ['preprod', 'prod']) ok(await cli(ch, 'backup', '--to', path.join(backups, ch)), `backup ${ch}`);
      for (const ch of ['preprod', 'prod']) {
        const r = ok(await runCli(['--root', root2, '--channel', ch, 'restore', '--from', path.join(backups, ch)]), `restore ${ch}`);
        expect(r.stdout).toMatch(/verify: clean/);
        ok(await runCli(['--root', root2, '--channel', ch, 'verify']), `verify restored ${ch}`);
      }
      for (const ch of ['preprod', 'prod']) {
        const web = channelPaths(root, ch).webRoot;
        const current = fs.readlinkSync(path.join(web, 'dists')).split('/')[1];
        // Clients reach the pool, dists (the served generation) and the keys: all must be identical.
        // The catalogue is not backed up (derived data): the restore rebuilt it, with its own build name.
        const served = (rel: string) =>
          (rel.startsWith('.generations/') && !rel.startsWith(`.generations/${current}`)) ||
          rel === 'catalogue' ||
          rel.startsWith('.catalogue/');
        expect(fileTree(channelPaths(root2, ch).webRoot, { skip: served, modes: false })).toEqual(
          fileTree(web, { skip: served, modes: false }),
        );
        expect(fs.readFileSync(path.join(root2, 'etc/epiconcept/apt_repo', ch, 'signing-key.asc'))).toEqual(
          fs.readFileSync(path.join(root, 'etc/epiconcept/apt_repo', ch, 'signing-key.asc')),
        );
      }
      // Restoring again over a populated pool is refused.
      const again = await runCli(['--root', root2, '--channel', 'prod', 'restore', '--from', path.join(backups, 'prod')]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/--force/);
    } finally {
      rmTemp(backups);
      rmTemp(root2);
    }
  });
});
