import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { httpGet, startNginx, type NginxServer } from '../test/harness/nginx';
import { renderHtpasswd } from './htpasswd';
import { renderAcmeBootstrapVhost, renderNginxTestConf, renderVhost, type VhostSpec } from './vhost';

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
    const http = text.split('\n\nserver {')[0];
    expect(http).toContain('return 301 https://$host$request_uri;');
    expect(http).not.toContain('root /x/www');
    expect(text).toContain('ssl_protocols TLSv1.2 TLSv1.3;');
  });

  it('refuses a vhost that would serve nothing', () => {
    expect(() => renderVhost(spec('/x', { allowPlainHttp: false }))).toThrow(/nothing would serve/);
  });

  it('listens on one address when given, with the port in the redirect when not 443', () => {
    const text = renderVhost(spec('/x', { listenAddress: '127.0.0.1', httpPort: 8080, httpsPort: 8443, tls: { certificate: '/c', key: '/k' } }));
    expect(text).toContain('listen 127.0.0.1:8080;');
    expect(text).toContain('listen 127.0.0.1:8443 ssl;');
    expect(text).not.toContain('[::]');
    expect(text).toContain('return 301 https://$host:8443$request_uri;');
  });
});

describe('renderVhost with the real nginx', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhost-test-'));
    for (const d of ['www/dists/bookworm', 'www/pool/main/h/hello', 'www/.generations/1', 'log']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.writeFileSync(path.join(dir, 'www/dists/bookworm/Release'), 'Origin: test\n');
    fs.writeFileSync(path.join(dir, 'www/dists/.hidden'), 'no\n');
    fs.writeFileSync(path.join(dir, 'www/pool/main/h/hello/hello_1_all.deb'), 'deb');
    fs.writeFileSync(path.join(dir, 'www/.generations/1/secret'), 'no\n');
    fs.writeFileSync(path.join(dir, 'www/example-preprod-archive-keyring.asc'), '-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
    fs.writeFileSync(path.join(dir, 'www/other.txt'), 'no\n');
    fs.writeFileSync(path.join(dir, 'htpasswd'), renderHtpasswd([{ username: 'client1', password: 'correct-horse-battery' }]));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes `nginx -t` with TLS, through renderNginxTestConf', () => {
    expect(spawnSync('openssl', ['version']).status).toBe(0);
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=apt-preprod.example.org', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const vhostFile = path.join(dir, 'apt-preprod.conf');
    fs.writeFileSync(vhostFile, renderVhost(spec(dir, { tls: { certificate: cert, key }, acmeRoot: path.join(dir, 'acme'), listenAddress: '127.0.0.1' })));
    const t = fs.mkdtempSync(path.join(dir, 't-'));
    fs.writeFileSync(path.join(t, 'nginx.conf'), renderNginxTestConf(vhostFile, t));
    const r = spawnSync(NGINX, ['-t', '-q', '-c', path.join(t, 'nginx.conf'), '-p', t + '/', '-e', path.join(t, 'error.log')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // A missing certificate is caught by the same check.
    fs.writeFileSync(vhostFile, renderVhost(spec(dir, { tls: { certificate: path.join(dir, 'nope.pem'), key } })));
    const bad = spawnSync(NGINX, ['-t', '-q', '-c', path.join(t, 'nginx.conf'), '-p', t + '/', '-e', path.join(t, 'error.log')], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('nope.pem');
  });

  describe('the ACME bootstrap vhost (certbot, before the first certificate)', () => {
    let nginx: NginxServer;
    beforeAll(async () => {
      fs.mkdirSync(path.join(dir, 'acme/.well-known/acme-challenge'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'acme/.well-known/acme-challenge/tok'), 'tok.thumb');
      nginx = await startNginx({ serverBlocks: (port, addr) => renderAcmeBootstrapVhost({ channel: 'preprod', serverName: 'apt-preprod.example.org', acmeRoot: path.join(dir, 'acme'), httpPort: port, listenAddress: addr, logDir: path.join(dir, 'log') }) });
    });
    afterAll(() => nginx?.stop());

    it('answers the challenge from any address and serves nothing of the repository', async () => {
      const challenge = await httpGet(`${nginx.url}/.well-known/acme-challenge/tok`, { localAddress: '127.0.0.3' });
      expect([challenge.status, challenge.body]).toEqual([200, 'tok.thumb']);
      for (const p of ['/dists/bookworm/Release', '/dists/', '/example-preprod-archive-keyring.asc', '/']) {
        expect([p, (await httpGet(`${nginx.url}${p}`, { auth: { username: 'client1', password: 'correct-horse-battery' } })).status]).toEqual([p, 403]);
      }
    });
  });

  describe('serving (plain HTTP, allowlist + basic auth)', () => {
    let nginx: NginxServer;
    const auth = { username: 'client1', password: 'correct-horse-battery' };
    beforeAll(async () => {
      nginx = await startNginx({ serverBlocks: (port, addr) => renderVhost(spec(dir, { allowPlainHttp: true, httpPort: port, listenAddress: addr })) });
    });
    afterAll(() => nginx?.stop());

    it('asks allowed clients for credentials and checks the $6$ hash', async () => {
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`)).status).toBe(401);
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth: { ...auth, password: 'wrong-password-here' } })).status).toBe(401);
      const ok = await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth });
      expect(ok.status).toBe(200);
      expect(ok.body).toBe('Origin: test\n');
      const fromSecond = await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth, localAddress: '127.0.0.2' });
      expect(fromSecond.status).toBe(200);
    });

    it('refuses an address outside the allowlist even with credentials', async () => {
      expect((await httpGet(`${nginx.url}/dists/bookworm/Release`, { auth, localAddress: '127.0.0.3' })).status).toBe(403);
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
});
