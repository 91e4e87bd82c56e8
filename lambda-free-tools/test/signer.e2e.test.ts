/**
 * End to end: the indexer publishes without ever being able to read the signing key. A channel
 * whose repo.yaml names a signerSocket; the bundled `apt-repo sign-server` runs as a signer account
 * that owns the key (0600); `publish` runs with runuser as a separate indexer account. gpgv checks
 * the result with the channel's public key; the server refuses what is not a Release of this
 * channel; a signer that is down fails the publish while the previous generation keeps serving.
 * Needs root (useradd, runuser), like the other e2e tests of this folder.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundle, mkTemp, rmTemp, runProcess, RunResult } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { requestSignature } from '../src/sign/client';
import { MAX_REQUEST_BYTES } from '../src/sign/service';
import { ensureSystemUser } from '../../test/harness/users';
import { channelPaths } from '../src/repo/channel';

const SIGNER = 'aptsign-e2e';
const INDEXER = 'aptrepo-e2e';
const CHANNEL = 'preprod';

let root: string;
let indexerBundle: string;
let socketDir: string;
let socketPath: string;
let pidfile: string;
let keyFile: string;
let server: { child: ChildProcess; log: () => string } | undefined;

/** Runs the bundled apt-repo on the test root as `user` (runuser -u). */
function repoAs(user: string, args: string[]): Promise<RunResult> {
  return runProcess('runuser', ['-u', user, '--', process.execPath, indexerBundle, '--root', root, '--channel', CHANNEL, ...args], {
    env: { PATH: process.env.PATH },
  });
}

function expectOk(r: RunResult): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Starts sign-server as the signer account and resolves once its socket accepts connections. */
async function startServer(): Promise<void> {
  let out = '';
  const child = spawn(
    'runuser',
    [
      '-u',
      SIGNER,
      '--',
      process.execPath,
      indexerBundle,
      '--root',
      root,
      '--channel',
      CHANNEL,
      'sign-server',
      '--socket',
      socketPath,
      '--pidfile',
      pidfile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  server = { child, log: () => out };
  const deadline = Date.now() + 15_000;
  while (!/listening on /.test(out)) {
    if (child.exitCode !== null) throw new Error(`sign-server exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`sign-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops the server with `signal` and waits for it to exit; resolves to its exit code. */
async function stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const s = server;
  server = undefined;
  if (!s || s.child.exitCode !== null) return s?.child.exitCode ?? null;
  // runuser forwards the signal to the node process it started.
  const exited = new Promise<number | null>((r) => s.child.once('exit', (code) => r(code)));
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  process.kill(pid, signal);
  return exited;
}

function distsTarget(): string {
  return fs.readlinkSync(path.join(channelPaths(root, CHANNEL).webRoot, 'dists'));
}

function gpgv(files: string[]): { status: number | null; stderr: string } {
  const keyring = path.join(channelPaths(root, CHANNEL).webRoot, `epiconcept-${CHANNEL}-archive-keyring.gpg`);
  const r = spawnSync('gpgv', ['--keyring', keyring, ...files], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

beforeAll(async () => {
  ensureSystemUser(SIGNER);
  ensureSystemUser(INDEXER);
  root = mkTemp('signer-e2e-root');
  fs.chmodSync(root, 0o755);
  // The bundle where both accounts can read it.
  fs.mkdirSync(path.join(root, 'opt'), { mode: 0o755 });
  indexerBundle = path.join(root, 'opt/apt-repo.cjs');
  fs.copyFileSync(await bundle('apt-repo'), indexerBundle);
  fs.chmodSync(indexerBundle, 0o644);

  // As root, the way the Pulumi program prepares a channel: config root:root 0755, key 0600 owned by
  // the signer, channel data owned by the indexer, socket folder 0750 signer:<indexer group>.
  const init = await runProcess(process.execPath, [
    indexerBundle,
    '--root',
    root,
    '--channel',
    CHANNEL,
    'init',
    '--codenames',
    'bookworm,bullseye',
  ]);
  expectOk(init);
  expectOk(await runProcess(process.execPath, [indexerBundle, '--root', root, '--channel', CHANNEL, 'keygen', '--type', 'ed25519']));
  const configDir = path.join(root, 'etc/epiconcept/apt_repo', CHANNEL);
  fs.chmodSync(configDir, 0o755);
  keyFile = path.join(configDir, 'signing-key.asc');
  execFileSync('chown', [`${SIGNER}:${SIGNER}`, keyFile]);
  fs.chmodSync(keyFile, 0o600);
  socketDir = path.join(root, 'run/apt-repo', `sign-${CHANNEL}`);
  socketPath = path.join(socketDir, 'sign.sock');
  pidfile = path.join(root, 'run/apt-repo', `sign-${CHANNEL}.pid`);
  fs.mkdirSync(socketDir, { recursive: true });
  fs.chmodSync(path.join(root, 'run'), 0o755);
  fs.chmodSync(path.join(root, 'run/apt-repo'), 0o777); // the pidfile is written by the signer
  execFileSync('chown', [`${SIGNER}:${INDEXER}`, socketDir]);
  fs.chmodSync(socketDir, 0o750);
  fs.appendFileSync(path.join(configDir, 'repo.yaml'), `signerSocket: ${socketPath}\n`);
  for (const d of ['srv/apt', 'var/lib/apt-repo', 'var/backups/apt-repo'])
    execFileSync('chown', ['-R', `${INDEXER}:${INDEXER}`, path.join(root, d)]);
  // Something to publish: one package in the drop folder.
  const drop = path.join(root, 'srv/apt/incoming/ci');
  fs.mkdirSync(drop, { recursive: true });
  buildDeb(drop, { name: 'signed-hello', version: '1.0-1' });
  execFileSync('chown', ['-R', `${INDEXER}:${INDEXER}`, path.join(root, 'srv/apt/incoming')]);
  await startServer();
});

afterAll(async () => {
  await stopServer('SIGKILL').catch(() => undefined);
  if (root) rmTemp(root);
});

describe('publishing through the signing service', () => {
  test('the indexer account cannot read the key (EACCES)', async () => {
    const r = await runProcess('runuser', [
      '-u',
      INDEXER,
      '--',
      process.execPath,
      '-e',
      'try { require("fs").readFileSync(process.argv[1]); console.log("READ") } catch (e) { console.log(e.code) }',
      keyFile,
    ]);
    expect(r.stdout.trim()).toBe('EACCES');
  });

  test('ingest and publish as the indexer succeed; gpgv accepts InRelease and Release.gpg; the signer logged each Release', async () => {
    const ing = await repoAs(INDEXER, ['--json', 'ingest', '--settle-ms', '0']);
    expectOk(ing);
    expect(JSON.parse(ing.stdout).entries.map((e: { status: string }) => e.status)).toEqual(['accepted']);
    const pub = await repoAs(INDEXER, ['publish']);
    expectOk(pub);
    for (const codename of ['bookworm', 'bullseye']) {
      const d = path.join(channelPaths(root, CHANNEL).webRoot, 'dists', codename);
      expect(gpgv([path.join(d, 'InRelease')]).status).toBe(0);
      expect(gpgv([path.join(d, 'Release.gpg'), path.join(d, 'Release')]).status).toBe(0);
      // apt refuses any text after the signature.
      expect(fs.readFileSync(path.join(d, 'InRelease'), 'utf8').endsWith('-----END PGP SIGNATURE-----\n')).toBe(true);
      expect(fs.readFileSync(path.join(d, 'main/binary-amd64/Packages'), 'utf8')).toMatch(/^Package: signed-hello$/m);
    }
    expect(server!.log()).toMatch(/signed preprod bookworm Release sha256 [0-9a-f]{64}/);
    expect(server!.log()).toMatch(/signed preprod bullseye Release sha256 [0-9a-f]{64}/);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o666);
    expectOk(await repoAs(INDEXER, ['verify']));
  });

  test('the server refuses a non-Release, an oversized request and a foreign Codename, and keeps serving', async () => {
    await expect(requestSignature(socketPath, 'sign this, please\n')).rejects.toThrow(/refused to sign: not a Release file/);
    await expect(requestSignature(socketPath, Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x41))).rejects.toThrow(
      /refused to sign: request is over the 4194304-byte limit/,
    );
    const release = fs.readFileSync(path.join(channelPaths(root, CHANNEL).webRoot, 'dists/bookworm/Release'), 'utf8');
    await expect(requestSignature(socketPath, release.replace(/^Codename: bookworm$/m, 'Codename: trixie'))).rejects.toThrow(
      /refused to sign: Codename "trixie" is not in channel preprod's liste_dist/,
    );
    await expect(requestSignature(socketPath, release.replace(/^Label: .*$/m, 'Label: Epiconcept prod'))).rejects.toThrow(
      /refused to sign: Label "Epiconcept prod"/,
    );
    await expect(requestSignature(socketPath, release)).resolves.toHaveProperty('inRelease');
    expect(server!.log()).toMatch(/refused .*not a Release file/);
  });

  test('sign --stdio (systemd Accept=yes): one request on stdin, one JSON line on stdout; exit 1 on refusal', async () => {
    const release = fs.readFileSync(path.join(channelPaths(root, CHANNEL).webRoot, 'dists/bullseye/Release'), 'utf8');
    const argv = ['-u', SIGNER, '--', process.execPath, indexerBundle, '--root', root, '--channel', CHANNEL, 'sign', '--stdio'];
    const ok = await runProcess('runuser', argv, { input: release });
    expectOk(ok);
    expect(ok.stdout.indexOf('\n')).toBe(ok.stdout.length - 1);
    const answer = JSON.parse(ok.stdout);
    expect(answer.ok).toBe(true);
    const tmp = mkTemp('signer-e2e-stdio');
    try {
      fs.writeFileSync(path.join(tmp, 'InRelease'), answer.inRelease);
      fs.writeFileSync(path.join(tmp, 'Release'), release);
      fs.writeFileSync(path.join(tmp, 'Release.gpg'), answer.releaseGpg);
      expect(gpgv([path.join(tmp, 'InRelease')]).status).toBe(0);
      expect(gpgv([path.join(tmp, 'Release.gpg'), path.join(tmp, 'Release')]).status).toBe(0);
    } finally {
      rmTemp(tmp);
    }
    expect(ok.stderr).toMatch(/signed preprod bullseye Release sha256 [0-9a-f]{64}/);
    const no = await runProcess('runuser', argv, { input: release.replace(/^Origin: .*$/m, 'Origin: Debian') });
    expect(no.code).toBe(1);
    expect(JSON.parse(no.stdout)).toEqual({ ok: false, error: `Origin "Debian" is not channel preprod's ("Epiconcept")` });
    // Run as the indexer, it cannot even start: the key is not readable.
    const asIndexer = await runProcess('runuser', ['-u', INDEXER, ...argv.slice(2)], { input: release });
    expect(asIndexer.code).toBe(1);
    expect(asIndexer.stderr).toContain(`${keyFile}: cannot read the signing key: EACCES`);
  });

  test('signer down: publish fails naming the socket, dists still points at the previous generation, verify is clean', async () => {
    const before = distsTarget();
    const kept = JSON.parse((await repoAs(INDEXER, ['--json', 'generations'])).stdout).length;
    expect(await stopServer('SIGTERM')).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
    const pub = await repoAs(INDEXER, ['publish']);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain(`apt-repo: signer at ${socketPath}: no such socket (ENOENT)`);
    expect(distsTarget()).toBe(before);
    const gens = await repoAs(INDEXER, ['--json', 'generations']);
    expect(JSON.parse(gens.stdout)).toHaveLength(kept);
    expectOk(await repoAs(INDEXER, ['verify']));
  });

  test('a server killed with SIGKILL leaves its socket; the next one replaces it and publish works again', async () => {
    await startServer();
    await stopServer('SIGKILL');
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    const refused = await repoAs(INDEXER, ['publish']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`signer at ${socketPath}: connection refused (ECONNREFUSED)`);
    await startServer();
    expect(server!.log()).toMatch(/removed the stale socket/);
    const before = distsTarget();
    expectOk(await repoAs(INDEXER, ['publish']));
    expect(distsTarget()).not.toBe(before);
    expect(gpgv([path.join(channelPaths(root, CHANNEL).webRoot, 'dists/bookworm/InRelease')]).status).toBe(0);
  });
});
