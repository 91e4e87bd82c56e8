/**
 * The client setup script against the real flow: the built bundle (`dist/apt-repo.cjs`, `npm run
 * build`) makes a channel, signs it and prints its `client-setup` script; dash runs the script into
 * a temp root (APT_REPO_ROOT) with credentials from the environment; a real nginx serves the channel
 * over https (and http) with basic auth; a real isolated apt-get, run as root with apt's own `_apt`
 * sandbox on (APT::Sandbox::User "_apt", the default on every client), reads that root's
 * sources.list.d, keyring and auth.conf.d, updates and downloads a package, and gets 401 without
 * credentials. The auth.conf.d file is 0600 root and `_apt` cannot read it: apt opens it as root
 * before its methods drop privileges, which is what this test shows.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, ok, rmTemp, runProcess, type RunResult } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { aptProblems, createAptClient, type AptClient } from '../../test/harness/apt';
import { startNginx, staticServerBlock, type NginxServer } from '../../test/harness/nginx';
import { caSignedCert } from '../../test/harness/tls';
import { channelPaths } from '../src/repo/channel';

const DIST = path.resolve(__dirname, '../../dist/apt-repo.cjs');
const USER = 'web1';
// Characters a shell or a URL would mangle if the script passed them badly (no ':': nginx's htpasswd
// reader takes what follows a second ':' for a comment).
const PASSWORD = "s3cr3t-P@ss$w0rd'!`x";
const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

// apt drops to _apt only when it runs as root (CI and this machine run the tests as root).
const asRoot = process.getuid?.() === 0;
(asRoot ? describe : describe.skip)('client-setup script, dash, apt-get as root with the _apt sandbox, nginx with basic auth', () => {
  let work: string;
  let root: string;
  let debFile: string;
  let https: NginxServer;
  let http: NginxServer;
  let caFile: string;
  let passwordFile: string;
  const clients: AptClient[] = [];

  const repo = (...args: string[]) => runProcess(process.execPath, [DIST, '--root', root, '--channel', 'preprod', ...args]);

  /** The script `client-setup` prints for `url` (bookworm baked in), written to a file. */
  async function setupScript(url: string): Promise<string> {
    const r = ok(await repo('client-setup', '--url', url, '--codename', 'bookworm'), 'client-setup');
    const file = path.join(work, `setup-${Math.random().toString(36).slice(2)}.sh`);
    fs.writeFileSync(file, r.stdout);
    return file;
  }

  /** Runs `script` with dash into a new client root (0755: _apt must reach the keyring), with `env`. */
  async function install(
    script: string,
    env: Record<string, string>,
    clientRoot = fs.mkdtempSync(path.join(work, 'client-')),
  ): Promise<RunResult & { clientRoot: string }> {
    fs.chmodSync(clientRoot, 0o755);
    const r = await runProcess('dash', [script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', APT_REPO_ROOT: clientRoot, ...env } });
    return { ...r, clientRoot };
  }

  /**
   * An isolated apt client that reads `clientRoot`'s sources.list.d and auth.conf.d (the keyring is
   * the Signed-By path inside the .sources), with the `_apt` sandbox on, trusting the test CA.
   */
  function clientOf(clientRoot: string): AptClient {
    const c = createAptClient({
      sources: '',
      caFile,
      extraConf: [
        `Dir::Etc::SourceParts "${clientRoot}/etc/apt/sources.list.d";`,
        `Dir::Etc::netrcparts "${clientRoot}/etc/apt/auth.conf.d";`,
        'APT::Sandbox::User "_apt";',
        '',
      ].join('\n'),
    });
    // mkdtemp makes it 0700: the sandbox user must reach lists/partial and archives/partial.
    fs.chmodSync(c.dir, 0o755);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run npm run build first`);
    work = mkTemp('client-setup-e2e');
    // The client roots live in here: _apt must reach their keyring.
    fs.chmodSync(work, 0o755);
    root = path.join(work, 'server');
    ok(await repo('init', '--codenames', 'bookworm,trixie', '--architectures', 'amd64'), 'init');
    ok(await repo('keygen', '--type', 'ed25519'), 'keygen');
    const webRoot = channelPaths(root, 'preprod').webRoot;
    const pool = path.join(webRoot, 'pool/main/d/demo');
    fs.mkdirSync(pool, { recursive: true });
    const built = buildDeb(work, { name: 'demo', version: '1.0-1', description: 'client setup demo' });
    debFile = path.join(pool, path.basename(built));
    fs.renameSync(built, debFile);
    ok(await repo('publish', '--rescan'), 'publish');

    // The password as nginx checks it ({PLAIN}: the test's own server, not the production hash).
    const htpasswd = path.join(work, 'htpasswd');
    fs.writeFileSync(htpasswd, `${USER}:{PLAIN}${PASSWORD}\n`);
    const auth = `auth_basic "apt"; auth_basic_user_file ${htpasswd};`;
    // A CA and a server certificate for 127.0.0.1 (apt's https method checks the name).
    const tls = caSignedCert(work);
    caFile = tls.caFile;
    https = await startNginx({
      serverBlocks: (port) =>
        [
          'server {',
          `  listen 127.0.0.1:${port} ssl;`,
          '  server_name _;',
          `  ssl_certificate ${tls.certFile};`,
          `  ssl_certificate_key ${tls.keyFile};`,
          `  root ${webRoot};`,
          `  ${auth}`,
          '}',
        ].join('\n'),
    });
    http = await startNginx({ serverBlocks: (port) => staticServerBlock(port, webRoot, { extra: auth }) });
    passwordFile = path.join(work, 'password');
    fs.writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    await https?.stop();
    await http?.stop();
    if (work) rmTemp(work);
  });

  it('https: installs key, source and credentials; apt-get as root (sandbox _apt) updates and downloads the package', async () => {
    const url = `https://127.0.0.1:${https.port}/`;
    const script = await setupScript(url);
    expect(fs.readFileSync(script, 'utf8')).not.toContain(PASSWORD);
    const run = await install(script, { APT_REPO_USERNAME: USER, APT_REPO_PASSWORD_FILE: passwordFile });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const auth = path.join(run.clientRoot, 'etc/apt/auth.conf.d/epiconcept-preprod.conf');
    const keyring = path.join(run.clientRoot, 'usr/share/keyrings/epiconcept-preprod-archive-keyring.asc');
    const sources = path.join(run.clientRoot, 'etc/apt/sources.list.d/epiconcept-preprod.sources');
    expect(fs.readFileSync(auth, 'utf8')).toBe(`machine 127.0.0.1:${https.port} login ${USER} password ${PASSWORD}\n`);
    const st = (f: string) => {
      const s = fs.statSync(f);
      return [(s.mode & 0o777).toString(8), s.uid, s.gid];
    };
    expect([st(auth), st(keyring), st(sources)]).toEqual([
      ['600', 0, 0],
      ['644', 0, 0],
      ['644', 0, 0],
    ]);
    // The key is the channel's own, byte for byte.
    expect(fs.readFileSync(keyring, 'utf8')).toBe(
      fs.readFileSync(path.join(channelPaths(root, 'preprod').webRoot, 'epiconcept-preprod-archive-keyring.asc'), 'utf8'),
    );
    // The sandbox user cannot read the credentials; it can read the key (apt's gpgv runs as _apt).
    expect((await runProcess('runuser', ['-u', '_apt', '--', 'test', '-r', auth])).code).toBe(1);
    expect((await runProcess('runuser', ['-u', '_apt', '--', 'test', '-r', keyring])).code).toBe(0);

    const c = clientOf(run.clientRoot);
    expect((await c.run(['apt-config', 'dump'])).stdout).toContain('APT::Sandbox::User "_apt";');
    const up = await c.update();
    expect(aptProblems(up)).toEqual([]);
    expect(up.stdout + up.stderr).not.toMatch(/unsandboxed|not readable/);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/Get:\d+ https:\/\/127\.0\.0\.1:\d+ bookworm InRelease/);
    expect(https.accessLog()).toMatch(new RegExp(`- ${USER} \\[[^\\]]+\\] "GET /dists/bookworm/InRelease HTTP/1\\.1" 200`));
    const sim = await c.installSimulate('demo');
    expect(sim.code).toBe(0);
    expect(sim.stdout).toMatch(/^Inst demo \(1\.0-1 /m);
    // The real install path up to dpkg: apt fetches the .deb into its archive cache as _apt.
    const dl = await c.run(['apt-get', 'install', '--download-only', '-y', 'demo']);
    expect(aptProblems(dl)).toEqual([]);
    expect(dl.code).toBe(0);
    const cached = path.join(c.dir, 'var/cache/apt/archives/demo_1.0-1_all.deb');
    expect(sha256(cached)).toBe(sha256(debFile));

    // The sandbox is really on: the same key made 0600 (unreadable by _apt) is refused, whereas
    // the credentials at 0600 were used. Hence 0644 for the keyring and 0600 for auth.conf.d.
    fs.chmodSync(keyring, 0o600);
    try {
      // Forget the verified index, so that apt fetches and checks InRelease again.
      const lists = path.join(c.dir, 'var/lib/apt/lists');
      for (const f of fs.readdirSync(lists)) if (f.includes('InRelease')) fs.rmSync(path.join(lists, f));
      const refused = await c.update();
      // apt 2.6: its gpgv step, run as _apt, cannot open the key ("Unknown error executing apt-key").
      expect(refused.stdout + refused.stderr).toMatch(/error executing apt-key|not readable by user '_apt'/);
      expect(refused.stdout + refused.stderr).toMatch(/is not signed/);
      expect(refused.code).not.toBe(0);
    } finally {
      fs.chmodSync(keyring, 0o644);
    }
  });

  it('https: without credentials the server answers 401 and apt gets no index', async () => {
    const run = await install(await setupScript(`https://127.0.0.1:${https.port}/`), {});
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('no APT_REPO_USERNAME');
    expect(fs.existsSync(path.join(run.clientRoot, 'etc/apt/auth.conf.d/epiconcept-preprod.conf'))).toBe(false);
    const c = clientOf(run.clientRoot);
    const up = await c.update();
    expect(up.stdout + up.stderr).toMatch(/401/);
    // apt's misleading follow-up, which the script's header and the README warn about.
    expect(up.stdout + up.stderr).toMatch(/is not signed/);
    expect(https.accessLog()).toMatch(/"GET \/dists\/bookworm\/InRelease HTTP\/1\.1" 401/);
    expect((await c.madison('demo')).stdout).toBe('');
    expect((await c.installSimulate('demo')).code).not.toBe(0);
  });

  it('http: the machine line carries http:// (apt >= 1.9.5 sends it over http only then); a second run changes nothing', async () => {
    const url = `http://127.0.0.1:${http.port}/`;
    const script = await setupScript(url);
    const env = { APT_REPO_USERNAME: USER, APT_REPO_PASSWORD: PASSWORD };
    const first = await install(script, env);
    expect(first.code).toBe(0);
    const auth = path.join(first.clientRoot, 'etc/apt/auth.conf.d/epiconcept-preprod.conf');
    expect(fs.readFileSync(auth, 'utf8')).toBe(`machine http://127.0.0.1:${http.port} login ${USER} password ${PASSWORD}\n`);
    const files = [
      'etc/apt/auth.conf.d/epiconcept-preprod.conf',
      'etc/apt/sources.list.d/epiconcept-preprod.sources',
      'usr/share/keyrings/epiconcept-preprod-archive-keyring.asc',
    ].map((f) => path.join(first.clientRoot, f));
    const snapshot = () => files.map((f) => [fs.statSync(f).ino, fs.statSync(f).mtimeMs, fs.statSync(f).mode]);
    const before = snapshot();
    const second = await install(script, env, first.clientRoot);
    expect(second.code).toBe(0);
    expect(second.stdout.match(/unchanged /g)).toHaveLength(3);
    expect(snapshot()).toEqual(before);
    const c = clientOf(first.clientRoot);
    const up = await c.update();
    expect(aptProblems(up)).toEqual([]);
    expect(up.code).toBe(0);
    expect((await c.installSimulate('demo')).stdout).toMatch(/^Inst demo \(1\.0-1 /m);
    // A wrong password: 401 again.
    const wrong = await install(script, { APT_REPO_USERNAME: USER, APT_REPO_PASSWORD: 'not-the-password' });
    const bad = await clientOf(wrong.clientRoot).update();
    expect(bad.stdout + bad.stderr).toMatch(/401/);
  });

  it('refuses a codename the channel does not serve, and client-setup without a URL is a usage error', async () => {
    const script = await setupScript(`https://127.0.0.1:${https.port}/`);
    const refused = await runProcess('dash', [script, 'sid'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', APT_REPO_ROOT: fs.mkdtempSync(path.join(work, 'client-')) },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("this repository serves no 'sid'");
    const noUrl = await repo('client-setup');
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/no URL for channel preprod: give --url/);
    const json = await repo('--json', 'client-setup', '--url', `https://127.0.0.1:${https.port}/`);
    expect(JSON.parse(json.stdout)).toMatchObject({ channel: 'preprod', codenames: ['bookworm', 'trixie'], defaultCodename: null });
  });
});
