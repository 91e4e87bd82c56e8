/**
 * buildPlan as data: steps, dependencies, scripts and files per setting, secrets only on stdin,
 * and which steps a config change runs again. The scripts run for real in plan.e2e.test.ts.
 */
import { renderHtpasswd } from './htpasswd';
import { parse as parseYaml } from 'yaml';
import { stepsToRun } from '../test/harness/pulumiRule';
import { channelLayout } from './layout';
import { renderRepoYaml } from './repoFiles';
import { buildPlan, indexInputs, indexInputsDigest, NON_INDEX_REPO_KEYS, withoutSecrets, type PlanMaterial } from './plan';
import { backupPaths } from './layout';
import { config, material, PASSWORD, SIGNING_KEY, stepsByName as byName } from '../test/harness/planFixtures';
import type { RawConfig } from '../lambda-free-tools/src/settings/stackConfig';

describe('buildPlan: structure', () => {
  it('lists the steps of an ingesting channel with their dependencies', () => {
    const steps = buildPlan(config(), material());
    expect(steps.map((s) => [s.name, s.dependsOn])).toEqual([
      ['host-base', []],
      ['dirs', ['host-base']],
      ['pre-update-backup', ['dirs']],
      ['config', ['dirs', 'pre-update-backup']],
      ['signing-key', ['dirs', 'pre-update-backup']],
      ['htpasswd', ['dirs']],
      ['tls', ['dirs']],
      ['indexer', ['dirs', 'pre-update-backup']],
      ['signer', ['config', 'signing-key', 'indexer']],
      ['publish', ['config', 'signing-key', 'indexer', 'signer']],
      ['vhost', ['signing-key', 'publish', 'htpasswd', 'tls']],
      ['ssh-access', ['dirs']],
      ['sudoers', ['dirs']],
      ['ingest-units', ['indexer']],
      ['refresh-units', ['indexer', 'signer']],
      ['metrics-units', ['indexer', 'publish']],
      ['mirrors', ['indexer', 'vhost']],
      ['backup-units', ['indexer']],
      [
        'expected-state',
        [
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
        ],
      ],
    ]);
    // Every dependency names an earlier step.
    steps.forEach((s, i) => s.dependsOn.forEach((d) => expect(steps.slice(0, i).map((x) => x.name)).toContain(d)));
    expect(byName(steps).indexer.triggers).toEqual(['a'.repeat(64)]);
    // A new bundle restarts a running sign-server (hosts without systemd).
    expect(byName(steps).signer.triggers).toEqual(['a'.repeat(64)]);
  });

  it('gives the private key to the signer alone, and the socket folder to the indexer group only', () => {
    const steps = byName(buildPlan(config(), material()));
    expect(steps['signing-key'].script).toContain(
      "install_file \"$APT_REPO_TMP/signing-key.asc\" '\\''/etc/epiconcept/apt_repo/preprod/signing-key.asc'\\'' 0600 '\\''aptsign-preprod'\\'' '\\''aptsign-preprod'\\''",
    );
    const dirs = steps.dirs.script;
    expect(dirs).toContain("ensure_dir '\\''/etc/epiconcept/apt_repo/preprod'\\'' 0755 '\\''root'\\'' '\\''root'\\''");
    expect(dirs).toContain("ensure_dir '\\''/run/apt-repo/sign-preprod'\\'' 0750 '\\''aptsign-preprod'\\'' '\\''aptrepo-preprod'\\''");
    expect(dirs).toContain("ensure_dir '\\''/srv/apt/preprod/pool'\\'' 2755 '\\''aptrepo-preprod'\\'' '\\''aptrepo'\\''");
    expect(dirs).toContain("ensure_dir '\\''/srv/apt/incoming'\\'' 0755 '\\''root'\\'' '\\''root'\\''");
    expect(dirs).toContain("ensure_dir '\\''/srv/apt/incoming/rejected'\\'' 0755 '\\''aptrepo-preprod'\\'' '\\''aptrepo-preprod'\\''");
    expect(dirs).toContain("ensure_dir '\\''/srv/apt/incoming/ci/bookworm'\\'' 3775 '\\''aptrepo-preprod'\\'' '\\''aptupload'\\''");
    // prod never touches the drop zones.
    const prod = byName(buildPlan(config({ upstream: 'preprod' }, 'prod'), material()));
    expect(prod.dirs.script).not.toContain('/srv/apt/incoming');
  });

  it('runs the signer as a socket unit with systemd, as sign-server without', () => {
    const sys = byName(buildPlan(config(), material())).signer;
    expect(sys.files.map((f) => f.remotePath.split('/').pop())).toEqual([
      'signer.tmpfiles.conf',
      'signer.apt-repo-sign-preprod.socket',
      'signer.apt-repo-sign-preprod@.service',
    ]);
    expect(sys.script).toContain("systemctl enable '\\''apt-repo-sign-preprod.socket'\\''");
    const none = byName(buildPlan(config({ root: '/tmp/sb' }), material())).signer;
    expect(none.files).toEqual([]);
    expect(none.script).toContain(
      "setpriv --reuid='\\''aptsign-preprod'\\'' --regid='\\''aptsign-preprod'\\'' --init-groups --inh-caps=-all",
    );
    expect(none.script).toContain("'\\''sign-server'\\'' '\\''--socket'\\'' '\\''/tmp/sb/run/apt-repo/sign-preprod/sign.sock'\\''");
  });

  it('provisions SSH access: key files with our options, the sshd drop-in checked before it is installed', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q ci@build';
    const cfg = config({
      nodePath: '/usr/bin/node',
      uploaders: JSON.stringify([{ name: 'ci-upload', authorizedKeys: [key] }]),
      operators: JSON.stringify([{ name: 'alice', authorizedKeys: [key] }]),
    });
    const steps = byName(buildPlan(cfg, material()));
    const files = Object.fromEntries(steps['ssh-access'].files.map((f) => [f.remotePath.split('/').pop(), f.content]));
    expect(files['ssh-access.keys-ci-upload']).toMatch(new RegExp(`\\nrestrict ${key.replace(/[+.]/g, '\\$&')}\\n$`));
    expect(files['ssh-access.keys-alice']).toContain(`\nrestrict,pty ${key}\n`);
    expect(files['ssh-access.sshd.conf']).toMatch(
      /^Match Group aptupload\n( {4}.*\n)* {4}ChrootDirectory \/srv\/apt\/incoming\n {4}ForceCommand internal-sftp -u 0022\n/m,
    );
    const script = steps['ssh-access'].script;
    expect(script.indexOf('sshd -t -f')).toBeLessThan(script.indexOf("/etc/ssh/sshd_config.d/apt-repo-preprod.conf'\\'' 0644 root root"));
    expect(script).toContain('systemctl try-reload-or-restart ssh.service');
    const sudoers = steps.sudoers;
    const rule = sudoers.files[0].content;
    expect(rule).toContain('alice ALL = (aptrepo-preprod) NOPASSWD: APT_REPO_PREPROD\n');
    const base = '/usr/bin/node /opt/apt-repo/preprod/apt-repo.cjs --root / --channel preprod';
    expect(rule).toContain(`    ${base} --json promote *, \\\n`);
    expect(rule).toContain(`    ${base} pending, \\\n`);
    // Only the daily subcommands: never one that reads files the operator chose, nor a bare '*'.
    for (const forbidden of ['import', 'restore', 'backup', 'keygen', 'init', 'sign'])
      expect(rule).not.toMatch(new RegExp(` ${forbidden}( |,|$)`, 'm'));
    expect(rule).not.toMatch(/--channel preprod \*/);
    expect(sudoers.script.indexOf('visudo -cqf')).toBeLessThan(sudoers.script.indexOf('install_file "$APT_REPO_TMP/sudoers"'));
    // No operators: an earlier rule is removed.
    expect(byName(buildPlan(config(), material())).sudoers.script).toContain("rm -f '\\''/etc/sudoers.d/apt-repo-preprod'\\''");
  });

  it('leaves out ingest for a downstream channel, htpasswd without credentials, tls without TLS', () => {
    const prod = buildPlan(config({ upstream: 'preprod', clientCredentials: '[]' }, 'prod'), material());
    expect(prod.map((s) => s.name)).not.toContain('ingest-units');
    expect(prod.map((s) => s.name)).not.toContain('htpasswd');
    const plain = buildPlan(config({ tls: JSON.stringify({ mode: 'none' }), allowPlainHttp: 'true' }), material());
    expect(plain.map((s) => s.name)).not.toContain('tls');
    expect(byName(plain).vhost.dependsOn).toEqual(['signing-key', 'publish', 'htpasswd']);
  });

  it('runs certbot only while no certificate exists', () => {
    const steps = buildPlan(
      config({ tls: JSON.stringify({ mode: 'certbot', email: 'ops@example.org' }) }),
      material({ tlsCert: undefined, tlsKey: undefined }),
    );
    const tls = byName(steps).tls;
    expect(tls.script).toContain("if [ ! -s '\\''/etc/letsencrypt/live/apt-preprod.example.org/fullchain.pem'\\'' ]; then");
    expect(tls.script).toContain('certbot certonly --webroot');
    expect(tls.secretStdin).toBeUndefined();
  });

  it('serves only the ACME challenge, never the repository, while certbot has no certificate', () => {
    const steps = buildPlan(
      config({ tls: JSON.stringify({ mode: 'certbot', email: 'ops@example.org' }) }),
      material({ tlsCert: undefined, tlsKey: undefined }),
    );
    const bootstrap = byName(steps).tls.files.find((f) => f.remotePath.endsWith('tls.bootstrap.conf'))!;
    expect(bootstrap.content).toMatch(/location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+root \/var\/www\/acme;/);
    expect(bootstrap.content).toMatch(/location \/ \{\n\s+deny all;/);
    for (const served of ['root /srv/apt/preprod', 'location /dists/', 'location /pool/', 'auth_basic_user_file'])
      expect([served, bootstrap.content.includes(served)]).toEqual([served, false]);
  });

  it('changes the command text of a step when a file it installs changes, so the step runs again', () => {
    const base = byName(buildPlan(config(), material()));
    const narrower = byName(buildPlan(config({ allowedCidrs: JSON.stringify(['127.0.0.1']) }), material()));
    expect(narrower.vhost.script).not.toBe(base.vhost.script);
    const renewed = byName(buildPlan(config(), material({ tlsCert: '-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n' })));
    expect(renewed.tls.script).not.toBe(base.tls.script);
    const fewer = byName(buildPlan(config({ codenames: JSON.stringify(['bookworm']) }), material()));
    expect(fewer.config.script).not.toBe(base.config.script);
    // Steps whose files did not change keep their text (a second `pulumi up` stays a no-op).
    expect(narrower['backup-units'].script).toBe(base['backup-units'].script);
  });

  it('refuses tls files without their content', () => {
    expect(() => buildPlan(config(), material({ tlsKey: undefined }))).toThrow(/certificate or key content is missing/);
  });

  it('enables units and reloads nginx only with services: systemd', () => {
    const sys = byName(buildPlan(config(), material()));
    expect(sys['backup-units'].script).toContain('systemctl enable');
    expect(sys.vhost.script).toContain('systemctl reload-or-restart nginx');
    const none = byName(buildPlan(config({ root: '/tmp/sandbox' }), material()));
    expect(none['backup-units'].script).not.toContain('systemctl');
    expect(none.vhost.script).not.toContain('systemctl');
  });

  it('wraps scripts in sudo for a non-root SSH user', () => {
    const steps = buildPlan(config({ sshUser: 'deploy' }), material());
    for (const s of steps) expect(s.script.startsWith("sudo -n bash -c '")).toBe(true);
  });
});

describe('buildPlan: secrets and determinism', () => {
  it('never puts a secret in a script or a file; secrets only travel on stdin', () => {
    const m = material();
    const steps = buildPlan(config(), m);
    const blind = buildPlan(config(), withoutSecrets(m));
    expect(blind.map((s) => [s.name, s.script, s.files])).toEqual(steps.map((s) => [s.name, s.script, s.files]));
    const hash = m.htpasswd.split(':')[1].trim();
    const visible = JSON.stringify(steps.map((s) => [s.script, s.files, s.triggers]));
    for (const secret of [SIGNING_KEY, 'fake-private-key-material', PASSWORD, hash, 'fake-tls-key']) expect(visible).not.toContain(secret);
    for (const s of steps) for (const f of s.files) expect(f.secret).toBe(false);
    const stdin = Object.fromEntries(steps.filter((s) => s.secretStdin !== undefined).map((s) => [s.name, s.secretStdin]));
    expect(Object.keys(stdin).sort()).toEqual(['htpasswd', 'signing-key', 'tls']);
    expect(Buffer.from(stdin['signing-key']!.trim(), 'base64').toString()).toBe(SIGNING_KEY);
    expect(Buffer.from(stdin.htpasswd!.trim(), 'base64').toString()).toBe(m.htpasswd);
  });

  it('gives the same plan for the same inputs', () => {
    expect(buildPlan(config(), material())).toEqual(buildPlan(config(), material()));
  });

  it('keeps every path under a sandbox root', () => {
    const root = '/tmp/sandbox-root';
    const steps = buildPlan(config({ root }), material());
    for (const s of steps) {
      for (const f of s.files) expect(f.remotePath.startsWith(root + '/')).toBe(true);
      const quoted = [...s.script.matchAll(/'\\''(\/[^']*)'\\''/g)].map((m) => m[1]);
      expect(quoted.length).toBeGreaterThan(0);
      // sudo reads /etc/sudoers.d only: the sandbox's rule has a name of its own there.
      for (const p of quoted)
        if (p !== '/usr/sbin/nologin' && !/^\/etc\/sudoers\.d\/apt-repo-preprod-[0-9a-f]{8}$/.test(p))
          expect([s.name, p, p === root || p.startsWith(root + '/')]).toEqual([s.name, p, true]);
    }
    expect(backupPaths(config({ root }))).toEqual([
      `${root}/etc/epiconcept/apt_repo/preprod`,
      `${root}/srv/apt/preprod`,
      `${root}/var/lib/apt-repo/preprod`,
      `${root}/srv/apt/incoming`,
    ]);
  });
});

describe('buildPlan: a config change reaches the index (Pulumi runs a command again only when its own inputs change)', () => {
  const base = () => buildPlan(config(), material());
  /** The steps a `pulumi up` runs after `base` was applied, when the config gets `over` (or the material `m`). */
  const rerun = (over: RawConfig, m: Partial<PlanMaterial> = {}) =>
    stepsToRun(base(), buildPlan(config(over), material(m))).map((s) => s.name);

  it.each<[string, RawConfig]>([
    ['a codename added', { codenames: JSON.stringify(['bookworm', 'bullseye', 'trixie']) }],
    ['a codename removed', { codenames: JSON.stringify(['bookworm']) }],
    ['the codenames reordered', { codenames: JSON.stringify(['bullseye', 'bookworm']) }],
    ['an architecture added', { architectures: JSON.stringify(['amd64', 'arm64', 'i386']) }],
    ['an architecture removed', { architectures: JSON.stringify(['amd64']) }],
    ['origin', { origin: 'Example' }],
    ['label', { label: 'Epiconcept preprod testing' }],
    ['description', { description: 'Other words' }],
    ['validUntilDays set', { validUntilDays: '7' }],
    ['routing', { routing: JSON.stringify([{ pattern: '\\+el(\\d+)$', codenames: ['bookworm'] }]) }],
  ])('%s: the publish step and the signer run again', (_what, over) => {
    const runs = rerun(over);
    expect(runs).toEqual(expect.arrayContaining(['publish', 'signer']));
    // The publish step's own text changed, not only the staged files of the config step.
    expect(buildPlan(config(over), material()).find((s) => s.name === 'publish')!.script).not.toBe(
      base().find((s) => s.name === 'publish')!.script,
    );
  });

  it('validUntilDays changed or unset, a new indexer bundle, a new public key: the publish step runs again', () => {
    const withValidity = buildPlan(config({ validUntilDays: '7' }), material());
    for (const next of [buildPlan(config({ validUntilDays: '30' }), material()), buildPlan(config(), material())]) {
      expect(stepsToRun(withValidity, next).map((s) => s.name)).toContain('publish');
    }
    expect(rerun({}, { bundleSha256: 'b'.repeat(64) })).toContain('publish');
    expect(rerun({}, { publicKeyBinaryBase64: Buffer.from('another-public-key').toString('base64') })).toEqual(
      expect.arrayContaining(['signing-key', 'publish']),
    );
  });

  it('runs exactly the steps a change touches: codenames, validUntilDays, allowedCidrs, credentials, keyName', () => {
    // Removing a codename: its drop folders leave the dirs list and the path unit.
    // An index-affecting change is backed up first; what is installed changes, so does the expected state.
    expect(rerun({ codenames: JSON.stringify(['bookworm']) })).toEqual([
      'dirs',
      'pre-update-backup',
      'config',
      'signer',
      'publish',
      'ingest-units',
      'expected-state',
    ]);
    expect(rerun({ validUntilDays: '7' })).toEqual(['pre-update-backup', 'config', 'signer', 'publish', 'refresh-units', 'expected-state']);
    expect(rerun({}, { bundleSha256: 'b'.repeat(64) })).toEqual(['pre-update-backup', 'indexer', 'signer', 'publish', 'expected-state']);
    // Not index-affecting: nothing that publishes or backs up runs.
    expect(rerun({ allowedCidrs: JSON.stringify(['10.0.0.0/8']) })).toEqual(['vhost', 'expected-state']);
    // A secret's content is not in the expected state (the step records its digest on the server).
    expect(
      rerun(
        { clientCredentials: JSON.stringify([{ username: 'web1', password: 'another-password-42' }]) },
        { htpasswd: renderHtpasswd([{ username: 'web1', password: 'another-password-42' }]) },
      ),
    ).toEqual(['htpasswd']);
    expect(rerun({}, { signingKeyArmored: SIGNING_KEY.replace('fake', 'other') })).toEqual(['signing-key']);
    expect(rerun({ generationsKeep: '9' })).toEqual(['config', 'expected-state']);
    // metricsDir never changes an index: no backup, no publish; the folder, repo.yaml, the timer, and
    // every writing unit (which may now write the folder).
    expect(rerun({ metricsDir: '/var/lib/prometheus/node-exporter' })).toEqual([
      'dirs',
      'config',
      'ingest-units',
      'metrics-units',
      'backup-units',
      'expected-state',
    ]);
    // keyName names the public key files (the signing-key step) and the vhost's rules, never an index.
    expect(rerun({ keyName: 'other-name' })).toEqual(['config', 'signing-key', 'vhost', 'expected-state']);
    // reapply: every step once.
    expect(rerun({ reapply: '2026-11-28' })).toEqual(base().map((st) => st.name));
    expect(rerun({})).toEqual([]);
  });

  it('digests the index inputs without a secret, the same way twice', () => {
    const m = material();
    const inputs = JSON.stringify(indexInputs(config(), m));
    for (const secret of [PASSWORD, m.htpasswd.split(':')[1].trim(), 'fake-private-key-material', 'fake-tls-key'])
      expect(inputs).not.toContain(secret);
    expect(indexInputsDigest(config(), m)).toBe(indexInputsDigest(config(), material()));
    expect(indexInputsDigest(config(), withoutSecrets(m))).toBe(indexInputsDigest(config(), m));
    const publish = buildPlan(config(), m).find((s) => s.name === 'publish')!;
    expect(publish.script).toContain(`# index inputs sha256 ${indexInputsDigest(config(), m)}`);
    expect(publish.secretStdin).toBeUndefined();
  });

  it('counts every repo.yaml key as index-affecting unless it is listed as not (a new key cannot be forgotten)', () => {
    const cfg = config(
      { validUntilDays: '7', upstream: 'preprod', routing: JSON.stringify([{ pattern: 'x', codenames: ['bookworm'] }]) },
      'prod',
    );
    const rendered = Object.keys(parseYaml(renderRepoYaml(cfg, channelLayout(cfg))) as object);
    const kept = Object.keys(indexInputs(cfg, material()).repoYaml as object);
    expect(kept.sort()).toEqual(['component', 'description', 'label', 'origin', 'routing', 'validUntilDays', 'webRoot']);
    expect([...kept, ...rendered.filter((k) => NON_INDEX_REPO_KEYS.includes(k))].sort()).toEqual([...rendered].sort());
  });

  it("with metricsDir: the shared folder and the channel's file (dirs), repo.yaml, and the metrics timer; without: none, and their removal", () => {
    const dir = '/var/lib/prometheus/node-exporter';
    const q = (s: string) => `'\\''${s}'\\''`;
    for (const [stack, over] of [
      ['preprod', {}],
      ['prod', { upstream: 'preprod' }],
    ] as const) {
      const cfg = config({ ...over, metricsDir: dir }, stack);
      const steps = byName(buildPlan(cfg, material()));
      const user = `aptrepo-${stack}`;
      // The same folder settings from every stack (poolGroup is shared): two stacks never undo each other.
      expect(steps.dirs.script).toContain(`ensure_dir ${q(dir)} 1775 root ${q('aptrepo')}`);
      // The channel's own file, made for its service user when missing or another user's.
      expect(steps.dirs.script).toContain(`[ "$(stat -c %U -- ${q(`apt_repo_${stack}.prom`)})" != ${q(user)} ]`);
      expect(steps.dirs.script).toContain(
        `install_file "$APT_REPO_TMP/empty.prom" ${q(`${dir}/apt_repo_${stack}.prom`)} 0644 ${q(user)} ${q(user)}`,
      );
      expect(
        (parseYaml(steps.config.files.find((f) => f.remotePath.endsWith('repo.yaml'))!.content) as Record<string, unknown>).metricsDir,
      ).toBe(dir);
      const m = steps['metrics-units'];
      expect(m.dependsOn).toEqual(['indexer', 'publish']);
      expect(m.files.map((f) => f.remotePath.split('/').pop())).toEqual([
        `metrics-units.apt-repo-metrics-${stack}.service`,
        `metrics-units.apt-repo-metrics-${stack}.timer`,
      ]);
      expect(m.files[0].content).toContain(
        `ExecStart=node /opt/apt-repo/${stack}/apt-repo.cjs --root / --channel ${stack} metrics --to ${dir}\n`,
      );
      expect(m.script).toContain(`systemctl enable ${q(`apt-repo-metrics-${stack}.timer`)}`);
      // A channel that had no metrics gets its file now (no publish runs for metricsDir).
      expect(m.script).toContain(
        `if [ ! -s ${q(`${dir}/apt_repo_${stack}.prom`)} ]; then\n  systemctl start ${q(`apt-repo-metrics-${stack}.service`)}\nfi`,
      );
      // A new folder: the file in the old one goes.
      expect(m.script).toContain(`[ "$old" != ${q(dir)} ]`);
      // The expected state: the folder (the file's content changes every few minutes: not listed).
      const manifest = JSON.parse(steps['expected-state'].files[0].content) as { entries: { path: string }[] };
      expect(manifest.entries.filter((e) => e.path.startsWith(dir))).toEqual([
        { type: 'dir', path: dir, mode: '1775', owner: 'root', group: 'aptrepo', step: 'dirs' },
      ]);
      // services none (a sandbox): the file is written as the service user.
      const sandbox = byName(buildPlan(config({ ...over, metricsDir: dir, services: 'none' }, stack), material()))['metrics-units'];
      expect(sandbox.script).toContain(`runuser -u ${q(user)} -- ${q('node')} ${q(`/opt/apt-repo/${stack}/apt-repo.cjs`)}`);
      expect(sandbox.script).not.toContain('systemctl');
    }
    const none = byName(buildPlan(config(), material()));
    expect(none.dirs.script).not.toContain('prom');
    expect(none['metrics-units'].files).toEqual([]);
    expect(parseYaml(none.config.files.find((f) => f.remotePath.endsWith('repo.yaml'))!.content) as object).not.toHaveProperty(
      'metricsDir',
    );
    expect(none['metrics-units'].script).toContain("systemctl disable --now '\\''apt-repo-metrics-preprod.timer'\\''");
    expect(none['metrics-units'].script).toContain(
      "rm -f '\\''/etc/systemd/system/apt-repo-metrics-preprod.timer'\\'' '\\''/etc/systemd/system/apt-repo-metrics-preprod.service'\\''",
    );
    // and the channel's file in the folder the removed service wrote to.
    expect(none['metrics-units'].script).toContain("rm -f -- '\\''apt_repo_preprod.prom'\\''");
  });

  it('installs an hourly re-signing timer with validUntilDays, and removes it without', () => {
    const timed = byName(buildPlan(config({ validUntilDays: '7' }), material()))['refresh-units'];
    expect(timed.files.map((f) => f.remotePath.split('/').pop())).toEqual([
      'refresh-units.apt-repo-refresh-preprod.service',
      'refresh-units.apt-repo-refresh-preprod.timer',
    ]);
    expect(timed.files[0].content).toContain(
      'ExecStart=node /opt/apt-repo/preprod/apt-repo.cjs --root / --channel preprod publish --if-expiring\n',
    );
    expect(timed.script).toContain("systemctl enable '\\''apt-repo-refresh-preprod.timer'\\''");
    const none = byName(buildPlan(config(), material()))['refresh-units'];
    expect(none.files).toEqual([]);
    expect(none.script).toContain("systemctl disable --now '\\''apt-repo-refresh-preprod.timer'\\''");
    expect(none.script).toContain(
      "rm -f '\\''/etc/systemd/system/apt-repo-refresh-preprod.timer'\\'' '\\''/etc/systemd/system/apt-repo-refresh-preprod.service'\\''",
    );
  });
});
