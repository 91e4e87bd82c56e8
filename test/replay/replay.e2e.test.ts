/**
 * Replay of the Pulumi program without the Pulumi CLI: the steps infra/plan.ts builds for a preprod
 * and a prod stack are applied for real over SSH (a test sshd on 127.0.0.1, every path under a
 * temp root), twice; then a real nginx serves the vhosts the plan wrote, and a real, isolated
 * apt-get uses the client files the program renders — with and without credentials, from an
 * allowed and a denied source address — and finally a package goes through the channels flow:
 * dropped into incoming/ci, ingested into preprod, promoted to prod, installed by apt from prod.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { NodeSSH } from 'node-ssh';
import { type SshdServer } from '../harness/sshd';
import { startSandboxServer, type SandboxServer } from '../harness/sandboxServer';
import { findFreePort, httpGet } from '../harness/nginx';
import { createAptClient, type AptClient } from '../harness/apt';
import { bundle } from '../harness/cli';
import { buildDeb } from '../harness/debs';
import { makeAccountKeys, pairSigningKeys, pairStackOptions } from '../harness/channelPair';
import {
  applyStacks,
  clientConfig,
  diffSnapshots,
  orderSteps,
  planDigest,
  Replayer,
  sandboxStack,
  shellQuote,
  startSandboxNginx,
  type KeyMaterial,
  type SandboxNginx,
  type SandboxStack,
  type SandboxStackOptions,
} from '../harness/replay';
import { metricValue, parsePrometheus } from '../harness/prometheus';
import { buildPlan } from '../../infra/plan';
import { channelLayout } from '../../infra/layout';

jest.setTimeout(600_000);

/** Runs `cmd` with `args` (no shell), 30 s at most; its status and output as text. */
function spawnSyncText(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const CREDENTIALS = [
  { username: 'web-front-1', password: 'Front1-password-0123' },
  { username: 'db-replica-2', password: 'Replica2-password-4567' },
];
const CODENAMES = ['bookworm', 'bullseye'];
/** Paths that legitimately change while nginx runs (logs, pid, temp files), or that `nginx -t` touches. */
const VOLATILE = ['var/log', 'run', 'var/lib/nginx', 'etc/nginx/nginx.conf', 'var/lib/apt-repo/staging/*/nginx-test'];
/** The test's upload account (preprod) and operator (both channels): real users of this host, keys of the test. */
const UPLOADER = 'replay-upl';
const OPERATOR = 'replay-ops';

describe('replay of the Pulumi plan over SSH, served by nginx, used by apt', () => {
  let server: SandboxServer;
  let sshd: SshdServer;
  let root: string;
  let work: string;
  let replayer: Replayer;
  let bundlePath: string;
  let keys: Record<string, KeyMaterial>;
  let options: Record<string, SandboxStackOptions>;
  let stacks: SandboxStack[];
  let nginx: SandboxNginx | undefined;
  const clients: AptClient[] = [];
  /** Private key files of the uploader and the operator. */
  let accountKeys: Record<string, string>;
  /** The node_exporter textfile folder both stacks configure (apt-repo:metricsDir). */
  let metricsDir: string;

  const makeStacks = () => ['preprod', 'prod'].map((ch) => sandboxStack(options[ch], keys[ch], bundlePath));
  const stack = (channel: string) => stacks.find((s) => s.config.channel === channel)!;
  /** Runs a command on the server as root over the same SSH connection; throws on a non-zero exit. */
  const remote = (command: string) => server.remote(command);
  /** Runs the indexer a channel's stack deployed, as the service user (what the systemd units do). */
  const indexer = (channel: string, args: string[]) => remote(server.indexerCommand(stack(channel).config, args));
  /** An isolated apt client of `channel` configured with the rendered client files (Signed-By rewritten to a local copy of the key). */
  const aptClientFor = (channel: string, credentialIndex: number | undefined, keyFile: string) => {
    const cc = clientConfig(stack(channel));
    const sources = cc.sources.bookworm.replace(cc.keyringPath, keyFile);
    const client = createAptClient({
      sources,
      ...(credentialIndex !== undefined ? { authConf: cc.authConf[CREDENTIALS[credentialIndex].username] } : {}),
    });
    clients.push(client);
    return client;
  };

  /** Connects to the test sshd as `user` with its key (node-ssh, as apt-ops would). */
  const connectAs = async (user: string) => {
    const ssh = new NodeSSH();
    await ssh.connect({
      host: sshd.host,
      port: sshd.port,
      username: user,
      privateKey: fs.readFileSync(accountKeys[user], 'utf8'),
      readyTimeout: 20000,
    });
    return ssh;
  };
  /** OpenSSH's client as `user`, with the host key pinned; resolves with its exit status and output. */
  const sshClientArgs = (user: string) => [
    '-i',
    accountKeys[user],
    '-p',
    String(sshd.port),
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${path.join(work, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    `${user}@${sshd.host}`,
  ];

  beforeAll(async () => {
    server = await startSandboxServer('replay-root', 'replay-work');
    ({ root, work, sshd, replayer } = server);
    fs.writeFileSync(path.join(work, 'known_hosts'), sshd.knownHostsLine + '\n');
    accountKeys = makeAccountKeys(work, [UPLOADER, OPERATOR], 'replay');
    bundlePath = await bundle('apt-repo');
    keys = await pairSigningKeys('Replay');
    const pair = {
      root,
      ssh: server.ssh,
      credentials: CREDENTIALS,
      codenames: CODENAMES,
      uploader: UPLOADER,
      operator: OPERATOR,
      accountKeys,
    };
    const [p1, p2] = [await findFreePort(), await findFreePort()];
    // Both channels write their metrics into one shared node_exporter textfile folder, as on a server.
    metricsDir = path.join(root, 'var/lib/prometheus/node-exporter');
    const withMetrics = (o: SandboxStackOptions): SandboxStackOptions => ({ ...o, extra: { ...o.extra, metricsDir } });
    options = { preprod: withMetrics(pairStackOptions(pair, 'preprod', p1)), prod: withMetrics(pairStackOptions(pair, 'prod', p2)) };
    stacks = makeStacks();
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    await server?.stop({ stacks, nginx });
  });

  test('orderSteps follows dependsOn and refuses unknown dependencies and cycles', () => {
    const s = (name: string, dependsOn: string[]) => ({ name, dependsOn });
    expect(orderSteps([s('c', ['b']), s('a', []), s('b', ['a'])]).map((x) => x.name)).toEqual(['a', 'b', 'c']);
    expect(() => orderSteps([s('a', ['z'])])).toThrow(/unknown step 'z'/);
    expect(() => orderSteps([s('a', ['b']), s('b', ['a'])])).toThrow(/cycle/);
    for (const st of stacks) {
      const ordered = orderSteps(st.steps).map((x) => x.name);
      for (const step of st.steps) for (const d of step.dependsOn) expect(ordered.indexOf(d)).toBeLessThan(ordered.indexOf(step.name));
    }
  });

  test('the plan is deterministic and no secret is in a script, a staged file or a trigger', () => {
    for (const st of stacks) {
      expect(planDigest(buildPlan(st.config, st.material))).toBe(planDigest(st.steps));
      const visible = JSON.stringify(st.steps.map((x) => ({ script: x.script, files: x.files, triggers: x.triggers })));
      const secrets = [
        ...CREDENTIALS.map((c) => c.password),
        ...st.material.htpasswd
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(':')[1]),
        st.material.signingKeyArmored.split('\n').slice(3, 6).join('\n'),
      ];
      for (const secret of secrets) expect(visible).not.toContain(secret);
    }
  });

  test('applying both stacks twice: the first run changes the host, the second changes nothing', async () => {
    const first = await applyStacks(replayer, stacks);
    expect(first.filter((r) => r.changed).map((r) => r.name)).toEqual(
      expect.arrayContaining(['preprod/dirs', 'preprod/publish', 'preprod/vhost', 'prod/dirs', 'prod/publish', 'prod/vhost']),
    );
    const before = await replayer.snapshotTree(root, VOLATILE);
    const second = await applyStacks(replayer, stacks);
    expect(second.filter((r) => r.changed).map((r) => r.name)).toEqual([]);
    const after = await replayer.snapshotTree(root, VOLATILE);
    expect(diffSnapshots(before, after)).toEqual([]);
    // The snapshot saw the tree the plan built: a published channel and its vhost.
    for (const ch of ['preprod', 'prod']) {
      const l = channelLayout(stack(ch).config);
      const rel = (p: string) => './' + path.relative(root, p);
      expect(before.get(rel(path.join(l.webRoot, 'dists')))).toMatch(/^l /);
      // The signer's alone: the indexer, which parses uploads, cannot read it.
      expect(before.get(rel(l.signingKeyFile))).toMatch(new RegExp(`^f 600 aptsign-${ch} aptsign-${ch} `));
      expect(before.get(rel(l.configDir))).toMatch(/^d 755 root root /);
      expect(before.get(rel(path.join(l.webRoot, 'pool')))).toMatch(new RegExp(`^d 2755 aptrepo-${ch} aptrepo `));
      expect(before.get(rel(l.htpasswdFile))).toMatch(/^f 640 root www-data /);
      expect(before.get(rel(l.vhostLink))).toMatch(/^l /);
      expect(before.get(rel(path.join(l.systemdDir, `apt-repo-backup-${ch}.timer`)))).toMatch(/^f 644 root root /);
    }
    expect(before.get('./etc/systemd/system/apt-repo-ingest-preprod.path')).toMatch(/^f 644 root root /);
    expect(before.get('./etc/systemd/system/apt-repo-ingest-prod.path')).toBeUndefined();
    // Secrets exist only where they belong: the private keys in the config dirs (0600), nowhere in staging.
    for (const ch of ['preprod', 'prod']) {
      const keyLine = keys[ch].privateArmored.split('\n').find((x) => x.length >= 60)!;
      const hits = await remote(`grep -rlF -e ${shellQuote(keyLine)} ${shellQuote(root)} || true`);
      expect(hits.split('\n').filter(Boolean)).toEqual([channelLayout(stack(ch).config).signingKeyFile]);
    }
    const hash = stack('preprod').material.htpasswd.split('\n')[0].split(':')[1];
    const passwords = await remote(
      `grep -rlF -e ${shellQuote(CREDENTIALS[0].password)} -e ${shellQuote(hash)} ${shellQuote(root)} || true`,
    );
    // The same credentials are valid for both channels (the salt derives from the credential): both htpasswd files, nothing else.
    expect(passwords.split('\n').filter(Boolean).sort()).toEqual(
      ['preprod', 'prod'].map((ch) => channelLayout(stack(ch).config).htpasswdFile).sort(),
    );
  });

  test('nginx serves the vhosts the plan wrote; apt works with credentials from an allowed address', async () => {
    nginx = await startSandboxNginx(
      root,
      stacks.map((s) => s.config.httpPort),
    );
    for (const ch of ['preprod', 'prod']) {
      const cc = clientConfig(stack(ch));
      const key = await httpGet(cc.keyUrls.gpg, { auth: CREDENTIALS[0] });
      expect(key.status).toBe(200);
      expect(key.bytes.equals(Buffer.from(keys[ch].publicBinary))).toBe(true);
      const keyFile = path.join(work, `${ch}.gpg`);
      fs.writeFileSync(keyFile, key.bytes);
      for (const i of [0, 1]) {
        const client = aptClientFor(ch, i, keyFile);
        const u = await client.update();
        expect(u.stderr).not.toMatch(/^(E|W):/m);
        expect(u.code).toBe(0);
      }
    }
  });

  test('without or with wrong credentials: 401; from a denied address: 403', async () => {
    for (const ch of ['preprod', 'prod']) {
      const cc = clientConfig(stack(ch));
      const release = `${cc.url}dists/bookworm/InRelease`;
      expect((await httpGet(release, { auth: CREDENTIALS[1] })).status).toBe(200);
      expect((await httpGet(release)).status).toBe(401);
      expect((await httpGet(release, { auth: { username: CREDENTIALS[0].username, password: CREDENTIALS[1].password } })).status).toBe(401);
      expect((await httpGet(release, { auth: CREDENTIALS[0], localAddress: '127.0.0.2' })).status).toBe(403);
      // apt itself: without credentials update fails (apt reports it as an unsigned/unauthorised repository).
      const anonymous = aptClientFor(ch, undefined, path.join(work, `${ch}.gpg`));
      const r = await anonymous.update();
      expect(`${r.stdout}${r.stderr}`).toMatch(/401/);
    }
  });

  test('the key directory, dotfiles (.generations), the htpasswd file and unknown paths are never served', async () => {
    for (const ch of ['preprod', 'prod']) {
      const st = stack(ch);
      const cc = clientConfig(st);
      const l = channelLayout(st.config);
      const generations = await remote(`ls ${shellQuote(path.join(l.webRoot, '.generations'))}`);
      const someGeneration = generations.split('\n').filter(Boolean)[0];
      expect(someGeneration).toBeTruthy();
      const forbidden = [
        '.generations/',
        `.generations/${someGeneration}/dists/bookworm/Release`,
        'dists/.hidden',
        'pool/.x',
        'etc/epiconcept/apt_repo/',
        `etc/epiconcept/apt_repo/${ch}/signing-key.asc`,
        path.relative(root, l.signingKeyFile),
        path.relative(root, l.htpasswdFile),
        `${ch}.htpasswd`,
        'signing-key.asc',
        'repo.yaml',
        'pool/..%2f..%2f..%2fetc/epiconcept/apt_repo/preprod/signing-key.asc',
        'dists/..%2f..%2f..%2f..%2fetc/nginx/apt-repo/preprod.htpasswd',
      ];
      for (const p of forbidden) {
        const r = await httpGet(cc.url + p, { auth: CREDENTIALS[0] });
        expect({ p, status: r.status }).toEqual({ p, status: expect.any(Number) });
        expect([400, 403, 404]).toContain(r.status);
        expect(r.body).not.toContain('PRIVATE KEY');
        expect(r.body).not.toContain('$6$');
      }
    }
  });

  test('channels flow: a .deb dropped into incoming/ci is ingested into preprod, promoted, and installed from prod', async () => {
    const pre = channelLayout(stack('preprod').config);
    const deb = buildDeb(work, { name: 'replay-demo', version: '1.2-1', description: 'replay test package' });
    await replayer.uploadFile(deb, path.join(pre.incomingDir, 'ci', path.basename(deb)));
    await indexer('preprod', ['ingest', '--settle-ms', '0']);
    const pending = await indexer('prod', ['pending']);
    expect(pending).toContain('replay-demo');

    const preKey = path.join(work, 'preprod.gpg');
    const prodKey = path.join(work, 'prod.gpg');
    const preClient = aptClientFor('preprod', 0, preKey);
    expect((await preClient.update()).code).toBe(0);
    expect((await preClient.madison('replay-demo')).stdout).toContain('1.2-1');
    const prodClient = aptClientFor('prod', 1, prodKey);
    expect((await prodClient.update()).code).toBe(0);
    expect((await prodClient.madison('replay-demo')).stdout).not.toContain('1.2-1');

    await indexer('prod', ['promote', 'replay-demo']);
    expect((await prodClient.update()).code).toBe(0);
    expect((await prodClient.madison('replay-demo')).stdout).toContain('1.2-1');
    const got = await prodClient.download('replay-demo=1.2-1');
    expect(got.code).toBe(0);
    expect(got.files.map((f) => path.basename(f))).toEqual(['replay-demo_1.2-1_all.deb']);
    expect(fs.readFileSync(got.files[0]).equals(fs.readFileSync(deb))).toBe(true);
    const sim = await prodClient.installSimulate('replay-demo=1.2-1');
    expect(sim.code).toBe(0);
    expect(sim.stdout).toMatch(/Inst replay-demo \(1\.2-1 /);
  });

  test('metrics: each channel keeps its .prom file in the shared folder, readable by another user, replaceable by its own indexer only', async () => {
    const file = (ch: string) => path.join(metricsDir, `apt_repo_${ch}.prom`);
    expect(await remote(`stat -c '%a %U %G' ${shellQuote(metricsDir)}`)).toBe('1775 root aptrepo\n');
    for (const ch of ['preprod', 'prod']) {
      expect(await remote(`stat -c '%a %U' ${shellQuote(file(ch))}`)).toBe(`644 aptrepo-${ch}\n`);
    }
    // What node_exporter (another user) reads, after the ingest into preprod and the promote into prod.
    const scrape = async (ch: string) => parsePrometheus(await remote(`runuser -u nobody -- cat ${shellQuote(file(ch))}`));
    const pre = await scrape('preprod');
    const prod = await scrape('prod');
    for (const [ch, f] of [
      ['preprod', pre],
      ['prod', prod],
    ] as const) {
      expect([ch, metricValue(f, 'apt_repo_versions', { channel: ch, codename: 'bookworm', architecture: 'amd64' })]).toEqual([ch, 1]);
      expect([ch, metricValue(f, 'apt_repo_generation_age_seconds', { channel: ch })]).toEqual([ch, expect.any(Number)]);
    }
    expect(metricValue(pre, 'apt_repo_last_ingest_accepted', { channel: 'preprod' })).toBe(1);
    expect(metricValue(prod, 'apt_repo_pending_packages', { channel: 'prod' })).toBe(0);
    // Sticky folder: preprod's indexer (which parses uploads) cannot replace or remove prod's file.
    const asPreprod = (cmd: string) =>
      replayer.exec(`cd ${shellQuote(metricsDir)} && runuser -u aptrepo-preprod -- sh -c ${shellQuote(cmd)}`);
    const prodBefore = await remote(`sha256sum < ${shellQuote(file('prod'))}`);
    for (const cmd of ['printf x > .planted && mv -f .planted apt_repo_prod.prom', 'rm -f apt_repo_prod.prom']) {
      const r = await asPreprod(cmd);
      expect([cmd, r.code, r.stderr]).toEqual([cmd, 1, expect.stringMatching(/Operation not permitted/)]);
    }
    await remote(`rm -f ${shellQuote(path.join(metricsDir, '.planted'))}`);
    expect(await remote(`sha256sum < ${shellQuote(file('prod'))}`)).toBe(prodBefore);
    // A name nobody owns yet could be taken first: the dirs step gives it back to its channel, and the
    // metrics step fills the (then empty) file, as the service user.
    await remote(`rm -f ${shellQuote(file('prod'))}`);
    expect((await asPreprod('printf "apt_repo_fake 1\\n" > apt_repo_prod.prom')).code).toBe(0);
    const step = (name: string) => stack('prod').steps.find((x) => x.name === name)!;
    expect((await replayer.applyStep(step('dirs'))).changed).toBe(true);
    expect(await remote(`stat -c '%a %U %s' ${shellQuote(file('prod'))}`)).toBe('644 aptrepo-prod 0\n');
    await replayer.applyStep(step('metrics-units'));
    const refilled = await scrape('prod');
    expect(metricValue(refilled, 'apt_repo_versions', { channel: 'prod', codename: 'bookworm', architecture: 'amd64' })).toBe(1);
    expect(metricValue(refilled, 'apt_repo_fake')).toBeUndefined();
    expect(await remote(`stat -c '%a %U' ${shellQuote(file('prod'))}`)).toBe('644 aptrepo-prod\n');
  });

  test("metrics turned off: the step removes the timer units and the channel's file (the folder stays); on again, they are back", async () => {
    const c = stack('prod').config;
    const l = channelLayout(c);
    const units = ['service', 'timer'].map((t) => path.join(l.systemdDir, `apt-repo-metrics-prod.${t}`));
    const file = path.join(metricsDir, 'apt_repo_prod.prom');
    const exists = async (p: string) => (await replayer.exec(`test -e ${shellQuote(p)}`)).code === 0;
    for (const p of [...units, file]) expect([p, await exists(p)]).toEqual([p, true]);
    const { metricsDir: _unset, ...extra } = options.prod.extra ?? {};
    const off = sandboxStack({ ...options.prod, extra }, keys.prod, bundlePath).steps.find((x) => x.name === 'metrics-units')!;
    expect((await replayer.applyStep(off)).changed).toBe(true);
    for (const p of [...units, file]) expect([p, await exists(p)]).toEqual([p, false]);
    expect(await exists(path.join(metricsDir, 'apt_repo_preprod.prom'))).toBe(true);
    expect((await replayer.applyStep(off)).changed).toBe(false);
    // On again (the plan the stacks apply): units installed, the file written as the service user.
    expect((await replayer.applyStep(stack('prod').steps.find((x) => x.name === 'metrics-units')!)).changed).toBe(true);
    expect(await remote(`stat -c '%a %U' ${shellQuote(file)}`)).toBe('644 aptrepo-prod\n');
    expect(
      metricValue(parsePrometheus(await remote(`cat ${shellQuote(file)}`)), 'apt_repo_generations_kept', { channel: 'prod' }),
    ).toBeGreaterThan(0);
  });

  test("promote hard-links prod's pool file to preprod's (one inode, no duplicate bytes)", async () => {
    // The .deb was uploaded by another user than the service user (root here, a CI account on the
    // server): with fs.protected_hardlinks=1 (Debian's default) the service user can only link files it owns.
    const pre = channelLayout(stack('preprod').config);
    const prod = channelLayout(stack('prod').config);
    const links = await remote(
      `find ${shellQuote(pre.webRoot)} ${shellQuote(prod.webRoot)} -name 'replay-demo_1.2-1_all.deb' -printf '%i %n\\n'`,
    );
    const [a, b] = links.trim().split('\n');
    expect(a).toBe(b);
  });

  test('the indexer user cannot read the private key; the signer signs for it', async () => {
    for (const ch of ['preprod', 'prod']) {
      const c = stack(ch).config;
      const l = channelLayout(c);
      const r = await replayer.exec(['runuser', '-u', c.serviceUser, '--', 'cat', l.signingKeyFile].map(shellQuote).join(' '));
      expect([ch, r.code, r.stderr]).toEqual([ch, 1, expect.stringContaining('Permission denied')]);
      expect(r.stdout).not.toContain('PRIVATE KEY');
      // The published index was signed all the same (by the sign-server running as the signer).
      expect(await remote(`stat -c %U ${shellQuote(l.signerPidFile)}`)).toBe(`aptsign-${ch}\n`);
      expect(await remote(`head -c 40 ${shellQuote(path.join(l.webRoot, 'dists/bookworm/InRelease'))}`)).toContain(
        '-----BEGIN PGP SIGNED MESSAGE-----',
      );
    }
  });

  test('an uploader writes its drop folders over SFTP, chrooted, and nothing else', async () => {
    const pre = channelLayout(stack('preprod').config);
    const ssh = await connectAs(UPLOADER);
    try {
      const sftp = await ssh.requestSFTP();
      const call = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
        new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
      // The chroot: incomingDir is '/', the drop folders and rejected/ are all there is.
      const top = (await call<{ filename: string }[]>((cb) => sftp.readdir('/', cb))).map((e) => e.filename).sort();
      expect(top).toEqual(['build', 'ci', 'php', 'rejected']);
      await call((cb) => sftp.writeFile('/ci/bookworm/upload-check.txt', 'hello', cb));
      expect(await remote(`stat -c '%a %U %G' ${shellQuote(path.join(pre.incomingDir, 'ci/bookworm/upload-check.txt'))}`)).toBe(
        `644 ${UPLOADER} aptupload\n`,
      );
      await call((cb) => sftp.unlink('/ci/bookworm/upload-check.txt', cb));
      // Outside the drop folders: the chroot's root, rejected/, and any path of the host.
      for (const p of ['/outside.txt', '/rejected/planted.reason', '/../outside.txt', `${pre.webRoot}/pool/x.deb`, '/etc/passwd']) {
        await expect(call((cb) => sftp.writeFile(p, 'x', cb))).rejects.toThrow();
      }
      await expect(call((cb) => sftp.readFile('/etc/passwd', cb))).rejects.toThrow();
      sftp.end();
      expect(await remote(`ls -A ${shellQuote(pre.incomingDir)}`)).toBe('build\nci\nphp\nrejected\n');
      expect(await remote(`ls -A ${shellQuote(path.join(pre.incomingDir, 'rejected'))}`)).toBe('');
    } finally {
      ssh.dispose();
    }
  });

  test('an uploader gets no shell, no command and no port forwarding', async () => {
    const shell = spawnSyncText('ssh', [...sshClientArgs(UPLOADER), 'id']);
    expect(shell.stdout).not.toMatch(/uid=/);
    // Through node-ssh too (what a script would use): the forced internal-sftp answers any command.
    const ssh = await connectAs(UPLOADER);
    try {
      const r = await ssh.execCommand('id; cat /etc/passwd');
      expect(r.stdout).not.toMatch(/uid=|root:/);
    } finally {
      ssh.dispose();
    }
    // ssh -N -L: the local end listens, but sshd refuses every channel through it.
    const localPort = await findFreePort();
    const fwd = spawn('ssh', [...sshClientArgs(UPLOADER), '-N', '-L', `127.0.0.1:${localPort}:127.0.0.1:${sshd.port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    fwd.stderr!.on('data', (d) => (stderr += d));
    try {
      const deadline = Date.now() + 15000;
      let banner = '';
      for (;;) {
        const got = await new Promise<string | undefined>((resolve) => {
          const sock = net.connect({ host: '127.0.0.1', port: localPort });
          let data = '';
          sock.on('data', (d) => (data += d));
          sock.on('error', () => resolve(undefined));
          sock.on('close', () => resolve(data));
          sock.setTimeout(3000, () => sock.destroy());
        });
        if (got !== undefined) {
          banner = got;
          break;
        }
        if (Date.now() > deadline) throw new Error(`ssh -L never listened on ${localPort}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // Through a working tunnel the sshd's own banner would come back.
      expect(banner).not.toContain('SSH-2.0');
      for (let i = 0; i < 50 && !/prohibited|open failed/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
      expect(stderr).toMatch(/administratively prohibited|open failed/);
    } finally {
      fwd.kill('SIGTERM');
    }
  });

  test('an operator runs the indexer as the channel user through sudo, and nothing else', async () => {
    const ssh = await connectAs(OPERATOR);
    try {
      const c = stack('prod').config;
      const indexer = (...args: string[]) =>
        ssh.execCommand(
          ['sudo', '-n', '-u', c.serviceUser, c.nodePath, c.indexerPath, '--root', c.root, '--channel', 'prod', ...args]
            .map(shellQuote)
            .join(' '),
        );
      const pending = await indexer('pending');
      expect([pending.code, pending.stderr]).toEqual([0, expect.not.stringContaining('sudo:')]);
      const json = await indexer('--json', 'versions', 'hello');
      expect(json.stderr).not.toContain('sudo:');
      // doctor: the server against what the stack installed (as the service user: secret files not read).
      const doctor = await indexer('--json', 'doctor');
      expect([doctor.code, doctor.stderr]).toEqual([0, expect.not.stringContaining('sudo:')]);
      expect(JSON.parse(doctor.stdout).differences).toEqual([]);
      // Subcommands that take files the operator chooses would skip the preprod gate: sudo refuses them.
      for (const args of [
        ['import', '/tmp'],
        ['restore', '--from', '/tmp'],
        ['keygen', '--force'],
        ['backup', '--to', '/tmp/x'],
        ['pending', '--extra'],
        ['doctor', '--expected', '/etc/shadow'],
      ]) {
        const refused = await indexer(...args);
        expect([args, refused.code, refused.stderr]).toEqual([args, 1, expect.stringContaining('sudo: a password is required')]);
      }
      const asRoot = await ssh.execCommand('sudo -n -u root id');
      expect(asRoot.code).not.toBe(0);
      expect(asRoot.stdout).not.toMatch(/uid=0/);
      const otherCommand = await ssh.execCommand(`sudo -n -u ${shellQuote(c.serviceUser)} id`);
      expect(otherCommand.code).not.toBe(0);
      const keyRead = await ssh.execCommand(`cat ${shellQuote(channelLayout(c).signingKeyFile)}`);
      expect(keyRead.code).not.toBe(0);
    } finally {
      ssh.dispose();
    }
  });

  test('re-applying after a config change converges, reloads the running nginx, and is again a no-op', async () => {
    // Allow 127.0.0.2 in preprod: the vhost changes, the plan must reload the sandbox's nginx.
    options.preprod = { ...options.preprod, allowedCidrs: ['127.0.0.1/32', '127.0.0.2/32'] };
    stacks = makeStacks();
    const cc = clientConfig(stack('preprod'));
    const release = `${cc.url}dists/bookworm/InRelease`;
    expect((await httpGet(release, { auth: CREDENTIALS[0], localAddress: '127.0.0.2' })).status).toBe(403);
    const runs = await applyStacks(replayer, stacks);
    // The vhost, and the expected state that lists its digest.
    expect(runs.filter((r) => r.changed).map((r) => r.name)).toEqual(['preprod/vhost', 'preprod/expected-state']);
    expect((await httpGet(release, { auth: CREDENTIALS[0], localAddress: '127.0.0.2' })).status).toBe(200);
    const again = await applyStacks(replayer, stacks);
    expect(again.filter((r) => r.changed).map((r) => r.name)).toEqual([]);
  });
});
