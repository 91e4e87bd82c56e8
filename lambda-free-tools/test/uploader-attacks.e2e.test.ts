/**
 * An adversarial uploader against the bundled `apt-repo`, run as a non-root service user (root
 * would bypass the permission checks the design relies on) in a sandbox root with a preprod and a
 * prod channel. Each attack of issue 8 that an upload can carry is tried: hostile Source, Package,
 * Version and Architecture values (`/`, `..`, NUL, newline), symlinks and hard links planted in the
 * drop folders, the codename folders, `rejected/` and at the `.reason` names of the coming seconds,
 * a symlink in the pool. Each is refused or contained with a reason, and prod's whole tree, both
 * channels' key files and preprod's web root stay byte for byte what they were.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundle, mkTemp, ok, rmTemp, RunResult } from '../../test/harness/cli';
import { fileTree } from '../../test/harness/fileTree';
import { buildDeb, rawControlDeb as rawDeb, rejectedStamp as stamp } from '../../test/harness/debs';
import { ensureSystemUser } from '../../test/harness/users';
import { channelPaths } from '../src/repo/channel';

/** The system user the indexer runs as in this test (created when missing). */
const SERVICE_USER = 'aptrepo-e2e';

function serviceIds(): { uid: number; gid: number } {
  ensureSystemUser(SERVICE_USER);
  const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

describe('an uploader with only upload rights cannot reach prod, the keys or the web root', () => {
  let root: string;
  let cliFile: string;
  let ids: { uid: number; gid: number };
  const web = (c: string) => channelPaths(root, c).webRoot;
  const incoming = () => path.join(root, 'srv/apt/incoming');
  const rejected = () => path.join(incoming(), 'rejected');
  const configDir = (c: string) => path.join(root, 'etc/epiconcept/apt_repo', c);
  const victim = () => path.join(web('prod'), 'epiconcept-prod-archive-keyring.asc');

  /** Runs the bundled apt-repo as the service user (never root). */
  function asService(channel: string, ...args: string[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [cliFile, '--root', root, '--channel', channel, ...args], {
        uid: ids.uid,
        gid: ids.gid,
        cwd: '/',
        env: { PATH: process.env.PATH, HOME: '/' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  }

  /** What must never change: prod's whole web root, both config folders (keys), preprod's web root. */
  const protectedState = () => ({
    prod: fileTree(web('prod')),
    prodConfig: fileTree(configDir('prod')),
    preprodConfig: fileTree(configDir('preprod')),
    preprod: fileTree(web('preprod')),
  });
  let before: ReturnType<typeof protectedState>;

  beforeAll(async () => {
    ids = serviceIds();
    root = mkTemp('uploader-attacks');
    fs.chmodSync(root, 0o755);
    const built = await bundle('apt-repo');
    cliFile = path.join(root, 'apt-repo.cjs');
    fs.copyFileSync(built, cliFile);
    fs.chmodSync(cliFile, 0o755);
    // Set up by root (as `pulumi up` does), then everything handed to the service user.
    execFileSync(process.execPath, [
      cliFile,
      '--root',
      root,
      '--channel',
      'preprod',
      'init',
      '--codenames',
      'bookworm,bullseye',
      '--architectures',
      'amd64',
    ]);
    execFileSync(process.execPath, [
      cliFile,
      '--root',
      root,
      '--channel',
      'prod',
      'init',
      '--codenames',
      'bookworm,bullseye',
      '--architectures',
      'amd64',
      '--upstream',
      'preprod',
    ]);
    for (const c of ['preprod', 'prod'])
      execFileSync(process.execPath, [cliFile, '--root', root, '--channel', c, 'keygen', '--type', 'ed25519']);
    execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, path.join(root, 'srv'), path.join(root, 'var'), path.join(root, 'etc')]);
    // A first package, promoted, so prod serves something real that an attack could alter.
    const ci = path.join(incoming(), 'ci');
    buildDeb(ci, { name: 'good', version: '1.0-1' });
    execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, ci]);
    ok(await asService('preprod', 'ingest', '--settle-ms', '0'), 'ingest good');
    ok(await asService('prod', 'promote', 'good'), 'promote good');
    before = protectedState();
  }, 180_000);
  afterAll(() => rmTemp(root));

  afterEach(() => {
    // Each attack leaves the protected state as it was.
    expect(protectedState()).toEqual(before);
  });

  test('the indexer really runs unprivileged', async () => {
    const probe = await asService('preprod', 'verify');
    expect(probe.code).toBe(0);
    expect(fs.statSync(path.join(web('preprod'), 'pool/main/g/good/good_1.0-1_all.deb')).uid).toBe(ids.uid);
    expect(fs.statSync(path.join(web('preprod'), 'pool/main/g/good/good_1.0-1_all.deb')).mode & 0o777).toBe(0o664);
  });

  const hostile: [string, string, RegExp][] = [
    ['source-dotdot', 'Package: evil\nSource: ../../../prod/pool/main/e/evil\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['source-slash', 'Package: evil\nSource: prod/evil\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['source-nul', 'Package: evil\nSource: evil\u0000/../../x\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['source-newline', 'Package: evil\nSource: evil\n ../../../../prod\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['package-dotdot', 'Package: ../../../../../prod/pool/main/e/evil/x\nVersion: 1.0\nArchitecture: all\n', /invalid Package field/],
    ['package-nul', 'Package: evil\u0000x\nVersion: 1.0\nArchitecture: all\n', /invalid Package field/],
    ['package-newline', 'Package: evil\n ../x\nVersion: 1.0\nArchitecture: all\n', /invalid Package field/],
    ['version-slash', 'Package: evil\nVersion: 1/../../../../../../prod/x\nArchitecture: all\n', /invalid Version field/],
    ['version-nul', 'Package: evil\nVersion: 1.0\u0000\nArchitecture: all\n', /invalid Version field/],
    ['version-newline', 'Package: evil\nVersion: 1.0\n /../../x\nArchitecture: all\n', /invalid Version field/],
    ['arch-dotdot', 'Package: evil\nVersion: 1.0\nArchitecture: all/../../../../../../../prod/x\n', /invalid Architecture field/],
    ['arch-nul', 'Package: evil\nVersion: 1.0\nArchitecture: amd64\u0000\n', /invalid Architecture field/],
    ['arch-newline', 'Package: evil\nVersion: 1.0\nArchitecture: amd64\n /../x\n', /invalid Architecture field/],
  ];

  test('hostile Source, Package, Version and Architecture values are rejected with a reason naming the field', async () => {
    const ci = path.join(incoming(), 'ci');
    for (const [name, control] of hostile) fs.writeFileSync(path.join(ci, `${name}.deb`), await rawDeb(control));
    execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, ci]);
    const r = await asService('preprod', '--json', 'ingest', '--settle-ms', '0');
    expect(r.code).toBe(1);
    const entries = JSON.parse(r.stdout).entries as { status: string; file: string; reason: string; movedTo?: string }[];
    for (const [name, , reason] of hostile) {
      const e = entries.find((x) => x.file === `ci/${name}.deb`);
      expect([name, e?.status]).toEqual([name, 'rejected']);
      expect([name, e!.reason]).toEqual([name, expect.stringMatching(reason)]);
      const lines = fs.readFileSync(`${e!.movedTo}.reason`, 'utf8').split('\n');
      expect([name, lines[0], lines[1]]).toEqual([name, expect.stringMatching(reason), `file: ci/${name}.deb`]);
    }
    expect(fs.readdirSync(ci)).toEqual([]);
  });

  test('symlinks and hard links planted in drop folders, codename folders and at the .reason names of the next seconds', async () => {
    const ci = path.join(incoming(), 'ci');
    const targetDir = path.join(web('prod'), 'pool/main/g/good');
    // A drop folder and a codename folder that are links into prod's pool.
    fs.symlinkSync(targetDir, path.join(incoming(), 'linked-source'));
    fs.symlinkSync(targetDir, path.join(ci, 'bookworm'));
    // A .deb that is a link to the victim, and one that is a hard link of it (made as root here:
    // fs.protected_hardlinks stops the upload account itself).
    fs.symlinkSync(victim(), path.join(ci, 'link.deb'));
    fs.linkSync(victim(), path.join(ci, 'hard.deb'));
    // A valid upload with a second name kept by its uploader.
    const kept = buildDeb(path.join(root, 'uploader-home'), { name: 'twice', version: '1.0' });
    fs.linkSync(kept, path.join(ci, 'twice_1.0_all.deb'));
    fs.writeFileSync(path.join(ci, 'garbage.deb'), 'not a package');
    // Links at the rejected and .reason names of the coming seconds, all to the victim.
    const now = Date.now();
    for (let s = -1; s <= 10; s++) {
      for (const n of ['link.deb', 'hard.deb', 'twice_1.0_all.deb', 'garbage.deb']) {
        fs.symlinkSync(victim(), path.join(rejected(), `${stamp(now + s * 1000)}-${n}`));
        fs.symlinkSync(victim(), path.join(rejected(), `${stamp(now + s * 1000)}-${n}.reason`));
      }
    }
    const r = await asService('preprod', '--json', 'ingest', '--settle-ms', '0');
    expect(r.code).toBe(1);
    const byFile = Object.fromEntries(
      (JSON.parse(r.stdout).entries as { file: string; status: string; reason: string; movedTo?: string }[]).map((e) => [e.file, e]),
    );
    expect(byFile['linked-source']).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/symbolic link instead of a drop folder/),
    });
    expect(byFile['ci/bookworm']).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/symbolic link/) });
    expect(byFile['ci/link.deb']).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/symbolic link/) });
    expect(byFile['ci/hard.deb']).toMatchObject({ status: 'rejected', reason: 'hard link (2 names): drop a fresh file' });
    expect(byFile['ci/twice_1.0_all.deb']).toMatchObject({ status: 'rejected', reason: 'hard link (2 names): drop a fresh file' });
    expect(byFile['ci/garbage.deb']).toMatchObject({ status: 'rejected' });
    for (const f of ['ci/link.deb', 'ci/hard.deb', 'ci/twice_1.0_all.deb', 'ci/garbage.deb']) {
      const moved = byFile[f].movedTo!;
      expect(path.dirname(moved)).toBe(rejected());
      expect(fs.lstatSync(`${moved}.reason`).isFile()).toBe(true);
      expect(fs.readFileSync(`${moved}.reason`, 'utf8')).toMatch(
        new RegExp(`^reason: .+\\nfile: ${f}\\ntime: \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\n$`),
      );
    }
    expect(fs.existsSync(path.join(web('preprod'), 'pool/main/t'))).toBe(false);
    // The planted links are still links to the victim: nothing was written through them.
    expect(fs.readlinkSync(path.join(rejected(), `${stamp(now + 1000)}-garbage.deb.reason`))).toBe(victim());
    fs.unlinkSync(path.join(incoming(), 'linked-source'));
    fs.unlinkSync(path.join(ci, 'bookworm'));
  });

  test("a rejected folder that is not the service user's, or is a link, is never written into", async () => {
    const ci = path.join(incoming(), 'ci');
    fs.writeFileSync(path.join(ci, 'bad.deb'), 'garbage');
    execFileSync('chown', [`${ids.uid}:${ids.gid}`, path.join(ci, 'bad.deb')]);
    const saved = path.join(incoming(), 'rejected.saved');
    fs.renameSync(rejected(), saved);
    try {
      fs.mkdirSync(rejected(), { mode: 0o777 });
      fs.chmodSync(rejected(), 0o777);
      let r = await asService('preprod', '--json', 'ingest', '--settle-ms', '0');
      expect(JSON.parse(r.stdout).entries[0].reason).toMatch(/owned by uid 0, not by the running user.*left in place/);
      expect(fs.readdirSync(rejected())).toEqual([]);
      fs.rmdirSync(rejected());
      fs.symlinkSync(path.join(web('prod')), rejected());
      r = await asService('preprod', '--json', 'ingest', '--settle-ms', '0');
      expect(JSON.parse(r.stdout).entries[0].reason).toMatch(/symbolic link.*left in place/);
      expect(fs.existsSync(path.join(ci, 'bad.deb'))).toBe(true);
      fs.unlinkSync(rejected());
    } finally {
      fs.renameSync(saved, rejected());
      fs.rmSync(path.join(ci, 'bad.deb'), { force: true });
    }
  });

  test('a symlink planted in the pool is never published: publish and verify name it, prod unchanged', async () => {
    const link = path.join(web('preprod'), 'pool/main/g/good/evil_1.0_all.deb');
    const target = buildDeb(path.join(root, 'outside'), { name: 'evil', version: '1.0' });
    fs.symlinkSync(target, link);
    try {
      const p = await asService('preprod', 'publish', '--rescan');
      expect(p.code).toBe(1);
      expect(p.stderr).toContain(`${link}: symbolic link in the pool`);
      const v = await asService('preprod', 'verify');
      expect(v.code).toBe(1);
      expect(v.stdout + v.stderr).toContain(`${link}: symbolic link in the pool`);
      const promote = await asService('prod', 'promote', '--all-pending');
      expect(promote.stdout + promote.stderr).not.toMatch(/evil/);
    } finally {
      fs.unlinkSync(link);
    }
    ok(await asService('prod', 'verify'), 'verify prod');
  });
});
