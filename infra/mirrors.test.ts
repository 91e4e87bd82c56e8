/**
 * The stack's mirrors (infra/mirrors.ts, infra/steps/mirrors.ts): the config key's validation, the
 * rendered mirrors.yaml read back by the indexer's own reader, the units rated by systemd-analyze,
 * the vhost checked by `nginx -t`, and the step's place in the plan (what it stages, what it leaves
 * alone). The step's scripts run for real in test/replay/mirrors.e2e.test.ts.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadMirrors } from '../lambda-free-tools/src/mirror/config';
import { backupPaths } from '../lambda-free-tools/src/settings/layout';
import type { RawConfig, StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { config, material, stepsByName } from '../test/harness/planFixtures';
import { buildPlan, indexInputsDigest } from './plan';
import {
  managedBy,
  mirrorsLayout,
  readMirrorKeys,
  renderMirrorsYaml,
  renderMirrorUnits,
  renderMirrorVhost,
  type MirrorKeys,
  type MirrorsStack,
} from './mirrors';
import { renderNginxTestConf } from './vhost';

const PEM = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAfake\n-----END PUBLIC KEY-----\n';
const KEY_NAME = 'alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub';

/** A `mirrors` value with one Alpine mirror (keys: the local file `keyFile`), `over` merged at the top. */
function mirrorsValue(keyFile = `keys/${KEY_NAME}`, over: Record<string, unknown> = {}, entry: Record<string, unknown> = {}) {
  return JSON.stringify({
    mirrors: {
      alpine: {
        url: 'https://dl-cdn.alpinelinux.org/alpine/',
        paths: ['v3.15/main/x86_64', 'v3.15/community/x86_64', 'v3.15/releases/x86_64'],
        versionFrom: 'v3.15/releases/x86_64/latest-releases.yaml',
        keys: [keyFile],
        postSync: '/usr/local/bin/notify-deploy alpine',
        keep: 4,
        ...entry,
      },
    },
    ...over,
  });
}

const withMirrors = (over: RawConfig = {}, value = mirrorsValue()) => config({ mirrors: value, ...over }) as MirrorsStack;
const keysOf = (cfg: StackConfig): MirrorKeys =>
  Object.fromEntries((cfg.mirrors?.mirrors ?? []).map((m) => [m.name, m.keys.map((k) => ({ fileName: path.basename(k), content: PEM }))]));
/** The ConfigError `fn` throws, as [key, message]. */
function configError(fn: () => unknown): [string | undefined, string] {
  try {
    fn();
  } catch (e) {
    return [(e as { key?: string }).key, (e as Error).message];
  }
  throw new Error('no error thrown');
}

describe('apt-repo:mirrors, validated', () => {
  it('fills the defaults: mirror.<domain>, <root>/srv/mirrors, every address, aptmirror, 04:00, not backed up', () => {
    const m = withMirrors().mirrors;
    expect({ ...m, mirrors: m.mirrors.map((x) => x.name) }).toEqual({
      serverName: 'mirror.example.org',
      mirrorRoot: '/srv/mirrors',
      allowedCidrs: ['0.0.0.0/0', '::/0'],
      user: 'aptmirror',
      schedule: '*-*-* 04:00:00',
      backup: false,
      mirrors: ['alpine'],
    });
    expect(config().mirrors).toBeUndefined();
  });

  it.each([
    [
      'an unquoted version (YAML 3.10 is the number 3.1)',
      mirrorsValue(undefined, {}, { versionFrom: undefined, version: 3.1 }),
      /quoted string/,
    ],
    ['both version and versionFrom', mirrorsValue(undefined, {}, { version: '3.15.5' }), /exactly one/],
    ['an unknown setting', mirrorsValue(undefined, {}, { mirrorList: 'x' }), /mirrorList/],
    ['a path with ..', mirrorsValue(undefined, {}, { paths: ['v3.15/../x'] }), /no '\.\.'/],
    ['a URL with credentials', mirrorsValue(undefined, {}, { url: 'https://u:p@example.org/alpine/' }), /without credentials/],
    [
      'a mirror name with a slash',
      JSON.stringify({ mirrors: { 'a/b': { url: 'https://x.org/', paths: ['a'], version: '1' } } }),
      /mirror name/,
    ],
    ['no mirror', JSON.stringify({ mirrors: {} }), /at least one mirror/],
    ['a key file name with a space', mirrorsValue('keys/a b.pub'), /key file/],
    ['a system folder as mirrorRoot', mirrorsValue(undefined, { mirrorRoot: '/srv' }), /system folder/],
    ['the web roots as mirrorRoot', mirrorsValue(undefined, { mirrorRoot: '/srv/apt/mirrors' }), /inside the web roots/],
    ['mirrorRoot holding the channel', mirrorsValue(undefined, { mirrorRoot: '/srv/apt' }), /nor hold it/],
    ['a bad CIDR block', mirrorsValue(undefined, { allowedCidrs: ['10.0.0.0/33'] }), /./],
    ['the channel server name', mirrorsValue(undefined, { serverName: 'apt-preprod.example.org' }), /channel's own server name/],
    ['the channel user as mirror user', mirrorsValue(undefined, { user: 'aptrepo-preprod' }), /already the name of serviceUser/],
    ['a proxy with credentials', mirrorsValue(undefined, { proxy: 'http://u:p@proxy:3128' }), /without credentials/],
    ['a proxy URL with a %', mirrorsValue(undefined, { proxy: 'http://proxy%41:3128' }), /without credentials/],
    ['a noProxy entry with a space', mirrorsValue(undefined, { proxy: 'http://proxy:3128', noProxy: ['a b'] }), /host name/],
  ])('refuses %s, naming the key', (_what, value, message) => {
    const [key, text] = configError(() => config({ mirrors: value }));
    expect(key).toMatch(/^apt-repo:mirrors/);
    expect(text).toMatch(message);
  });

  it('refuses two keys of one mirror with the same file name (the signature names its key by it)', () => {
    const [key, text] = configError(() => config({ mirrors: mirrorsValue(undefined, {}, { keys: [`a/${KEY_NAME}`, `b/${KEY_NAME}`] }) }));
    expect([key, text]).toEqual(['apt-repo:mirrors.mirrors.alpine.keys.1', expect.stringMatching(/a second key named/)]);
  });

  it('reads the key files from the project folder, and names the key of one that is missing or not a public key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mirror-keys-'));
    try {
      fs.mkdirSync(path.join(dir, 'keys'));
      fs.writeFileSync(path.join(dir, 'keys', KEY_NAME), PEM);
      expect(readMirrorKeys(withMirrors(), dir)).toEqual({ alpine: [{ fileName: KEY_NAME, content: PEM }] });
      expect(readMirrorKeys(config(), dir)).toEqual({});
      fs.writeFileSync(path.join(dir, 'keys', KEY_NAME), '-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
      expect(configError(() => readMirrorKeys(withMirrors(), dir))).toEqual([
        'apt-repo:mirrors.mirrors.alpine.keys.0',
        expect.stringMatching(/is not a PEM public key/),
      ]);
      fs.rmSync(path.join(dir, 'keys', KEY_NAME));
      expect(configError(() => readMirrorKeys(withMirrors(), dir))[1]).toMatch(/cannot read .*ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the rendered files', () => {
  it("mirrors.yaml is what the indexer's own reader (mirror/config.ts) takes, keys at the paths the step installs", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mirrors-yaml-'));
    try {
      const cfg = config({
        root,
        mirrors: JSON.stringify({
          mirrors: {
            alpine: JSON.parse(mirrorsValue()).mirrors.alpine,
            kiosk: { url: 'http://builds.example.org/kiosk/', paths: ['v1/x86_64'], version: '3.10' },
          },
        }),
      }) as MirrorsStack;
      const ml = mirrorsLayout(root);
      fs.mkdirSync(path.join(ml.keysRoot, 'alpine'), { recursive: true });
      fs.writeFileSync(path.join(ml.keysRoot, 'alpine', KEY_NAME), PEM);
      const yaml = renderMirrorsYaml(cfg);
      expect(yaml.split('\n')[0]).toBe(managedBy('preprod'));
      fs.writeFileSync(ml.configFile, yaml);
      const read = loadMirrors(root);
      expect(read.map((m) => ({ ...m, keys: [...m.keys.entries()] }))).toEqual([
        {
          name: 'alpine',
          url: 'https://dl-cdn.alpinelinux.org/alpine/',
          paths: ['v3.15/main/x86_64', 'v3.15/community/x86_64', 'v3.15/releases/x86_64'],
          versionFrom: 'v3.15/releases/x86_64/latest-releases.yaml',
          keys: [[KEY_NAME, PEM]],
          postSync: '/usr/local/bin/notify-deploy alpine',
          keep: 4,
          dir: path.join(root, 'srv/mirrors/alpine'),
          stateDir: path.join(root, 'var/lib/apt-repo/mirror-alpine'),
          lockTimeoutMs: 120_000,
        },
        // The version stays the string 3.10, not the number 3.1.
        expect.objectContaining({ name: 'kiosk', version: '3.10', keys: [], keep: 5 }),
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('a sync service per mirror as the mirror user, writing its folders only, with the network; rated by systemd-analyze', () => {
    const cfg = withMirrors({ nodePath: '/usr/bin/node' });
    const units = Object.fromEntries(renderMirrorUnits(cfg).map((u) => [u.name, u.content]));
    expect(Object.keys(units)).toEqual(['apt-repo-mirror-alpine.service', 'apt-repo-mirror-alpine.timer']);
    const service = units['apt-repo-mirror-alpine.service'];
    expect(service).toContain('\nUser=aptmirror\nGroup=aptmirror\n');
    expect(service).toContain('\nExecStart=/usr/bin/node /opt/apt-repo/preprod/apt-repo.cjs --root / mirror sync alpine\n');
    expect(service).toContain('\nReadWritePaths=/srv/mirrors/alpine /var/lib/apt-repo/mirror-alpine\n');
    expect(service).toContain('\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n');
    expect(service).toContain('\nProtectSystem=strict\n');
    expect(service).not.toMatch(/PrivateNetwork=|IPAddressDeny=/);
    expect(units['apt-repo-mirror-alpine.timer']).toContain('\nOnCalendar=*-*-* 04:00:00\nRandomizedDelaySec=15min\nPersistent=yes\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mirror-units-'));
    try {
      const file = path.join(dir, 'apt-repo-mirror-alpine.service');
      fs.writeFileSync(file, service);
      const report = execFileSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8' });
      const score = Number(/Overall exposure level for \S+: (\d+\.\d+)/.exec(report)![1]);
      // The channel units are at most 3.0; this one needs the network, and still rates within that bar.
      expect([score, score <= 3.0 ? 'OK' : report]).toEqual([score, 'OK']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with a proxy, the sync service's environment names it (http_proxy, https_proxy, no_proxy); without, nothing", () => {
    const service = (value: string) => renderMirrorUnits(withMirrors({}, value))[0].content;
    expect(service(mirrorsValue(undefined, { proxy: 'http://proxy.example.org:3128', noProxy: ['.example.org', '10.0.0.1'] }))).toContain(
      '\nEnvironment=http_proxy=http://proxy.example.org:3128 https_proxy=http://proxy.example.org:3128 no_proxy=.example.org,10.0.0.1\nExecStart=',
    );
    expect(service(mirrorsValue())).not.toContain('Environment=');
  });

  it('the vhost: plain HTTP, mirrorRoot, listings, allowlist, no credentials, dot names refused, no cache; passes `nginx -t`', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mirror-vhost-'));
    try {
      const cfg = withMirrors({ listenAddress: '127.0.0.1' }, mirrorsValue(undefined, { allowedCidrs: ['192.0.2.0/24'], mirrorRoot: dir }));
      const vhost = renderMirrorVhost(cfg, dir);
      for (const line of [
        'listen 127.0.0.1:80;',
        'server_name mirror.example.org;',
        `root ${dir};`,
        'autoindex on;',
        'allow 192.0.2.0/24;',
        'deny all;',
        'open_file_cache off;',
        'disable_symlinks if_not_owner from=$document_root;',
        'location ~ /\\. {',
        'limit_except GET {',
      ])
        expect(vhost).toContain(line);
      expect(vhost).not.toMatch(/auth_basic|ssl|return 301/);
      const file = path.join(dir, 'apt-mirrors.conf');
      fs.writeFileSync(file, vhost);
      fs.writeFileSync(path.join(dir, 'nginx.conf'), renderNginxTestConf(file, dir));
      const r = spawnSync(
        '/usr/sbin/nginx',
        ['-t', '-q', '-c', path.join(dir, 'nginx.conf'), '-p', dir + '/', '-e', path.join(dir, 'error.log')],
        {
          encoding: 'utf8',
        },
      );
      expect([r.status, r.stderr]).toEqual([0, '']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the plan's mirrors step", () => {
  it('with mirrors: stages mirrors.yaml, the key, the units and the vhost; refuses what another stack wrote', () => {
    const cfg = withMirrors();
    const step = stepsByName(buildPlan(cfg, material({ mirrorKeys: keysOf(cfg) }))).mirrors;
    expect(step.dependsOn).toEqual(['indexer', 'vhost']);
    expect(step.files.map((f) => path.basename(f.remotePath)).sort()).toEqual(
      [
        `mirrors.key.alpine.${KEY_NAME}`,
        'mirrors.mirrors.yaml',
        'mirrors.apt-repo-mirror-alpine.service',
        'mirrors.apt-repo-mirror-alpine.timer',
        'mirrors.site.conf',
        'mirrors.nginx-test.conf',
      ].sort(),
    );
    expect(step.files.find((f) => f.remotePath.endsWith('mirrors.yaml'))!.content).toBe(renderMirrorsYaml(cfg));
    expect(step.script).toContain('was not written by this stack (channel preprod)');
    expect(step.script).toContain('useradd --system --user-group');
    expect(step.script).toContain("systemctl enable '\\''apt-repo-mirror-alpine.timer'\\''");
    expect(step.script).toContain('systemctl start --no-block');
    // The same inputs, the same step (a second `pulumi up` runs nothing).
    expect(stepsByName(buildPlan(cfg, material({ mirrorKeys: keysOf(cfg) }))).mirrors).toEqual(step);
  });

  it('without mirrors: removes only what this stack installed (its channel on their first line)', () => {
    const step = stepsByName(buildPlan(config(), material())).mirrors;
    expect(step.files).toEqual([]);
    expect(step.script).toContain('No mirrors in this stack');
    expect(step.script).toContain(managedBy('preprod'));
    expect(step.script).not.toContain('useradd');
  });

  it('leaves the other steps alone: no republish, no other command re-run for a mirror', () => {
    const plain = config();
    const cfg = withMirrors();
    expect(indexInputsDigest(cfg, material())).toBe(indexInputsDigest(plain, material()));
    const a = stepsByName(buildPlan(plain, material()));
    const b = stepsByName(buildPlan(cfg, material({ mirrorKeys: keysOf(cfg) })));
    const differ = Object.keys(a).filter((n) => JSON.stringify(a[n]) !== JSON.stringify(b[n]));
    // The expected state lists what the mirrors step installs.
    expect(differ.sort()).toEqual(['expected-state', 'mirrors']);
  });

  it('throws when a mirror names keys the material lacks', () => {
    expect(() => buildPlan(withMirrors(), material())).toThrow(/lacks its keys/);
  });

  it('puts mirrorRoot in the backup paths only with mirrors.backup', () => {
    const l = (c: StackConfig) => backupPaths(c);
    expect(l(withMirrors())).not.toContain('/srv/mirrors');
    expect(l(withMirrors({}, mirrorsValue(undefined, { backup: true })))).toContain('/srv/mirrors');
  });
});
