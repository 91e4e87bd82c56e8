import * as fs from 'fs';
import * as path from 'path';
import { httpGet, NginxServer, startNginx, staticServerBlock } from './nginx';
import { mkTemp, rmTemp } from './cli';

describe('startNginx', () => {
  let webRoot: string;
  let server: NginxServer | undefined;

  beforeAll(() => {
    webRoot = mkTemp('nginx-root');
    fs.mkdirSync(path.join(webRoot, 'dists', 'bookworm'), { recursive: true });
    fs.writeFileSync(path.join(webRoot, 'dists', 'bookworm', 'Release'), 'Codename: bookworm\n');
    fs.mkdirSync(path.join(webRoot, 'secret'));
    fs.writeFileSync(path.join(webRoot, 'secret', 'key'), 'hidden\n');
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  afterAll(() => rmTemp(webRoot));

  it('serves a file from the web root, 404 for a missing one, 403 where denied, no directory listing', async () => {
    server = await startNginx({
      serverBlocks: (port) => staticServerBlock(port, webRoot, { extra: 'location /secret/ { deny all; }' }),
    });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const ok = await httpGet(`${server.url}/dists/bookworm/Release`);
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('Codename: bookworm\n');
    expect((await httpGet(`${server.url}/dists/bullseye/Release`)).status).toBe(404);
    expect((await httpGet(`${server.url}/secret/key`)).status).toBe(403);
    // autoindex off: a directory without index.html is forbidden, not listed.
    expect((await httpGet(`${server.url}/dists/`)).status).toBe(403);
    expect(server.accessLog()).toContain('GET /dists/bookworm/Release');
  });

  it('lets a test choose the client address nginx sees (allowlist by source address)', async () => {
    server = await startNginx({
      serverBlocks: (port) => staticServerBlock(port, webRoot, { extra: 'allow 127.0.0.2; deny all;' }),
    });
    const url = `${server.url}/dists/bookworm/Release`;
    expect((await httpGet(url, { localAddress: '127.0.0.2' })).status).toBe(200);
    expect((await httpGet(url, { localAddress: '127.0.0.3' })).status).toBe(403);
    expect((await httpGet(url)).status).toBe(403);
    expect(server.errorLog()).toMatch(/access forbidden by rule, client: 127\.0\.0\.3/);
  });

  it('sends basic-auth credentials', async () => {
    const htpasswd = path.join(webRoot, '..', `${path.basename(webRoot)}.htpasswd`);
    // {PLAIN} scheme: nginx auth_basic_user_file accepts it (test only).
    fs.writeFileSync(htpasswd, 'client:{PLAIN}s3cret\n');
    try {
      server = await startNginx({
        serverBlocks: (port) => staticServerBlock(port, webRoot, { extra: `auth_basic "apt"; auth_basic_user_file ${htpasswd};` }),
      });
      const url = `${server.url}/dists/bookworm/Release`;
      expect((await httpGet(url)).status).toBe(401);
      expect((await httpGet(url, { auth: 'client:wrong' })).status).toBe(401);
      expect((await httpGet(url, { auth: { username: 'client', password: 's3cret' } })).status).toBe(200);
    } finally {
      fs.rmSync(htpasswd, { force: true });
    }
  });

  it('accepts several server blocks on several loopback addresses, and stop() frees the port', async () => {
    const other = mkTemp('nginx-root2');
    fs.writeFileSync(path.join(other, 'which'), 'second\n');
    fs.writeFileSync(path.join(webRoot, 'which'), 'first\n');
    try {
      server = await startNginx({
        serverBlocks: (port) => [staticServerBlock(port, webRoot), staticServerBlock(port, other, { listenAddress: '127.0.0.5' })],
      });
      expect((await httpGet(`${server.url}/which`)).body).toBe('first\n');
      expect((await httpGet(`http://127.0.0.5:${server.port}/which`)).body).toBe('second\n');
      const { url, prefix } = server;
      await server.stop();
      server = undefined;
      await expect(httpGet(`${url}/which`)).rejects.toThrow(/ECONNREFUSED/);
      expect(fs.existsSync(prefix)).toBe(false);
    } finally {
      rmTemp(other);
    }
  });

  it('rejects with the error log when the configuration is invalid', async () => {
    await expect(startNginx({ serverBlocks: (port) => `server { listen 127.0.0.1:${port}; bogus_directive on; }` })).rejects.toThrow(
      /unknown directive "bogus_directive"/,
    );
  });
});
