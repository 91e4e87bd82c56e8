/** The sshd drop-in and the sudo rule, checked by the real tools: `sshd -t`/`sshd -T` and `visudo -cf`. */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { parseStackConfig, type RawConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelLayout } from './layout';
import { renderAuthorizedKeys, renderSshdDropIn } from './sshd';
import { renderSudoers } from './sudoers';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q ci@build';

function config(over: RawConfig = {}, stack = 'preprod') {
  return parseStackConfig(
    {
      domain: 'example.org',
      sshHost: 'h',
      sshHostKey: 'ssh-ed25519 AAAA',
      sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n',
      codenames: '["bookworm"]',
      architectures: '["amd64"]',
      allowedCidrs: '["10.0.0.0/8"]',
      tls: '{"mode":"none"}',
      allowPlainHttp: 'true',
      nodePath: '/usr/bin/node',
      uploaders: JSON.stringify([{ name: 'ci-upload', authorizedKeys: [KEY] }]),
      operators: JSON.stringify([
        { name: 'alice', authorizedKeys: [KEY] },
        { name: 'bob', authorizedKeys: [KEY] },
      ]),
      ...over,
    },
    stack,
  ).config;
}

describe('sshd drop-in', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshd-dropin-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is accepted by sshd -t, and chroots the upload group into SFTP only with every forwarding off', () => {
    const cfg = config();
    fs.writeFileSync(path.join(dir, 'apt-repo.conf'), renderSshdDropIn(cfg, channelLayout(cfg)));
    // As Debian's sshd_config does: the drop-ins first, global settings after them.
    fs.writeFileSync(
      path.join(dir, 'sshd_config'),
      `Include ${dir}/apt-repo.conf\nHostKey ${dir}/host_key\nUsePAM no\nX11Forwarding yes\nSubsystem sftp internal-sftp\n`,
    );
    execFileSync('sshd', ['-t', '-f', path.join(dir, 'sshd_config')]);
    // sshd -T resolves the Match blocks for a connection; `nogroup` stands for the upload group
    // (the user `nobody` is in it), as the group must exist for the check.
    fs.writeFileSync(
      path.join(dir, 'apt-repo.conf'),
      renderSshdDropIn(config({ uploadGroup: 'nogroup-test' }), channelLayout(cfg)).replace(
        'Match Group nogroup-test',
        'Match Group nogroup',
      ),
    );
    const eff = (user: string) =>
      execFileSync('sshd', ['-T', '-f', path.join(dir, 'sshd_config'), '-C', `user=${user},host=localhost,addr=127.0.0.1`], {
        encoding: 'utf8',
      }).split('\n');
    const upl = eff('nobody');
    for (const line of [
      'chrootdirectory /srv/apt/incoming',
      'forcecommand internal-sftp -u 0022',
      'allowtcpforwarding no',
      'allowstreamlocalforwarding no',
      'allowagentforwarding no',
      'x11forwarding no',
      'permittunnel no',
      'permittty no',
      'authorizedkeysfile /etc/ssh/apt-repo-keys/%u',
    ]) {
      expect(upl).toContain(line);
    }
    // Anyone else keeps the global settings.
    const other = eff('root');
    expect(other).toContain('chrootdirectory none');
    expect(other).toContain('x11forwarding yes');
  });

  it('writes the key options itself', () => {
    expect(renderAuthorizedKeys({ name: 'ci-upload', authorizedKeys: [KEY] }, 'uploader')).toMatch(
      /\nrestrict ssh-ed25519 \S+ ci@build\n$/,
    );
    expect(renderAuthorizedKeys({ name: 'alice', authorizedKeys: [KEY] }, 'operator')).toMatch(/\nrestrict,pty ssh-ed25519 /);
  });

  it('leaves the upload block out on a channel with an upstream', () => {
    const prod = config({ upstream: 'preprod', uploaders: '[]' }, 'prod');
    const text = renderSshdDropIn(prod, channelLayout(prod));
    expect(text).not.toContain('aptupload');
    expect(text).toContain('Match Group aptops\n');
  });
});

describe('sudo rule', () => {
  it('passes visudo -cf and names the channel indexer only, as the service user', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sudoers-'));
    try {
      const file = path.join(dir, 'rule');
      fs.writeFileSync(file, renderSudoers(config()), { mode: 0o440 });
      const r = spawnSync('visudo', ['-cf', file], { encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([0, '']);
      const rule = fs.readFileSync(file, 'utf8');
      expect(rule).toContain('alice, bob ALL = (aptrepo-preprod) NOPASSWD: APT_REPO_PREPROD\n');
      // Every command of the alias is this channel's indexer with its fixed words, as the service user.
      const commands = rule
        .split('Cmnd_Alias APT_REPO_PREPROD = \\\n')[1]
        .split('\nalice')[0]
        .split(/, \\\n/)
        .map((c) => c.trim());
      expect(commands.length).toBeGreaterThan(10);
      for (const c of commands)
        expect(c).toMatch(
          /^\/usr\/bin\/node \/opt\/apt-repo\/preprod\/apt-repo\.cjs --root \/ --channel preprod (--json )?([a-z][a-z-]*( \*)?|doctor --expected -|gc --policy( --dry-run)?)$/,
        );
      // doctor: bare, or the manifest on stdin; never a file named by the operator.
      const doctor = commands.filter((c) => / doctor/.test(c)).map((c) => c.split(' --channel preprod ')[1]);
      expect(doctor).toEqual(['doctor', 'doctor --expected -', '--json doctor', '--json doctor --expected -']);
      // gc: bare, or the retention policy (with its dry run); nothing else.
      const gc = commands.filter((c) => / gc/.test(c)).map((c) => c.split(' --channel preprod ')[1]);
      expect(gc).toEqual(['gc', 'gc --policy', 'gc --policy --dry-run', '--json gc', '--json gc --policy', '--json gc --policy --dry-run']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(renderSudoers(config({ operators: '[]' }))).toBe('');
  });

  it("with mirrors: also the mirrors' commands as the mirror user, without --channel; passes visudo -cf", () => {
    const mirrors = JSON.stringify({
      mirrors: { alpine: { url: 'https://x.org/alpine/', paths: ['v3.15/main/x86_64'], version: '3.15.5' } },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sudoers-'));
    try {
      const file = path.join(dir, 'rule');
      const text = renderSudoers(config({ mirrors }));
      fs.writeFileSync(file, text, { mode: 0o440 });
      const r = spawnSync('visudo', ['-cf', file], { encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(text).toContain('alice, bob ALL = (aptmirror) NOPASSWD: APT_REPO_PREPROD_MIRRORS\n');
      const commands = text
        .split('Cmnd_Alias APT_REPO_PREPROD_MIRRORS = \\\n')[1]
        .split('\nalice')[0]
        .split(/, \\\n/)
        .map((c) => c.trim());
      expect(commands.map((c) => c.replace('/usr/bin/node /opt/apt-repo/preprod/apt-repo.cjs --root / ', ''))).toEqual(
        ['list', 'sync', 'rollback', 'gc'].flatMap((c) => [`mirror ${c} *`, `--json mirror ${c} *`]),
      );
      // Without mirrors, no such rule.
      expect(renderSudoers(config())).not.toContain('MIRRORS');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rules of the same channel under other roots (sandboxes) and of both channels parse together', () => {
    // sudo reads every file of /etc/sudoers.d into one namespace: an alias defined twice makes it
    // drop the rule (seen when two sandboxes' rules met).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sudoers-'));
    try {
      const file = path.join(dir, 'all');
      const rules = [config(), config({ root: '/srv/sandbox-a' }), config({ root: '/srv/sandbox-b' }), config({}, 'prod')].map((c) =>
        renderSudoers(c),
      );
      fs.writeFileSync(file, rules.join(''), { mode: 0o440 });
      const r = spawnSync('visudo', ['-cf', file], { encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(new Set(rules.map((t) => /Cmnd_Alias (\S+)/.exec(t)![1])).size).toBe(4);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('account keys in the stack config', () => {
  it('defaults: per-channel indexer and signer users, shared groups, apt-ops as the SSH user', () => {
    const c = config({ uploaders: '[]', operators: '[]' });
    expect([c.serviceUser, c.signerUser, c.poolGroup, c.uploadGroup, c.operatorGroup, c.opsUser, c.uploadUser]).toEqual([
      'aptrepo-preprod',
      'aptsign-preprod',
      'aptrepo',
      'aptupload',
      'aptops',
      'root',
      undefined,
    ]);
    expect(config({ sshUser: 'deploy', uploadUser: 'ci-upload' }).opsUser).toBe('deploy');
  });

  it.each<[string, RawConfig, RegExp]>([
    [
      'apt-repo:uploaders.0.authorizedKeys.0',
      { uploaders: JSON.stringify([{ name: 'u', authorizedKeys: [`command="/bin/sh" ${KEY}`] }]) },
      /without options/,
    ],
    [
      'apt-repo:uploaders.0.authorizedKeys.0',
      { uploaders: JSON.stringify([{ name: 'u', authorizedKeys: [`${KEY}\n${KEY}`] }]) },
      /control character|one OpenSSH public key per line/,
    ],
    ['apt-repo:operators.0.name', { operators: JSON.stringify([{ name: 'Bad Name', authorizedKeys: [KEY] }]) }, /user name/],
    ['apt-repo:uploaders', { upstream: 'staging' }, /promotion only/],
    ['apt-repo:nodePath', { nodePath: 'node' }, /absolute path/],
    ['apt-repo:operators.0.name', { operators: JSON.stringify([{ name: 'root', authorizedKeys: [KEY] }]) }, /system or SSH account/],
    [
      'apt-repo:operators.0.name',
      { operators: JSON.stringify([{ name: 'ci-upload', authorizedKeys: [KEY] }]) },
      /already the name of uploaders.0.name/,
    ],
    ['apt-repo:poolGroup', { serviceUser: 'aptrepo' }, /already the name of serviceUser/],
  ])('%s is refused', (key, over, reason) => {
    let err: unknown;
    try {
      config(over);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError & { key: string }).key).toBe(key);
    expect((err as Error).message).toMatch(reason);
  });
});
