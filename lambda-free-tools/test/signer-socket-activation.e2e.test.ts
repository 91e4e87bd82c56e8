/**
 * End to end: the signer under systemd socket activation, as production runs it, without a systemd
 * PID 1. The units come from infra/systemd.ts renderSignerUnits for a stack whose root is a temp
 * folder; the test applies them with systemd's own tools:
 * - the tmpfiles.d lines with `systemd-tmpfiles --create` (the socket folder 0750 signer:indexer);
 * - the socket unit with `systemd-socket-activate --accept --inetd -l <ListenStream>`
 *   (systemd-socket-activate(1): one child per connection, the connection as its stdin and stdout,
 *   like Accept=yes with StandardInput=socket and StandardOutput=socket), then the socket is given
 *   SocketUser, SocketGroup and SocketMode as systemd does after bind;
 * - the template service's User, Group and UMask with setpriv(1) (no new privileges, no
 *   supplementary group, no capability) running the unit's ExecStart words.
 * Not emulated: the sandbox settings of the service (rated offline in infra/systemd.test.ts),
 * MaxConnections and RuntimeMaxSec.
 * Then `publish` runs as the indexer account through repo.yaml's signerSocket (rendered by
 * infra/repoFiles.ts) and gpgv checks InRelease and Release.gpg. Needs root (useradd, setpriv).
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { StackConfig } from '../../stacks/config';
import { channelLayout, type ChannelLayout } from '../../infra/layout';
import { renderRepoYaml } from '../../infra/repoFiles';
import { renderSignerUnits } from '../../infra/systemd';
import { bundle, mkTemp, ok, rmTemp, runProcess, RunResult } from '../../test/harness/cli';
import { asUnitUser, localStackConfig, unitKey as key, unitKeys } from '../../test/harness/units';
import { buildDeb } from '../../test/harness/debs';
import { requestSignature } from '../src/sign/client';
import { MAX_REQUEST_BYTES } from '../src/sign/service';
import { ensureSystemUser } from '../../test/harness/users';

// Names of their own: other e2e files create their accounts in parallel jest workers.
const SIGNER = 'aptsign-sockact';
const INDEXER = 'aptrepo-sockact';
const CHANNEL = 'preprod';

let root: string;
let cfg: StackConfig;
let layout: ChannelLayout;
let socketUnit: Map<string, string>;
let serviceUnit: Map<string, string>;
let activator: { child: ChildProcess; log: () => string } | undefined;

/** Runs the bundled apt-repo (the unit's ExecStart program) on the test root as `user`. */
function repoAs(user: string, args: string[]): Promise<RunResult> {
  return runProcess('runuser', ['-u', user, '--', cfg.nodePath, cfg.indexerPath, '--root', root, '--channel', CHANNEL, ...args], {
    env: { PATH: process.env.PATH },
  });
}

function gpgv(files: string[]): number | null {
  return spawnSync('gpgv', ['--keyring', layout.publicKeyGpg, ...files], { encoding: 'utf8' }).status;
}

/**
 * Starts systemd-socket-activate with the socket unit's ListenStream and the service unit's
 * ExecStart as User/Group under UMask, waits until it listens, then gives the socket the unit's
 * SocketUser, SocketGroup and SocketMode.
 */
async function startActivator(): Promise<void> {
  const listen = key(socketUnit, 'ListenStream');
  expect(key(socketUnit, 'Accept')).toBe('yes');
  expect(key(serviceUnit, 'StandardInput')).toBe('socket');
  expect(key(serviceUnit, 'StandardOutput')).toBe('socket');
  const execStart = key(serviceUnit, 'ExecStart').split(/\s+/);
  const child = spawn(
    '/bin/sh',
    asUnitUser(serviceUnit, execStart, ['systemd-socket-activate', '--accept', '--inetd', '-l', listen, '--']),
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  activator = { child, log: () => out };
  const deadline = Date.now() + 15_000;
  while (!out.includes(`Listening on ${listen}`)) {
    if (child.exitCode !== null) throw new Error(`systemd-socket-activate exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`systemd-socket-activate did not listen: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  execFileSync('chown', [`${key(socketUnit, 'SocketUser')}:${key(socketUnit, 'SocketGroup')}`, listen]);
  fs.chmodSync(listen, parseInt(key(socketUnit, 'SocketMode'), 8));
}

beforeAll(async () => {
  ensureSystemUser(SIGNER);
  ensureSystemUser(INDEXER);
  root = mkTemp('signer-sockact-root');
  fs.chmodSync(root, 0o755);
  cfg = localStackConfig(root, CHANNEL, { serviceUser: INDEXER, signerUser: SIGNER });
  layout = channelLayout(cfg);
  const signer = renderSignerUnits(cfg, layout);
  socketUnit = unitKeys(signer.units.find((u) => u.name.endsWith('.socket'))!.content);
  serviceUnit = unitKeys(signer.units.find((u) => u.name.endsWith('@.service'))!.content);

  // The indexer bundle where every account can read it (the plan installs it 0644 root:root).
  fs.mkdirSync(layout.indexerDir, { recursive: true, mode: 0o755 });
  for (let d = layout.indexerDir; d !== root; d = path.dirname(d)) fs.chmodSync(d, 0o755);
  fs.copyFileSync(await bundle('apt-repo'), cfg.indexerPath);
  fs.chmodSync(cfg.indexerPath, 0o644);

  // The channel as the plan leaves it: config root:root 0755 with the rendered repo.yaml, key 0600
  // owned by the signer, data owned by the indexer, the socket folder from the tmpfiles.d lines.
  ok(
    await runProcess(cfg.nodePath, [cfg.indexerPath, '--root', root, '--channel', CHANNEL, 'init', '--codenames', cfg.codenames.join(',')]),
    'init',
  );
  ok(await runProcess(cfg.nodePath, [cfg.indexerPath, '--root', root, '--channel', CHANNEL, 'keygen', '--type', 'ed25519']), 'keygen');
  fs.chmodSync(layout.configDir, 0o755);
  fs.writeFileSync(path.join(layout.configDir, 'repo.yaml'), renderRepoYaml(cfg, layout), { mode: 0o644 });
  execFileSync('chown', [`${SIGNER}:${SIGNER}`, layout.signingKeyFile]);
  fs.chmodSync(layout.signingKeyFile, 0o600);
  const tmpfiles = path.join(root, 'tmpfiles.conf');
  fs.writeFileSync(tmpfiles, signer.tmpfiles);
  execFileSync('systemd-tmpfiles', ['--create', tmpfiles], { stdio: 'pipe' });
  fs.chmodSync(path.join(root, 'run'), 0o755);
  for (const d of [layout.webRoot, layout.stateDir, layout.backupDir, layout.incomingDir]) {
    fs.mkdirSync(d, { recursive: true });
    execFileSync('chown', ['-R', `${INDEXER}:${INDEXER}`, d]);
  }
  const drop = path.join(layout.incomingDir, 'ci');
  fs.mkdirSync(drop, { recursive: true });
  buildDeb(drop, { name: 'activated-hello', version: '1.0-1' });
  execFileSync('chown', ['-R', `${INDEXER}:${INDEXER}`, layout.incomingDir]);
  await startActivator();
});

afterAll(async () => {
  const a = activator;
  activator = undefined;
  if (a && a.child.exitCode === null) {
    const exited = new Promise((r) => a.child.once('exit', r));
    a.child.kill('SIGTERM');
    await exited;
  }
  if (root) rmTemp(root);
});

describe('the signer under systemd socket activation (Accept=yes, one instance per connection)', () => {
  test('the socket and its folder are laid out as the units say: only the indexer group may connect', async () => {
    const dir = fs.statSync(layout.signerSocketDir);
    expect(dir.mode & 0o7777).toBe(0o750);
    expect([dir.uid, dir.gid]).toEqual([
      Number(execFileSync('id', ['-u', SIGNER]).toString()),
      Number(execFileSync('id', ['-g', INDEXER]).toString()),
    ]);
    const sock = fs.statSync(layout.signerSocket);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o660);
    // Another account (nobody) cannot reach the socket: the folder is closed to it.
    const probe =
      'const s=require("net").connect(process.argv[1]);s.on("connect",()=>{console.log("CONNECTED");s.destroy()});s.on("error",e=>console.log(e.code))';
    const other = await runProcess('runuser', ['-u', 'nobody', '--', cfg.nodePath, '-e', probe, layout.signerSocket]);
    expect(other.stdout.trim()).toBe('EACCES');
    const indexer = await runProcess('runuser', ['-u', INDEXER, '--', cfg.nodePath, '-e', probe, layout.signerSocket]);
    expect(indexer.stdout.trim()).toBe('CONNECTED');
  });

  test('ingest and publish as the indexer through repo.yaml signerSocket; gpgv accepts InRelease and Release.gpg of every codename', async () => {
    const ing = await repoAs(INDEXER, ['--json', 'ingest', '--settle-ms', '0']);
    ok(ing, 'ingest');
    expect(JSON.parse(ing.stdout).entries.map((e: { status: string }) => e.status)).toEqual(['accepted']);
    const logBefore = activator!.log().length;
    ok(await repoAs(INDEXER, ['publish']), 'publish');
    const publishLog = () => activator!.log().slice(logBefore);
    for (const codename of cfg.codenames) {
      const d = path.join(layout.webRoot, 'dists', codename);
      expect(gpgv([path.join(d, 'InRelease')])).toBe(0);
      expect(gpgv([path.join(d, 'Release.gpg'), path.join(d, 'Release')])).toBe(0);
      expect(fs.readFileSync(path.join(d, 'InRelease'), 'utf8').endsWith('-----END PGP SIGNATURE-----\n')).toBe(true);
      expect(fs.readFileSync(path.join(d, 'main/binary-amd64/Packages'), 'utf8')).toMatch(/^Package: activated-hello$/m);
      // The instance logged the signature on its stderr (the unit sends it to the journal).
      expect(publishLog()).toMatch(new RegExp(`apt-repo sign ${CHANNEL}: signed ${CHANNEL} ${codename} Release sha256 [0-9a-f]{64}`));
    }
    // One instance per connection, each of which exited 0 (reaped a moment after it answered).
    expect((publishLog().match(/^Spawned /gm) ?? []).length).toBe(cfg.codenames.length);
    const deadline = Date.now() + 10_000;
    while ((publishLog().match(/^Child \d+ died with code /gm) ?? []).length < cfg.codenames.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect((publishLog().match(/^Child \d+ died with code 0$/gm) ?? []).length).toBe(cfg.codenames.length);
    expect(publishLog()).not.toMatch(/died with code [1-9]/);
    ok(await repoAs(INDEXER, ['verify']), 'verify');
  });

  test('the instances refuse what is not a Release of this channel, answering the reason over the connection', async () => {
    const release = fs.readFileSync(path.join(layout.webRoot, 'dists/bookworm/Release'), 'utf8');
    const logBefore = activator!.log().length;
    await expect(requestSignature(layout.signerSocket, release.replace(/^Label: .*$/m, 'Label: Epiconcept prod'))).rejects.toThrow(
      /refused to sign: Label "Epiconcept prod" is not channel preprod's/,
    );
    await expect(requestSignature(layout.signerSocket, release.replace(/^Codename: bookworm$/m, 'Codename: trixie'))).rejects.toThrow(
      /refused to sign: Codename "trixie" is not in channel preprod's liste_dist/,
    );
    await expect(requestSignature(layout.signerSocket, 'Origin: Epiconcept\0\n')).rejects.toThrow(
      /refused to sign: request holds a NUL byte/,
    );
    await expect(requestSignature(layout.signerSocket, Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x41))).rejects.toThrow(
      /refused to sign: request is over the 4194304-byte limit/,
    );
    // Each refusing instance exits 1 (systemd would count a failed instance, CollectMode=inactive-or-failed collects it).
    const refusedLog = () => activator!.log().slice(logBefore);
    const deadline = Date.now() + 10_000;
    while ((refusedLog().match(/^Child \d+ died with code /gm) ?? []).length < 4 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect((refusedLog().match(/^Child \d+ died with code 1$/gm) ?? []).length).toBe(4);
    expect(refusedLog()).toMatch(/apt-repo sign preprod: refused: request is over the 4194304-byte limit/);
  });

  test('concurrent requests each get their own instance and a valid signature', async () => {
    const release = fs.readFileSync(path.join(layout.webRoot, 'dists/bullseye/Release'), 'utf8');
    const answers = await Promise.all(Array.from({ length: 4 }, () => requestSignature(layout.signerSocket, release)));
    const tmp = mkTemp('signer-sockact-check');
    try {
      fs.writeFileSync(path.join(tmp, 'Release'), release);
      for (const a of answers) {
        fs.writeFileSync(path.join(tmp, 'InRelease'), a.inRelease);
        fs.writeFileSync(path.join(tmp, 'Release.gpg'), a.releaseGpg);
        expect(gpgv([path.join(tmp, 'InRelease')])).toBe(0);
        expect(gpgv([path.join(tmp, 'Release.gpg'), path.join(tmp, 'Release')])).toBe(0);
      }
    } finally {
      rmTemp(tmp);
    }
  });
});
