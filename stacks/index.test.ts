/**
 * The program under pulumi.runtime.setMocks, per stack (preprod, prod, dev): which resources exist,
 * what they depend on, what is secret, and config errors. What takes many evaluations (the same
 * inputs twice, salts kept in the state, each config key reaching the publish command) is
 * index.e2e.test.ts; the harness is test/harness/stackProgram.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expectedStateSchema, type ExpectedState } from '../lambda-free-tools/src/repo/expectedState';
import { renderClientSetupScript } from '../lambda-free-tools/src/client/setupScript';
import {
  byName,
  commands,
  evaluate,
  isSecret,
  MOCK_PGP_PRIVATE,
  MOCKS,
  nameOf,
  PASSWORDS,
  redact,
  SSH_PRIVATE_KEY,
  stackConfig,
  unwrap,
  useStackFiles,
  type Registered,
} from '../test/harness/stackProgram';

const files = useStackFiles();

describe('preprod stack', () => {
  let resources: Registered[];
  let exports: Record<string, unknown>;
  beforeAll(async () => {
    ({ resources, exports } = await evaluate('preprod', stackConfig('preprod')));
  });

  it('creates the components, the generated key and one command per plan step', () => {
    const components = resources.filter((r) => r.type.startsWith('apt-repo:index:')).map((r) => `${r.type} ${r.name}`);
    expect(components).toEqual([
      'apt-repo:index:SigningKey preprod-signing-key',
      'apt-repo:index:HostBase preprod-host-base',
      'apt-repo:index:Channel preprod',
      'apt-repo:index:Backups preprod-backups',
    ]);
    const key = resources.find((r) => r.type === 'pulumi-nodejs:dynamic/apt-repo:SigningKey')!;
    expect(key.name).toBe('preprod-signing-key-generated');
    expect(key.protect).toBe(true);
    expect(key.additionalSecretOutputs).toEqual(['privateArmored']);
    expect(
      commands(resources)
        .map((r) => r.name)
        .sort(),
    ).toEqual([
      'preprod-backups-backup-units',
      'preprod-backups-expected-state',
      'preprod-config',
      'preprod-dirs',
      'preprod-host-base-host-base',
      'preprod-htpasswd',
      'preprod-indexer',
      'preprod-ingest-units',
      'preprod-metrics-units',
      'preprod-mirrors',
      'preprod-pre-update-backup',
      'preprod-publish',
      'preprod-refresh-units',
      'preprod-signer',
      'preprod-signing-key',
      'preprod-ssh-access',
      'preprod-sudoers',
      'preprod-tls',
      'preprod-vhost',
    ]);
    const copies = resources.filter((r) => r.type === 'command:remote:CopyToRemote').map((r) => r.name);
    expect(copies).toContain('preprod-indexer-copy-apt-repo.cjs');
    expect(copies).toContain('preprod-vhost-copy-site.conf');
    // Every child is parented to its component.
    for (const r of [...commands(resources), ...resources.filter((x) => x.type === 'command:remote:CopyToRemote')])
      expect(nameOf(r.parent)).toMatch(/^preprod/);
  });

  it('orders the commands by the plan and waits for the copied files', () => {
    const m = byName(resources);
    const deps = (n: string) => m.get(n)!.deps.map(nameOf).sort();
    expect(deps('preprod-host-base-host-base')).toEqual([]);
    expect(deps('preprod-dirs')).toEqual(['preprod-host-base-host-base']);
    // The publish step's text names the public key's digest (a new key must re-sign): it waits for the key.
    expect(deps('preprod-publish')).toEqual([
      'preprod-config',
      'preprod-indexer',
      'preprod-signer',
      'preprod-signing-key',
      'preprod-signing-key-generated',
    ]);
    // The signer starts after its key and the indexer; with systemd it is a socket unit (copied files).
    expect(deps('preprod-signer')).toEqual(
      expect.arrayContaining([
        'preprod-config',
        'preprod-indexer',
        'preprod-signing-key',
        'preprod-signer-copy-apt-repo-sign-preprod.socket',
      ]),
    );
    expect(deps('preprod-ssh-access')).toEqual(expect.arrayContaining(['preprod-dirs', 'preprod-ssh-access-copy-sshd.conf']));
    // Only the steps that carry the key wait for the key resource.
    expect(deps('preprod-signing-key')).toEqual(
      expect.arrayContaining(['preprod-dirs', 'preprod-pre-update-backup', 'preprod-signing-key-generated']),
    );
    // A backup comes before whatever changes what the indexes are made from (its text names their digest: it waits for the key).
    expect(deps('preprod-pre-update-backup')).toEqual(['preprod-dirs', 'preprod-signing-key-generated']);
    expect(deps('preprod-config')).toEqual([
      'preprod-config-copy-liste_arch',
      'preprod-config-copy-liste_dist',
      'preprod-config-copy-repo.yaml',
      'preprod-dirs',
      'preprod-pre-update-backup',
    ]);
    expect(deps('preprod-indexer')).toEqual(['preprod-dirs', 'preprod-indexer-copy-apt-repo.cjs', 'preprod-pre-update-backup']);
    // The expected state is installed last, after every other step.
    expect(deps('preprod-backups-expected-state')).toEqual(
      expect.arrayContaining([
        'preprod-backups-backup-units',
        'preprod-publish',
        'preprod-vhost',
        'preprod-backups-expected-state-copy-expected-state.json',
      ]),
    );
    expect(deps('preprod-vhost')).toEqual(
      expect.arrayContaining(['preprod-htpasswd', 'preprod-publish', 'preprod-signing-key', 'preprod-tls', 'preprod-vhost-copy-site.conf']),
    );
    expect(deps('preprod-indexer-copy-apt-repo.cjs')).toEqual(['preprod-dirs', 'preprod-pre-update-backup']);
    expect(deps('preprod-backups-backup-units')).toEqual(expect.arrayContaining(['preprod-indexer']));
    // The bundle is copied from its file, and a new bundle replaces the indexer command.
    const copy = m.get('preprod-indexer-copy-apt-repo.cjs')!.raw.source as Record<string, unknown>;
    expect(copy.path).toBe(files.bundle);
    expect(unwrap(m.get('preprod-indexer')!.raw.triggers)).toHaveLength(1);
  });

  it('keeps connection, stdin and secret outputs secret, and no secret anywhere else', () => {
    const remote = resources.filter((r) => r.type.startsWith('command:remote:'));
    for (const r of remote) {
      expect([r.name, isSecret(r.raw.connection)]).toEqual([r.name, true]);
      const conn = unwrap(r.raw.connection) as Record<string, unknown>;
      expect(conn.hostKey).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q');
      expect(conn.privateKey).toBe(SSH_PRIVATE_KEY);
    }
    const withStdin = commands(resources).filter((r) => r.raw.stdin !== undefined);
    expect(withStdin.map((r) => r.name).sort()).toEqual(['preprod-htpasswd', 'preprod-signing-key', 'preprod-tls']);
    for (const r of withStdin) {
      expect(isSecret(r.raw.stdin)).toBe(true);
      expect(r.additionalSecretOutputs).toEqual(expect.arrayContaining(['stdout', 'stderr']));
    }
    const htpasswd = Buffer.from(String(unwrap(byName(resources).get('preprod-htpasswd')!.raw.stdin)).trim(), 'base64').toString();
    const hashes = htpasswd
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]);
    expect(hashes).toHaveLength(2);
    const secrets = [
      SSH_PRIVATE_KEY,
      'ssh-private-material',
      MOCK_PGP_PRIVATE,
      'mock-generated-private-material',
      ...PASSWORDS,
      ...hashes,
      files.tlsKeyText.split('\n')[1],
    ];
    for (const r of resources) {
      const visible = JSON.stringify(redact(r.raw));
      for (const s of secrets) expect([r.name, visible.includes(s)]).toEqual([r.name, false]);
    }
    // The command texts themselves (create/update/delete), checked explicitly.
    for (const r of commands(resources)) {
      expect(r.raw.delete).toBeUndefined();
      expect(r.raw.update).toBeUndefined();
      const text = String(unwrap(r.raw.create));
      expect(text.startsWith("bash -c '")).toBe(true);
      for (const s of secrets) expect(text.includes(s)).toBe(false);
    }
  });

  it('never sends previous outputs as SSH env requests, and keeps secret steps out of the update log', () => {
    const cmds = commands(resources);
    expect(cmds.length).toBeGreaterThan(10);
    for (const r of cmds) expect([r.name, r.raw.addPreviousOutputInEnv]).toEqual([r.name, false]);
    const silent = cmds.filter((r) => r.raw.logging !== undefined);
    expect(silent.map((r) => r.name).sort()).toEqual(['preprod-htpasswd', 'preprod-signing-key', 'preprod-tls']);
    for (const r of silent) expect([r.name, r.raw.logging]).toEqual([r.name, 'none']);
    // Every step that reads a secret on stdin is silent.
    for (const r of cmds.filter((x) => x.raw.stdin !== undefined)) expect([r.name, r.raw.logging]).toEqual([r.name, 'none']);
  });

  it('exports the public key armored and binary, with the file names clients use', () => {
    const armored = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmock-public\n-----END PGP PUBLIC KEY BLOCK-----\n';
    expect(exports.publicKeyArmored).toBe(armored);
    expect(exports.publicKey).toBe(armored);
    expect(Buffer.from(String(exports.publicKeyBinary), 'base64').toString()).toBe('mock-binary-public');
    expect(exports.publicKeyFiles).toEqual({
      armored: 'epiconcept-preprod-archive-keyring.asc',
      binary: 'epiconcept-preprod-archive-keyring.gpg',
      armoredUrl: 'https://apt-preprod.epiconcept.fr/epiconcept-preprod-archive-keyring.asc',
      binaryUrl: 'https://apt-preprod.epiconcept.fr/epiconcept-preprod-archive-keyring.gpg',
    });
    // The binary file clients download is the one Signed-By names.
    expect((exports.clientFiles as { keyringPath: string }).keyringPath).toBe(
      `/usr/share/keyrings/${(exports.publicKeyFiles as { binary: string }).binary}`,
    );
  });

  it('exports the channel URL, the public key, client files, auth.conf (secret) and backup paths', () => {
    expect(exports.url).toBe('https://apt-preprod.epiconcept.fr/');
    expect(String(exports.publicKey)).toContain('mock-public');
    expect((exports.clientFiles as { sourcesList: Record<string, string> }).sourcesList.bookworm).toBe(
      'deb [signed-by=/usr/share/keyrings/epiconcept-preprod-archive-keyring.gpg] https://apt-preprod.epiconcept.fr/ bookworm main\n',
    );
    expect(exports.authConf).toEqual({
      web1: `machine apt-preprod.epiconcept.fr login web1 password ${PASSWORDS[0]}\n`,
      web2: `machine apt-preprod.epiconcept.fr login web2 password ${PASSWORDS[1]}\n`,
    });
    expect(exports.backupPaths).toEqual([
      '/etc/epiconcept/apt_repo/preprod',
      '/srv/apt/preprod',
      '/var/lib/apt-repo/preprod',
      '/srv/apt/incoming',
    ]);
  });

  it('exports the client setup script, rendered by the same function as apt-repo client-setup', () => {
    expect(exports.clientSetupScript).toBe(
      renderClientSetupScript({
        channel: 'preprod',
        url: 'https://apt-preprod.epiconcept.fr/',
        keyName: 'epiconcept-preprod',
        codenames: JSON.parse(stackConfig('preprod')['apt-repo:codenames']) as string[],
        component: 'main',
        publicKeyArmored: String(exports.publicKeyArmored),
      }),
    );
    const script = String(exports.clientSetupScript);
    expect(script).toContain("URL='https://apt-preprod.epiconcept.fr/'\n");
    // No credential inside: the script takes them from the environment of its run.
    for (const secret of PASSWORDS) expect(script).not.toContain(secret);
  });

  it('exports the expected state apt-ops doctor takes: what the expected-state step installs, no secret', () => {
    const state = exports.expectedState as ExpectedState;
    expect(expectedStateSchema().parse(state)).toEqual(state);
    const staged = commands(resources).find((r) => r.name === 'preprod-backups-expected-state')!;
    expect(staged).toBeDefined();
    const copy = byName(resources).get('preprod-backups-expected-state-copy-expected-state.json')!;
    expect(JSON.parse(String(unwrap((copy.raw.source as { text?: unknown }).text)))).toEqual(state);
    const paths = state.entries.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/etc/nginx/sites-available/apt-preprod.conf',
        '/opt/apt-repo/preprod/apt-repo.cjs',
        '/etc/epiconcept/apt_repo/preprod/signing-key.asc',
      ]),
    );
    const key = state.entries.find((e) => e.path.endsWith('/signing-key.asc'));
    expect(key).toMatchObject({ type: 'file', mode: '0600', owner: 'aptsign-preprod', secret: true });
    expect(key).not.toHaveProperty('sha256');
    const text = JSON.stringify(state);
    for (const secret of [...PASSWORDS, MOCK_PGP_PRIVATE, 'mock-generated-private-material']) expect(text).not.toContain(secret);
  });

  it('marks the auth.conf output secret, and the client setup script not', async () => {
    let pulumi: typeof import('@pulumi/pulumi') | undefined;
    let program:
      | {
          authConf: import('@pulumi/pulumi').Output<unknown>;
          url: import('@pulumi/pulumi').Output<unknown>;
          clientSetupScript: import('@pulumi/pulumi').Output<unknown>;
        }
      | undefined;
    jest.isolateModules(() => {
      pulumi = require('@pulumi/pulumi');
      jest.doMock('@pulumi/pulumi/runtime/closure/serializeClosure', () => ({
        serializeFunction: async () => ({ text: 'exports.handler = () => ({});', exportName: 'handler', containsSecrets: false }),
      }));
      void pulumi!.runtime.setMocks(MOCKS, 'apt-repo', 'preprod', false);
      pulumi!.runtime.setAllConfig(stackConfig('preprod', { signingKey: undefined }), [
        'apt-repo:sshPrivateKey',
        'apt-repo:clientCredentials',
      ]);
      program = require('./index');
    });
    expect(await pulumi!.isSecret(program!.authConf)).toBe(true);
    expect(await pulumi!.isSecret(program!.url)).toBe(false);
    // The setup script holds no secret and is a plain output.
    expect(await pulumi!.isSecret(program!.clientSetupScript)).toBe(false);
  });
});

describe('apt-repo:metricsDir', () => {
  const DIR = '/var/lib/prometheus/node-exporter';
  /** The text of a copied file (a StringAsset's). */
  const copied = (rs: Registered[], name: string) => String(unwrap((byName(rs).get(name)!.raw.source as { text?: unknown }).text));
  const create = (rs: Registered[], name: string) => String(unwrap(byName(rs).get(name)!.raw.create));
  let absent: Registered[];
  let present: Registered[];
  beforeAll(async () => {
    absent = (await evaluate('preprod', stackConfig('preprod'))).resources;
    present = (await evaluate('preprod', stackConfig('preprod', { metricsDir: DIR }))).resources;
  });

  it('absent: no metrics units, no metricsDir in repo.yaml, no metrics folder; the step only removes what a former setting left', () => {
    const names = absent.map((r) => r.name);
    expect(names.filter((n) => n.includes('metrics'))).toEqual(['preprod-metrics-units']);
    expect(copied(absent, 'preprod-config-copy-repo.yaml')).not.toContain('metricsDir');
    expect(create(absent, 'preprod-dirs')).not.toContain('prom');
    expect(create(absent, 'preprod-metrics-units')).toContain('metricsDir is not set');
    for (const r of absent.filter((x) => x.type === 'command:remote:CopyToRemote'))
      expect(copied(absent, r.name)).not.toContain('metrics --to');
  });

  it('present: repo.yaml names it, the dirs step makes the shared folder, the timer is copied and enabled after the publish', () => {
    expect(copied(present, 'preprod-config-copy-repo.yaml')).toContain(`\nmetricsDir: ${DIR}\n`);
    expect(create(present, 'preprod-dirs')).toContain(`ensure_dir '\\''${DIR}'\\'' 1775 root '\\''aptrepo'\\''`);
    const timer = copied(present, 'preprod-metrics-units-copy-apt-repo-metrics-preprod.timer');
    expect(timer).toContain('OnCalendar=*:0/5\nPersistent=yes\n');
    expect(copied(present, 'preprod-metrics-units-copy-apt-repo-metrics-preprod.service')).toContain(
      `--channel preprod metrics --to ${DIR}\n`,
    );
    expect(create(present, 'preprod-metrics-units')).toContain("systemctl enable '\\''apt-repo-metrics-preprod.timer'\\''");
    // The writing units may write the folder now: their copies changed.
    expect(copied(present, 'preprod-ingest-units-copy-apt-repo-ingest-preprod.service')).toContain(` -${DIR}\n`);
    expect(copied(present, 'preprod-backups-backup-units-copy-apt-repo-backup-preprod.service')).toContain(` -${DIR}\n`);
    const deps = byName(present).get('preprod-metrics-units')!.deps.map(nameOf).sort();
    expect(deps).toEqual([
      'preprod-indexer',
      'preprod-metrics-units-copy-apt-repo-metrics-preprod.service',
      'preprod-metrics-units-copy-apt-repo-metrics-preprod.timer',
      'preprod-publish',
    ]);
    // Not an index input: the publish command is the same with or without it.
    expect(create(present, 'preprod-publish')).toBe(create(absent, 'preprod-publish'));
    // The expected state lists the folder.
    expect(copied(present, 'preprod-backups-expected-state-copy-expected-state.json')).toContain(`"path": "${DIR}"`);
  });

  it('gives identical inputs on a second evaluation', async () => {
    const again = (await evaluate('preprod', stackConfig('preprod', { metricsDir: DIR }))).resources;
    const view = (rs: Registered[]) => rs.map((r) => [r.type, r.name, r.deps, redact(r.raw)]);
    expect(view(again)).toEqual(view(present));
  });

  it('a relative path stops the program, naming the key', async () => {
    const err = await evaluate('preprod', stackConfig('preprod', { metricsDir: 'var/lib/prometheus/node-exporter' })).then(
      () => undefined,
      (e: Error) => e,
    );
    expect([err?.name, (err as Error & { key?: string }).key]).toEqual(['ConfigError', 'apt-repo:metricsDir']);
    expect(err?.message).toMatch(/expected an absolute path/);
  });
});

describe('apt-repo:mirrors', () => {
  const KEY = 'alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub';
  const PEM = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmock\n-----END PUBLIC KEY-----\n';
  const copied = (rs: Registered[], name: string) => String(unwrap((byName(rs).get(name)!.raw.source as { text?: unknown }).text));
  const create = (rs: Registered[], name: string) => String(unwrap(byName(rs).get(name)!.raw.create));
  let keyDir: string;
  const value = (over: Record<string, unknown> = {}) =>
    JSON.stringify({
      mirrors: {
        alpine: {
          url: 'https://dl-cdn.alpinelinux.org/alpine/',
          paths: ['v3.15/main/x86_64', 'v3.15/releases/x86_64'],
          versionFrom: 'v3.15/releases/x86_64/latest-releases.yaml',
          keys: [path.join(keyDir, KEY)],
        },
      },
      ...over,
    });
  let absent: Registered[];
  let present: { resources: Registered[]; exports: Record<string, unknown> };
  beforeAll(async () => {
    keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-mirror-keys-'));
    fs.writeFileSync(path.join(keyDir, KEY), PEM);
    absent = (await evaluate('preprod', stackConfig('preprod'))).resources;
    present = await evaluate('preprod', stackConfig('preprod', { mirrors: value({ backup: true }) }));
  });
  afterAll(() => fs.rmSync(keyDir, { recursive: true, force: true }));

  it('present: the key, mirrors.yaml, units and vhost are copied, then installed by one command after the indexer and the vhost', () => {
    const rs = present.resources;
    expect(copied(rs, `preprod-mirrors-copy-key.alpine.${KEY}`)).toBe(PEM);
    expect(copied(rs, 'preprod-mirrors-copy-mirrors.yaml')).toContain(
      `keys:\n      - /etc/epiconcept/apt_repo/mirror-keys/alpine/${KEY}\n`,
    );
    expect(copied(rs, 'preprod-mirrors-copy-apt-repo-mirror-alpine.service')).toContain(' mirror sync alpine\n');
    expect(copied(rs, 'preprod-mirrors-copy-site.conf')).toContain('server_name mirror.epiconcept.fr;');
    const deps = byName(rs).get('preprod-mirrors')!.deps.map(nameOf);
    expect(deps).toEqual(expect.arrayContaining(['preprod-indexer', 'preprod-vhost', `preprod-mirrors-copy-key.alpine.${KEY}`]));
    expect(create(rs, 'preprod-mirrors')).toContain('apt-repo step');
    // Not an index input: the publish command is the same with or without mirrors.
    expect(create(rs, 'preprod-publish')).toBe(create(absent, 'preprod-publish'));
  });

  it('exports the mirrors URL (plain HTTP) and, with backup, mirrorRoot among the backup paths; none of it without mirrors', async () => {
    expect(present.exports.mirrorsUrl).toBe('http://mirror.epiconcept.fr/');
    expect(present.exports.backupPaths).toContain('/srv/mirrors');
    const none = await evaluate('preprod', stackConfig('preprod'));
    expect(none.exports.mirrorsUrl).toBeUndefined();
    expect(none.exports.backupPaths).not.toContain('/srv/mirrors');
    expect(create(absent, 'preprod-mirrors')).toContain('No mirrors in this stack');
  });

  it('gives identical inputs on a second evaluation', async () => {
    const again = (await evaluate('preprod', stackConfig('preprod', { mirrors: value({ backup: true }) }))).resources;
    const view = (rs: Registered[]) => rs.map((r) => [r.type, r.name, r.deps, redact(r.raw)]);
    expect(view(again)).toEqual(view(present.resources));
  });

  it('a key file that cannot be read stops the program, naming the key', async () => {
    const err = await evaluate(
      'preprod',
      stackConfig('preprod', { mirrors: value().replace(path.join(keyDir, KEY), path.join(keyDir, 'missing.rsa.pub')) }),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect([err?.name, (err as Error & { key?: string }).key]).toEqual(['ConfigError', 'apt-repo:mirrors.mirrors.alpine.keys.0']);
    expect(err?.message).toMatch(/cannot read .*missing\.rsa\.pub: ENOENT/);
  });
});

describe('prod stack', () => {
  it('has no ingest units, uses the signing key from config, and pins the upstream', async () => {
    const keyDir = fs.mkdtempSync(path.join(files.tmp, 'key-'));
    // A real key so that the public parts can be derived from it.
    const { generateSigningKey } = await import('../lambda-free-tools/src/sign/keys');
    const key = await generateSigningKey({ name: 'test prod', email: 'apt-prod@example.org', type: 'ed25519' });
    fs.rmSync(keyDir, { recursive: true });
    // The recorded fingerprint (apt-repo:signingKeyFingerprint, any case, spaces allowed) lets this key through.
    const recorded = key.fingerprint
      .toLowerCase()
      .replace(/(.{4})/g, '$1 ')
      .trim();
    const { resources, exports } = await evaluate(
      'prod',
      stackConfig('prod', { signingKey: key.privateArmored, signingKeyFingerprint: recorded }),
    );
    expect(resources.some((r) => r.type === 'pulumi-nodejs:dynamic/apt-repo:SigningKey')).toBe(false);
    expect(commands(resources).map((r) => r.name)).not.toContain('prod-ingest-units');
    expect(exports.keyFingerprint).toBe(key.fingerprint);
    expect(exports.publicKey).toBe(key.publicArmored);
    expect(exports.publicKeyArmored).toBe(key.publicArmored);
    expect(Buffer.from(String(exports.publicKeyBinary), 'base64').equals(Buffer.from(key.publicBinary))).toBe(true);
    expect((exports.publicKeyFiles as { binary: string }).binary).toBe('epiconcept-prod-archive-keyring.gpg');
    const stdin = unwrap(byName(resources).get('prod-signing-key')!.raw.stdin);
    expect(Buffer.from(String(stdin).trim(), 'base64').toString()).toBe(key.privateArmored);
    for (const r of resources) expect(JSON.stringify(redact(r.raw)).includes(key.privateArmored.split('\n')[3])).toBe(false);
    expect(exports.backupPaths).toEqual(['/etc/epiconcept/apt_repo/prod', '/srv/apt/prod', '/var/lib/apt-repo/prod']);
  });
});

describe('dev stack', () => {
  // Another local user may have made a shared, predictable /tmp path first: the program must not
  // write through their link, nor build from a context they own.
  const shared = path.join(os.tmpdir(), 'apt-repo-dev-dev');
  let victim = '';
  let planted = false;
  afterAll(() => {
    if (planted) fs.rmSync(shared, { recursive: true, force: true });
    if (victim) fs.rmSync(victim, { recursive: true, force: true });
  });

  it('builds a Debian 12 container with sshd and runs the same plan against it', async () => {
    victim = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-victim-'));
    fs.writeFileSync(path.join(victim, 'file'), 'mine\n');
    planted = !fs.existsSync(shared);
    if (planted) {
      fs.mkdirSync(shared, { mode: 0o777 });
      fs.symlinkSync(path.join(victim, 'file'), path.join(shared, 'Dockerfile'));
    }
    const { resources } = await evaluate(
      'dev',
      stackConfig('dev', {
        sshHost: undefined,
        sshHostKey: undefined,
        tls: JSON.stringify({ mode: 'none' }),
        allowPlainHttp: 'true',
        allowedCidrs: JSON.stringify(['0.0.0.0/0', '::/0']),
        devContainer: JSON.stringify({ authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevKey dev@laptop', sshPort: 2200 }),
      }),
    );
    const m = byName(resources);
    const image = m.get('dev-image')!;
    expect(image.type).toBe('docker:index/image:Image');
    const dockerfile = fs.readFileSync(String((unwrap(image.raw.build) as { dockerfile: string }).dockerfile), 'utf8');
    expect(dockerfile).toContain('FROM debian:bookworm');
    expect(dockerfile).toContain('openssh-server');
    expect(dockerfile).toContain("printf '%s\\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevKey dev@laptop' > /root/.ssh/authorized_keys");
    const context = String((unwrap(image.raw.build) as { context: string }).context);
    expect(fs.statSync(context).mode & 0o077).toBe(0);
    expect(fs.readFileSync(path.join(victim, 'file'), 'utf8')).toBe('mine\n');
    fs.rmSync(path.dirname(String((unwrap(image.raw.build) as { dockerfile: string }).dockerfile)), { recursive: true, force: true });
    const container = m.get('dev-container')!;
    expect(unwrap(container.raw.ports)).toEqual(
      expect.arrayContaining([expect.objectContaining({ internal: 22, external: 2200, ip: '127.0.0.1' })]),
    );
    expect(m.get('dev-host-base-host-base')!.deps.map(nameOf).sort()).toEqual(['dev-container', 'dev-host-key']);
    const conn = unwrap(m.get('dev-dirs')!.raw.connection) as Record<string, unknown>;
    expect(conn).toMatchObject({ host: '127.0.0.1', port: 2200, user: 'root' });
    // The container runs systemd (the same image CI tests): units are enabled.
    expect(String(unwrap(m.get('dev-backups-backup-units')!.raw.create))).toContain('systemctl');
  });
});

describe('config errors stop the program with the key name', () => {
  it.each<[string, Record<string, string | undefined>, RegExp]>([
    ['apt-repo:allowedCidrs.0', { allowedCidrs: '["10.0.0.1/8"]' }, /bits set/],
    ['apt-repo:architectures.0', { architectures: '["x86"]' }, /unknown architecture 'x86'/],
    ['apt-repo:codenames', { codenames: '[]' }, /at least one codename/],
    ['apt-repo:allowPlainHttp', { tls: '{"mode":"none"}' }, /in clear over plain HTTP/],
    ['apt-repo:sshHost', { sshHost: undefined }, /is required/],
    [
      'apt-repo:tls.certFile',
      { tls: JSON.stringify({ mode: 'files', certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' }) },
      /cannot read \/nonexistent\/cert.pem/,
    ],
  ])('%s', async (key, over, reason) => {
    const err = await evaluate('preprod', stackConfig('preprod', over)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe('ConfigError');
    expect((err as Error & { key?: string }).key).toBe(key);
    expect(err?.message).toMatch(reason);
    for (const p of PASSWORDS) expect(err?.message).not.toContain(p);
  });
});
