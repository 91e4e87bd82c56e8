import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findFreePort, httpGet, startNginx, type HttpResponse, type NginxServer } from '../test/harness/nginx';
import { renderHtpasswd } from './htpasswd';
import { HSTS_MAX_AGE, renderAcmeBootstrapVhost, renderNginxTestConf, renderVhost, TLS12_CIPHERS, type VhostSpec } from './vhost';
import { selfSignedCert } from '../test/harness/tls';

const NOBODY = 65534;
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Whether a TLS handshake with `openssl s_client` and these options succeeds (the client offers only what they allow). */
function handshake(port: number, args: string[]): boolean {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'apt-preprod.example.org', ...args], {
    input: '',
    encoding: 'utf8',
    timeout: 10000,
  });
  return r.status === 0 && /Cipher is (?!\(NONE\))/.test(r.stdout);
}

/** The Server header and error pages carry no nginx version. */
function expectNoVersion(r: HttpResponse): void {
  expect(r.headers.server).toBe('nginx');
  expect(r.body).not.toMatch(/nginx\/\d/);
}

const NGINX = '/usr/sbin/nginx';

function spec(dir: string, over: Partial<VhostSpec> = {}): VhostSpec {
  return {
    channel: 'preprod',
    serverName: 'apt-preprod.example.org',
    webRoot: path.join(dir, 'www'),
    keyName: 'example-preprod',
    allowedCidrs: ['127.0.0.1', '127.0.0.2'],
    htpasswdFile: path.join(dir, 'htpasswd'),
    allowPlainHttp: false,
    httpPort: 80,
    httpsPort: 443,
    logDir: path.join(dir, 'log'),
    ...over,
  };
}

describe('renderVhost (text)', () => {
  it('denies by default and lists only /dists/ and /pool/', () => {
    const text = renderVhost(spec('/x', { tls: { certificate: '/c.pem', key: '/k.pem' } }));
    expect(text).toContain('allow 127.0.0.1;\n    allow 127.0.0.2;\n    deny all;');
    expect(text).toContain('auth_basic_user_file /x/htpasswd;');
    expect(text).toMatch(/location \/dists\/ \{\n\s+autoindex on;/);
    expect(text).toMatch(/location \/pool\/ \{\n\s+autoindex on;/);
    expect(text).toMatch(/location \/ \{\n\s+deny all;/);
    // Without allowPlainHttp the HTTP server only redirects.
    const [http, tls] = text.split('\n\nserver {');
    expect(http).toContain('return 301 https://apt-preprod.example.org$request_uri;');
    expect(text).not.toContain('$host');
    expect(http).not.toContain('root /x/www');
    expect(tls).toContain('ssl_protocols TLSv1.2 TLSv1.3;');
    // HSTS on the HTTPS server only (a browser ignores it over HTTP, RFC 6797 section 8.1).
    expect(tls).toContain(`add_header Strict-Transport-Security "max-age=${HSTS_MAX_AGE}" always;`);
    expect(http).not.toContain('Strict-Transport-Security');
    expect(tls).toContain('ssl_prefer_server_ciphers off;');
  });

  it('hardens every server block: no version, no symlink to a file of another owner', () => {
    const texts = [
      renderVhost(spec('/x', { tls: { certificate: '/c.pem', key: '/k.pem' }, acmeRoot: '/acme' })),
      renderVhost(spec('/x', { allowPlainHttp: true })),
      renderAcmeBootstrapVhost({
        channel: 'preprod',
        serverName: 'apt-preprod.example.org',
        acmeRoot: '/acme',
        httpPort: 80,
        logDir: '/log',
      }),
    ];
    for (const text of texts) {
      const blocks = text.split(/^server \{$/m).slice(1);
      expect(blocks.length).toBeGreaterThan(0);
      for (const b of blocks) {
        expect(b).toMatch(/^ {4}server_tokens off;$/m);
        expect(b).toMatch(/^ {4}disable_symlinks if_not_owner from=\$document_root;$/m);
      }
    }
  });

  it('offers TLS 1.2 suites with ECDHE key exchange and AEAD ciphers only', () => {
    const text = renderVhost(spec('/x', { tls: { certificate: '/c.pem', key: '/k.pem' } }));
    const line = text.split('\n').find((l) => l.includes('ssl_ciphers'));
    expect(line?.trim()).toBe(`ssl_ciphers ${TLS12_CIPHERS.join(':')};`);
    for (const c of TLS12_CIPHERS) expect(c).toMatch(/^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    // openssl agrees: every suite the string selects is ECDHE with AEAD, and none is TLS 1.0/1.1-only.
    const r = spawnSync('openssl', ['ciphers', '-v', TLS12_CIPHERS.join(':')], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const tls12 = r.stdout
      .trim()
      .split('\n')
      .filter((l) => !/TLSv1\.3/.test(l));
    expect(tls12).toHaveLength(TLS12_CIPHERS.length);
    for (const l of tls12) expect(l).toMatch(/TLSv1\.2 +Kx=ECDH +Au=(RSA|ECDSA) +Enc=(AESGCM|CHACHA20\/POLY1305)\(\d+\) +Mac=AEAD/);
  });

  it('serves the two key files without basic auth, behind the same allowlist, on every repository server', () => {
    const text = renderVhost(spec('/x', { tls: { certificate: '/c.pem', key: '/k.pem' }, allowPlainHttp: true }));
    for (const [ext, type] of [
      ['asc', 'text/plain'],
      ['gpg', 'application/octet-stream'],
    ]) {
      const block = `    location = /example-preprod-archive-keyring.${ext} {\n        default_type ${type};\n        allow 127.0.0.1;\n        allow 127.0.0.2;\n        deny all;\n        auth_basic off;\n    }\n`;
      // Once in the HTTP server (allowPlainHttp) and once in the HTTPS one.
      expect(text.split(block)).toHaveLength(3);
    }
    // Only those two locations turn auth off, in each server (no ACME root here).
    expect(text.match(/auth_basic off;/g)).toHaveLength(4);
    // Without basic auth configured the key locations are the same (auth_basic off is harmless).
    expect(renderVhost(spec('/x', { allowPlainHttp: true, htpasswdFile: undefined }))).toContain(
      'allow 127.0.0.2;\n        deny all;\n        auth_basic off;',
    );
  });

  it('refuses a vhost that would serve nothing', () => {
    expect(() => renderVhost(spec('/x', { allowPlainHttp: false }))).toThrow(/nothing would serve/);
  });

  it('listens on one address when given, with the port in the redirect when not 443', () => {
    const text = renderVhost(
      spec('/x', { listenAddress: '127.0.0.1', httpPort: 8080, httpsPort: 8443, tls: { certificate: '/c', key: '/k' } }),
    );
    expect(text).toContain('listen 127.0.0.1:8080;');
    expect(text).toContain('listen 127.0.0.1:8443 ssl;');
    expect(text).not.toContain('[::]');
    expect(text).toContain('return 301 https://apt-preprod.example.org:8443$request_uri;');
  });
});

describe('renderVhost with the real nginx', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhost-test-'));
    // The layout publish makes: dists -> .generations/<id>/dists, owned like its target by the
    // service user (nobody here); the htpasswd file belongs to root.
    for (const d of ['www/.generations/1/dists/bookworm', 'www/pool/main/h/hello', 'log'])
      fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.writeFileSync(path.join(dir, 'www/.generations/1/dists/bookworm/Release'), 'Origin: test\n');
    fs.writeFileSync(path.join(dir, 'www/.generations/1/dists/.hidden'), 'no\n');
    fs.symlinkSync('.generations/1/dists', path.join(dir, 'www/dists'));
    fs.writeFileSync(path.join(dir, 'www/pool/main/h/hello/hello_1_all.deb'), 'deb');
    fs.writeFileSync(path.join(dir, 'www/.generations/1/secret'), 'no\n');
    fs.writeFileSync(path.join(dir, 'www/example-preprod-archive-keyring.asc'), '-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
    fs.writeFileSync(path.join(dir, 'www/other.txt'), 'no\n');
    fs.writeFileSync(path.join(dir, 'htpasswd'), renderHtpasswd([{ username: 'client1', password: 'correct-horse-battery' }]), {
      mode: 0o640,
    });
    // Links another user planted in the web root, towards files that are not theirs.
    fs.symlinkSync(path.join(dir, 'htpasswd'), path.join(dir, 'www/pool/main/h/hello/leak_1_all.deb'));
    fs.symlinkSync(path.join(dir, 'htpasswd'), path.join(dir, 'www/example-preprod-archive-keyring.gpg'));
    fs.symlinkSync(path.join(dir, 'www/.generations/1/dists'), path.join(dir, 'www/pool/main/h/hello/dists-copy'));
    if (asRoot) {
      execFileSync('chown', ['-R', '-h', `${NOBODY}:${NOBODY}`, path.join(dir, 'www')]);
      fs.lchownSync(path.join(dir, 'www/pool/main/h/hello/dists-copy'), 0, 0);
    }
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes `nginx -t` with TLS, through renderNginxTestConf', () => {
    expect(spawnSync('openssl', ['version']).status).toBe(0);
    const { certFile: cert, keyFile: key } = selfSignedCert(dir, 'apt-preprod.example.org');
    const vhostFile = path.join(dir, 'apt-preprod.conf');
    fs.writeFileSync(
      vhostFile,
      renderVhost(spec(dir, { tls: { certificate: cert, key }, acmeRoot: path.join(dir, 'acme'), listenAddress: '127.0.0.1' })),
    );
    const t = fs.mkdtempSync(path.join(dir, 't-'));
    fs.writeFileSync(path.join(t, 'nginx.conf'), renderNginxTestConf(vhostFile, t));
    const r = spawnSync(NGINX, ['-t', '-q', '-c', path.join(t, 'nginx.conf'), '-p', t + '/', '-e', path.join(t, 'error.log')], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // A missing certificate is caught by the same check.
    fs.writeFileSync(vhostFile, renderVhost(spec(dir, { tls: { certificate: path.join(dir, 'nope.pem'), key } })));
    const bad = spawnSync(NGINX, ['-t', '-q', '-c', path.join(t, 'nginx.conf'), '-p', t + '/', '-e', path.join(t, 'error.log')], {
      encoding: 'utf8',
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('nope.pem');
  });

  describe('the ACME bootstrap vhost (certbot, before the first certificate)', () => {
    let nginx: NginxServer;
    beforeAll(async () => {
      fs.mkdirSync(path.join(dir, 'acme/.well-known/acme-challenge'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'acme/.well-known/acme-challenge/tok'), 'tok.thumb');
      nginx = await startNginx({
        serverBlocks: (port, addr) =>
          renderAcmeBootstrapVhost({
            channel: 'preprod',
            serverName: 'apt-preprod.example.org',
            acmeRoot: path.join(dir, 'acme'),
            httpPort: port,
            listenAddress: addr,
            logDir: path.join(dir, 'log'),
          }),
      });
    });
    afterAll(() => nginx?.stop());

    it('answers the challenge from any address and serves nothing of the repository', async () => {
      const challenge = await httpGet(`${nginx.url}/.well-known/acme-challenge/tok`, { localAddress: '127.0.0.3' });
      expect([challenge.status, challenge.body]).toEqual([200, 'tok.thumb']);
      for (const p of ['/dists/bookworm/Release', '/dists/', '/example-preprod-archive-keyring.asc', '/']) {
        expect([
          p,
          (await httpGet(`${nginx.url}${p}`, { auth: { username: 'client1', password: 'correct-horse-battery' } })).status,
        ]).toEqual([p, 403]);
      }
    });
  });

  describe('serving (plain HTTP, allowlist + basic auth)', () => {
    let nginx: NginxServer;
    const auth = { username: 'client1', password: 'correct-horse-battery' };
    beforeAll(async () => {
      nginx = await startNginx({
        serverBlocks: (port, addr) => renderVhost(spec(dir, { allowPlainHttp: true, httpPort: port, listenAddress: addr })),
      });
    });
    afterAll(() => nginx?.stop());

    it('asks allowed clients for credentials and checks the $6$ hash', async () => {
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`)).status).toBe(401);
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth: { ...auth, password: 'wrong-password-here' } })).status).toBe(
        401,
      );
      const ok = await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth });
      expect(ok.status).toBe(200);
      expect(ok.body).toBe('Origin: test\n');
      const fromSecond = await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth, localAddress: '127.0.0.2' });
      expect(fromSecond.status).toBe(200);
    });

    it('refuses an address outside the allowlist even with credentials', async () => {
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth, localAddress: '127.0.0.3' })).status).toBe(403);
    });

    it('serves dists through the generation link, but no link towards a file of another owner', async () => {
      expect(asRoot).toBe(true); // the owners below need chown
      const ok = await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth });
      expect([ok.status, ok.body]).toEqual([200, 'Origin: test\n']);
      for (const p of [
        '/pool/main/h/hello/leak_1_all.deb',
        '/example-preprod-archive-keyring.gpg',
        '/pool/main/h/hello/dists-copy/bookworm/Release',
      ]) {
        const r = await httpGet(`${nginx.url}${p}`, { auth });
        expect([p, r.status]).toEqual([p, 403]);
        expect(r.body).not.toContain('client1:');
        expectNoVersion(r);
      }
    });

    it('never tells its version, whatever the status', async () => {
      expectNoVersion(await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth }));
      expectNoVersion(await httpGet(`${nginx.url}/dists/bookworm/Release`));
      expectNoVersion(await httpGet(`${nginx.url}/other.txt`, { auth }));
      expectNoVersion(await httpGet(`${nginx.url}/pool/main/h/hello/none.deb`, { auth }));
    });

    it('lists /dists/ and /pool/, serves the key, and denies dotfiles and everything else', async () => {
      const listing = await httpGet(`${nginx.url}/dists/`, { auth });
      expect(listing.status).toBe(200);
      expect(listing.body).toContain('bookworm/');
      expect((await httpGet(`${nginx.url}/pool/main/h/hello/`, { auth })).body).toContain('hello_1_all.deb');
      expect((await httpGet(`${nginx.url}/example-preprod-archive-keyring.asc`, { auth })).status).toBe(200);
      for (const p of ['/', '/other.txt', '/.generations/1/secret', '/dists/.hidden', '/pool/../other.txt']) {
        expect([p, (await httpGet(`${nginx.url}${p}`, { auth })).status]).toEqual([p, 403]);
      }
    });
  });

  describe('the public key files, fetched without credentials', () => {
    let nginx: NginxServer;
    const binary = Buffer.from([0x98, 0x33, 0x04, 0x00, 0xff, 0x0a, 0x0d]);
    beforeAll(async () => {
      fs.writeFileSync(path.join(dir, 'www/fetch-preprod-archive-keyring.asc'), '-----BEGIN PGP PUBLIC KEY BLOCK-----\nfetch\n');
      fs.writeFileSync(path.join(dir, 'www/fetch-preprod-archive-keyring.gpg'), binary);
      // A link planted at the key's name, towards the (root-owned) htpasswd file.
      fs.symlinkSync(path.join(dir, 'htpasswd'), path.join(dir, 'www/planted-preprod-archive-keyring.asc'));
      if (asRoot)
        for (const f of ['fetch-preprod-archive-keyring.asc', 'fetch-preprod-archive-keyring.gpg', 'planted-preprod-archive-keyring.asc'])
          fs.lchownSync(path.join(dir, 'www', f), NOBODY, NOBODY);
      const blocks = (port: number, addr: string | undefined) =>
        renderVhost(spec(dir, { allowPlainHttp: true, httpPort: port, listenAddress: addr, keyName: 'fetch-preprod' })) +
        // A second vhost (another server name) whose key name is the planted link.
        renderVhost(
          spec(dir, {
            allowPlainHttp: true,
            httpPort: port,
            listenAddress: addr,
            keyName: 'planted-preprod',
            serverName: 'planted.example.org',
          }),
        );
      nginx = await startNginx({ serverBlocks: blocks });
    });
    afterAll(() => nginx?.stop());

    it('serves both key files to an allowed address without credentials, and refuses a denied address', async () => {
      const asc = await httpGet(`${nginx.url}/fetch-preprod-archive-keyring.asc`);
      expect([asc.status, asc.body, asc.headers['content-type']]).toEqual([
        200,
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\nfetch\n',
        'text/plain',
      ]);
      const gpg = await httpGet(`${nginx.url}/fetch-preprod-archive-keyring.gpg`, { localAddress: '127.0.0.2' });
      expect([gpg.status, gpg.headers['content-type']]).toEqual([200, 'application/octet-stream']);
      expect(gpg.bytes.equals(binary)).toBe(true);
      for (const p of ['/fetch-preprod-archive-keyring.asc', '/fetch-preprod-archive-keyring.gpg']) {
        for (const auth of [undefined, { username: 'client1', password: 'correct-horse-battery' }]) {
          const r = await httpGet(`${nginx.url}${p}`, { localAddress: '127.0.0.3', ...(auth ? { auth } : {}) });
          expect([p, !!auth, r.status]).toEqual([p, !!auth, 403]);
          expect(r.body).not.toContain('PGP');
        }
      }
      // Credentials, when a client sends them anyway, do not matter.
      expect(
        (
          await httpGet(`${nginx.url}/fetch-preprod-archive-keyring.asc`, {
            auth: { username: 'client1', password: 'wrong-password-here' },
          })
        ).status,
      ).toBe(200);
    });

    it('still asks for credentials everywhere else', async () => {
      for (const p of ['/dists/bookworm/Release', '/dists/', '/pool/main/h/hello/hello_1_all.deb', '/pool/main/h/hello/']) {
        const r = await httpGet(`${nginx.url}${p}`);
        expect([p, r.status]).toEqual([p, 401]);
      }
      // Names near the key's (and another channel's key) fall to `location /`: refused to everyone, as before.
      for (const p of [
        '/fetch-preprod-archive-keyring.asc.bak',
        '/fetch-preprod-archive-keyring.gpg/',
        '/example-preprod-archive-keyring.asc',
        '/other.txt',
        '/',
      ]) {
        const r = await httpGet(`${nginx.url}${p}`);
        expect([p, r.status]).toEqual([p, 403]);
        expect(r.body).not.toContain('PGP');
      }
      // With credentials the repository is served as before.
      expect(
        (await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth: { username: 'client1', password: 'correct-horse-battery' } })).status,
      ).toBe(200);
    });

    it('never follows a link planted at the key name towards a file of another owner', async () => {
      expect(asRoot).toBe(true); // the owners need chown
      const r = await httpGet(`${nginx.url}/planted-preprod-archive-keyring.asc`, { headers: { Host: 'planted.example.org' } });
      expect(r.status).toBe(403);
      expect(r.body).not.toContain('client1:');
    });
  });

  describe('serving over HTTPS, with the HTTP port redirecting', () => {
    let nginx: NginxServer;
    let httpPort: number;
    const auth = { username: 'client1', password: 'correct-horse-battery' };
    beforeAll(async () => {
      const { certFile: cert, keyFile: key } = selfSignedCert(dir, 'apt-preprod.example.org', {
        certName: 'tls-cert.pem',
        keyName: 'tls-key.pem',
      });
      httpPort = await findFreePort();
      nginx = await startNginx({
        serverBlocks: (port, addr) =>
          renderVhost(spec(dir, { tls: { certificate: cert, key }, httpPort, httpsPort: port, listenAddress: addr })),
      });
    });
    afterAll(() => nginx?.stop());

    it('serves the repository with HSTS and without a version', async () => {
      const r = await httpGet(`https://127.0.0.1:${nginx.port}/dists/bookworm/Release`, { auth });
      expect([r.status, r.body]).toEqual([200, 'Origin: test\n']);
      expect(r.headers['strict-transport-security']).toBe(`max-age=${HSTS_MAX_AGE}`);
      expectNoVersion(r);
      const denied = await httpGet(`https://127.0.0.1:${nginx.port}/pool/main/h/hello/leak_1_all.deb`, { auth });
      expect(denied.status).toBe(403);
      expect(denied.headers['strict-transport-security']).toBe(`max-age=${HSTS_MAX_AGE}`);
    });

    it('redirects HTTP to the configured server name, whatever Host the client sent', async () => {
      for (const host of ['evil.example.net', `127.0.0.1:${httpPort}`, 'apt-preprod.example.org']) {
        const r = await httpGet(`http://127.0.0.1:${httpPort}/dists/bookworm/Release?x=1`, { headers: { Host: host } });
        expect([host, r.status, r.headers.location]).toEqual([
          host,
          301,
          `https://apt-preprod.example.org:${nginx.port}/dists/bookworm/Release?x=1`,
        ]);
        expectNoVersion(r);
      }
    });

    it('accepts TLS 1.3 and TLS 1.2 with ECDHE + AEAD only', () => {
      expect(handshake(nginx.port, ['-tls1_3'])).toBe(true);
      expect(handshake(nginx.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'])).toBe(true);
      expect(handshake(nginx.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'])).toBe(true);
      // Static RSA key exchange, CBC, DHE, and the old protocols are refused (the client offers them
      // at security level 0 so that only the server decides).
      for (const args of [
        ['-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'AES128-SHA:AES256-SHA256@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'DHE-RSA-AES128-GCM-SHA256@SECLEVEL=0'],
        ['-tls1_1', '-cipher', 'ALL@SECLEVEL=0'],
      ]) {
        expect([args.join(' '), handshake(nginx.port, args)]).toEqual([args.join(' '), false]);
      }
    });
  });
});
