/**
 * buildPlan's scripts run for real, as root, in a sandbox root on this machine (the way the remote
 * commands run them): modes and owners, a second run that changes nothing, a config change that
 * re-runs only what it touches, nginx refusing a broken vhost, links a service user planted. In the
 * e2e project because it runs shell scripts, openssl, useradd and a stand-in sign-server; the plan
 * as data is checked in plan.test.ts.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { stepsToRun } from '../test/harness/pulumiRule';
import { config, material, SIGNING_KEY, stepsByName as byName } from '../test/harness/planFixtures';
import { buildPlan, fileSha256, inlineLocalFiles, type PlanMaterial, type PlanStep } from './plan';
import { selfSignedCert } from '../test/harness/tls';

/**
 * Applies a plan on this machine the way the resources do (files copied to their staging path,
 * script run with its stdin) and returns, per step run, whether it printed CHANGED. With
 * `previous` (the plan applied before), only the steps `pulumi up` would run (stepsToRun: those
 * whose own inputs changed); without it, every step (a new stack, or a check that every script is
 * idempotent).
 */
function applyLocally(steps: PlanStep[], previous?: PlanStep[]): Record<string, boolean> {
  const changed: Record<string, boolean> = {};
  for (const s of inlineLocalFiles(stepsToRun(previous, steps))) {
    for (const f of s.files) fs.writeFileSync(f.remotePath, f.content);
    const r = spawnSync('sh', ['-c', s.script], { input: s.secretStdin ?? '', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`step ${s.name} failed (${r.status}): ${r.stderr}`);
    changed[s.name] = r.stdout.split('\n').some((l) => l.trim() === 'CHANGED');
  }
  return changed;
}

/** Stops the sign-server a sandbox plan started (its pid file is under <root>/run). */
function stopSigner(root: string): void {
  try {
    const pid = Number(fs.readFileSync(path.join(root, 'run/apt-repo/sign-preprod/sign-server.pid'), 'utf8'));
    if (pid > 1) process.kill(pid, 'SIGTERM');
  } catch {
    // not started, or already gone
  }
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
(asRoot ? describe : describe.skip)('buildPlan: scripts run for real in a sandbox root', () => {
  let dir: string;
  let root: string;
  let bundle: string;
  let m: PlanMaterial;
  let cfg: StackConfig;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-test-'));
    // The service and signer users reach the sandbox as they reach / on a server.
    fs.chmodSync(dir, 0o755);
    root = path.join(dir, 'root');
    fs.mkdirSync(root);
    // A stand-in indexer: `publish` records each call, so the test can count publishes;
    // `sign-server` listens on its socket and writes its pid file, as the real one does.
    bundle = path.join(dir, 'apt-repo.cjs');
    fs.writeFileSync(
      bundle,
      `const fs=require('fs');const a=process.argv;const o=(n)=>a[a.indexOf(n)+1];const r=o('--root'),c=o('--channel');
if(a.includes('publish')){const d=r+'/srv/apt/'+c+'/dists';fs.mkdirSync(d,{recursive:true});fs.appendFileSync(d+'/publishes','x');}
if(a.includes('backup')){fs.appendFileSync(o('--to')+'/backups-made','b'+(fs.existsSync(r+'/srv/apt/'+c+'/dists/publishes')?fs.readFileSync(r+'/srv/apt/'+c+'/dists/publishes','utf8'):'')+'\\n');}
if(a.includes('sign-server')){require('net').createServer((s)=>s.end('{}\\n')).listen(o('--socket'),()=>fs.writeFileSync(o('--pidfile'),process.pid+'\\n'));}\n`,
    );
    const { certFile: cert, keyFile: key } = selfSignedCert(dir, 'apt-preprod.example.org');
    m = material({
      bundlePath: bundle,
      bundleSha256: fileSha256(bundle),
      tlsCert: fs.readFileSync(cert, 'utf8'),
      tlsKey: fs.readFileSync(key, 'utf8'),
    });
    cfg = config({
      root,
      installPackages: 'false',
      nodePath: process.execPath,
      listenAddress: '127.0.0.1',
      httpPort: '8080',
      httpsPort: '8443',
    });
  });
  afterAll(() => {
    stopSigner(root);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('installs everything with the right modes, then a second run changes nothing', () => {
    const first = applyLocally(buildPlan(cfg, m));
    for (const name of [
      'dirs',
      'config',
      'signing-key',
      'htpasswd',
      'tls',
      'indexer',
      'signer',
      'publish',
      'vhost',
      'ssh-access',
      'ingest-units',
      'backup-units',
    ])
      expect([name, first[name]]).toEqual([name, true]);
    const stat = (p: string) => {
      const s = fs.statSync(path.join(root, p));
      return (s.mode & 0o7777).toString(8);
    };
    const owner = (p: string) => execFileSync('stat', ['-c', '%a %U %G', path.join(root, p)], { encoding: 'utf8' }).trim();
    expect(owner('etc/epiconcept/apt_repo/preprod/signing-key.asc')).toBe('600 aptsign-preprod aptsign-preprod');
    expect(owner('etc/epiconcept/apt_repo/preprod')).toBe('755 root root');
    expect(owner('run/apt-repo/sign-preprod')).toBe('750 aptsign-preprod aptrepo-preprod');
    expect(owner('srv/apt/preprod/pool')).toBe('2755 aptrepo-preprod aptrepo');
    expect(owner('srv/apt/incoming/ci/bookworm')).toBe('3775 aptrepo-preprod aptupload');
    expect(owner('srv/apt/incoming/rejected')).toBe('755 aptrepo-preprod aptrepo-preprod');
    expect(owner('etc/ssh/sshd_config.d/apt-repo-preprod.conf')).toBe('644 root root');
    // The sign-server runs as the signer, and the indexer user cannot read the key.
    const pid = fs.readFileSync(path.join(root, 'run/apt-repo/sign-preprod/sign-server.pid'), 'utf8').trim();
    expect(execFileSync('ps', ['-o', 'user=', '-p', pid], { encoding: 'utf8' }).trim()).toBe('aptsign-preprod');
    const read = spawnSync(
      'runuser',
      ['-u', 'aptrepo-preprod', '--', 'cat', path.join(root, 'etc/epiconcept/apt_repo/preprod/signing-key.asc')],
      { encoding: 'utf8' },
    );
    expect([read.status, read.stderr]).toEqual([1, expect.stringContaining('Permission denied')]);
    expect(fs.readFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/signing-key.asc'), 'utf8')).toBe(SIGNING_KEY);
    expect(stat('etc/epiconcept/apt_repo/preprod/signing-key.asc')).toBe('600');
    expect(stat('etc/nginx/apt-repo/preprod.key')).toBe('600');
    expect(stat('etc/nginx/apt-repo/preprod.htpasswd')).toBe('640');
    expect(stat('srv/apt/incoming')).toBe('755');
    expect(fs.readFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/liste_dist'), 'utf8')).toMatch(/\nbookworm\nbullseye\n$/);
    expect(fs.readFileSync(path.join(root, 'srv/apt/preprod/epiconcept-preprod-archive-keyring.gpg'), 'utf8')).toBe('binary-public-key');
    expect(fs.readlinkSync(path.join(root, 'etc/nginx/sites-enabled/apt-preprod.conf'))).toBe(
      path.join(root, 'etc/nginx/sites-available/apt-preprod.conf'),
    );
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/apt-repo-backup-preprod.timer'))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'srv/apt/preprod/dists/publishes'), 'utf8')).toBe('x');

    // A second `pulumi up` runs nothing; every script run again anyway changes nothing.
    expect(applyLocally(buildPlan(cfg, m), buildPlan(cfg, m))).toEqual({});
    const again = applyLocally(buildPlan(cfg, m));
    expect(Object.entries(again).filter(([, c]) => c)).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'srv/apt/preprod/dists/publishes'), 'utf8')).toBe('x');
    // Nothing was published before the first up: nothing to back up.
    expect(fs.existsSync(path.join(root, 'var/backups/apt-repo/preprod/backups-made'))).toBe(false);
    // What the expected-state step installed describes what is on disk (the stand-in indexer aside).
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/expected-state.json'), 'utf8'));
    for (const e of manifest.entries) {
      if (e.type === 'symlink') expect([e.path, fs.readlinkSync(e.path)]).toEqual([e.path, e.target]);
      else
        expect([e.path, owner(path.relative(root, e.path)).split(' ')]).toEqual([
          e.path,
          [String(Number.parseInt(e.mode, 8).toString(8)), e.owner, e.group],
        ]);
      if (e.type === 'file' && e.sha256) expect([e.path, fileSha256(e.path)]).toEqual([e.path, e.sha256]);
    }
    // The secret files' digests are recorded root-only, one line each.
    const record = path.join(root, 'etc/epiconcept/apt_repo/preprod/secret-digests');
    expect(owner(path.relative(root, record))).toBe('600 root root');
    const secretPaths = manifest.entries
      .filter((e: { secret?: boolean }) => e.secret)
      .map((e: { path: string }) => e.path)
      .sort();
    expect(secretPaths.length).toBe(3);
    expect(
      fs
        .readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split('  '))
        .sort((a, b) => (a[1] < b[1] ? -1 : 1)),
    ).toEqual(secretPaths.map((p: string) => [fileSha256(p), p]));
  });

  it('re-runs only what a config change touches: backs up first, then publishes again', () => {
    const ran = applyLocally(buildPlan({ ...cfg, codenames: ['bookworm'] }, m), buildPlan(cfg, m));
    expect(Object.keys(ran)).toEqual(['dirs', 'pre-update-backup', 'config', 'signer', 'publish', 'ingest-units', 'expected-state']);
    // The signer restarts: what it checks a Release against (liste_dist) changed.
    // (dirs runs, its text lists one drop folder less, and removes nothing: no change.)
    expect(
      Object.entries(ran)
        .filter(([, c]) => c)
        .map(([n]) => n),
    ).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'ingest-units', 'expected-state']);
    expect(fs.readFileSync(path.join(root, 'srv/apt/preprod/dists/publishes'), 'utf8')).toBe('xx');
    // One backup, made while the first publish was still the served one.
    expect(fs.readFileSync(path.join(root, 'var/backups/apt-repo/preprod/backups-made'), 'utf8')).toBe('bx\n');
  });

  it('installs the re-signing units with validUntilDays and removes them when it is unset again', () => {
    const unit = (n: string) => path.join(root, 'etc/systemd/system', n);
    const timed = applyLocally(buildPlan({ ...cfg, validUntilDays: 7 }, m), buildPlan({ ...cfg, codenames: ['bookworm'] }, m));
    expect(timed['refresh-units']).toBe(true);
    expect(fs.readFileSync(unit('apt-repo-refresh-preprod.timer'), 'utf8')).toContain('OnCalendar=hourly\n');
    expect(fs.readFileSync(unit('apt-repo-refresh-preprod.service'), 'utf8')).toContain(' publish --if-expiring\n');
    const untimed = applyLocally(buildPlan(cfg, m), buildPlan({ ...cfg, validUntilDays: 7 }, m));
    expect(untimed['refresh-units']).toBe(true);
    expect([fs.existsSync(unit('apt-repo-refresh-preprod.timer')), fs.existsSync(unit('apt-repo-refresh-preprod.service'))]).toEqual([
      false,
      false,
    ]);
    expect(applyLocally(buildPlan(cfg, m), buildPlan(cfg, m))).toEqual({});
    expect(applyLocally(buildPlan(cfg, m))['refresh-units']).toBe(false);
  });

  it('refuses a vhost nginx rejects before it replaces the live one', () => {
    const live = fs.readFileSync(path.join(root, 'etc/nginx/sites-available/apt-preprod.conf'), 'utf8');
    const broken = buildPlan(cfg, m).map((s) =>
      s.name === 'vhost'
        ? { ...s, files: s.files.map((f) => (f.remotePath.endsWith('vhost.site.conf') ? { ...f, content: 'server { nonsense; }\n' } : f)) }
        : s,
    );
    expect(() => applyLocally(broken)).toThrow(/step vhost failed/);
    expect(fs.readFileSync(path.join(root, 'etc/nginx/sites-available/apt-preprod.conf'), 'utf8')).toBe(live);
  });
});

(asRoot ? describe : describe.skip)('buildPlan: the publish step and a non-root service user', () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("never writes or chowns a file outside the service user's reach through a link it planted", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-publish-'));
    fs.chmodSync(dir, 0o755);
    const root = path.join(dir, 'root');
    // A service user of this test's own (the plan refuses base system accounts such as nobody).
    if (spawnSync('getent', ['passwd', 'aptrepo-plantest']).status !== 0)
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'aptrepo-plantest']);
    const uid = Number(execFileSync('id', ['-u', 'aptrepo-plantest'], { encoding: 'utf8' }));
    const cfg = config({ root, installPackages: 'false', serviceUser: 'aptrepo-plantest', nodePath: process.execPath });
    const publish = byName(buildPlan(cfg, material())).publish;
    const under = (p: string) => path.join(root, p);
    for (const d of ['etc/epiconcept/apt_repo/preprod', 'opt/apt-repo/preprod', 'srv/apt/preprod', 'var/lib/apt-repo/preprod'])
      fs.mkdirSync(under(d), { recursive: true, mode: 0o755 });
    for (const f of ['repo.yaml', 'liste_dist', 'liste_arch', 'signing-key.asc'])
      fs.writeFileSync(under(`etc/epiconcept/apt_repo/preprod/${f}`), f);
    fs.writeFileSync(
      under('opt/apt-repo/preprod/apt-repo.cjs'),
      "require('fs').mkdirSync(process.argv[process.argv.indexOf('--root')+1]+'/srv/apt/preprod/dists');\n",
    );
    fs.chownSync(under('srv/apt/preprod'), uid, uid);
    fs.chownSync(under('var/lib/apt-repo/preprod'), uid, uid);
    // The service user (say, through a hostile .deb) replaced its stamp with a link to a root file.
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'root data\n', { mode: 0o644 });
    const stamp = under('var/lib/apt-repo/preprod/pulumi-publish.sha256');
    fs.symlinkSync(victim, stamp);
    fs.lchownSync(stamp, uid, uid);
    spawnSync('sh', ['-c', publish.script], { encoding: 'utf8' });
    expect(fs.existsSync(under('srv/apt/preprod/dists'))).toBe(true);
    const st = fs.statSync(victim);
    expect([fs.readFileSync(victim, 'utf8'), st.uid]).toEqual(['root data\n', 0]);
  });
});
