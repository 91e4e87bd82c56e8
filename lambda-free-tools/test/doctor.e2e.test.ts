/**
 * End to end: the bundled `apt-repo doctor` on a sandbox channel (init + keygen, a vhost file and
 * its sites-enabled link, the deployed bundle, a hand-built expected-state manifest with a
 * secret-digests record, as the Pulumi program's expected-state step writes them), run as root
 * and as the channel's service user: exit 0 clean, 1 on drift, 2 without a manifest or with a bad
 * one; the --json shape; `--expected -` on stdin; the drift line of `status`. Then the bundled
 * `apt-ops doctor` over a real sshd on 127.0.0.1 (the indexer run through `runuser -u <service
 * user> --`, as sudo -u does on a server) reports a hand-made drift, with the server's manifest
 * and with a local one sent on stdin.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { bundle, mkTemp, rmTemp, runCli, runProcess, RunResult } from '../../test/harness/cli';
import { startSshd, SshdServer } from '../../test/harness/sshd';
import { ensureSystemUser } from '../../test/harness/users';
import { modeString } from '../src/repo/doctor';
import { publicKeyFiles } from '../src/sign/keys';
import type { ExpectedEntry, ExpectedState } from '../src/repo/expectedState';
import { channelPaths } from '../src/repo/channel';

const SERVICE_USER = 'aptrepo-doctor-e2e';

let root: string;
let project: string;
let sshd: SshdServer;
let indexer: string;
let state: ExpectedState;
let configDir: string;
let webRoot: string;
let vhost: string;
let enabled: string;

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** apt-repo on the sandbox, as root. */
function repo(args: string[], input?: string): Promise<RunResult> {
  return runCli(['--root', root, '--channel', 'preprod', ...args], { input });
}

/** The deployed bundle on the sandbox, as the channel's service user. */
function repoAsService(args: string[], input?: string): Promise<RunResult> {
  return runProcess('runuser', ['-u', SERVICE_USER, '--', process.execPath, indexer, '--root', root, '--channel', 'preprod', ...args], {
    input: input ?? '',
  });
}

/** apt-ops for the preprod stack, with the test's key and no agent. */
function ops(args: string[]): Promise<RunResult> {
  return runCli(['--stack', 'preprod', '--project-dir', project, '--identity', sshd.privateKeyFile, ...args], {
    which: 'apt-ops',
    env: { SSH_AUTH_SOCK: '', APT_OPS_HOST: '', APT_OPS_PORT: '' },
  });
}

/** The manifest entry of an existing path as it is now (owner and group root: the test runs as root). */
function entryOf(file: string, step: string, extra: Record<string, unknown> = {}): ExpectedEntry {
  const st = fs.lstatSync(file);
  if (st.isSymbolicLink()) return { type: 'symlink', path: file, target: fs.readlinkSync(file), step };
  const base = { path: file, mode: modeString(st.mode), owner: 'root', group: 'root', step };
  if (st.isDirectory()) return { type: 'dir', ...base };
  return { type: 'file', ...base, ...extra };
}

function writeManifest(s: ExpectedState, file = path.join(configDir, 'expected-state.json')): void {
  fs.writeFileSync(file, JSON.stringify(s, null, 2) + '\n', { mode: 0o644 });
}

function expectCode(r: RunResult, code: number): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

beforeAll(async () => {
  ensureSystemUser(SERVICE_USER);
  root = mkTemp('doctor-e2e');
  // The service user walks the sandbox as it walks / on a server.
  fs.chmodSync(root, 0o755);
  project = mkTemp('doctor-e2e-project');
  expectCode(await repo(['init', '--codenames', 'bookworm', '--architectures', 'amd64']), 0);
  expectCode(await repo(['keygen', '--type', 'ed25519']), 0);
  configDir = path.join(root, 'etc/epiconcept/apt_repo/preprod');
  webRoot = channelPaths(root, 'preprod').webRoot;
  // As the Pulumi program's dirs step leaves it (init alone makes it 0750).
  fs.chmodSync(configDir, 0o755);
  indexer = path.join(root, 'opt/apt-repo/preprod/apt-repo.cjs');
  fs.mkdirSync(path.dirname(indexer), { recursive: true, mode: 0o755 });
  fs.copyFileSync(await bundle('apt-repo'), indexer);
  fs.chmodSync(indexer, 0o644);
  vhost = path.join(root, 'etc/nginx/sites-available/apt-preprod.conf');
  enabled = path.join(root, 'etc/nginx/sites-enabled/apt-preprod.conf');
  fs.mkdirSync(path.dirname(vhost), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(enabled), { recursive: true, mode: 0o755 });
  fs.writeFileSync(vhost, 'server { listen 127.0.0.1:8080; }\n', { mode: 0o644 });
  fs.symlinkSync(vhost, enabled);

  const key = path.join(configDir, 'signing-key.asc');
  const secretDigests = path.join(configDir, 'secret-digests');
  fs.writeFileSync(secretDigests, `${sha(fs.readFileSync(key))}  ${key}\n`, { mode: 0o600 });
  const { fingerprint } = await publicKeyFiles(fs.readFileSync(key, 'utf8'));
  const asc = fs.readdirSync(webRoot).find((n) => n.endsWith('-archive-keyring.asc'))!;
  const gpg = fs.readdirSync(webRoot).find((n) => n.endsWith('-archive-keyring.gpg'))!;
  state = {
    format: 1,
    channel: 'preprod',
    root,
    secretDigests,
    entries: [
      entryOf(configDir, 'dirs'),
      entryOf(path.join(configDir, 'repo.yaml'), 'repo-config', { sha256: sha(fs.readFileSync(path.join(configDir, 'repo.yaml'))) }),
      entryOf(key, 'signing-key', { secret: true }),
      entryOf(path.join(webRoot, asc), 'signing-key', {
        sha256: sha(fs.readFileSync(path.join(webRoot, asc))),
        openpgpFingerprint: fingerprint,
      }),
      entryOf(path.join(webRoot, gpg), 'signing-key', { openpgpFingerprint: fingerprint }),
      entryOf(indexer, 'indexer', { sha256: sha(fs.readFileSync(indexer)) }),
      entryOf(vhost, 'vhost', { sha256: sha(fs.readFileSync(vhost)) }),
      entryOf(enabled, 'vhost'),
    ],
  };

  sshd = await startSshd();
  fs.writeFileSync(path.join(project, 'Pulumi.yaml'), 'name: apt-repo\nruntime: nodejs\n');
  const config: Record<string, string | number> = {
    'apt-repo:sshHost': sshd.host,
    'apt-repo:sshPort': sshd.port,
    'apt-repo:sshUser': sshd.username,
    'apt-repo:sshHostKey': sshd.hostPublicKey,
    'apt-repo:root': root,
    'apt-repo:nodePath': process.execPath,
    // What `sudo -n -u aptrepo-<channel>` does on a server, without a sudoers rule on this host.
    'apt-repo:remotePrefix': `runuser -u ${SERVICE_USER} --`,
  };
  fs.writeFileSync(
    path.join(project, 'Pulumi.preprod.yaml'),
    'config:\n' +
      Object.entries(config)
        .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
        .join(''),
  );
  await bundle('apt-ops');
});

afterAll(async () => {
  await sshd?.stop();
  for (const d of [root, project]) if (d) rmTemp(d);
});

describe('apt-repo doctor', () => {
  test('without a manifest: exit 2 saying where it comes from; status has no drift', async () => {
    const r = await repo(['doctor']);
    expectCode(r, 2);
    expect(r.stderr).toContain(
      `${path.join(configDir, 'expected-state.json')} does not exist: this channel was not deployed by the Pulumi program, or by a version without expected-state; pass --expected <file> from \`pulumi stack output expectedState\``,
    );
    const s = await repo(['--json', 'status']);
    expectCode(s, 0);
    expect(JSON.parse(s.stdout)).not.toHaveProperty('drift');
    expect((await repo(['status'])).stdout).not.toContain('drift');
  });

  test('clean: exit 0, nothing on stdout, the JSON report, status drift none', async () => {
    writeManifest(state);
    const r = await repo(['doctor']);
    expectCode(r, 0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('preprod: no difference from the expected state (8 paths checked)\n');
    const j = await repo(['--json', 'doctor']);
    expectCode(j, 0);
    expect(JSON.parse(j.stdout)).toEqual({ channel: 'preprod', checked: 8, differences: [], notChecked: [] });
    expect(j.stderr).toBe('');
    expect(JSON.parse((await repo(['--json', 'status'])).stdout).drift).toEqual({ differences: 0, notChecked: 0 });
    expect((await repo(['status'])).stdout).toContain('\ndrift         none\n');
  });

  test('as the service user: the secret file is not checked, everything else is', async () => {
    const r = await repoAsService(['--json', 'doctor']);
    expectCode(r, 0);
    expect(JSON.parse(r.stdout)).toEqual({
      channel: 'preprod',
      checked: 8,
      differences: [],
      notChecked: [{ path: path.join(configDir, 'signing-key.asc'), reason: 'content of a secret file: run as root to check' }],
    });
  });

  test('hand-made drift: exit 1, each difference named in the table, the JSON and status', async () => {
    fs.chmodSync(vhost, 0o666);
    fs.appendFileSync(path.join(configDir, 'signing-key.asc'), '\n');
    fs.unlinkSync(enabled);
    fs.symlinkSync('/etc/passwd', enabled);
    try {
      const r = await repo(['doctor']);
      expectCode(r, 1);
      const rows = r.stdout.trimEnd().split('\n');
      expect(rows[0]).toMatch(/^PATH\s+WHAT\s+EXPECTED\s+FOUND\s+STEP$/);
      expect(rows.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
        [path.join(configDir, 'signing-key.asc'), 'content', `as recorded in ${state.secretDigests}`, 'other content', 'signing-key'],
        [vhost, 'mode', '0644', '0666', 'vhost'],
        [enabled, 'target', vhost, '/etc/passwd', 'vhost'],
      ]);
      expect(r.stderr).toContain('preprod: 3 differences from the expected state (8 paths checked)');
      expect(r.stderr).toContain(
        'to repair: re-apply steps signing-key, vhost with\n  pulumi config set apt-repo:reapply "$(date -u +%Y%m%dT%H%M%SZ)" && pulumi up\n',
      );
      const j = JSON.parse((await repo(['--json', 'doctor'])).stdout);
      expect(j.differences.map((d: { field: string }) => d.field)).toEqual(['content', 'mode', 'target']);
      expect(JSON.parse((await repo(['--json', 'status'])).stdout).drift).toEqual({ differences: 3, notChecked: 0 });
      expect((await repo(['status'])).stdout).toContain('\ndrift         3 differences — apt-repo doctor\n');
    } finally {
      fs.chmodSync(vhost, 0o644);
      const key = path.join(configDir, 'signing-key.asc');
      fs.writeFileSync(key, fs.readFileSync(key, 'utf8').replace(/\n$/, ''));
      fs.unlinkSync(enabled);
      fs.symlinkSync(vhost, enabled);
    }
    expectCode(await repo(['doctor']), 0);
  });

  test('--expected - reads the manifest on stdin; a bad or foreign one is exit 2', async () => {
    const other = { ...state, entries: state.entries.map((e) => (e.path === vhost ? { ...e, sha256: '0'.repeat(64) } : e)) };
    const r = await repo(['--json', 'doctor', '--expected', '-'], JSON.stringify(other));
    expectCode(r, 1);
    expect(JSON.parse(r.stdout).differences).toEqual([
      { path: vhost, field: 'sha256', expected: '0'.repeat(64), found: sha(fs.readFileSync(vhost)), step: 'vhost' },
    ]);
    const bad = await repo(['doctor', '--expected', '-'], '{"format":1}');
    expectCode(bad, 2);
    expect(bad.stderr).toMatch(/^apt-repo: stdin: not an expected-state manifest: channel: /);
    const foreign = await repo(['doctor', '--expected', '-'], JSON.stringify({ ...state, channel: 'prod' }));
    expectCode(foreign, 2);
    expect(foreign.stderr).toBe("apt-repo: stdin is the expected state of channel 'prod', not of --channel preprod\n");
    const missing = await repo(['doctor', '--expected', path.join(root, 'none.json')]);
    expectCode(missing, 2);
    expect(missing.stderr).toMatch(/cannot read .*none\.json: ENOENT/);
  });
});

describe('apt-ops doctor over SSH', () => {
  test('reports a hand-made drift against the server manifest, then against a local one sent on stdin', async () => {
    const clean = await ops(['doctor']);
    expectCode(clean, 0);
    expect(clean.stderr).toContain(
      "preprod (stack preprod) on 127.0.0.1, against the server's expected-state.json: no difference from the expected state (8 paths checked, 1 not checked)",
    );
    expect(clean.stderr).toContain(
      'not checked: ' + path.join(configDir, 'signing-key.asc') + ': content of a secret file: run as root to check',
    );

    // Drift by hand: the vhost edited, the config folder opened to everyone.
    fs.appendFileSync(vhost, '# edited on the server\n');
    const configMode = modeString(fs.statSync(configDir).mode);
    fs.chmodSync(configDir, 0o777);
    try {
      const r = await ops(['doctor']);
      expectCode(r, 1);
      expect(r.stdout).toMatch(new RegExp(`^${configDir}\\s+mode\\s+${configMode}\\s+0777\\s+dirs$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^${vhost}\\s+sha256\\s+[0-9a-f]{64}\\s+[0-9a-f]{64}\\s+vhost$`, 'm'));
      expect(r.stderr).toContain(
        'pulumi config set --stack preprod apt-repo:reapply "$(date -u +%Y%m%dT%H%M%SZ)" && pulumi up --stack preprod',
      );
      const j = await ops(['--json', 'doctor']);
      expectCode(j, 1);
      const report = JSON.parse(j.stdout);
      expect(report).toMatchObject({ stack: 'preprod', host: '127.0.0.1', expected: 'server', channel: 'preprod', checked: 8 });
      expect(report.differences.map((d: { path: string; field: string }) => [d.path, d.field])).toEqual([
        [configDir, 'mode'],
        [vhost, 'sha256'],
      ]);

      // Someone also "fixed" the server's manifest to match the edited vhost: the server alone
      // no longer sees that drift, the stack's own manifest sent from here still does.
      const local = path.join(project, 'expected-state.json');
      writeManifest(state, local);
      writeManifest({
        ...state,
        entries: state.entries.map((e) => (e.path === vhost ? { ...e, sha256: sha(fs.readFileSync(vhost)) } : e)),
      });
      const serverOnly = JSON.parse((await ops(['--json', 'doctor'])).stdout);
      expect(serverOnly.differences.map((d: { field: string }) => d.field)).toEqual(['mode']);
      const withLocal = await ops(['--json', 'doctor', '--expected', local]);
      expectCode(withLocal, 1);
      const lr = JSON.parse(withLocal.stdout);
      expect(lr.expected).toBe(local);
      expect(lr.differences.map((d: { path: string; field: string }) => [d.path, d.field])).toEqual([
        [configDir, 'mode'],
        [vhost, 'sha256'],
      ]);
    } finally {
      fs.chmodSync(configDir, parseInt(configMode, 8));
      fs.writeFileSync(vhost, 'server { listen 127.0.0.1:8080; }\n');
      writeManifest(state);
    }
    expectCode(await ops(['doctor']), 0);
  });

  test('a server without a manifest: exit 2 with the indexer message', async () => {
    const manifest = path.join(configDir, 'expected-state.json');
    fs.renameSync(manifest, `${manifest}.away`);
    try {
      const r = await ops(['doctor']);
      expectCode(r, 2);
      expect(r.stderr).toContain('this channel was not deployed by the Pulumi program, or by a version without expected-state');
      // A local manifest of another channel is refused before connecting.
      const local = path.join(project, 'prod-state.json');
      writeManifest({ ...state, channel: 'prod' }, local);
      const foreign = await ops(['doctor', '--expected', local]);
      expectCode(foreign, 2);
      expect(foreign.stderr).toContain("is the expected state of channel 'prod', not of channel preprod");
    } finally {
      fs.renameSync(`${manifest}.away`, manifest);
    }
  });
});
