import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, resolveChannelPair } from '../repo/channel';
import { ingest } from '../repo/ingest';
import { promote, parsePackageSpec } from '../repo/promote';
import { publish } from '../repo/publish';
import { recoverChannel } from '../repo/recover';
import { pendingPackages } from '../repo/pending';
import { currentGeneration } from '../repo/generations';
import { generateSigningKey } from '../sign/keys';
import { describeDeb } from '../deb/format';
import { escapeHtml, humanSize } from './pages';
import { servedCatalogue } from './write';
import { refreshCatalogue } from './refresh';
import type { ChannelConfig } from '../core/types';

let root: string;
let preprod: ChannelConfig;
let prod: ChannelConfig;
const savedEnv = { ...process.env };

const HOSTILE = '<script>alert(1)</script> & "quotes"';

beforeAll(async () => {
  root = mkTemp('catalogue-test');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'] });
  prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm', 'bullseye'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  }
  process.env.SUDO_USER = 'alice';
  const drop = path.join(preprod.incomingDir, 'ci');
  for (const v of ['1.0-1', '1.10-1', '1.2-1'])
    buildDeb(drop, { name: 'app', version: v, description: `the app ${HOSTILE}\n Long text line one.\n .\n Second paragraph.` });
  buildDeb(drop, { name: 'php-tools', version: '1.0-1+deb12u1', architecture: 'amd64' });
  await ingest(preprod, { settleMs: 0 });
  await promote(await resolveChannelPair(root, 'prod'), [parsePackageSpec('app=1.2-1')]);
});
afterAll(() => {
  process.env = { ...savedEnv };
  rmTemp(root);
});

const page = (ch: ChannelConfig, name: string) => fs.readFileSync(path.join(ch.webRoot, 'catalogue', name), 'utf8');

describe('describeDeb (Debian Policy §5.6.13)', () => {
  it('splits the synopsis from the extended description, a " ." line being an empty line', () => {
    expect(describeDeb([['Description', 'short\n first\n .\n second']])).toEqual({ summary: 'short', text: 'first\n\nsecond' });
    expect(describeDeb([['description', 'only']])).toEqual({ summary: 'only', text: '' });
    expect(describeDeb([['Package', 'x']])).toEqual({ summary: '', text: '' });
  });
});

describe('page helpers', () => {
  it('escape every character that could open markup or close an attribute', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe('&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
  });
  it('give sizes in powers of 1024', () => {
    expect([humanSize(512), humanSize(1536), humanSize(10 * 1024 * 1024), humanSize(undefined)]).toEqual([
      '512 B',
      '1.5 KiB',
      '10 MiB',
      '',
    ]);
  });
});

describe('the catalogue a publish writes', () => {
  it('lists every served version newest first in Debian order, with codenames, install line and escaped package text', async () => {
    const html = page(preprod, 'index.html');
    const versions = [...html.matchAll(/<tr data-version="([^"]+)" data-architecture="([^"]+)">/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(versions).toEqual(['1.10-1 all', '1.2-1 all', '1.0-1 all', '1.0-1+deb12u1 amd64']);
    expect(html).toContain('<code>apt-get install app=1.10-1</code>');
    // Routed by its suffix to bookworm only; the others to both codenames.
    expect(html).toMatch(/<td class="nowrap">1\.0-1\+deb12u1<\/td><td>amd64<\/td><td>bookworm<\/td>/);
    expect(html).toMatch(/<td class="nowrap">1\.10-1<\/td><td>all<\/td><td>bookworm bullseye<\/td>/);
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;');
    expect(html).toContain('Long text line one.\n\nSecond paragraph.');
    // No inline script or style: the only script is the file the CSP allows.
    expect([...html.matchAll(/<script[^>]*>/g)].map((m) => m[0])).toEqual(['<script src="catalogue.js" defer>']);
    expect(html).not.toMatch(/ style=|<style/);
    for (const f of ['catalogue.css', 'catalogue.js', 'favicon.svg', 'generations.html', 'history.html'])
      expect(fs.existsSync(path.join(preprod.webRoot, 'catalogue', f))).toBe(true);
    // Preprod has no pending view (it is the upstream side).
    expect(fs.existsSync(path.join(preprod.webRoot, 'catalogue', 'pending.html'))).toBe(false);
  });

  it('describes the served generation, and on prod dates the promotion and lists exactly what pending lists', async () => {
    expect(servedCatalogue(prod)?.generation).toBe(await currentGeneration(prod));
    const html = page(prod, 'index.html');
    expect([...html.matchAll(/<tr data-version="([^"]+)"/g)].map((m) => m[1])).toEqual(['1.2-1']);
    // Uploaded (preprod's date) and promoted (prod's) are both shown.
    expect(html).toMatch(/<td class="nowrap">1\.2-1<\/td>.*<time datetime="[^"]+">.*<time datetime="[^"]+">/);
    const pending = page(prod, 'pending.html');
    const rows = [...pending.matchAll(/<tr data-name="([^"]+)" data-version="([^"]+)" data-architecture="([^"]+)">/g)].map((m) =>
      m.slice(1).join(' '),
    );
    const expected = (await pendingPackages(await resolveChannelPair(root, 'prod'))).rows.map(
      (r) => `${r.name} ${r.version} ${r.architecture}`,
    );
    expect(rows).toEqual(expected);
    expect(rows).toEqual(['app 1.10-1 all', 'app 1.0-1 all', 'php-tools 1.0-1+deb12u1 amd64']);
  });

  it('shows the history with who made each change, and what each generation changed', () => {
    const history = page(prod, 'history.html');
    expect(history).toMatch(/<tr data-op="promote">.*<td>alice \(sudo\)<\/td>.*added app 1\.2-1 all/);
    const gens = page(preprod, 'generations.html');
    expect(gens).toContain('(served)');
    expect(gens).toContain('<li>app 1.10-1 all</li>');
  });

  it('refreshCatalogue brings the pending view up to date after preprod changed', async () => {
    buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'newcomer', version: '3' });
    await ingest(preprod, { settleMs: 0 });
    expect(page(prod, 'pending.html')).not.toContain('data-name="newcomer"');
    const before = servedCatalogue(prod)!;
    const m = await refreshCatalogue(prod);
    expect(m?.generation).toBe(before.generation);
    expect(m!.builtAt >= before.builtAt).toBe(true);
    expect(page(prod, 'pending.html')).toContain('data-name="newcomer" data-version="3"');
    // One build folder only: the older ones are removed.
    expect(fs.readdirSync(path.join(prod.webRoot, '.catalogue'))).toHaveLength(1);
  });

  it('is rebuilt by the next writer when it describes another generation than the served one (a writer stopped between the flips)', async () => {
    const stale = servedCatalogue(prod)!;
    // A publish with the catalogue off plays the writer killed after the dists flip.
    await publish({ ...prod, catalogue: false });
    const served = await currentGeneration(prod);
    expect(served).not.toBe(stale.generation);
    expect(servedCatalogue(prod)?.generation).toBe(stale.generation);
    const report = await recoverChannel(prod);
    expect(report?.actions.join('\n')).toMatch(/rebuilt .*catalogue/);
    expect(servedCatalogue(prod)?.generation).toBe(served);
    // Nothing to do the next time.
    expect(await recoverChannel(prod)).toBeUndefined();
  });

  it('never replaces or follows what it did not make: a folder named catalogue stays, a planted link in .catalogue is removed, not followed', async () => {
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'keep.txt'), 'mine');
    fs.symlinkSync(outside, path.join(prod.webRoot, '.catalogue', 'planted'));
    await refreshCatalogue(prod);
    expect(fs.existsSync(path.join(prod.webRoot, '.catalogue', 'planted'))).toBe(false);
    expect(fs.readFileSync(path.join(outside, 'keep.txt'), 'utf8')).toBe('mine');

    const link = path.join(prod.webRoot, 'catalogue');
    fs.rmSync(link);
    fs.mkdirSync(link);
    fs.writeFileSync(path.join(link, 'index.html'), 'operator page');
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const r = await publish(prod);
      expect(r.generation).toBe(await currentGeneration(prod));
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/catalogue not written .*catalogue: is not a symlink/);
    } finally {
      stderr.mockRestore();
    }
    await expect(refreshCatalogue(prod)).rejects.toThrow(/catalogue: is not a symlink/);
    expect(fs.readFileSync(path.join(link, 'index.html'), 'utf8')).toBe('operator page');
    fs.rmSync(link, { recursive: true });
  });

  it("describes a package by its newest version's Description, whatever the pool order", async () => {
    const drop = path.join(preprod.incomingDir, 'ci');
    // The older one comes first in the pool's (byte) order.
    buildDeb(drop, { name: 'described', version: '2.0', description: 'new words' });
    buildDeb(drop, { name: 'described', version: '1.0', description: 'old words' });
    await ingest(preprod, { settleMs: 0 });
    const html = page(preprod, 'index.html');
    const section = html.slice(html.indexOf('<section class="pkg" id="pkg-described"'));
    expect(section.slice(0, section.indexOf('</section>'))).toMatch(
      /<p class="summary">new words<\/p>[\s\S]*data-version="2\.0"[\s\S]*data-version="1\.0"/,
    );
  });

  it('is not written with repo.yaml catalogue: false, and refresh says so', async () => {
    const off = { ...preprod, catalogue: false };
    await expect(refreshCatalogue(off)).rejects.toThrow(/catalogue off/);
  });
});
