/**
 * `apt-repo mirror` against a local upstream (issue 14): a generated Alpine-shaped tree (signed
 * APKINDEX.tar.gz listing generated .apk files, releases/ with images, .sha256 files and
 * latest-releases.yaml) served by a real nginx on 127.0.0.1, mirrored by the bundled apt-repo.
 * - first sync: every file, checked, latest-stable flipped, the post-sync hook run;
 * - second sync after the upstream changed: exactly the changed files are downloaded (the
 *   upstream's access log), every other one is a hard link of the previous snapshot (same inode);
 * - rollback holds (a sync of the same version does not move the pointer back), gc keeps the
 *   pointer's target;
 * - a corrupted upstream file fails the sync naming the file and both checksums, is not kept, the
 *   pointer stays; the next sync, once the upstream is right again, resumes the partial snapshot;
 * - SIGKILL at seeded moments of a sync leaves the pointer on a complete snapshot; the next sync completes.
 * - behind a proxy named by http_proxy, every download goes through it;
 * - a sync draws a progress bar per folder when stderr is a terminal (util-linux `script` makes one),
 *   none on a pipe nor with --json.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { bundle, mkTemp, ok, rmTemp, runCli, runProcess } from '../../test/harness/cli';
import { shellJoin, shellQuote } from '../src/shellQuote';
import { startNginx, staticServerBlock, type NginxServer } from '../../test/harness/nginx';
import { alpineKey, kioskPackages, treeDigests as digests, writeKioskUpstream, type AlpineKey } from '../../test/harness/alpine';
import { runKilled, timeRun } from '../../test/harness/kill';
import { prng } from '../../test/harness/prng';

let root: string;
let upstream: string;
let nginx: NginxServer;
let key: AlpineKey;
const mirrorDir = () => path.join(root, 'srv/mirrors/alpine');
const pointer = () => fs.readlinkSync(path.join(mirrorDir(), 'latest-stable'));
const mirror = (...args: string[]) => runCli(['--root', root, '--json', 'mirror', ...args]);

/** Writes the upstream for release `version` (test/harness/alpine.ts writeKioskUpstream); returns the files it changed. */
const writeUpstream = (version: string, bump: number, stamp: number) => writeKioskUpstream(upstream, key, version, bump, stamp);

/** The paths (relative to the mirror's base URL) the upstream answered 200 since `from` (a length of the access log). */
function downloadsSince(from: number): string[] {
  return nginx
    .accessLog()
    .slice(from)
    .split('\n')
    .map((l) => /"GET \/alpine\/(\S+) HTTP\/[\d.]+" 200 /.exec(l)?.[1])
    .filter((x): x is string => !!x)
    .sort();
}

beforeAll(async () => {
  root = mkTemp('mirror-e2e');
  upstream = path.join(root, 'upstream');
  key = alpineKey('mirror-test');
  const keyDir = path.join(root, 'etc/epiconcept/apt_repo/mirror-keys');
  fs.mkdirSync(keyDir, { recursive: true });
  fs.writeFileSync(path.join(keyDir, key.name), key.publicPem);
  await writeUpstream('3.15.4', 1, 1_700_000_000);
  nginx = await startNginx({ serverBlocks: (port, addr) => staticServerBlock(port, upstream, { listenAddress: addr }) });
  fs.writeFileSync(
    path.join(root, 'etc/epiconcept/apt_repo/mirrors.yaml'),
    [
      'mirrors:',
      '  alpine:',
      `    url: ${nginx.url}/alpine/`,
      '    paths: [v3.15/main/x86_64, v3.15/community/x86_64, v3.15/releases/x86_64]',
      '    versionFrom: v3.15/releases/x86_64/latest-releases.yaml',
      `    keys: [${path.join(keyDir, key.name)}]`,
      // The hook also prints: its output must not reach the JSON on stdout.
      `    postSync: 'echo hook says hi; echo "$MIRROR_NAME $MIRROR_VERSION" >> ${path.join(root, 'hook.log')}'`,
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await nginx?.stop();
  if (root) rmTemp(root);
});

test('the first sync takes every file the upstream lists, checked, and points latest-stable at it; the hook runs after', async () => {
  const first = ok(await mirror('sync', 'alpine'), 'sync');
  const r = JSON.parse(first.stdout) as { outcome: string; label: string; downloaded: string[]; hook: { code: number } };
  expect(r).toMatchObject({ outcome: 'synced', label: '3.15.4', hook: { code: 0 } });
  expect(first.stderr).toContain('hook says hi');
  expect(pointer()).toBe('3.15.4');
  const mirrored = digests(path.join(mirrorDir(), '3.15.4'));
  const upstreamFiles = digests(path.join(upstream, 'alpine'));
  // Every upstream file, byte for byte (the manifest besides).
  for (const [f, d] of Object.entries(upstreamFiles)) expect([f, mirrored[f]]).toEqual([f, d]);
  expect(Object.keys(mirrored).filter((f) => !(f in upstreamFiles))).toEqual(['.manifest.json']);
  expect(r.downloaded.sort()).toEqual(Object.keys(upstreamFiles).sort());
  expect(fs.readFileSync(path.join(root, 'hook.log'), 'utf8')).toBe('alpine 3.15.4\n');
  // Nothing new upstream: nothing done, nothing downloaded.
  const mark = nginx.accessLog().length;
  expect(JSON.parse(ok(await mirror('sync', 'alpine'), 'sync again').stdout)).toMatchObject({ outcome: 'current', label: '3.15.4' });
  expect(downloadsSince(mark)).toEqual([]);
});

test('after the upstream changed, the next sync downloads exactly the changed files and hard-links the rest', async () => {
  const changed = await writeUpstream('3.15.5', 2, 1_700_000_100);
  expect(changed.length).toBeGreaterThanOrEqual(3);
  const mark = nginx.accessLog().length;
  const r = JSON.parse(ok(await mirror('sync', 'alpine'), 'sync 3.15.5').stdout) as { label: string; linked: number; downloaded: string[] };
  expect(r.label).toBe('3.15.5');
  // Only the files that changed or are new, each once (the old package is no longer listed).
  const listed = Object.keys(digests(path.join(upstream, 'alpine')));
  expect(downloadsSince(mark)).toEqual(changed.filter((f) => listed.includes(`alpine/${f}`) || listed.includes(f)));
  expect(r.downloaded.sort()).toEqual(downloadsSince(mark));
  // Every file that did not change is the same inode in both snapshots.
  const old = path.join(mirrorDir(), '3.15.4');
  const now = path.join(mirrorDir(), '3.15.5');
  for (const f of Object.keys(digests(now)).filter((x) => x !== '.manifest.json' && !changed.includes(x)))
    expect([f, fs.statSync(path.join(now, f)).ino]).toEqual([f, fs.statSync(path.join(old, f)).ino]);
  expect(r.linked).toBeGreaterThan(0);
  expect(pointer()).toBe('3.15.5');
});

test('list, rollback (which a sync of the same version does not undo) and gc (never the pointer)', async () => {
  const list = JSON.parse(ok(await mirror('list', 'alpine'), 'list').stdout) as {
    snapshots: { label: string; latestStable: boolean; ownBytes: number; bytes: number }[];
  };
  expect(list.snapshots.map((s) => [s.label, s.latestStable])).toEqual([
    ['3.15.4', false],
    ['3.15.5', true],
  ]);
  expect(list.snapshots[1].ownBytes).toBeLessThan(list.snapshots[1].bytes);
  expect(JSON.parse(ok(await mirror('rollback', 'alpine'), 'rollback').stdout)).toEqual({ from: '3.15.5', to: '3.15.4' });
  expect(pointer()).toBe('3.15.4');
  expect(JSON.parse(ok(await mirror('sync', 'alpine'), 'sync after rollback').stdout)).toMatchObject({ outcome: 'current' });
  expect(pointer()).toBe('3.15.4');
  const bad = await mirror('rollback', 'alpine', '--to', '9.9.9');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/no snapshot '9\.9\.9'/);
  // gc --keep 1 keeps the newest (3.15.5) and the pointer's target (3.15.4).
  expect(JSON.parse(ok(await mirror('gc', 'alpine', '--keep', '1'), 'gc').stdout).removed).toEqual([]);
  ok(await mirror('rollback', 'alpine', '--to', '3.15.5'), 'rollback --to');
  expect(JSON.parse(ok(await mirror('gc', 'alpine', '--keep', '1'), 'gc').stdout).removed).toEqual(['3.15.4']);
  expect(fs.existsSync(path.join(mirrorDir(), '3.15.4'))).toBe(false);
  // The hard links of the kept snapshot are whole files still: each as the upstream has it.
  const up = digests(path.join(upstream, 'alpine'));
  for (const [f, d] of Object.entries(digests(path.join(mirrorDir(), '3.15.5'))))
    if (f !== '.manifest.json') expect([f, d]).toEqual([f, up[f]]);
});

test("sync, rollback and gc run as the owner of the mirror's folder only (list by anyone); the refusal names the command to run", async () => {
  // On a server the folder is the mirror user's (infra/steps/mirrors.ts); here, nobody's for a moment.
  const nobody = Number(/^nobody:[^:]*:(\d+):/m.exec(fs.readFileSync('/etc/passwd', 'utf8'))![1]);
  const before = fs.readdirSync(mirrorDir()).sort();
  fs.chownSync(mirrorDir(), nobody, nobody);
  try {
    for (const args of [
      ['sync', 'alpine'],
      ['rollback', 'alpine'],
      ['gc', 'alpine', '--keep', '1'],
    ]) {
      const r = await mirror(...args);
      expect([args[0], r.code]).toEqual([args[0], 2]);
      expect(r.stderr).toContain(`${mirrorDir()} belongs to nobody and this command writes the mirror, but it runs as root`);
      expect(r.stderr).toContain(`runuser -u nobody -- ${process.execPath}`);
    }
    expect(ok(await mirror('list', 'alpine'), 'list as another user').code).toBe(0);
    expect(fs.readdirSync(mirrorDir()).sort()).toEqual(before);
  } finally {
    fs.chownSync(mirrorDir(), 0, 0);
  }
});

test('a corrupted upstream file fails the sync naming it and both sums, is not kept, the pointer stays; the next sync resumes', async () => {
  await writeUpstream('3.15.6', 3, 1_700_000_200);
  // A package new in this release (so downloaded, not hard-linked), its data damaged on the upstream.
  const victim = path.join(upstream, 'alpine/v3.15/main/x86_64/busybox-1.34.1-r3.apk');
  const good = fs.readFileSync(victim);
  const bad = Buffer.from(good);
  bad[bad.length - 20] ^= 0xff;
  fs.writeFileSync(victim, bad);
  fs.utimesSync(victim, 1_700_000_300, 1_700_000_300);
  const hooks = fs.readFileSync(path.join(root, 'hook.log'), 'utf8');
  const r = await mirror('sync', 'alpine');
  expect(r.code).toBe(1);
  const rel = path.relative(path.join(upstream, 'alpine'), victim);
  // Named with both values: what came and what the upstream publishes.
  expect(r.stderr).toMatch(
    new RegExp(`${rel.replace(/[.+]/g, '\\$&')}: data SHA-256 [0-9a-f]{64}, but its \\.PKGINFO says [0-9a-f]{64}; not kept`),
  );
  expect(pointer()).toBe('3.15.5');
  expect(fs.existsSync(path.join(mirrorDir(), '.partial-3.15.6', rel))).toBe(false);
  expect(fs.readFileSync(path.join(root, 'hook.log'), 'utf8')).toBe(hooks);
  // The upstream fixed: the next sync keeps what the failed one had checked, and completes.
  fs.writeFileSync(victim, good);
  const done = JSON.parse(ok(await mirror('sync', 'alpine'), 'sync after the fix').stdout) as { label: string; resumed: number };
  expect(done.label).toBe('3.15.6');
  expect(done.resumed).toBeGreaterThan(0);
  expect(pointer()).toBe('3.15.6');
});

test('a link planted in a partial snapshot is removed, never followed nor written through', async () => {
  await writeUpstream('3.15.61', 61, 1_700_000_500);
  const dir = path.join(mirrorDir(), '.partial-3.15.61', 'v3.15/main/x86_64');
  fs.mkdirSync(dir, { recursive: true });
  const outside = path.join(root, 'outside.apk');
  fs.writeFileSync(outside, 'not ours');
  // Named as the package the sync will download into that folder.
  fs.symlinkSync(outside, path.join(dir, 'busybox-1.34.1-r61.apk'));
  ok(await mirror('sync', 'alpine'), 'sync over a planted link');
  expect(fs.readFileSync(outside, 'utf8')).toBe('not ours');
  const file = path.join(mirrorDir(), '3.15.61', 'v3.15/main/x86_64/busybox-1.34.1-r61.apk');
  expect(fs.lstatSync(file).isFile()).toBe(true);
  expect(fs.readFileSync(file).equals(fs.readFileSync(path.join(upstream, 'alpine/v3.15/main/x86_64/busybox-1.34.1-r61.apk')))).toBe(true);
  expect(pointer()).toBe('3.15.61');
});

test('SIGKILL at seeded moments of a sync leaves latest-stable on a complete snapshot; the next sync completes', async () => {
  // Moments between two bounds of a run's time, narrowed after each kill that landed before the
  // partial snapshot began (too early) or after the flip (too late), until 3 kills left a partial
  // snapshot behind (at most 30 runs): each time the pointer is on a complete snapshot, and the next
  // sync completes the interrupted one.
  let release = 7;
  await writeUpstream(`3.15.${release}`, release + 1, 1_700_001_000);
  let span = await timeRun(['--root', root, 'mirror', 'sync', 'alpine']);
  const r = prng(9141);
  let [lo, hi] = [0.3, 1.05];
  let inWindow = 0;
  const outcomes: string[] = [];
  for (let run = 0; run < 30 && inWindow < 3; run++) {
    release++;
    await writeUpstream(`3.15.${release}`, release + 1, 1_700_001_000 + release * 100);
    const before = pointer();
    const f = lo + (hi - lo) * r();
    const k = await runKilled(['--root', root, 'mirror', 'sync', 'alpine'], Math.round(f * span));
    if (!k.killed) {
      expect(k.code).toBe(0);
      span = k.elapsedMs;
    }
    const target = pointer();
    // The pointer is the one before or the new complete snapshot, never anything else.
    expect([before, `3.15.${release}`]).toContain(target);
    expect(fs.existsSync(path.join(mirrorDir(), target, '.manifest.json'))).toBe(true);
    const partial = fs.existsSync(path.join(mirrorDir(), `.partial-3.15.${release}`));
    outcomes.push(`${f.toFixed(3)} of ${span} ms: ${!k.killed ? 'finished' : partial ? 'killed, partial snapshot left' : 'killed'}`);
    if (k.killed && partial) inWindow++;
    else if (k.killed && target === before && !fs.existsSync(path.join(mirrorDir(), `3.15.${release}`))) lo = f;
    else hi = f;
    if (hi - lo < 0.02) [lo, hi] = [Math.max(0, lo - 0.1), hi + 0.1];
    const next = JSON.parse(ok(await mirror('sync', 'alpine'), `sync after the kill (run ${run})`).stdout) as { label: string };
    expect(next.label).toBe(`3.15.${release}`);
    expect(pointer()).toBe(`3.15.${release}`);
    expect(fs.existsSync(path.join(mirrorDir(), `.partial-3.15.${release}`))).toBe(false);
  }
  process.stdout.write(`mirror kill test: ${inWindow} kills left a partial snapshot\n  ${outcomes.join('\n  ')}\n`);
  expect(inWindow).toBeGreaterThanOrEqual(3);
}, 240_000);

test('sync draws a progress bar per folder when stderr is a terminal; none on a pipe, none with --json', async () => {
  // Each run syncs into a root of its own (its own mirrors.yaml, no hook) from the same upstream: a
  // first sync each time, with every file to download, so the bar has work to count.
  const keyFile = path.join(root, 'etc/epiconcept/apt_repo/mirror-keys', key.name);
  const paths = ['v3.15/main/x86_64', 'v3.15/community/x86_64', 'v3.15/releases/x86_64'];
  const freshRoot = (name: string): string => {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'etc/epiconcept/apt_repo'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'etc/epiconcept/apt_repo/mirrors.yaml'),
      [
        'mirrors:',
        '  alpine:',
        `    url: ${nginx.url}/alpine/`,
        `    paths: [${paths.join(', ')}]`,
        `    versionFrom: ${paths[2]}/latest-releases.yaml`,
        `    keys: [${keyFile}]`,
        '',
      ].join('\n'),
    );
    return dir;
  };
  // util-linux `script` runs the CLI on a pseudo-terminal and copies what reached it to its own
  // stdout. The CLI's stdout goes to a file, so the terminal shows stderr alone (where the bar goes).
  // The pty has 0 columns: cli-progress then assumes 80, and its bar is 40 cells wide whatever the width.
  const cli = await bundle('apt-repo');
  const onTerminal = async (dir: string, ...args: string[]) => {
    const out = path.join(dir, 'stdout');
    const line = `exec ${shellJoin([process.execPath, cli, '--root', dir, ...args, 'mirror', 'sync', 'alpine'])} >${shellQuote(out)}`;
    // SHELL: script runs the line with $SHELL -c, and shellJoin quotes for a POSIX shell.
    const r = await runProcess('script', ['-qefc', line, '/dev/null'], { env: { ...process.env, SHELL: '/bin/sh' } });
    return { code: r.code, terminal: r.stdout, stdout: fs.readFileSync(out, 'utf8') };
  };
  // The bars drawn, as 'label value/total' (context.ts's format), read with the escape sequences taken out.
  const ESC = '\x1b';
  const bars = (text: string) =>
    [...text.replace(/\x1b(\[[?\d;]*[A-Za-z]|[78])/g, '\n').matchAll(/(\S+) \[[█░]+\] (\d+)\/(\d+)/g)].map(
      (m) => `${m[1]} ${m[2]}/${m[3]}`,
    );

  const tty = await onTerminal(freshRoot('progress-tty'));
  const json = await onTerminal(freshRoot('progress-json'), '--json');
  expect([tty.code, json.code]).toEqual([0, 0]);
  const r = JSON.parse(json.stdout) as { outcome: string; downloaded: string[] };
  expect(r.outcome).toBe('synced');
  expect(tty.stdout).toMatch(new RegExp(`^alpine: snapshot \\S+: ${r.downloaded.length} downloaded, 0 hard-linked`));
  // Per folder: drawn at 0 when its files start, redrawn full when they are done. The total is the
  // folder's packages or images (not its index, yaml nor .sha256 files, which the bar does not count).
  const counted = (folder: string) =>
    r.downloaded.filter((f) => path.posix.dirname(f) === folder && !/(APKINDEX\.tar\.gz|latest-releases\.yaml|\.sha256)$/.test(f)).length;
  expect(counted(paths[0])).toBe(kioskPackages(0).main.length);
  expect(bars(tty.terminal)).toEqual(paths.flatMap((p) => [`${p} 0/${counted(p)}`, `${p} ${counted(p)}/${counted(p)}`]));
  // A live bar: cursor hidden then shown again, each redraw from column 1 (with ESC[1G, not \r: the
  // \r in tty.terminal are the pty's \n -> \r\n).
  for (const seq of [`${ESC}[?25l`, `${ESC}[?25h`, `${ESC}[1G`]) expect(tty.terminal).toContain(seq);
  // --json on the same terminal: no bar; the JSON alone on stdout (parsed above).
  expect(bars(json.terminal)).toEqual([]);
  expect(json.terminal).not.toContain(ESC);
  // Stderr a pipe: the same sync draws nothing.
  const piped = ok(await runCli(['--root', freshRoot('progress-pipe'), 'mirror', 'sync', 'alpine']), 'sync on a pipe');
  expect(piped.stdout).toMatch(new RegExp(`^alpine: snapshot \\S+: ${r.downloaded.length} downloaded, 0 hard-linked`));
  expect(piped.stderr).not.toMatch(/\d+\/\d+/);
  expect(piped.stderr).not.toMatch(/[\r\x1b]/);
});

test('behind a proxy (http_proxy): every download goes through it, and the upstream name need not resolve here', async () => {
  // A forward proxy of the test that alone knows where the upstream's name is (nginx): it answers
  // CONNECT (RFC 9110 §9.3.6), which undici's ProxyAgent uses for every request. Without the proxy,
  // the same sync cannot reach the name.
  const upstreamName = 'alpine-upstream.invalid';
  const nginxPort = Number(new URL(nginx.url).port);
  const seen: string[] = [];
  const proxy = http.createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(req.url ?? '');
    if (req.url !== `${upstreamName}:${nginxPort}`) {
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    const up = net.connect(nginxPort, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  const dir = path.join(root, 'proxied');
  try {
    fs.mkdirSync(path.join(dir, 'etc/epiconcept/apt_repo'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'etc/epiconcept/apt_repo/mirrors.yaml'),
      [
        'mirrors:',
        '  alpine:',
        `    url: http://${upstreamName}:${nginxPort}/alpine/`,
        '    paths: [v3.15/main/x86_64, v3.15/releases/x86_64]',
        '    versionFrom: v3.15/releases/x86_64/latest-releases.yaml',
        `    keys: [${path.join(root, 'etc/epiconcept/apt_repo/mirror-keys', key.name)}]`,
        '',
      ].join('\n'),
    );
    const sync = (env: NodeJS.ProcessEnv) => runCli(['--root', dir, '--json', 'mirror', 'sync', 'alpine'], { env });
    const direct = await sync({ http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '' });
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain(`http://${upstreamName}:${nginxPort}/alpine/`);
    expect(seen).toEqual([]);
    const mark = nginx.accessLog().length;
    const r = JSON.parse(ok(await sync({ http_proxy: proxyUrl, no_proxy: '' }), 'sync through the proxy').stdout) as {
      outcome: string;
      downloaded: string[];
    };
    expect(r.outcome).toBe('synced');
    // Only tunnels to the upstream's name, and through them every file the sync took (nginx's log).
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([`${upstreamName}:${nginxPort}`]));
    const fetched = downloadsSince(mark);
    for (const f of r.downloaded) expect(fetched).toContain(f);
  } finally {
    await new Promise((resolve) => proxy.close(resolve));
  }
});
