/**
 * End to end: the bundled apt-ops drives the bundled apt-repo on a "server" that is a real sshd on
 * 127.0.0.1 with a sandbox folder as its root, configured only through Pulumi.<stack>.yaml files, the way
 * an operator or a CI job uses it: upload → pending → promote → versions → rollback → generations,
 * status (from `apt-repo status --json`), host key refusal, a connection dropped mid-upload, two
 * operators promoting at once, and uploads through an SFTP-only upload account that sshd really
 * chroots into incomingDir (a Match Group drop-in), accepted or rejected with its reason.
 * The root lives under /srv/apt-ops-e2e, not /tmp: sshd's ChrootDirectory wants every folder of the
 * path root-owned and writable by root only. The server's ingest units are emulated by the test,
 * which runs `apt-repo ingest` every half second while an upload account's upload waits.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { bundle, mkTemp, rmTemp, runCli, RunResult } from '../../test/harness/cli';
import { buildDeb } from '../../test/harness/debs';
import { startSshd, SshdServer } from '../../test/harness/sshd';
import { loadChannel, channelPaths } from '../src/repo/channel';
import { withChannelLock } from '../src/repo/lock';

const UPLOADER = 'aptops-e2e-up';
const UPLOAD_GROUP = 'aptupload-e2e';
const SANDBOX_PARENT = '/srv/apt-ops-e2e';

let sshd: SshdServer;
let root: string;
let uploaderKey: string;
let project: string;
let debs: string;
/** Output of the runs the OPERATING.md samples come from (APT_OPS_E2E_SAMPLES=<file> writes them). */
const samples: string[] = [];

function stackYaml(over: Record<string, string | number> = {}): string {
  const config: Record<string, string | number> = {
    'apt-repo:sshHost': sshd.host,
    'apt-repo:sshPort': sshd.port,
    'apt-repo:sshUser': sshd.username,
    'apt-repo:sshHostKey': sshd.hostPublicKey,
    'apt-repo:root': root,
    // The "server" runs the same node as the test.
    'apt-repo:nodePath': process.execPath,
    ...over,
  };
  return (
    'config:\n' +
    Object.entries(config)
      .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
      .join('')
  );
}

/** Runs the bundled apt-ops for `stack` with the test's key file and no ssh-agent. */
async function ops(stack: string, args: string[], opts: { record?: boolean } = {}): Promise<RunResult> {
  const r = await runCli(['--stack', stack, '--project-dir', project, '--identity', sshd.privateKeyFile, ...args], {
    which: 'apt-ops',
    env: { SSH_AUTH_SOCK: '', APT_OPS_HOST: '', APT_OPS_PORT: '' },
  });
  if (opts.record) samples.push(`$ apt-ops --stack ${stack} ${args.join(' ')}\n${r.stdout}${r.stderr}(exit ${r.code})\n`);
  return r;
}

/** Runs apt-repo locally on the server root (what the server itself would run). */
async function repo(channel: string, args: string[]): Promise<RunResult> {
  return runCli(['--root', root, '--channel', channel, ...args]);
}

function incomingFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'rejected' && rel === '') continue;
      if (e.isDirectory()) walk(path.join(d, e.name), rel + e.name + '/');
      else out.push(rel + e.name);
    }
  };
  const base = path.join(root, 'srv/apt/incoming');
  if (fs.existsSync(base)) walk(base, '');
  return out.sort();
}

function expectOk(r: RunResult): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** The upload account: a system user in the upload group, no shell, a key in a root-owned file. */
function makeUploader(): void {
  if (spawnSync('getent', ['group', UPLOAD_GROUP]).status !== 0) execFileSync('groupadd', ['--system', UPLOAD_GROUP]);
  if (spawnSync('id', ['-u', UPLOADER]).status !== 0) {
    execFileSync('useradd', [
      '--system',
      '--gid',
      UPLOAD_GROUP,
      '--no-create-home',
      '--home-dir',
      '/',
      '--shell',
      '/usr/sbin/nologin',
      UPLOADER,
    ]);
  }
  // Not locked ('!'): sshd without PAM refuses a locked account even for a key.
  execFileSync('usermod', ['-p', '*', UPLOADER]);
  uploaderKey = path.join(project, 'uploader_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'uploader@apt-ops-e2e', '-f', uploaderKey]);
  const keys = path.join(root, 'etc/ssh/keys');
  fs.mkdirSync(keys, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(keys, UPLOADER), `restrict ${fs.readFileSync(`${uploaderKey}.pub`, 'utf8')}`, { mode: 0o644 });
  fs.mkdirSync(path.join(root, 'etc/ssh/sshd_config.d'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(
    path.join(root, 'etc/ssh/sshd_config.d/upload.conf'),
    [
      `Match Group ${UPLOAD_GROUP}`,
      `    AuthorizedKeysFile ${keys}/%u`,
      `    ChrootDirectory ${path.join(root, 'srv/apt/incoming')}`,
      '    ForceCommand internal-sftp -u 0022',
      '    AllowTcpForwarding no',
      '    AllowStreamLocalForwarding no',
      '    AllowAgentForwarding no',
      '    X11Forwarding no',
      '    PermitTunnel no',
      '    PermitTTY no',
      'Match all',
      '',
    ].join('\n'),
  );
}

/** Runs `apt-repo ingest` of preprod every 500 ms (the server's ingest units) until the returned stop() resolves. */
function ingestLoop(): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await repo('preprod', ['--json', 'ingest', '--source', 'ci-upload', '--settle-ms', '500']);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

beforeAll(async () => {
  fs.mkdirSync(SANDBOX_PARENT, { recursive: true, mode: 0o755 });
  fs.chmodSync(SANDBOX_PARENT, 0o755);
  root = fs.mkdtempSync(path.join(SANDBOX_PARENT, 'root-'));
  fs.chmodSync(root, 0o755);
  project = mkTemp('apt-ops-e2e-project');
  makeUploader();
  sshd = await startSshd({ include: path.join(root, 'etc/ssh/sshd_config.d/*.conf') });
  debs = mkTemp('apt-ops-e2e-debs');
  const bundlePath = await bundle('apt-repo');
  for (const ch of ['preprod', 'prod']) {
    const dest = path.join(root, 'opt/apt-repo', ch, 'apt-repo.cjs');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(bundlePath, dest);
  }
  expectOk(await repo('preprod', ['init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64']));
  expectOk(await repo('prod', ['init', '--codenames', 'bookworm,bullseye', '--architectures', 'amd64', '--upstream', 'preprod']));
  expectOk(await repo('preprod', ['keygen', '--type', 'ed25519']));
  expectOk(await repo('prod', ['keygen', '--type', 'ed25519']));
  // The upload account's drop folder, as the Pulumi program makes it: setgid + sticky, group-writable.
  for (const d of ['srv/apt/incoming/ci-upload', 'srv/apt/incoming/ci-upload/bookworm']) {
    fs.mkdirSync(path.join(root, d));
    execFileSync('chown', [`root:${UPLOAD_GROUP}`, path.join(root, d)]);
    fs.chmodSync(path.join(root, d), 0o3775);
  }
  fs.writeFileSync(path.join(project, 'Pulumi.yaml'), 'name: apt-repo\nruntime: nodejs\n');
  fs.writeFileSync(path.join(project, 'Pulumi.preprod.yaml'), stackYaml());
  fs.writeFileSync(path.join(project, 'Pulumi.prod.yaml'), stackYaml());
  await bundle('apt-ops');
});

afterAll(async () => {
  if (process.env.APT_OPS_E2E_SAMPLES) fs.writeFileSync(process.env.APT_OPS_E2E_SAMPLES, samples.join('\n'));
  await sshd?.stop();
  for (const d of [root, project, debs]) if (d) rmTemp(d);
});

describe('apt-ops against a real sshd', () => {
  test('upload two versions to preprod: both accepted, nothing left in incoming', async () => {
    const a = buildDeb(debs, { name: 'hello-ops', version: '1.0-1' });
    const b = buildDeb(debs, { name: 'hello-ops', version: '1.1-1' });
    const r = await ops('preprod', ['upload', a, b, '--source', 'ci'], { record: true });
    expectOk(r);
    expect(r.stdout).toMatch(/accepted\s+ci\/hello-ops_1\.0-1_all\.deb \(hello-ops 1\.0-1 all\) -> bookworm, bullseye/);
    expect(r.stdout).toMatch(/accepted\s+ci\/hello-ops_1\.1-1_all\.deb/);
    expect(r.stdout).toMatch(/published generation \S+/);
    expect(incomingFiles()).toEqual([]);
    expect(fs.existsSync(path.join(channelPaths(root, 'preprod').webRoot, 'pool/main/h/hello-ops/hello-ops_1.1-1_all.deb'))).toBe(true);
    // One ingest took the whole batch: one publish.
    expect(JSON.parse((await ops('preprod', ['--json', 'generations'])).stdout)).toHaveLength(1);
  });

  test('a bad upload is rejected: exit 1, reason printed, and status lists it', async () => {
    const bad = path.join(debs, 'broken_1.0_all.deb');
    fs.writeFileSync(bad, 'this is not an ar archive\n');
    const r = await ops('preprod', ['upload', bad, '--source', 'ci', '--codename', 'bookworm'], { record: true });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rejected\s+ci\/bookworm\/broken_1\.0_all\.deb: /);
    const s = await ops('preprod', ['--json', 'status']);
    expectOk(s);
    const status = JSON.parse(s.stdout);
    expect(status.rejected).toHaveLength(1);
    // As dropped (the .reason's file: line), with the indexer's reason: read by the indexer, not over SFTP as root.
    expect(status.rejected[0].file).toBe('ci/bookworm/broken_1.0_all.deb');
    expect(status.rejected[0].name).toMatch(/^\d{8}T\d{6}Z-broken_1\.0_all\.deb$/);
    expect(status.rejected[0].reason).toMatch(/^not an ar archive/);
    expect(status.rejectedCount).toBe(1);
  });

  test('prod pending shows both versions (text and untouched JSON)', async () => {
    const r = await ops('prod', ['pending'], { record: true });
    expectOk(r);
    expect(r.stdout).toMatch(/hello-ops\s+1\.1-1/);
    expect(r.stdout).toMatch(/hello-ops\s+1\.0-1/);
    const j = await ops('prod', ['--json', 'pending']);
    expectOk(j);
    const local = await repo('prod', ['--json', 'pending']);
    // --json passes the indexer's output through byte for byte.
    expect(j.stdout).toBe(local.stdout);
    expect(
      JSON.parse(j.stdout)
        .pending.map((p: { version: string }) => p.version)
        .sort(),
    ).toEqual(['1.0-1', '1.1-1']);
  });

  test("client-setup passes through: the indexer's script, byte for byte; its usage errors keep exit 2", async () => {
    const args = ['client-setup', '--url', 'https://apt-prod.example.org/', '--codename', 'bookworm'];
    const r = await ops('prod', args, { record: true });
    expectOk(r);
    expect(r.stdout).toBe((await repo('prod', args)).stdout);
    expect(r.stdout).toContain("DEFAULT_CODENAME='bookworm'\n");
    const j = JSON.parse((await ops('prod', ['--json', ...args])).stdout) as { url: string; script: string };
    expect(j).toMatchObject({ url: 'https://apt-prod.example.org/', script: r.stdout });
    const bad = await ops('prod', ['client-setup', '--url', 'https://apt-prod.example.org/', '--codename', 'sid']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/'sid' is not served by channel prod/);
  });

  test('promote one version, then versions shows where each one is', async () => {
    const dry = await ops('prod', ['promote', 'hello-ops=1.0-1', '--dry-run']);
    expectOk(dry);
    expect(JSON.parse((await ops('prod', ['--json', 'pending'])).stdout).pending).toHaveLength(2);
    expectOk(await ops('prod', ['promote', 'hello-ops=1.0-1'], { record: true }));
    const pending = JSON.parse((await ops('prod', ['--json', 'pending'])).stdout).pending;
    expect(pending.map((p: { version: string }) => p.version)).toEqual(['1.1-1']);
    const v = await ops('prod', ['versions', 'hello-ops'], { record: true });
    expectOk(v);
    expect(v.stdout).toMatch(/1\.1-1\s+preprod\s/);
    expect(v.stdout).toMatch(/1\.0-1\s+(preprod prod|prod preprod)\s/);
  });

  test('promote the second, roll back to the first, remove the bad version, verify', async () => {
    expectOk(await ops('prod', ['promote', 'hello-ops']));
    const before = JSON.parse((await ops('prod', ['--json', 'generations'])).stdout) as { id: string; current: boolean }[];
    expect(before.length).toBeGreaterThanOrEqual(2);
    const [newest, previous] = before;
    expect(newest.id).not.toBe(previous.id);
    expect(newest.current).toBe(true);
    expectOk(await ops('prod', ['rollback'], { record: true }));
    const after = JSON.parse((await ops('prod', ['--json', 'generations'])).stdout) as {
      id: string;
      current: boolean;
      rolledBackFrom?: string;
    }[];
    // A rollback is a new generation serving the previous one's package set (apt takes its newer Date).
    expect(after[0]).toMatchObject({ current: true, rolledBackFrom: previous.id });
    expect(after[0].id).not.toBe(newest.id);
    const g = await ops('prod', ['generations'], { record: true });
    expectOk(g);
    expect(g.stdout).toContain(previous.id);
    expectOk(await ops('prod', ['remove', 'hello-ops=1.1-1', '--force'], { record: true }));
    const v = await ops('prod', ['verify'], { record: true });
    expectOk(v);
    const versions = await ops('prod', ['versions', 'hello-ops']);
    expect(versions.stdout).toMatch(/1\.1-1\s+preprod\s/);
    expect(JSON.parse((await ops('prod', ['--json', 'pending'])).stdout).pending.map((p: { version: string }) => p.version)).toEqual([
      '1.1-1',
    ]);
    // The history names each change, in order, with who made it.
    const history = JSON.parse((await ops('prod', ['--json', 'history'])).stdout) as { op: string; who: { user: string } }[];
    // The set-up's keygen, two promotes (the first by the test before), the rollback, the remove.
    expect(history.map((r) => r.op).filter((op) => op !== 'publish')).toEqual(['keygen', 'promote', 'promote', 'rollback', 'remove']);
    expect(history.every((r) => r.who.user.length > 0)).toBe(true);
    const removed = JSON.parse((await ops('prod', ['--json', 'history', '--package', 'hello-ops', '--limit', '1'])).stdout);
    expect(removed).toEqual([
      expect.objectContaining({ op: 'remove', removed: [{ name: 'hello-ops', version: '1.1-1', architecture: 'all' }] }),
    ]);
    // gc through apt-ops; --policy without rules is the indexer's usage error (exit 2), said on stderr.
    expectOk(await ops('prod', ['gc']));
    const policy = await ops('prod', ['gc', '--policy', '--dry-run']);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/repo\.yaml has no retention rules/);
    // catalogue through apt-ops: rebuilt for the served generation, the remove in its history page.
    const cat = JSON.parse((await ops('prod', ['--json', 'catalogue'])).stdout) as { built: boolean; dir: string; generation: string };
    expect(cat.built).toBe(true);
    expect(cat.generation).toBe(
      (JSON.parse((await ops('prod', ['--json', 'generations'])).stdout) as { id: string; current: boolean }[]).find((g) => g.current)?.id,
    );
    expect(fs.readFileSync(path.join(cat.dir, 'history.html'), 'utf8')).toMatch(/<tr data-op="remove">/);
  });

  test('status reports disk use, counts, last publish and ingest', async () => {
    const r = await ops('prod', ['status'], { record: true });
    await ops('preprod', ['--json', 'status'], { record: true });
    expectOk(r);
    expect(r.stdout).toMatch(/web root\s+\S+srv\/apt\/prod: .* \(\d+ bytes\)/);
    const j = JSON.parse((await ops('preprod', ['--json', 'status'])).stdout);
    expect(j.diskBytes).toBeGreaterThan(0);
    expect(j.current.packages).toEqual({ bookworm: 2, bullseye: 2 });
    expect(j.channels).toEqual({ preprod: { bookworm: 2, bullseye: 2 }, prod: { bookworm: 1, bullseye: 1 } });
    expect(j.pending).toBe(1);
    expect(Date.parse(j.lastAdded)).toBeGreaterThan(Date.now() - 3600_000);
    expect(j.lock).toBeUndefined();
    expect(r.stdout).toMatch(/^lock\s+free$/m);
  });

  test('a wrong host key is refused with one line naming the host (exit 255)', async () => {
    fs.writeFileSync(
      path.join(project, 'Pulumi.wrongkey.yaml'),
      stackYaml({
        'apt-repo:channel': 'prod',
        'apt-repo:sshHostKey': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH/fkJsPF2CO5btgt39EpPEjapxewBMJbXrCX4ZqyoLC',
      }),
    );
    const r = await ops('wrongkey', ['pending'], { record: true });
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      new RegExp(`^apt-ops: .*host key of 127\\.0\\.0\\.1:${sshd.port} does not match .*Pulumi\\.wrongkey\\.yaml: apt-repo:sshHostKey`),
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('an indexer that is not deployed is one clear line', async () => {
    const r = await ops('prod', ['--indexer', path.join(root, 'opt/apt-repo/nowhere/apt-repo.cjs'), 'pending']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `apt-ops: the indexer is not deployed at ${path.join(root, 'opt/apt-repo/nowhere/apt-repo.cjs')} on 127.0.0.1: run pulumi up (stack prod)`,
    );
  });

  test('a connection dropped mid-upload leaves nothing ingestible in incoming', async () => {
    const big = buildDeb(debs, { name: 'big-ops', version: '1.0-1', compression: 'none', payloadBytes: 24 * 1024 * 1024 });
    // A TCP relay that cuts both sides once 4 MiB went towards the server: the upload is mid-file.
    const cut = 4 * 1024 * 1024;
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      const server = net.connect(sshd.port, '127.0.0.1');
      sockets.add(client).add(server);
      let sent = 0;
      client.on('data', (d) => {
        sent += d.length;
        if (sent > cut) {
          client.destroy();
          server.destroy();
        } else server.write(d);
      });
      server.on('data', (d) => client.write(d));
      client.on('error', () => undefined).on('close', () => server.destroy());
      server.on('error', () => undefined).on('close', () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const port = (relay.address() as net.AddressInfo).port;
    try {
      // A host key pinned for the relay's port: the same server key.
      const r = await ops('preprod', ['--port', String(port), 'upload', big, '--source', 'ci'], { record: true });
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/connection lost while uploading big-ops_1\.0-1_all\.deb/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(() => r(undefined)));
    }
    const left = incomingFiles();
    expect(left.every((f) => path.basename(f).startsWith('.') && f.endsWith('.part'))).toBe(true);
    const ingest = await repo('preprod', ['--json', 'ingest', '--settle-ms', '0']);
    expect(ingest.code).toBe(0);
    expect(JSON.parse(ingest.stdout).entries.filter((e: { status: string }) => e.status === 'accepted')).toEqual([]);
    expect(fs.existsSync(path.join(channelPaths(root, 'preprod').webRoot, 'pool/main/b/big-ops'))).toBe(false);
    // The next upload of the same file replaces the stale .part and succeeds.
    const again = await ops('preprod', ['upload', big, '--source', 'ci']);
    expectOk(again);
    expect(incomingFiles()).toEqual([]);
  });

  test('uploading through prod (fed by promote) fails and takes its files back', async () => {
    const deb = buildDeb(debs, { name: 'wrong-door', version: '1.0-1' });
    const r = await ops('prod', ['upload', deb, '--source', 'ci'], { record: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/takes packages from preprod with promote/);
    expect(r.stderr).toMatch(/apt-ops: ingest on 127\.0\.0\.1 failed \(exit 2\); removed 1 uploaded file/);
    expect(incomingFiles()).toEqual([]);
  });

  test('an upload that fails with the connection up removes its .part file', async () => {
    const deb = buildDeb(debs, { name: 'blocked-ops', version: '1.0-1' });
    // A non-empty folder where the file should land: every rename refuses to replace it.
    const blocker = path.join(root, 'srv/apt/incoming/ci/blocked-ops_1.0-1_all.deb');
    fs.mkdirSync(path.join(blocker, 'inside'), { recursive: true });
    try {
      const r = await ops('preprod', ['upload', deb, '--source', 'ci']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^apt-ops: upload of .*blocked-ops_1\.0-1_all\.deb to 127\.0\.0\.1:.* failed: /);
      expect(fs.existsSync(path.join(root, 'srv/apt/incoming/ci/.blocked-ops_1.0-1_all.deb.part'))).toBe(false);
    } finally {
      fs.rmSync(blocker, { recursive: true, force: true });
    }
  });

  test('a lock held by another operator is exit 3 with one clear line', async () => {
    const yamlFile = path.join(root, 'etc/epiconcept/apt_repo/prod/repo.yaml');
    const before = fs.existsSync(yamlFile) ? fs.readFileSync(yamlFile, 'utf8') : undefined;
    // The server's indexer must not wait for the lock here.
    fs.writeFileSync(yamlFile, (before ?? '') + '\nlockTimeoutSeconds: 0\n');
    try {
      const prod = await loadChannel({ root, channel: 'prod' });
      const r = await withChannelLock(prod, () => ops('prod', ['promote', '--all-pending'], { record: true }));
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /^apt-ops: prod on 127\.0\.0\.1: another operator holds the channel lock; try again when their command has finished$/m,
      );
    } finally {
      if (before === undefined) fs.rmSync(yamlFile, { force: true });
      else fs.writeFileSync(yamlFile, before);
    }
  });

  test('two operators promoting at once are serialised by the remote lock', async () => {
    const c = buildDeb(debs, { name: 'concurrent-a', version: '2.0-1' });
    const d = buildDeb(debs, { name: 'concurrent-b', version: '3.0-1' });
    expectOk(await ops('preprod', ['upload', c, d, '--source', 'ci']));
    const [r1, r2] = await Promise.all([ops('prod', ['promote', 'concurrent-a']), ops('prod', ['promote', 'concurrent-b'])]);
    for (const r of [r1, r2]) {
      if (r.code !== 0) {
        expect(r.code).toBe(3);
        expect(r.stderr).toMatch(/apt-ops: prod on 127\.0\.0\.1: another operator holds the channel lock/);
      }
    }
    expect([r1.code, r2.code]).toContain(0);
    expectOk(await ops('prod', ['verify']));
    const names = JSON.parse((await ops('prod', ['--json', 'pending'])).stdout).pending.map((p: { name: string }) => p.name);
    for (const [r, n] of [
      [r1, 'concurrent-a'],
      [r2, 'concurrent-b'],
    ] as const)
      expect(names.includes(n)).toBe(r.code !== 0);
  });

  describe('through the upload account (SFTP only, chrooted into incomingDir)', () => {
    const upload = (args: string[]) =>
      ops('upload', ['--identity', uploaderKey, 'upload', '--source', 'ci-upload', ...args], { record: true });
    beforeAll(() => {
      fs.writeFileSync(
        path.join(project, 'Pulumi.upload.yaml'),
        stackYaml({ 'apt-repo:channel': 'preprod', 'apt-repo:uploadUser': UPLOADER }),
      );
    });

    test('the account sees only incomingDir and cannot run a command', async () => {
      const shell = spawnSync(
        'ssh',
        [
          '-i',
          uploaderKey,
          '-p',
          String(sshd.port),
          '-o',
          'BatchMode=yes',
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          `${UPLOADER}@${sshd.host}`,
          'id',
        ],
        { encoding: 'utf8', timeout: 20000 },
      );
      expect(shell.stdout).not.toMatch(/uid=/);
    });

    test('an accepted upload: sent to /ci-upload/, taken by ingest, reported accepted (exit 0)', async () => {
      const deb = buildDeb(debs, { name: 'hello-up', version: '1.0-1' });
      const stop = ingestLoop();
      let r: RunResult;
      try {
        r = await upload([deb]);
      } finally {
        await stop();
      }
      expectOk(r);
      expect(r.stdout.trim()).toBe('accepted  ci-upload/hello-up_1.0-1_all.deb');
      expect(fs.existsSync(path.join(channelPaths(root, 'preprod').webRoot, 'pool/main/h/hello-up/hello-up_1.0-1_all.deb'))).toBe(true);
      expect(incomingFiles().filter((f) => f.startsWith('ci-upload/'))).toEqual([]);
      // Written by the upload account itself (not root), through the chroot.
      expect(sshd.log()).toMatch(new RegExp(`Accepted publickey for ${UPLOADER} `));
    });

    test('a rejected upload: exit 1 with the reason from rejected/*.reason; status lists it as dropped', async () => {
      const bad = path.join(debs, 'broken-up_1.0_all.deb');
      fs.writeFileSync(bad, 'still not an ar archive\n');
      const stop = ingestLoop();
      let r: RunResult;
      try {
        r = await upload([bad, '--codename', 'bookworm']);
      } finally {
        await stop();
      }
      expect(r.code).toBe(1);
      expect(r.stdout.trim()).toMatch(/^rejected {2}ci-upload\/bookworm\/broken-up_1\.0_all\.deb: not an ar archive/);
      const s = JSON.parse((await ops('preprod', ['--json', 'status'])).stdout);
      const mine = s.rejected.find((x: { file?: string }) => x.file === 'ci-upload/bookworm/broken-up_1.0_all.deb');
      expect(mine.reason).toMatch(/^not an ar archive/);
      expect(r.stdout).toContain(mine.reason);
    });

    test('nobody takes the file: exit 124 after --wait, reported waiting', async () => {
      const deb = buildDeb(debs, { name: 'late-up', version: '1.0-1' });
      const t0 = Date.now();
      const r = await upload([deb, '--wait', '2']);
      expect(r.code).toBe(124);
      expect(r.stdout.trim()).toBe(
        'waiting   ci-upload/late-up_1.0-1_all.deb: still in the drop folder after 2 s (is the ingest service running?)',
      );
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(incomingFiles()).toContain('ci-upload/late-up_1.0-1_all.deb');
      fs.rmSync(path.join(root, 'srv/apt/incoming/ci-upload/late-up_1.0-1_all.deb'));
    });
  });
});
