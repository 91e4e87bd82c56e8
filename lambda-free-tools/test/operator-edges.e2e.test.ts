/**
 * Operator edges of the bundled indexer (issue 9), run as separate processes the way an operator
 * runs them on the server (as root, through sudo or runuser, piped into head):
 * - a writing command run as root on a channel owned by its service account refuses (exit 2) and
 *   prints the command to run instead, which works as printed from any folder;
 * - the "next:" lines `npm run local` prints (scripts/local-stack.ts nextCommands) work from `/`;
 * - output into a closed pipe (`| head -1`) ends quietly with the command's own exit code, and a
 *   writer still finishes and releases the lock;
 * - a writer waiting for the lock says whom it waits for.
 * The channel's account is `nobody` (present on every Debian system). Needs root (runuser, chown).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nextCommands, type NextCommandsChannel } from '../../scripts/local-stack';
import { bundle, mkTemp, rmTemp, runCli, runProcess, type RunResult } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { loadChannel, channelPaths } from '../src/repo/channel';
import { currentGeneration, readGenerationInfo } from '../src/repo/generations';
import { lockFileOf, withChannelLock } from '../src/repo/lock';

const OWNER = 'nobody';
const OWNER_UID = 65534;
let debs: string;
let root: string;

beforeAll(() => {
  debs = mkTemp('operator-edges-debs');
  for (let i = 0; i < 40; i++) buildDeb(debs, { name: `edge${String(i).padStart(2, '0')}`, version: '1.0-1', compression: 'none' });
  buildDeb(debs, { name: 'hello', version: '1.0-1', compression: 'none' });
});
afterAll(() => rmTemp(debs));
afterEach(() => rmTemp(root));

/** Runs `cmd` under `sh -c` from `/` (not the project folder), as root. */
function sh(cmd: string): Promise<RunResult> {
  return runProcess('sh', ['-c', cmd], { cwd: '/', env: { PATH: process.env.PATH } });
}

/**
 * A preprod + prod pair under a fresh root that every user can reach, each channel's indexer
 * deployed at `<root>/opt/apt-repo/<channel>/apt-repo.cjs` as the plan deploys it; `names` are
 * dropped into preprod's incoming and ingested. With `owner`, the whole root then belongs to
 * `nobody`, as a server's channel belongs to aptrepo-<channel>.
 */
async function makeChannels(names: string[], owner: boolean): Promise<Record<'preprod' | 'prod', NextCommandsChannel>> {
  root = mkTemp('operator-edges');
  fs.chmodSync(root, 0o755);
  const ok = (r: RunResult) => expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  ok(await runCli(['--root', root, 'init', '--codenames', 'bookworm']));
  ok(await runCli(['--root', root, '--channel', 'prod', 'init', '--codenames', 'bookworm', '--upstream', 'preprod']));
  ok(await runCli(['--root', root, 'keygen', '--type', 'ed25519']));
  ok(await runCli(['--root', root, '--channel', 'prod', 'keygen', '--type', 'ed25519']));
  const drop = path.join(root, 'srv/apt/incoming/build');
  fs.mkdirSync(drop, { recursive: true });
  for (const n of names) fs.copyFileSync(path.join(debs, `${n}_1.0-1_all.deb`), path.join(drop, `${n}_1.0-1_all.deb`));
  ok(await runCli(['--root', root, 'ingest', '--settle-ms', '0']));
  ok(await runCli(['--root', root, '--channel', 'prod', 'publish', '--rescan']));
  const out = {} as Record<'preprod' | 'prod', NextCommandsChannel>;
  for (const channel of ['preprod', 'prod'] as const) {
    const indexerPath = path.join(root, 'opt/apt-repo', channel, 'apt-repo.cjs');
    fs.mkdirSync(path.dirname(indexerPath), { recursive: true, mode: 0o755 });
    fs.copyFileSync(await bundle(), indexerPath);
    fs.chmodSync(indexerPath, 0o644);
    out[channel] = { channel, root, nodePath: process.execPath, indexerPath, serviceUser: OWNER };
  }
  if (owner) {
    const chown = (p: string) => {
      fs.lchownSync(p, OWNER_UID, OWNER_UID);
      if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chown(path.join(p, n));
    };
    for (const d of ['srv', 'var', 'etc']) chown(path.join(root, d));
  }
  return out;
}

/** Every file and folder under `dir` that does not belong to `uid`. */
function notOwnedBy(dir: string, uid: number): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.uid !== uid) out.push(p);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return out;
}

test('a writer run as root on a channel owned by its account refuses (exit 2, nothing written) and prints a command that works from any folder', async () => {
  const ch = await makeChannels(['hello'], true);
  const prod = await loadChannel({ root, channel: 'prod' });
  const before = await currentGeneration(prod);
  const asRoot = await runProcess(process.execPath, [ch.prod.indexerPath, '--root', root, '--channel', 'prod', 'promote', 'hello'], {
    cwd: '/',
  });
  expect(asRoot.code).toBe(2);
  expect(asRoot.stderr).toContain(`${prod.webRoot} belongs to ${OWNER} and this command writes the channel, but it runs as root`);
  expect(notOwnedBy(path.join(root, 'srv'), OWNER_UID)).toEqual([]);
  expect(notOwnedBy(path.join(root, 'var'), OWNER_UID)).toEqual([]);
  expect(await currentGeneration(prod)).toBe(before);

  const suggested = /Run it as nobody: (runuser -u nobody -- .*)$/m.exec(asRoot.stderr)?.[1];
  expect(suggested).toBeDefined();
  const again = await sh(suggested!);
  expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
  expect(again.stdout).toMatch(/^live in prod \(generation \S+\)/);
  const after = await currentGeneration(prod);
  expect(after).not.toBe(before);
  expect(readGenerationInfo(prod, after!)?.poolPaths).toEqual(['pool/main/h/hello/hello_1.0-1_all.deb']);
  // Everything the promote created belongs to the channel's account: its next run can link and prune.
  expect(notOwnedBy(channelPaths(root, 'prod').webRoot, OWNER_UID)).toEqual([]);
  expect(notOwnedBy(path.join(root, 'var/lib/apt-repo/prod'), OWNER_UID)).toEqual([]);

  // Commands that only read still run as root.
  for (const cmd of ['status', 'verify', 'generations', 'pending']) {
    const r = await runProcess(process.execPath, [ch.prod.indexerPath, '--root', root, '--channel', 'prod', cmd], { cwd: '/' });
    expect([cmd, r.code, r.stderr]).toEqual([cmd, 0, '']);
  }
});

test("the 'next' commands npm run local prints work as printed from /, writers as the channel's account", async () => {
  const ch = await makeChannels(['hello'], true);
  const lines = nextCommands(ch.preprod, ch.prod, path.join(root, 'client-prod/apt.conf'));
  for (const l of lines) expect(l).not.toMatch(/(^|[\s=])\.\.?\//);
  const indexerLines = lines.filter((l) => !l.startsWith('APT_CONFIG='));
  expect(indexerLines.length).toBeGreaterThanOrEqual(3);
  expect(lines.find((l) => / promote /.test(l))).toMatch(/^runuser -u nobody -- /);
  for (const l of indexerLines) {
    const r = await sh(l);
    expect([l, r.code, r.stderr]).toEqual([l, 0, '']);
  }
  const prod = await loadChannel({ root, channel: 'prod' });
  expect(readGenerationInfo(prod, (await currentGeneration(prod))!)?.poolPaths).toEqual(['pool/main/h/hello/hello_1.0-1_all.deb']);
  expect(lines.filter((l) => l.startsWith('APT_CONFIG='))).toEqual([
    `APT_CONFIG=${path.join(root, 'client-prod/apt.conf')} apt-get update`,
    `APT_CONFIG=${path.join(root, 'client-prod/apt.conf')} apt-cache policy hello`,
    `APT_CONFIG=${path.join(root, 'client-prod/apt.conf')} apt-get install -s hello`,
  ]);
});

/**
 * Runs the bundled CLI with its stdout pipe closed by the reader before anything is written (what
 * `| head -1` does once it has its line): every write gets EPIPE.
 */
async function runIntoClosedPipe(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const file = await bundle();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test("output into a closed pipe ends quietly with the command's own exit code; a writer still finishes and releases the lock", async () => {
  const names = Array.from({ length: 40 }, (_, i) => `edge${String(i).padStart(2, '0')}`);
  await makeChannels(names, false);
  for (const args of [
    ['--channel', 'prod', 'pending'],
    ['--channel', 'prod', '--json', 'pending'],
    ['versions', 'edge01'],
  ]) {
    const r = await runIntoClosedPipe(['--root', root, ...args]);
    expect([args, r.code, r.signal, r.stderr]).toEqual([args, 0, null, '']);
  }
  // A real pipe into head, which stops reading after one line.
  const file = await bundle();
  const head = await runProcess('bash', [
    '-c',
    `set -o pipefail; ${process.execPath} ${file} --root ${root} --channel prod --json pending | head -1`,
  ]);
  expect([head.code, head.stderr]).toEqual([0, '']);
  expect(head.stdout).toBe('{\n');

  // A writer: its JSON goes nowhere, but the package is served and the lock is free.
  fs.copyFileSync(path.join(debs, 'hello_1.0-1_all.deb'), path.join(root, 'srv/apt/incoming/build/hello_1.0-1_all.deb'));
  const ingest = await runIntoClosedPipe(['--root', root, '--json', 'ingest', '--settle-ms', '0']);
  expect([ingest.code, ingest.signal, ingest.stderr]).toEqual([0, null, '']);
  const preprod = await loadChannel({ root, channel: 'preprod' });
  expect(readGenerationInfo(preprod, (await currentGeneration(preprod))!)?.poolPaths).toContain('pool/main/h/hello/hello_1.0-1_all.deb');
  expect(fs.existsSync(lockFileOf(preprod))).toBe(false);
  // A failing command keeps its own exit code: promote of an unknown package is a usage error.
  const bad = await runIntoClosedPipe(['--root', root, '--channel', 'prod', 'promote', 'no-such-package']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).not.toMatch(/EPIPE|Unhandled/);
});

test('a writer waiting for the lock says whom it waits for on stderr, then publishes', async () => {
  await makeChannels(['hello'], false);
  const preprod = await loadChannel({ root, channel: 'preprod' });
  let release!: () => void;
  let held!: () => void;
  const heldP = new Promise<void>((r) => (held = r));
  const holder = withChannelLock(preprod, async () => {
    held();
    await new Promise<void>((r) => (release = r));
  });
  await heldP;
  const since = (JSON.parse(fs.readFileSync(lockFileOf(preprod), 'utf8')) as { since: string }).since;
  setTimeout(() => release(), 2500);
  const r = await runCli(['--root', root, 'publish', '--rescan']);
  await holder;
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`apt-repo: ${lockFileOf(preprod)}: waiting for `);
  expect(r.stderr).toContain(`(pid ${process.pid} on `);
  expect(r.stderr).toContain(`since ${since}) to release the channel lock; giving up in `);
  expect(r.stdout).toMatch(/^published generation /);
});

test('every invalid pool file is named with its reason; publish --skip-invalid publishes the rest', async () => {
  await makeChannels(['hello'], false);
  const preprod = await loadChannel({ root, channel: 'preprod' });
  const dir = path.join(preprod.webRoot, 'pool/main/e');
  const spaced = path.join(dir, 'edge00', 'edge00; rm -rf $(x).deb');
  const dollar = path.join(dir, 'edge01', 'edge01$(id)_1.0-1_all.deb');
  const broken = path.join(dir, 'edge02', 'edge02_1.0-1_all.deb');
  for (const f of [spaced, dollar, broken]) fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.copyFileSync(path.join(debs, 'edge00_1.0-1_all.deb'), spaced);
  fs.copyFileSync(path.join(debs, 'edge01_1.0-1_all.deb'), dollar);
  fs.writeFileSync(broken, 'not a deb');
  const before = await currentGeneration(preprod);

  const refused = await runCli(['--root', root, 'publish', '--rescan']);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('3 invalid pool file(s); nothing published');
  expect(refused.stderr).toContain(
    `${JSON.stringify(spaced)}: file name holds ";" " " "$" "(" ")": a pool path has only letters, digits and . _ + ~ : -`,
  );
  expect(refused.stderr).toContain(`${JSON.stringify(dollar)}: file name holds "$" "(" ")"`);
  expect(refused.stderr).toContain(`${broken}: not an ar archive`);
  expect(await currentGeneration(preprod)).toBe(before);

  const skipped = await runCli(['--root', root, 'publish', '--rescan', '--skip-invalid']);
  expect(skipped.code).toBe(0);
  for (const f of [JSON.stringify(spaced), JSON.stringify(dollar), broken])
    expect(skipped.stderr).toContain(`apt-repo: warning: skipped invalid pool file ${f}: `);
  const now = await currentGeneration(preprod);
  expect(now).not.toBe(before);
  expect(readGenerationInfo(preprod, now!)?.poolPaths).toEqual(['pool/main/h/hello/hello_1.0-1_all.deb']);
  const packages = fs.readFileSync(path.join(preprod.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
  expect(packages).not.toMatch(/edge0/);
});
