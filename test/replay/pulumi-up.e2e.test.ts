/**
 * `pulumi up` of a preprod stack, replayed the way Pulumi would (test/harness/pulumiState.ts: a
 * state file of the previous resource inputs decides what each remote.Command and CopyToRemote
 * does), for real over SSH (test sshd on 127.0.0.1, every path under a sandbox root), with TLS
 * files from a test CA, served by the sandbox's nginx over HTTPS, and used by an isolated apt client
 * that trusts the test CA. Scenarios: the first up; a second up that runs nothing; then each config
 * key changed in turn (allowedCidrs, client credentials, the TLS certificate, label, validUntilDays,
 * the indexer bundle, codenames, architectures). Each asserts EXACTLY which commands ran, that the
 * server reached the new state, and ends with apt-get update, download and install (simulated) of
 * the test package through the served repository with the current credentials.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tls from 'tls';
import { type SshdServer } from '../harness/sshd';
import { startSandboxServer, type SandboxServer } from '../harness/sandboxServer';
import { findFreePort, httpGet } from '../harness/nginx';
import { createAptClient, type AptClient } from '../harness/apt';
import { bundle } from '../harness/cli';
import { buildDeb } from '../harness/debs';
import { issueServerCert, testCa } from '../harness/tls';
import { pulumiUp, ReplayState, stepsRan, type UpReport } from '../harness/pulumiState';
import {
  clientConfig,
  planMaterial,
  Replayer,
  sandboxStackConfig,
  shellQuote,
  startSandboxNginx,
  type KeyMaterial,
  type SandboxNginx,
  type SandboxStack,
  type SandboxStackOptions,
} from '../harness/replay';
import { buildPlan, fileSha256 } from '../../infra/plan';
import { channelLayout } from '../../infra/layout';
import { generateSigningKey } from '../../lambda-free-tools/src/sign/keys';
import { parseReleaseDate, releaseHeader } from '../../lambda-free-tools/src/index/release';

jest.setTimeout(600_000);

const USER = 'web-front-1';
const DAY = 86_400_000;
const PACKAGE = { name: 'pulumi-up-demo', version: '1.0-1' };

/** The SHA-256 fingerprint of the certificate the server on 127.0.0.1:port presents. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

describe("pulumi up, replayed by Pulumi's rules over SSH: each config change runs exactly its commands", () => {
  let server: SandboxServer;
  let sshd: SshdServer;
  let root: string;
  let work: string;
  let replayer: Replayer;
  let key: KeyMaterial;
  let caFile: string;
  let options: SandboxStackOptions;
  let bundlePath: string;
  let tlsFiles: { certFile: string; keyFile: string; fingerprint: string };
  let password = 'Front1-password-0123';
  let stack: SandboxStack;
  let state: ReplayState;
  let nginx: SandboxNginx | undefined;
  let deb: string;
  const clients: AptClient[] = [];

  const credential = () => ({ username: USER, password });
  /** The stack of the current options, bundle, credentials and TLS files (sandboxStack with tls.mode files). */
  const makeStack = (): SandboxStack => {
    const o: SandboxStackOptions = {
      ...options,
      credentials: [credential()],
      extra: {
        ...options.extra,
        tls: JSON.stringify({ mode: 'files', certFile: tlsFiles.certFile, keyFile: tlsFiles.keyFile }),
        allowPlainHttp: 'false',
      },
    };
    const { config, secrets } = sandboxStackConfig(o);
    const material = {
      ...planMaterial(key, secrets.clientCredentials, bundlePath),
      tlsCert: fs.readFileSync(tlsFiles.certFile, 'utf8'),
      tlsKey: fs.readFileSync(tlsFiles.keyFile, 'utf8'),
    };
    return { config, secrets, material, steps: buildPlan(config, material) };
  };
  /** `pulumi up` of the current options: resolves to the report (the commands that ran are in `ran`). */
  const up = async (): Promise<UpReport> => {
    stack = makeStack();
    return pulumiUp(replayer, state, stack.steps, {
      channel: stack.config.channel,
      connection: `${sshd.username}@${sshd.host}:${sshd.port}`,
    });
  };
  const remote = (command: string) => server.remote(command);
  const url = () => clientConfig(stack).url;
  const served = (rel: string, opts: { localAddress?: string; auth?: { username: string; password: string } } = {}) =>
    httpGet(url() + rel, { auth: credential(), ...opts });
  const release = async (codename: string) => {
    const r = await served(`dists/${codename}/Release`);
    expect([codename, r.status]).toEqual([codename, 200]);
    return releaseHeader(r.body);
  };
  const currentGeneration = () => fs.readlinkSync(path.join(channelLayout(stack.config).webRoot, 'dists'));

  /**
   * The client check: an isolated apt client (the rendered deb822 source for `codename`, the served
   * binary key, the current credentials, the test CA) runs update, downloads the test package (its
   * bytes equal the uploaded .deb) and simulates its install (native clients only: the simulation
   * resolves against this host's dpkg status, whose packages a foreign-architecture client cannot
   * install).
   */
  const aptCheck = async (codename = 'bookworm', arch = 'amd64') => {
    const cc = clientConfig(stack);
    const keyResponse = await httpGet(cc.keyUrls.gpg);
    expect(keyResponse.status).toBe(200);
    const keyFile = path.join(work, `key-${clients.length}.gpg`);
    fs.writeFileSync(keyFile, keyResponse.bytes);
    const sources = cc.sources[codename].replace(cc.keyringPath, keyFile);
    const client = createAptClient({ sources, authConf: cc.authConf[USER], caFile, arch });
    clients.push(client);
    const u = await client.update();
    expect([u.code, u.stderr]).toEqual([0, expect.not.stringMatching(/^(E|W):/m)]);
    const got = await client.download(`${PACKAGE.name}=${PACKAGE.version}`);
    expect([got.code, got.files.map((f) => path.basename(f))]).toEqual([0, [`${PACKAGE.name}_${PACKAGE.version}_all.deb`]]);
    expect(fs.readFileSync(got.files[0]).equals(fs.readFileSync(deb))).toBe(true);
    if (arch !== 'amd64') return;
    const sim = await client.installSimulate(`${PACKAGE.name}=${PACKAGE.version}`);
    expect([sim.code, sim.stdout]).toEqual([
      0,
      expect.stringMatching(new RegExp(`Inst ${PACKAGE.name} \\(${PACKAGE.version.replace('.', '\\.')} `)),
    ]);
  };

  beforeAll(async () => {
    server = await startSandboxServer('pulumi-up', 'pulumi-up-work');
    ({ root, work, sshd, replayer } = server);
    // A copy of the bundle of this test run (a later scenario deploys a changed copy of it).
    bundlePath = path.join(work, 'apt-repo.cjs');
    fs.copyFileSync(await bundle('apt-repo'), bundlePath);
    key = await generateSigningKey({ name: 'Pulumi-up preprod', email: 'apt-preprod@epiconcept.fr', type: 'ed25519' });
    caFile = testCa(work).caFile;
    tlsFiles = issueServerCert(work, 'server-1', ['127.0.0.1']);
    const [httpPort, httpsPort] = [await findFreePort(), await findFreePort()];
    options = {
      root,
      channel: 'preprod',
      ssh: server.ssh,
      httpPort,
      httpsPort,
      credentials: [],
      allowedCidrs: ['127.0.0.1/32'],
      codenames: ['bookworm', 'bullseye'],
      architectures: ['amd64'],
      extra: {},
    };
    state = ReplayState.load(path.join(work, 'state', 'preprod.json'));
    deb = buildDeb(work, { name: PACKAGE.name, version: PACKAGE.version, description: 'pulumi up replay test package' });
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    await server?.stop({ stacks: stack ? [stack] : undefined, nginx });
  });

  test('first up: every resource is created and every command runs; nginx serves over TLS; apt installs', async () => {
    const r = await up();
    expect(stepsRan(r)).toEqual([
      'host-base',
      'dirs',
      'pre-update-backup',
      'config',
      'signing-key',
      'htpasswd',
      'tls',
      'indexer',
      'signer',
      'publish',
      'vhost',
      'ssh-access',
      'sudoers',
      'ingest-units',
      'refresh-units',
      'metrics-units',
      'mirrors',
      'backup-units',
      'expected-state',
    ]);
    expect(Object.values(r.resources).every((op) => op === 'create')).toBe(true);
    expect(r.copied.length).toBe(Object.keys(r.resources).length - r.ran.length);
    const l = channelLayout(stack.config);
    await replayer.uploadFile(deb, path.join(l.incomingDir, 'ci', path.basename(deb)));
    const c = stack.config;
    await remote(
      [
        'runuser',
        '-u',
        c.serviceUser,
        '--',
        c.nodePath,
        c.indexerPath,
        '--root',
        c.root,
        '--channel',
        c.channel,
        'ingest',
        '--settle-ms',
        '0',
      ]
        .map(shellQuote)
        .join(' '),
    );
    nginx = await startSandboxNginx(root, [c.httpPort, c.httpsPort]);
    expect(url()).toBe(`https://127.0.0.1:${c.httpsPort}/`);
    expect(await servedFingerprint(c.httpsPort)).toBe(tlsFiles.fingerprint);
    // Plain HTTP only redirects (no repository, no credentials in clear).
    expect((await httpGet(`http://127.0.0.1:${c.httpPort}/dists/bookworm/Release`, { auth: credential() })).status).toBe(301);
    await aptCheck();
  });

  test('second up with no change: every resource is the same, no command runs, nothing is copied', async () => {
    const r = await up();
    expect(r.ran).toEqual([]);
    expect(r.copied).toEqual([]);
    expect(new Set(Object.values(r.resources))).toEqual(new Set(['same']));
    await aptCheck();
  });

  test('allowedCidrs: 127.0.0.2 allowed — the vhost (and the expected-state manifest) run; 127.0.0.2 gets the index', async () => {
    expect((await served('dists/bookworm/InRelease', { localAddress: '127.0.0.2' })).status).toBe(403);
    const before = currentGeneration();
    options = { ...options, allowedCidrs: ['127.0.0.1/32', '127.0.0.2/32'] };
    const r = await up();
    expect(stepsRan(r)).toEqual(['vhost', 'expected-state']);
    expect((await served('dists/bookworm/InRelease', { localAddress: '127.0.0.2' })).status).toBe(200);
    expect(currentGeneration()).toBe(before);
    await aptCheck();
  });

  test('client credentials: a new password — only the htpasswd command runs; the old password gets 401, the new one works', async () => {
    const old = credential();
    password = 'Front1-password-rotated-4567';
    const r = await up();
    expect(stepsRan(r)).toEqual(['htpasswd']);
    expect(r.ran[0].op).toBe('update');
    expect((await served('dists/bookworm/InRelease', { auth: old })).status).toBe(401);
    expect((await served('dists/bookworm/InRelease')).status).toBe(200);
    await aptCheck();
  });

  test('TLS certificate: a new one — the tls command installs it and nginx serves it', async () => {
    const previous = tlsFiles.fingerprint;
    tlsFiles = issueServerCert(work, 'server-2', ['127.0.0.1']);
    expect(tlsFiles.fingerprint).not.toBe(previous);
    const r = await up();
    expect(stepsRan(r)).toEqual(['tls', 'expected-state']);
    expect(r.resources['preprod-tls-copy-cert.pem']).toBe('update');
    expect(await servedFingerprint(stack.config.httpsPort)).toBe(tlsFiles.fingerprint);
    const l = channelLayout(stack.config);
    expect(fs.readFileSync(l.tlsCertFile, 'utf8')).toBe(fs.readFileSync(tlsFiles.certFile, 'utf8'));
    await aptCheck();
  });

  test('label: backup, config, signer and publish run; the served Release carries the new label', async () => {
    const before = currentGeneration();
    options = { ...options, extra: { ...options.extra, label: 'Epiconcept preprod (pulumi up)' } };
    const r = await up();
    expect(stepsRan(r)).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'expected-state']);
    expect(currentGeneration()).not.toBe(before);
    expect((await release('bookworm')).get('Label')).toBe('Epiconcept preprod (pulumi up)');
    await aptCheck();
  });

  test('validUntilDays 7: Valid-Until = Date + 7 days, the re-signing timer is installed', async () => {
    options = { ...options, extra: { ...options.extra, validUntilDays: '7' } };
    const r = await up();
    expect(stepsRan(r)).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'refresh-units', 'expected-state']);
    const rel = await release('bookworm');
    expect(parseReleaseDate(rel.get('Valid-Until')!)!.getTime() - parseReleaseDate(rel.get('Date')!)!.getTime()).toBe(7 * DAY);
    expect(fs.existsSync(path.join(channelLayout(stack.config).systemdDir, 'apt-repo-refresh-preprod.timer'))).toBe(true);
    await aptCheck();
  });

  test('the indexer bundle: a new build (one more comment line) replaces the indexer and republishes', async () => {
    fs.appendFileSync(bundlePath, '// rebuilt for the pulumi-up replay test\n');
    const before = currentGeneration();
    const r = await up();
    expect(stepsRan(r)).toEqual(['pre-update-backup', 'indexer', 'signer', 'publish', 'expected-state']);
    expect(r.ran.find((x) => x.step === 'indexer')!.op).toBe('replace');
    expect(r.resources['preprod-indexer-copy-apt-repo.cjs']).toBe('update');
    expect(fileSha256(channelLayout(stack.config).indexerPath)).toBe(fileSha256(bundlePath));
    expect(currentGeneration()).not.toBe(before);
    await aptCheck();
  });

  test('codenames: trixie added, bullseye removed — the served dists follow', async () => {
    options = { ...options, codenames: ['bookworm', 'trixie'] };
    const r = await up();
    expect(stepsRan(r)).toEqual(['dirs', 'pre-update-backup', 'config', 'signer', 'publish', 'ingest-units', 'expected-state']);
    for (const c of ['bookworm', 'trixie']) expect((await release(c)).get('Codename')).toBe(c);
    expect((await served('dists/bullseye/Release')).status).toBe(404);
    expect((await served('dists/bullseye/InRelease')).status).toBe(404);
    await aptCheck('trixie');
  });

  test('architectures: arm64 added — Release lists it and an arm64 client installs the arch-all package', async () => {
    options = { ...options, architectures: ['amd64', 'arm64'] };
    const r = await up();
    expect(stepsRan(r)).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'expected-state']);
    expect((await release('bookworm')).get('Architectures')).toBe('amd64 arm64');
    expect((await served('dists/bookworm/main/binary-arm64/Packages')).body).toContain(`Package: ${PACKAGE.name}\n`);
    await aptCheck('bookworm', 'arm64');
    await aptCheck('trixie');
    // And the next up is again a no-op.
    expect((await up()).ran).toEqual([]);
  });

  test('drift: a vhost edited and a unit chmodded by hand are named by apt-repo doctor (exit 1); a new reapply value re-runs every step and doctor is clean', async () => {
    const c = stack.config;
    const l = channelLayout(c);
    const doctor = async () => {
      const r = await replayer.exec(
        [c.nodePath, c.indexerPath, '--root', c.root, '--channel', c.channel, '--json', 'doctor'].map(shellQuote).join(' '),
      );
      return {
        code: r.code,
        report: JSON.parse(r.stdout) as { differences: { path: string; field: string; step: string }[]; notChecked: unknown[] },
      };
    };
    const clean = await doctor();
    expect([clean.code, clean.report.differences, clean.report.notChecked]).toEqual([0, [], []]);
    const timer = path.join(l.systemdDir, 'apt-repo-backup-preprod.timer');
    await remote(`printf '# edited by hand\\n' >> ${shellQuote(l.vhostFile)} && chmod 0600 ${shellQuote(timer)}`);
    const drifted = await doctor();
    expect(drifted.code).toBe(1);
    expect(drifted.report.differences.map((d) => [d.path, d.field, d.step])).toEqual(
      [
        [timer, 'mode', 'backup-units'],
        [l.vhostFile, expect.any(String), 'vhost'],
      ].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
    );
    // Nothing in the stack changed: an up runs nothing and repairs nothing.
    expect((await up()).ran).toEqual([]);
    expect((await doctor()).code).toBe(1);
    options = { ...options, extra: { ...options.extra, reapply: 'drift-repair-1' } };
    const r = await up();
    expect(stepsRan(r)).toEqual([
      'host-base',
      'dirs',
      'pre-update-backup',
      'config',
      'signing-key',
      'htpasswd',
      'tls',
      'indexer',
      'signer',
      'publish',
      'vhost',
      'ssh-access',
      'sudoers',
      'ingest-units',
      'refresh-units',
      'metrics-units',
      'mirrors',
      'backup-units',
      'expected-state',
    ]);
    expect(new Set(r.ran.map((x) => x.op))).toEqual(new Set(['replace']));
    expect(r.ran.filter((x) => x.changed).map((x) => x.step)).toEqual(['vhost', 'backup-units']);
    const repaired = await doctor();
    expect([repaired.code, repaired.report.differences]).toEqual([0, []]);
    expect(fs.statSync(timer).mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(l.vhostFile, 'utf8')).not.toContain('# edited by hand');
    await aptCheck('trixie');
  });
});
