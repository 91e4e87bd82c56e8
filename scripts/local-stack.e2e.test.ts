/**
 * `npm run local` as a playground (issue 13 item 6), run the way a developer runs it, as root, with
 * its own sandbox root, state folder and free ports, and its printed commands run exactly as printed
 * (each line under `bash -c` from `/`, a block's export line before its commands):
 * - `--help` answers at once and leaves dist/ alone;
 * - apt-ops status, upload, versions on preprod, then pending, promote, versions, rollback on prod,
 *   through the sshd the script keeps running;
 * - the sample packages it built: the +deb12u1 one only in bookworm's Packages, the arch:all one in
 *   every binary-<arch>, the others in this architecture's only;
 * - the isolated apt client installs an older version (epi-hello=1.0-1), upgrades, purges, on this
 *   machine's dpkg (waiting for its lock);
 * - the server-side indexer lines, writers through runuser;
 * - a re-run reuses sshd and nginx, changes nothing and prints the same commands;
 * - the printed stop line leaves no sshd, nginx or signer of the sandbox running.
 * dist/ must be built (`npm run test:e2e` builds first): the run uses LOCAL_STACK_SKIP_BUILD=1 so that
 * it never rewrites dist/ under other tests running at the same time.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findFreePort } from './local/processes';
import { makeSandboxRoot, removeSandboxSudoers } from './local/stack';
import { sandboxConfigs } from './local/up';
import { parseBlocks, type CommandBlock } from './local/commands';
import { runProcess, type RunResult } from '../test/harness/cli';
import { httpGet } from '../test/harness/nginx';

const projectRoot = path.resolve(__dirname, '..');
const dist = path.join(projectRoot, 'dist');
let root: string;
let state: string;
let env: NodeJS.ProcessEnv;
let first: RunResult;
let blocks: CommandBlock[];
let distAtFirstRun: string;

const distMtimes = () =>
  fs
    .readdirSync(dist)
    .map((f) => `${f} ${fs.statSync(path.join(dist, f)).mtimeMs}`)
    .join('\n');

function local(...args: string[]): Promise<RunResult> {
  return runProcess('npm', ['run', '-s', 'local', '--', ...args], { cwd: projectRoot, env });
}

/** Runs one printed line (after `prefix`, e.g. a block's export line) with bash from `/`, with a bare environment. */
function sh(line: string, prefix = ''): Promise<RunResult> {
  return runProcess('bash', ['-c', `set -e\n${prefix}\n${line}`], {
    cwd: '/',
    env: { PATH: process.env.PATH, HOME: os.homedir() },
  });
}

function expectOk(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

function block(titleStart: string): CommandBlock {
  const b = blocks.find((x) => x.title.startsWith(titleStart));
  if (!b) throw new Error(`no printed block '${titleStart}…' in:\n${first.stdout}`);
  return b;
}

/** Processes whose command line names the sandbox root (its sshd, nginx and signers). */
function sandboxProcesses(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(root) && Number(pid) !== process.pid) out.push(`${pid} ${cmd}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function packagesFile(channel: string, codename: string, arch: string): string {
  return fs.readFileSync(path.join(root, 'srv/apt', channel, 'dists', codename, 'main', `binary-${arch}`, 'Packages'), 'utf8');
}
const names = (packages: string) => [...packages.matchAll(/^Package: (.*)$/gm)].map((m) => m[1]).sort();

beforeAll(async () => {
  for (const f of ['apt-repo.cjs', 'apt-ops.cjs'])
    if (!fs.existsSync(path.join(dist, f))) throw new Error(`${path.join(dist, f)} is missing: run npm run build (npm run test:e2e does)`);
  root = makeSandboxRoot('local-stack');
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'local-stack-state-'));
  const [preprod, prod, ssh] = [await findFreePort(), await findFreePort(), await findFreePort()];
  env = {
    ...process.env,
    LOCAL_STACK_ROOT: root,
    LOCAL_STACK_STATE: state,
    LOCAL_STACK_PREPROD_PORT: String(preprod),
    LOCAL_STACK_PROD_PORT: String(prod),
    LOCAL_STACK_SSH_PORT: String(ssh),
    LOCAL_STACK_SKIP_BUILD: '1',
  };
}, 60_000);

afterAll(async () => {
  if (!root) return;
  await local('--stop');
  for (const p of ['epi-hello', 'epi-php-tools', 'epi-docs'])
    if (installed(p)) await runProcess('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'purge', '-y', '-q', p], {});
  removeSandboxSudoers(sandboxConfigs(root));
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(state, { recursive: true, force: true });
}, 120_000);

test('--help answers at once, builds nothing and leaves dist/ untouched', async () => {
  const before = distMtimes();
  const t0 = Date.now();
  const r = await runProcess('npm', ['run', '-s', 'local', '--', '--help'], {
    cwd: projectRoot,
    env: { ...env, LOCAL_STACK_SKIP_BUILD: '' },
  });
  const ms = Date.now() - t0;
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toMatch(/^usage: npm run local \[-- --stop \| --help\]/);
  expect(distMtimes()).toEqual(before);
  expect(fs.readdirSync(root)).toEqual([]);
  // npm and ts-node alone take about a second here; the plan and its dependencies are not loaded.
  expect(ms).toBeLessThan(15_000);
  const bad = await local('--bogus');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/unknown argument --bogus/);
});

test('a first run builds the sandbox, keeps sshd and nginx running and prints command lines with absolute paths', async () => {
  distAtFirstRun = distMtimes();
  first = await local();
  expectOk(first, 'npm run local');
  blocks = parseBlocks(first.stdout);
  expect(first.stderr).toMatch(/sshd started \(pid \d+, 127\.0\.0\.1:\d+\)/);
  expect(first.stderr).toMatch(/nginx started in the background/);
  for (const f of ['run/sshd.pid', 'run/nginx.pid']) expect(fs.readFileSync(path.join(root, f), 'utf8')).toMatch(/^\d+\s*$/);
  const lines = blocks.flatMap((b) => b.lines);
  expect(lines.length).toBeGreaterThan(15);
  for (const l of lines) expect(l).not.toMatch(/(^|[\s=])\.\.?\//);
  // Every word that names a file is absolute.
  for (const w of lines.flatMap((l) => l.split(/\s+/)))
    if (/\.(deb|cjs|conf)'?$/.test(w)) expect(w.replace(/^[A-Z_]+=/, '').replace(/^'/, '')).toMatch(/^\//);
  expect(block('sample packages').lines.map((l) => path.basename(l.split(/\s+/)[0]))).toEqual([
    expect.stringMatching(/^epi-hello_1\.0-1_\w+\.deb$/),
    expect.stringMatching(/^epi-hello_1\.1-1_\w+\.deb$/),
    expect.stringMatching(/^epi-hello_2\.0-1_\w+\.deb$/),
    expect.stringMatching(/^epi-php-tools_1\.0-1\+deb12u1_\w+\.deb$/),
    'epi-docs_1.0-1_all.deb',
  ]);
});

test('the samples are routed: +deb12u1 only in bookworm, Architecture: all in every binary-<arch>', () => {
  const archs = fs.readdirSync(path.join(root, 'srv/apt/preprod/dists/bookworm/main')).filter((d) => d.startsWith('binary-'));
  expect(archs.length).toBe(2);
  const host = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  for (const a of archs.map((d) => d.slice('binary-'.length))) {
    const own = a === host;
    expect([a, names(packagesFile('preprod', 'bookworm', a))]).toEqual([
      a,
      own ? ['epi-docs', 'epi-hello', 'epi-hello', 'epi-php-tools'] : ['epi-docs'],
    ]);
    expect([a, names(packagesFile('preprod', 'bullseye', a))]).toEqual([a, own ? ['epi-docs', 'epi-hello', 'epi-hello'] : ['epi-docs']]);
  }
});

test('apt-ops on preprod as printed: status, upload of the sample left out, versions', async () => {
  const [exp, ...cmds] = block('apt-ops on preprod').lines;
  expect(exp).toMatch(/^export APT_OPS_PROJECT_DIR=\/\S+ APT_OPS_STACK=preprod /);
  expect(exp).toContain(`APT_OPS_PORT=${env.LOCAL_STACK_SSH_PORT} `);
  expect(exp).toContain("APT_OPS_REMOTE_PREFIX='runuser -u aptrepo-preprod --'");
  expect(cmds.map((c) => c.split(' ').slice(2, 3)[0])).toEqual(['status', 'upload', 'versions']);
  const out: string[] = [];
  for (const c of cmds) out.push(expectOk(await sh(c, exp), c));
  expect(out[0]).toMatch(/^channel +preprod \(stack preprod\) on 127\.0\.0\.1$/m);
  expect(out[0]).toMatch(/^pending +4 /m);
  expect(out[1]).toMatch(/^accepted +ci\/epi-hello_2\.0-1_\w+\.deb \(epi-hello 2\.0-1 \w+\) -> bookworm, bullseye$/m);
  expect(out[2].split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
    'version channels',
    '2.0-1 preprod',
    '1.1-1 preprod',
    '1.0-1 preprod',
    '',
  ]);
});

test('apt-ops on prod as printed: pending, promote, versions, rollback', async () => {
  const [exp, ...cmds] = block('apt-ops on prod').lines;
  expect(exp).toMatch(/ APT_OPS_STACK=prod APT_OPS_CHANNEL=prod /);
  const out: string[] = [];
  for (const c of cmds) out.push(expectOk(await sh(c, exp), c));
  expect(out[0]).toMatch(/^epi-php-tools +1\.0-1\+deb12u1 +\w+ +bookworm +/m);
  expect(out[1]).toMatch(/^live in prod \(generation \S+\)$/m);
  expect(out[1]).toMatch(/^epi-hello +2\.0-1 .* linked$/m);
  expect(out[2]).toMatch(/^2\.0-1 +preprod prod /m);
  expect(out[3]).toMatch(/^prod now serves generation \S+: the package set of \S+/m);
  expect(names(packagesFile('prod', 'bookworm', 'amd64'))).toEqual([]);
});

test('the isolated apt client as printed: installs epi-hello=1.0-1, upgrades, purges (this machine, dpkg lock waited for)', async () => {
  const lines = block('isolated apt client of preprod').lines;
  const install = lines.find((l) => /epi-hello=1\.0-1/.test(l))!;
  expect(install).toMatch(/^APT_CONFIG=\/\S+ apt-get -o 'DPkg::Lock::Timeout=\d+' install /);
  const out: string[] = [];
  for (const l of lines) out.push(expectOk(await sh(l), l));
  const [, policy, older, run, all, purge] = out;
  expect(policy).toMatch(/Candidate: 2\.0-1/);
  expect(policy).toMatch(/^ +1\.0-1 500$/m);
  expect(older).toMatch(/Setting up epi-hello \(1\.0-1\)/);
  expect(run).toBe('epi-hello 1.0-1\n');
  expect(all).toMatch(/Setting up epi-hello \(2\.0-1\)/);
  expect(all).toMatch(/Setting up epi-php-tools \(1\.0-1\+deb12u1\)/);
  expect(all).toMatch(/Setting up epi-docs \(1\.0-1\)/);
  expect(purge).toMatch(/Removing epi-hello \(2\.0-1\)/);
  expect(['epi-hello', 'epi-php-tools', 'epi-docs'].filter(installed)).toEqual([]);
});

test("the printed web catalogue address serves prod's catalogue with the printed credentials, and not without", async () => {
  const url = /^web catalogue \(in a browser, user (\S+), .*\): (http:\/\/\S+\/catalogue\/)$/m.exec(
    first.stdout.slice(first.stdout.indexOf('== prod:')),
  )!;
  const auth = new RegExp(`^  machine \\S+ login ${url[1]} password (\\S+)$`, 'm').exec(first.stdout)!;
  expect((await httpGet(url[2])).status).toBe(401);
  const page = await httpGet(url[2], { auth: `${url[1]}:${auth[1]}` });
  expect(page.status).toBe(200);
  expect(page.body).toContain('<h1>Packages</h1>');
});

test('the server-side indexer lines work as printed, the writer through runuser', async () => {
  const lines = block('on the server').lines;
  expect(lines.find((l) => / promote /.test(l))).toMatch(/^runuser -u aptrepo-prod -- \//);
  for (const l of lines) expectOk(await sh(l), l);
});

test('a re-run reuses sshd and nginx, changes nothing and prints the same commands', async () => {
  const sshdPid = fs.readFileSync(path.join(root, 'run/sshd.pid'), 'utf8').trim();
  const again = await local();
  expectOk(again, 'npm run local (again)');
  expect(again.stderr).toContain(`sshd already running (pid ${sshdPid}, 127.0.0.1:${env.LOCAL_STACK_SSH_PORT})`);
  expect(again.stderr).toMatch(/nginx already running/);
  if (distMtimes() === distAtFirstRun) {
    expect(again.stderr).toContain('no change: the sandbox already matches the plan');
  } else {
    // dist/ was rebuilt meanwhile (another test run on this machine): only the steps that deploy
    // or run the new bundle may change.
    const changed = /changed: (.*)$/m.exec(again.stderr)?.[1].split(', ') ?? [];
    const bundleSteps = ['pre-update-backup', 'indexer', 'signer', 'publish', 'expected-state'];
    expect(changed.filter((c) => !bundleSteps.includes(c.split('/')[1]))).toEqual([]);
  }
  expect(again.stderr).toContain('sample packages already in preprod');
  expect(again.stdout).toBe(first.stdout);
});

test('the printed stop line stops sshd, nginx and the signers', async () => {
  expect(sandboxProcesses().length).toBeGreaterThanOrEqual(3);
  const [stop] = block('stop sshd, nginx and the signers').lines;
  expect(stop).toMatch(/^LOCAL_STACK_ROOT=\/\S+ npm --prefix \/\S+ run local -- --stop$/);
  const r = await sh(stop);
  expectOk(r, stop);
  expect(r.stderr).toMatch(/nginx \(pid \d+\) stopped/);
  expect(r.stderr).toMatch(/sshd \(pid \d+\) stopped/);
  expect(sandboxProcesses()).toEqual([]);
});

test('after the stop line, a run starts sshd and nginx again and prints the same commands', async () => {
  const again = await local();
  expectOk(again, 'npm run local (after --stop)');
  expect(again.stderr).toMatch(new RegExp(`sshd started \\(pid \\d+, 127\\.0\\.0\\.1:${env.LOCAL_STACK_SSH_PORT}\\)`));
  expect(again.stderr).toMatch(/nginx started in the background/);
  expect(again.stdout).toBe(first.stdout);
  const [exp, status] = block('apt-ops on preprod').lines;
  expect(expectOk(await sh(status, exp), status)).toMatch(/^channel +preprod /m);
});
