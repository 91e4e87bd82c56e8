/**
 * The apt client harness against a repository made with the Debian tools, served by a real nginx:
 * in the e2e project (apt-get, gpg, dpkg-scanpackages, apt-ftparchive and nginx run for real).
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AptClient, createAptClient, deb822Source, oneLineSource } from './apt';
import { NginxServer, startNginx, staticServerBlock } from './nginx';
import { mkTemp, rmTemp } from './cli';

/**
 * A tiny signed repository made only with the Debian tools (dpkg-deb, dpkg-scanpackages,
 * apt-ftparchive, gpg), so this test checks the harness and not the project's indexer.
 */
function buildRepo(
  root: string,
  gnupgHome: string,
): { webRoot: string; keyFile: string; otherKeyFile: string; debs: Record<string, string> } {
  const webRoot = path.join(root, 'www');
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  const gpg = (...args: string[]) =>
    execFileSync('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env, stdio: 'pipe' });
  gpg('--quick-gen-key', 'Harness Test <harness@example.invalid>', 'ed25519', 'sign', 'never');
  gpg('--quick-gen-key', 'Other Key <other@example.invalid>', 'ed25519', 'sign', 'never');
  const keyFile = path.join(root, 'harness.gpg');
  fs.writeFileSync(keyFile, gpg('--export', 'harness@example.invalid'));
  const otherKeyFile = path.join(root, 'other.gpg');
  fs.writeFileSync(otherKeyFile, gpg('--export', 'other@example.invalid'));

  const debs: Record<string, string> = {};
  const build = (name: string, version: string, depends?: string) => {
    const src = path.join(root, 'src', `${name}-${version}`);
    fs.mkdirSync(path.join(src, 'DEBIAN'), { recursive: true });
    fs.mkdirSync(path.join(src, 'usr/share/doc', name), { recursive: true });
    fs.writeFileSync(path.join(src, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
    fs.writeFileSync(
      path.join(src, 'DEBIAN/control'),
      `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Test <t@example.invalid>\n${depends ? `Depends: ${depends}\n` : ''}Description: harness test package\n`,
    );
    const pool = path.join(webRoot, 'pool/main', name[0], name);
    fs.mkdirSync(pool, { recursive: true });
    const out = path.join(pool, `${name}_${version}_all.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', src, out], { stdio: 'pipe' });
    debs[`${name}=${version}`] = out;
  };
  build('hdemo', '1.0-1');
  build('hdemo', '1.1-1');
  build('hneeds', '1.0', 'dpkg');
  build('hbroken', '1.0', 'no-such-package-anywhere');

  const dist = path.join(webRoot, 'dists/testing');
  fs.mkdirSync(path.join(dist, 'main/binary-amd64'), { recursive: true });
  const packages = execFileSync('dpkg-scanpackages', ['--multiversion', 'pool'], { cwd: webRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(path.join(dist, 'main/binary-amd64/Packages'), packages);
  execFileSync('gzip', ['-9nk', path.join(dist, 'main/binary-amd64/Packages')]);
  const release = execFileSync(
    'apt-ftparchive',
    [
      '-o',
      'APT::FTPArchive::Release::Origin=Harness',
      '-o',
      'APT::FTPArchive::Release::Suite=testing',
      '-o',
      'APT::FTPArchive::Release::Codename=testing',
      '-o',
      'APT::FTPArchive::Release::Architectures=amd64',
      '-o',
      'APT::FTPArchive::Release::Components=main',
      'release',
      dist,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // apt-ftparchive lists paths relative to its argument: fine since we gave it dists/testing.
  fs.writeFileSync(path.join(dist, 'Release'), release);
  gpg('--local-user', 'harness@example.invalid', '--clearsign', '--output', path.join(dist, 'InRelease'), path.join(dist, 'Release'));
  gpg(
    '--local-user',
    'harness@example.invalid',
    '--detach-sign',
    '--armor',
    '--output',
    path.join(dist, 'Release.gpg'),
    path.join(dist, 'Release'),
  );
  return { webRoot, keyFile, otherKeyFile, debs };
}

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('createAptClient', () => {
  let root: string;
  let repo: ReturnType<typeof buildRepo>;
  let nginx: NginxServer;
  let authNginx: NginxServer;
  const clients: AptClient[] = [];
  const client = (o: Parameters<typeof createAptClient>[0]) => {
    const c = createAptClient(o);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    root = mkTemp('apt-harness');
    const gnupgHome = path.join(root, 'gnupg');
    fs.mkdirSync(gnupgHome, { mode: 0o700 });
    repo = buildRepo(root, gnupgHome);
    try {
      execFileSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: gnupgHome }, stdio: 'ignore' });
    } catch {
      // no agent running
    }
    const htpasswd = path.join(root, 'htpasswd');
    fs.writeFileSync(htpasswd, 'client:{PLAIN}s3cret\n');
    nginx = await startNginx({ serverBlocks: (port) => staticServerBlock(port, repo.webRoot) });
    authNginx = await startNginx({
      serverBlocks: (port) => staticServerBlock(port, repo.webRoot, { extra: `auth_basic "apt"; auth_basic_user_file ${htpasswd};` }),
    });
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    await nginx?.stop();
    await authNginx?.stop();
    rmTemp(root);
  });

  it('updates from a signed repository with signed-by, picks the newest version, downloads the real bytes', async () => {
    const c = client({ sources: oneLineSource(`${nginx.url}/`, 'testing', { signedBy: repo.keyFile }) });
    const up = await c.update();
    expect(up.stderr).not.toMatch(/^(W|E):/m);
    expect(up.code).toBe(0);
    const madison = await c.madison('hdemo');
    expect(madison.stdout).toMatch(/hdemo \|\s+1\.1-1 \|/);
    expect(madison.stdout).toMatch(/hdemo \|\s+1\.0-1 \|/);
    const sim = await c.installSimulate('hdemo');
    expect(sim.code).toBe(0);
    expect(sim.stdout).toMatch(/^Inst hdemo \(1\.1-1 /m);
    const dl = await c.download('hdemo=1.0-1');
    expect(dl.code).toBe(0);
    expect(dl.files.map((f) => path.basename(f))).toEqual(['hdemo_1.0-1_all.deb']);
    expect(sha256(dl.files[0])).toBe(sha256(repo.debs['hdemo=1.0-1']));
    expect(nginx.accessLog()).toMatch(/GET \/pool\/main\/h\/hdemo\/hdemo_1\.0-1_all\.deb HTTP\/1\.1" 200/);
  });

  it('resolves dependencies against the system dpkg status', async () => {
    const c = client({ sources: deb822Source(`${nginx.url}/`, ['testing'], { signedBy: repo.keyFile }) });
    expect((await c.update()).code).toBe(0);
    const ok = await c.installSimulate('hneeds');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Inst hneeds /m);
    const broken = await c.installSimulate('hbroken');
    expect(broken.code).not.toBe(0);
    expect(broken.stdout + broken.stderr).toMatch(/no-such-package-anywhere/);
  });

  it('is isolated: sees only its own sources and none of /etc/apt/apt.conf.d', async () => {
    const c = client({ sources: oneLineSource(`${nginx.url}/`, 'testing', { signedBy: repo.keyFile }) });
    expect((await c.update()).code).toBe(0);
    const lists = fs.readdirSync(path.join(c.dir, 'var/lib/apt/lists')).filter((f) => !['partial', 'lock', 'auxfiles'].includes(f));
    expect(lists.length).toBeGreaterThan(0);
    for (const f of lists) expect(f).toMatch(new RegExp(`^127\\.0\\.0\\.1:${nginx.port}_`));
    const policy = await c.run(['apt-cache', 'policy']);
    expect(policy.stdout).toContain(nginx.url);
    expect(policy.stdout).not.toMatch(/deb\.debian\.org/);
    // bash is installed (dpkg status) but no source of this client offers it.
    expect((await c.madison('bash')).stdout).toBe('');
    const dump = (await c.run(['apt-config', 'dump'])).stdout;
    expect(dump).toContain(`Dir::Etc::sourceparts "${path.join(c.dir, 'etc/apt/sources.list.d')}`);
    expect(dump).toContain(`Dir::Etc::parts "${path.join(c.dir, 'etc/apt/apt.conf.d')}"`);
    expect(fs.readdirSync(path.join(c.dir, 'etc/apt/apt.conf.d'))).toEqual([]);
    const systemParts = fs.readdirSync('/etc/apt/apt.conf.d');
    // Whatever the host's apt.conf.d sets (here Check-Valid-Until false, Dir::Cache::pkgcache ""), the client does not.
    if (systemParts.length > 0) {
      const systemDump = execFileSync('apt-config', ['dump'], { env: { ...process.env, APT_CONFIG: '' } }).toString();
      const hostOnly = systemDump
        .split('\n')
        .filter((l) => /^(Acquire::Check-Valid-Until|Dir::Cache::pkgcache|DPkg::Post-Invoke)/i.test(l));
      for (const l of hostOnly) expect(dump.split('\n')).not.toContain(l);
    }
  });

  it('refuses an unsigned-for-it repository: no key, or the wrong key', async () => {
    const none = client({ sources: oneLineSource(`${nginx.url}/`, 'testing') });
    const r1 = await none.update();
    expect(r1.stdout + r1.stderr).toMatch(/NO_PUBKEY|not signed/);
    expect((await none.madison('hdemo')).stdout).toBe('');
    const wrong = client({ sources: oneLineSource(`${nginx.url}/`, 'testing', { signedBy: repo.otherKeyFile }) });
    const r2 = await wrong.update();
    expect(r2.stdout + r2.stderr).toMatch(/NO_PUBKEY|not signed/);
    expect((await wrong.installSimulate('hdemo')).code).not.toBe(0);
  });

  it('trusts keyFile through its private trusted.gpg.d', async () => {
    const c = client({ sources: oneLineSource(`${nginx.url}/`, 'testing'), keyFile: repo.keyFile });
    const up = await c.update();
    expect(up.stdout + up.stderr).not.toMatch(/NO_PUBKEY|not signed/);
    expect((await c.madison('hdemo')).stdout).toMatch(/1\.1-1/);
  });

  it('sends the credentials of its own auth.conf.d only', async () => {
    const source = oneLineSource(`${authNginx.url}/`, 'testing', { signedBy: repo.keyFile });
    const anon = client({ sources: source });
    const r1 = await anon.update();
    expect(r1.stdout + r1.stderr).toMatch(/401/);
    expect((await anon.madison('hdemo')).stdout).toBe('');
    const withAuth = client({ sources: source, authConf: `machine http://127.0.0.1:${authNginx.port}/ login client password s3cret\n` });
    const r2 = await withAuth.update();
    expect(r2.stderr).not.toMatch(/^(W|E):/m);
    expect(r2.code).toBe(0);
    const dl = await withAuth.download('hdemo');
    expect(dl.files.map((f) => path.basename(f))).toEqual(['hdemo_1.1-1_all.deb']);
    expect(sha256(dl.files[0])).toBe(sha256(repo.debs['hdemo=1.1-1']));
  });
});
