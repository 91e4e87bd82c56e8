/**
 * `pulumi up` after an index-affecting config change publishes the change, under Pulumi's rule.
 *
 * A preprod stack is applied for real over SSH (test sshd on 127.0.0.1, every path under a sandbox
 * root) and served by the sandbox's nginx; then its config changes in turn — a codename added and
 * one removed, an architecture added, the label, validUntilDays set, an unrelated key (allowedCidrs),
 * validUntilDays unset, the client credentials removed — each time through
 * test/harness/pulumiState.ts pulumiUp: a state file of the previous resource inputs decides, by
 * @pulumi/command's rules, which copies upload and which commands run (own inputs changed: update;
 * triggers changed: replace; gone from the program: delete, nothing runs; dependsOn orders and
 * never re-runs). What nginx serves (dists/<codename>/Release, Packages, InRelease checked with
 * gpgv) must show each change.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { startSandboxServer, type SandboxServer } from '../harness/sandboxServer';
import { findFreePort, httpGet } from '../harness/nginx';
import { bundle } from '../harness/cli';
import { buildDeb } from '../harness/debs';
import { pulumiUp, ReplayState, stepsRan, type UpReport } from '../harness/pulumiState';
import {
  clientConfig,
  Replayer,
  sandboxStack,
  shellQuote,
  startSandboxNginx,
  type KeyMaterial,
  type SandboxNginx,
  type SandboxStack,
  type SandboxStackOptions,
} from '../harness/replay';
import { channelLayout } from '../../infra/layout';
import { generateSigningKey } from '../../lambda-free-tools/src/sign/keys';
import { parseReleaseDate, releaseHeader } from '../../lambda-free-tools/src/index/release';

jest.setTimeout(600_000);

const CREDENTIAL = { username: 'web-front-1', password: 'Front1-password-0123' };
const DAY = 86_400_000;

describe('replay: a config change reaches the served index (only the steps whose own inputs changed run)', () => {
  let server: SandboxServer;
  let root: string;
  let work: string;
  let replayer: Replayer;
  let bundlePath: string;
  let key: KeyMaterial;
  let options: SandboxStackOptions;
  let stack: SandboxStack;
  let nginx: SandboxNginx | undefined;
  /** The stack's state: what the next `pulumi up` is compared with. */
  let state: ReplayState;

  const remote = (command: string) => server.remote(command);
  const asService = (args: string[]) => remote(server.indexerCommand(stack.config, args));
  /** GET from the channel with the test credential, or with none (`auth` null). */
  const served = (rel: string, auth: typeof CREDENTIAL | null = CREDENTIAL) => httpGet(clientConfig(stack).url + rel, auth ? { auth } : {});
  const release = async (codename: string) => {
    const r = await served(`dists/${codename}/Release`);
    expect([codename, r.status]).toEqual([codename, 200]);
    return releaseHeader(r.body);
  };
  const currentGeneration = () => fs.readlinkSync(path.join(channelLayout(stack.config).webRoot, 'dists'));

  let last: UpReport;
  /**
   * `pulumi up` with `over` merged into the stack options: the new plan is built and pulumiUp
   * applies it against the state; resolves to the steps whose command ran, in order (the whole
   * report in `last`).
   */
  const up = async (over: Partial<SandboxStackOptions>): Promise<string[]> => {
    options = { ...options, ...over, extra: { ...options.extra, ...over.extra } };
    stack = sandboxStack(options, key, bundlePath);
    last = await pulumiUp(replayer, state, stack.steps, {
      channel: stack.config.channel,
      connection: `${options.ssh.username}@${options.ssh.host}:${options.ssh.port}`,
    });
    return stepsRan(last);
  };

  beforeAll(async () => {
    server = await startSandboxServer('config-republish', 'config-republish-work');
    ({ root, work, replayer } = server);
    bundlePath = await bundle('apt-repo');
    key = await generateSigningKey({ name: 'Replay preprod', email: 'apt-preprod@epiconcept.fr', type: 'ed25519' });
    options = {
      root,
      channel: 'preprod',
      ssh: server.ssh,
      httpPort: await findFreePort(),
      credentials: [CREDENTIAL],
      allowedCidrs: ['127.0.0.1/32'],
      codenames: ['bookworm', 'bullseye'],
      architectures: ['amd64'],
      extra: {},
    };
    stack = sandboxStack(options, key, bundlePath);
    state = ReplayState.load(path.join(work, 'pulumi-state.json'));
  });

  afterAll(async () => {
    await server?.stop({ stacks: stack ? [stack] : undefined, nginx });
  });

  test('first up: every step runs; a package is ingested; nginx serves bookworm and bullseye', async () => {
    expect(await up({})).toEqual([
      'host-base',
      'dirs',
      'pre-update-backup',
      'config',
      'signing-key',
      'htpasswd',
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
    expect(last.ran.filter((r) => r.changed).map((r) => r.step)).toEqual(expect.arrayContaining(['config', 'publish', 'vhost']));
    // A second `pulumi up` with no change runs nothing and copies nothing.
    expect(await up({})).toEqual([]);
    expect(last.copied).toEqual([]);

    const l = channelLayout(stack.config);
    const deb = buildDeb(work, { name: 'republish-demo', version: '1.0-1', description: 'config republish test package' });
    await replayer.uploadFile(deb, path.join(l.incomingDir, 'ci', path.basename(deb)));
    await asService(['ingest', '--settle-ms', '0']);

    nginx = await startSandboxNginx(root, [stack.config.httpPort]);
    for (const c of ['bookworm', 'bullseye']) {
      const r = await release(c);
      expect([r.get('Codename'), r.get('Architectures'), r.get('Valid-Until')]).toEqual([c, 'amd64', undefined]);
      expect((await served(`dists/${c}/main/binary-amd64/Packages`)).body).toContain('Package: republish-demo\n');
    }
    expect((await served('dists/trixie/Release')).status).toBe(404);
  });

  test('codenames: trixie added, bullseye removed — the publish step runs and the served dists follow', async () => {
    const before = currentGeneration();
    const ran = await up({ codenames: ['bookworm', 'trixie'] });
    // The config step stages the new liste_dist; the drop folders and the path unit follow the
    // codenames; the signer (which checks Codename) and the publish run because their own text
    // names the digest of the index inputs.
    expect(ran).toEqual(['dirs', 'pre-update-backup', 'config', 'signer', 'publish', 'ingest-units', 'expected-state']);
    expect(currentGeneration()).not.toBe(before);
    for (const c of ['bookworm', 'trixie']) {
      expect((await release(c)).get('Codename')).toBe(c);
      expect((await served(`dists/${c}/main/binary-amd64/Packages`)).body).toContain('Package: republish-demo\n');
    }
    expect((await served('dists/bullseye/Release')).status).toBe(404);
    expect(fs.existsSync(path.join(channelLayout(stack.config).incomingDir, 'ci/trixie'))).toBe(true);
  });

  test('architectures: arm64 added — Release lists it and binary-arm64 holds the arch-all package', async () => {
    const ran = await up({ architectures: ['amd64', 'arm64'] });
    expect(ran).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'expected-state']);
    for (const c of ['bookworm', 'trixie']) {
      expect((await release(c)).get('Architectures')).toBe('amd64 arm64');
      const packages = await served(`dists/${c}/main/binary-arm64/Packages`);
      expect([packages.status, packages.body]).toEqual([200, expect.stringContaining('Package: republish-demo\n')]);
    }
  });

  test('label: the served Release carries the new one (the signer accepted it: it restarted with the new config)', async () => {
    const ran = await up({ extra: { label: 'Epiconcept preprod (relabelled)' } });
    expect(ran).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'expected-state']);
    expect((await release('bookworm')).get('Label')).toBe('Epiconcept preprod (relabelled)');
  });

  test('validUntilDays 7: Releases carry Valid-Until = Date + 7 days, and the re-signing timer is installed', async () => {
    const ran = await up({ extra: { validUntilDays: '7' } });
    expect(ran).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'refresh-units', 'expected-state']);
    for (const c of ['bookworm', 'trixie']) {
      const r = await release(c);
      expect(parseReleaseDate(r.get('Valid-Until')!)!.getTime() - parseReleaseDate(r.get('Date')!)!.getTime()).toBe(7 * DAY);
    }
    const l = channelLayout(stack.config);
    const service = fs.readFileSync(path.join(l.systemdDir, 'apt-repo-refresh-preprod.service'), 'utf8');
    expect(fs.readFileSync(path.join(l.systemdDir, 'apt-repo-refresh-preprod.timer'), 'utf8')).toContain('OnCalendar=hourly\n');
    // The timer's command, as the unit runs it: the Releases are fresh, nothing is published.
    const exec = /^ExecStart=(.*)$/m.exec(service)![1].split(' ');
    expect(exec.slice(-2)).toEqual(['publish', '--if-expiring']);
    const before = currentGeneration();
    const out = await remote(['runuser', '-u', stack.config.serviceUser, '--', ...exec].map(shellQuote).join(' '));
    expect(out).toMatch(/^fresh: every Release is valid until /);
    expect(currentGeneration()).toBe(before);
  });

  test('an unrelated key (allowedCidrs) runs the vhost step (and the expected-state manifest) only: nothing is published', async () => {
    const before = currentGeneration();
    const ran = await up({ allowedCidrs: ['127.0.0.1/32', '127.0.0.2/32'] });
    expect(ran).toEqual(['vhost', 'expected-state']);
    expect(currentGeneration()).toBe(before);
  });

  test('validUntilDays unset: Valid-Until goes, the timer goes; the last index is signed by the stack key', async () => {
    const extra = { ...options.extra };
    delete extra.validUntilDays;
    options = { ...options, extra };
    const ran = await up({});
    expect(ran).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'refresh-units', 'expected-state']);
    const l = channelLayout(stack.config);
    expect(fs.existsSync(path.join(l.systemdDir, 'apt-repo-refresh-preprod.timer'))).toBe(false);
    const keyring = path.join(work, 'preprod.gpg');
    fs.writeFileSync(keyring, (await served(`${stack.config.keyName}-archive-keyring.gpg`)).bytes);
    for (const c of ['bookworm', 'trixie']) {
      expect((await release(c)).get('Valid-Until')).toBeUndefined();
      const inRelease = path.join(work, `${c}.InRelease`);
      fs.writeFileSync(inRelease, (await served(`dists/${c}/InRelease`)).bytes);
      execFileSync('gpgv', ['--keyring', keyring, inRelease], { stdio: 'pipe' });
    }
    expect(await up({})).toEqual([]);
  });

  test('client credentials removed: the htpasswd resource is deleted (nothing runs for it), the vhost drops basic auth', async () => {
    expect((await served('dists/bookworm/InRelease', null)).status).toBe(401);
    const before = currentGeneration();
    const ran = await up({ credentials: [] });
    expect(ran).toEqual(['vhost', 'expected-state']);
    expect(last.resources['preprod-htpasswd']).toBe('delete');
    expect(Object.keys(JSON.parse(fs.readFileSync(state.file, 'utf8')).resources)).not.toContain('preprod-htpasswd');
    expect((await served('dists/bookworm/InRelease', null)).status).toBe(200);
    expect(currentGeneration()).toBe(before);
    expect(await up({})).toEqual([]);
  });
});
