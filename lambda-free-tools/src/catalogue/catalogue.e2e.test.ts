/**
 * The web catalogue in a real browser: channels made by the bundled apt-repo (ingest, promote),
 * served by a real nginx with the vhost the Pulumi program renders (allowlist and basic auth), read
 * by Debian's headless Chromium driven by playwright-core. Pages load with no console error and no
 * failed request, the search box finds a package, the lists work without JavaScript, prod's pending
 * view equals `apt-repo pending --json`, a phone-sized screen needs no sideways scroll of the page.
 * Screenshots go to test-artifacts/catalogue/.
 */
import * as fs from 'fs';
import * as path from 'path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, ok, rmTemp, runCli } from '../../../test/harness/cli';
import { httpGet, startNginx, type NginxServer } from '../../../test/harness/nginx';
import { initChannel } from '../repo/channel';
import { generateSigningKey } from '../sign/keys';
import { renderVhost } from '../../../infra/vhost';
import { renderHtpasswd } from '../../../infra/htpasswd';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve(__dirname, '../../../test-artifacts/catalogue');
const USER = { username: 'ops', password: 'catalogue-test-password' };
const HOSTILE = '<img src=x onerror="document.title=1">';

let root: string;
let nginx: NginxServer;
let browser: Browser;
let base: Record<'preprod' | 'prod', string>;

const apt = (...args: string[]) => runCli(['--root', root, ...args], { env: { SUDO_USER: 'alice' } });

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/debian-tools.sh lists it)`);
  root = mkTemp('catalogue-e2e');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  const chans = {
    preprod: await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'] }),
    prod: await initChannel({ root, channel: 'prod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'], upstream: 'preprod' }),
  };
  for (const ch of Object.values(chans)) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  }
  const drop = path.join(chans.preprod.incomingDir, 'ci');
  for (const v of ['1.0-1', '1.2-1', '1.10-1'])
    buildDeb(drop, { name: 'voozanoo-app', version: v, description: `Voozanoo application ${HOSTILE}\n Built by CI.` });
  buildDeb(drop, { name: 'php-tools', version: '8.2-1+deb12u1', architecture: 'amd64', description: 'PHP build tools' });
  buildDeb(drop, { name: 'server-scripts', version: '3', description: 'per-role server scripts' });
  ok(await apt('--channel', 'preprod', 'ingest', '--settle-ms', '0'), 'ingest');
  ok(await apt('--channel', 'prod', 'promote', 'voozanoo-app=1.2-1', 'server-scripts'), 'promote');

  const htpasswd = path.join(root, 'htpasswd');
  fs.writeFileSync(htpasswd, renderHtpasswd([USER]));
  fs.mkdirSync(path.join(root, 'log'));
  nginx = await startNginx({
    serverBlocks: (port, addr) =>
      (['preprod', 'prod'] as const).map((c) =>
        renderVhost({
          channel: c,
          serverName: `apt-${c}.test`,
          webRoot: chans[c].webRoot,
          keyName: chans[c].keyName,
          allowedCidrs: ['127.0.0.1'],
          htpasswdFile: htpasswd,
          allowPlainHttp: true,
          // One port, told apart by the Host header: the second vhost only by server_name.
          httpPort: port,
          httpsPort: 443,
          listenAddress: addr,
          logDir: path.join(root, 'log'),
        }),
      ),
  });
  base = { preprod: `http://apt-preprod.test:${nginx.port}`, prod: `http://apt-prod.test:${nginx.port}` };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Host names resolve to the test nginx; nothing else is reached (the machine's network is closed).
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--host-resolver-rules=MAP apt-preprod.test 127.0.0.1, MAP apt-prod.test 127.0.0.1`,
    ],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  if (root) rmTemp(root);
});

/** A page that records every console error, uncaught exception, failed request and HTTP error. */
async function open(ctx: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  // Every request the page makes (its icon included) is over before its problems are looked at.
  await page.goto(url, { waitUntil: 'networkidle' });
  return { page, problems };
}

describe('the catalogue in Chromium', () => {
  let ctx: BrowserContext;
  beforeAll(async () => {
    ctx = await browser.newContext({ httpCredentials: USER, viewport: { width: 1280, height: 900 } });
  });
  afterAll(() => ctx?.close());

  it('every page of both channels loads with no console error and no failed request', async () => {
    for (const c of ['preprod', 'prod'] as const) {
      const pages = ['index.html', 'generations.html', 'history.html', ...(c === 'prod' ? ['pending.html'] : [])];
      for (const p of pages) {
        const { page, problems } = await open(ctx, `${base[c]}/catalogue/${p}`);
        expect([c, p, problems]).toEqual([c, p, []]);
        // The hostile description is text, not markup: no image was made and the title is the page's own.
        expect(await page.locator('main img').count()).toBe(0);
        expect(await page.title()).not.toBe('1');
        await page.screenshot({ path: path.join(SHOTS, `${c}-${p.replace('.html', '')}.png`), fullPage: true });
        await page.close();
      }
    }
    // The folder URL serves index.html.
    const { page, problems } = await open(ctx, `${base.prod}/catalogue/`);
    expect(problems).toEqual([]);
    expect(await page.locator('h1').textContent()).toBe('Packages');
    await page.close();
  });

  it('the search box finds a package by name or description, and ?q= pre-fills it', async () => {
    const { page, problems } = await open(ctx, `${base.preprod}/catalogue/index.html`);
    const visible = () => page.locator('section.pkg:visible h2').allTextContents();
    expect(await visible()).toEqual(['php-tools', 'server-scripts', 'voozanoo-app']);
    await page.getByLabel('Search packages').fill('php');
    expect(await visible()).toEqual(['php-tools']);
    expect(await page.locator('#shown').textContent()).toBe('1 of 3 packages match');
    await page.getByLabel('Search packages').fill('role scripts');
    expect(await visible()).toEqual(['server-scripts']);
    await page.getByLabel('Search packages').fill('no-such-thing');
    expect(await visible()).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'preprod-search-none.png') });
    expect(problems).toEqual([]);
    await page.close();
    // A new page for each address: navigating away would abort the first page's icon request.
    const q = await open(ctx, `${base.preprod}/catalogue/index.html?q=voozanoo`);
    expect(await q.page.locator('section.pkg:visible h2').allTextContents()).toEqual(['voozanoo-app']);
    // Newest first in Debian order, with the install line.
    const rows = await q.page.locator('#pkg-voozanoo-app tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')));
    expect(rows).toEqual(['1.10-1', '1.2-1', '1.0-1']);
    await expect(q.page.locator('#pkg-voozanoo-app code').first().textContent()).resolves.toBe('apt-get install voozanoo-app=1.10-1');
    await q.page.screenshot({ path: path.join(SHOTS, 'preprod-search.png') });
    expect(q.problems).toEqual([]);
    await q.page.close();
  });

  it("prod's pending view lists exactly what `apt-repo pending --json` lists", async () => {
    const out = JSON.parse(ok(await apt('--channel', 'prod', '--json', 'pending'), 'pending').stdout) as {
      pending: { name: string; version: string; architecture: string }[];
    };
    const expected = out.pending.map((r) => [r.name, r.version, r.architecture]);
    expect(expected.length).toBeGreaterThan(0);
    const { page, problems } = await open(ctx, `${base.prod}/catalogue/pending.html`);
    const shown = await page
      .locator('#pending tbody tr')
      .evaluateAll((trs) => trs.map((tr) => ['name', 'version', 'architecture'].map((a) => tr.getAttribute(`data-${a}`))));
    expect(shown).toEqual(expected);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('history and generations show who promoted what', async () => {
    const { page, problems } = await open(ctx, `${base.prod}/catalogue/history.html`);
    const promote = page.locator('#history tr[data-op="promote"]');
    expect(await promote.count()).toBe(1);
    expect(await promote.textContent()).toMatch(/alice \(sudo\).*added server-scripts 3 all, voozanoo-app 1\.2-1 all/);
    expect(problems).toEqual([]);
    await page.close();
    const g = await open(ctx, `${base.prod}/catalogue/generations.html`);
    expect(await g.page.locator('section.generation').first().textContent()).toMatch(
      /\(served\)[\s\S]*promote[\s\S]*voozanoo-app 1\.2-1 all/,
    );
    expect(g.problems).toEqual([]);
    await g.page.close();
  });

  it('on a phone-sized screen the page itself does not scroll sideways (tables scroll in their box)', async () => {
    const phone = await browser.newContext({ httpCredentials: USER, viewport: { width: 360, height: 740 }, isMobile: true });
    try {
      const { page, problems } = await open(phone, `${base.preprod}/catalogue/index.html`);
      // Evaluated in the page (DOM globals), written as text so the Node-side typings need no DOM lib.
      const [scrollWidth, innerWidth] = (await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')) as number[];
      expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
      await page.screenshot({ path: path.join(SHOTS, 'preprod-phone.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});

describe('the catalogue without JavaScript, without credentials, from a denied address', () => {
  it('lists every package without JavaScript (the search box, which needs it, stays hidden)', async () => {
    const ctx = await browser.newContext({ httpCredentials: USER, javaScriptEnabled: false });
    try {
      const { page, problems } = await open(ctx, `${base.preprod}/catalogue/index.html?q=php`);
      expect(await page.locator('section.pkg:visible h2').allTextContents()).toEqual(['php-tools', 'server-scripts', 'voozanoo-app']);
      expect(await page.locator('form.search').isVisible()).toBe(false);
      expect(problems).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('is behind the same credentials and allowlist as dists/', async () => {
    const url = `http://127.0.0.1:${nginx.port}/catalogue/index.html`;
    const headers = { Host: 'apt-prod.test' };
    expect((await httpGet(url, { headers })).status).toBe(401);
    expect((await httpGet(url, { headers, auth: USER })).status).toBe(200);
    expect((await httpGet(url, { headers, auth: USER, localAddress: '127.0.0.2' })).status).toBe(403);
    // The build folders are dot names: never served.
    const build = fs.readlinkSync(path.join(root, 'srv/apt/prod/catalogue'));
    expect((await httpGet(`http://127.0.0.1:${nginx.port}/${build}/index.html`, { headers, auth: USER })).status).toBe(403);
  });
});
