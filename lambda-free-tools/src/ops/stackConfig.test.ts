import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, UsageError } from '../errors';
import { findProjectDir, loadStackConfig, mirrorPrefixFor, readStackFile } from './stackConfig';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH/fkJsPF2CO5btgt39EpPEjapxewBMJbXrCX4ZqyoLC';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stackconfig-test-'));
  fs.writeFileSync(path.join(dir, 'Pulumi.yaml'), 'name: apt-repo\nruntime: nodejs\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function stackFile(stack: string, body: string): string {
  const f = path.join(dir, `Pulumi.${stack}.yaml`);
  fs.writeFileSync(f, body);
  return f;
}
const load = (stack: string, extra: Partial<Parameters<typeof loadStackConfig>[0]> = {}) =>
  loadStackConfig({ stack, cwd: dir, env: {}, homeDir: '/home/op', ...extra });

describe('loadStackConfig', () => {
  test('defaults: port 22, root user, channel = stack, paths under root', () => {
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  other:key: ignored\n');
    const c = load('prod');
    expect(c).toMatchObject({
      stack: 'prod',
      stackFile: path.join(dir, 'Pulumi.prod.yaml'),
      host: 'repo.example',
      port: 22,
      user: 'root',
      channel: 'prod',
      root: '/',
      indexerPath: '/opt/apt-repo/prod/apt-repo.cjs',
      nodePath: 'node',
      remotePrefix: '',
      incomingDir: '/srv/apt/incoming',
      webRoot: '/srv/apt/prod',
      knownHostsFile: '/home/op/.ssh/known_hosts',
      connectTimeoutMs: 20000,
    });
    expect(c.hostKey).toBeUndefined();
    expect(c.identityFile).toBeUndefined();
  });

  test('every stack key is read; default paths follow root and channel', () => {
    stackFile(
      'preprod',
      [
        'config:',
        '  apt-repo:sshHost: 10.0.0.5',
        '  apt-repo:sshPort: 2222',
        '  apt-repo:sshUser: deploy',
        `  apt-repo:sshHostKey: ${HOST_KEY}`,
        '  apt-repo:nodePath: /usr/bin/node',
        "  apt-repo:remotePrefix: 'sudo -n'",
        '  apt-repo:root: /sandbox',
        '  apt-repo:channel: staging',
        '',
      ].join('\n'),
    );
    const c = load('preprod');
    expect(c).toMatchObject({
      host: '10.0.0.5',
      port: 2222,
      user: 'deploy',
      hostKey: HOST_KEY,
      nodePath: '/usr/bin/node',
      remotePrefix: 'sudo -n',
      root: '/sandbox',
      channel: 'staging',
    });
    expect(c.hostKeySource).toBe(`${path.join(dir, 'Pulumi.preprod.yaml')}: apt-repo:sshHostKey`);
    expect(c.indexerPath).toBe('/sandbox/opt/apt-repo/staging/apt-repo.cjs');
    expect(c.incomingDir).toBe('/sandbox/srv/apt/incoming');
    expect(c.webRoot).toBe('/sandbox/srv/apt/staging');
  });

  test('opsUser is the account commands connect as (sshUser is for pulumi up); uploadUser is optional', () => {
    stackFile(
      'preprod',
      'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:sshUser: root\n  apt-repo:opsUser: alice\n  apt-repo:uploadUser: ci-upload\n',
    );
    expect(load('preprod')).toMatchObject({ user: 'alice', uploadUser: 'ci-upload' });
    // The environment beats the file; --user beats everything; a missing opsUser falls back to sshUser.
    expect(load('preprod', { env: { APT_OPS_OPS_USER: 'bob', APT_OPS_UPLOAD_USER: 'other-ci' } })).toMatchObject({
      user: 'bob',
      uploadUser: 'other-ci',
    });
    expect(load('preprod', { env: { APT_OPS_OPS_USER: 'bob' }, flags: { user: 'carol', uploadUser: 'flag-ci' } })).toMatchObject({
      user: 'carol',
      uploadUser: 'flag-ci',
    });
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:sshUser: deploy\n');
    const prod = load('prod');
    expect(prod.user).toBe('deploy');
    expect(prod.uploadUser).toBeUndefined();
    stackFile('bad', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:uploadUser: "ci; rm -rf /"\n');
    expect(() => load('bad')).toThrow(`${path.join(dir, 'Pulumi.bad.yaml')}: apt-repo:uploadUser: expected a user name`);
  });

  test('environment overrides the file, flags override both', () => {
    stackFile('prod', 'config:\n  apt-repo:sshHost: file.example\n  apt-repo:sshPort: "2200"\n  apt-repo:sshUser: fileuser\n');
    const env = {
      APT_OPS_HOST: 'env.example',
      APT_OPS_PORT: '2201',
      APT_OPS_IDENTITY: '~/.ssh/ci_key',
      SSH_AUTH_SOCK: '/tmp/agent.sock',
      APT_OPS_PASSPHRASE: 'pw',
    };
    const c = load('prod', { env, flags: { port: '2202', indexer: '/x/apt-repo.cjs' } });
    expect(c).toMatchObject({
      host: 'env.example',
      port: 2202,
      user: 'fileuser',
      identityFile: '/home/op/.ssh/ci_key',
      agentSocket: '/tmp/agent.sock',
      passphrase: 'pw',
      indexerPath: '/x/apt-repo.cjs',
    });
  });

  test('a Pulumi secret for a plain key is an error naming the file and key', () => {
    const f = stackFile('prod', 'config:\n  apt-repo:sshHost:\n    secure: v1:abcdef==\n');
    expect(() => load('prod')).toThrow(ConfigError);
    expect(() => load('prod')).toThrow(`${f}: apt-repo:sshHost: is a Pulumi secret (secure:)`);
  });

  test('invalid values name their key and source', () => {
    const f = stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:sshPort: seventy\n');
    expect(() => load('prod')).toThrow(new RegExp(`^${f.replace(/[.]/g, '\\.')}: apt-repo:sshPort: expected a port number`));
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:indexerPath: relative/apt-repo.cjs\n');
    expect(() => load('prod')).toThrow(/apt-repo:indexerPath: expected an absolute path/);
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:sshHostKey: ssh-ed25519 no*pe\n');
    expect(() => load('prod')).toThrow(/apt-repo:sshHostKey: the key of type ssh-ed25519 is not valid base64/);
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n');
    expect(() => load('prod', { flags: { port: '70000' } })).toThrow(/^--port: expected a port 1-65535 \(got "70000"\)/);
    expect(() => load('prod', { env: { APT_OPS_CHANNEL: 'Prod!' } })).toThrow(/^APT_OPS_CHANNEL \(environment\): expected a channel name/);
    expect(() => load('prod', { flags: { host: '-oProxyCommand=x' } })).toThrow(/^--host:/);
  });

  test('missing stack file, missing host, bad YAML, bad stack name', () => {
    expect(() => load('prod')).toThrow(/Pulumi\.prod\.yaml: not found/);
    expect(load('prod', { env: { APT_OPS_HOST: 'h.example' } }).stackFile).toBeUndefined();
    stackFile('prod', 'config:\n  apt-repo:sshPort: 22\n');
    expect(() => load('prod')).toThrow(/apt-repo:sshHost: is not set/);
    stackFile('prod', 'config: [unclosed\n');
    expect(() => load('prod')).toThrow(/Pulumi\.prod\.yaml: invalid YAML/);
    stackFile('prod', 'config:\n  apt-repo:sshHost: a\n  apt-repo:sshHost: b\n');
    expect(() => load('prod')).toThrow(/invalid YAML/);
    expect(() => load('../etc')).toThrow(UsageError);
  });

  test('a stack name that is not a channel name needs apt-repo:channel', () => {
    stackFile('Prod_EU', 'config:\n  apt-repo:sshHost: h\n');
    expect(() => load('Prod_EU')).toThrow(/apt-repo:channel: is not set and the stack name 'Prod_EU'/);
    stackFile('Prod_EU', 'config:\n  apt-repo:sshHost: h\n  apt-repo:channel: prod\n');
    expect(load('Prod_EU').channel).toBe('prod');
  });

  test('the project directory is found upwards from cwd, or given', () => {
    stackFile('prod', 'config:\n  apt-repo:sshHost: h\n');
    const sub = path.join(dir, 'a', 'b');
    fs.mkdirSync(sub, { recursive: true });
    expect(findProjectDir(sub)).toBe(dir);
    expect(load('prod', { cwd: sub }).host).toBe('h');
    expect(findProjectDir('/', sub)).toBe(sub);
    expect(load('prod', { cwd: '/', flags: { projectDir: dir } }).host).toBe('h');
  });

  test('readStackFile keeps only plain apt-repo keys it knows; structured values are refused', () => {
    const f = stackFile('x', 'encryptionsalt: v1:x\nconfig:\n  apt-repo:sshHost: h\n  apt-repo:channels:\n    - a\n  aws:region: eu\n');
    expect(readStackFile(f)).toEqual({ sshHost: 'h' });
    const g = stackFile('y', 'config:\n  apt-repo:sshPort:\n    nested: 1\n');
    expect(() => readStackFile(g)).toThrow(/apt-repo:sshPort: expected a plain value/);
  });
});

describe("the mirrors' prefix", () => {
  test("mirrorPrefixFor: the channel's sudo as the mirror user; runuser for root without a prefix; another shape: none", () => {
    expect(mirrorPrefixFor('sudo -n -u aptrepo-prod', 'apt-ops', 'aptmirror')).toBe('sudo -n -u aptmirror');
    expect(mirrorPrefixFor('sudo -u aptrepo-prod', 'apt-ops', 'kiosk')).toBe('sudo -u kiosk');
    expect(mirrorPrefixFor('', 'root', 'aptmirror')).toBe('runuser -u aptmirror --');
    expect(mirrorPrefixFor('', 'apt-ops', 'aptmirror')).toBe('sudo -n -u aptmirror');
    expect(mirrorPrefixFor('doas -u aptrepo-prod', 'apt-ops', 'aptmirror')).toBeUndefined();
    expect(mirrorPrefixFor('sudo -n -u aptrepo-prod env X=1', 'apt-ops', 'aptmirror')).toBeUndefined();
  });

  test("loadStackConfig derives it from remotePrefix and the stack's mirrors.user; the flag or APT_OPS_MIRROR_PREFIX wins", () => {
    stackFile(
      'prod',
      [
        'config:',
        '  apt-repo:sshHost: repo.example',
        '  apt-repo:opsUser: apt-ops',
        '  apt-repo:remotePrefix: sudo -n -u aptrepo-prod',
        '  apt-repo:mirrors:',
        '    user: kioskmirror',
        '    mirrors:',
        '      alpine: { url: "https://x.org/alpine/", paths: [v3.15/main/x86_64], version: "3.15.5" }',
        '',
      ].join('\n'),
    );
    expect(load('prod').mirrorPrefix).toBe('sudo -n -u kioskmirror');
    expect(load('prod', { env: { APT_OPS_MIRROR_PREFIX: 'sudo -n -u other' } }).mirrorPrefix).toBe('sudo -n -u other');
    expect(load('prod', { flags: { mirrorPrefix: 'sudo -u third' } }).mirrorPrefix).toBe('sudo -u third');
    stackFile('prod', 'config:\n  apt-repo:sshHost: repo.example\n  apt-repo:remotePrefix: doas -u aptrepo-prod\n');
    expect(load('prod').mirrorPrefix).toBeUndefined();
  });
});
