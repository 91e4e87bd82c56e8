/**
 * The client setup script as text, and run for real with dash into a temp root (APT_REPO_ROOT):
 * files, modes, refusals, idempotence. lambda-free-tools/test/client-setup.e2e.test.ts runs it before
 * a real apt-get.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { authMachine, checkChannelUrl, renderClientSetupScript, type ClientSetupSpec } from './setupScript';

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGVhbm9ueW1vdXMga2V5\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n';
const SPEC: ClientSetupSpec = {
  channel: 'prod',
  url: 'https://apt-prod.example.org/',
  keyName: 'epiconcept-prod',
  codenames: ['bookworm', 'trixie'],
  component: 'main',
  publicKeyArmored: KEY,
};
const PASSWORD = 'p4ss-w0rd_!$`x';

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'client-setup-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Writes the script of `spec` and runs it with dash under a new temp root (or `root`). */
function run(
  spec: ClientSetupSpec,
  args: string[] = [],
  env: Record<string, string> = {},
  root = fs.mkdtempSync(path.join(work, 'root-')),
): { code: number | null; stdout: string; stderr: string; root: string } {
  const script = path.join(work, `setup-${spec.channel}.sh`);
  fs.writeFileSync(script, renderClientSetupScript(spec));
  const r = spawnSync('dash', [script, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', APT_REPO_ROOT: root, ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, root };
}

const files = (root: string) => ({
  keyring: path.join(root, 'usr/share/keyrings/epiconcept-prod-archive-keyring.asc'),
  sources: path.join(root, 'etc/apt/sources.list.d/epiconcept-prod.sources'),
  auth: path.join(root, 'etc/apt/auth.conf.d/epiconcept-prod.conf'),
});
const mode = (f: string) => (fs.lstatSync(f).mode & 0o777).toString(8);
/** Every entry under `dir`, relative, sorted (temp files would show here). */
const tree = (dir: string): string[] =>
  fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => fs.lstatSync(path.join(dir, f)).isFile())
    .sort();

describe('renderClientSetupScript (text)', () => {
  const text = renderClientSetupScript(SPEC);

  it('is a POSIX sh script with set -eu, the settings quoted, the key embedded whole', () => {
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toMatch(/^set -eu$/m);
    expect(text).toContain("URL='https://apt-prod.example.org/'\n");
    expect(text).toContain("CODENAMES='bookworm trixie'\n");
    expect(text).toContain("AUTH_MACHINE='apt-prod.example.org'\n");
    expect(text).toContain("DEFAULT_CODENAME=''\n");
    expect(text).toContain(`<<'APT_REPO_PUBLIC_KEY'\n${KEY}APT_REPO_PUBLIC_KEY\n`);
    // dash parses it.
    const file = path.join(work, 'parse.sh');
    fs.writeFileSync(file, text);
    expect(spawnSync('dash', ['-n', file]).status).toBe(0);
  });

  it('says in its header what it does, for which apt, and how to do it by hand on older apt', () => {
    const header = text.slice(0, text.indexOf('set -eu'));
    expect(header).toContain('apt >= 1.8');
    expect(header).toContain('/etc/apt/auth.conf.d/epiconcept-prod.conf');
    expect(header).toContain('/etc/apt/auth.conf, 0600 root');
    expect(header).toContain('https://USER:PASSWORD@apt-prod.example.org/ CODENAME main');
    expect(header).toContain('"is not signed"');
    expect(header).toMatch(/APT_REPO_USERNAME.*APT_REPO_PASSWORD_FILE/);
    for (const l of header.trimEnd().split('\n')) expect(l).toMatch(/^#/);
  });

  it('bakes a default codename the channel serves, and refuses one it does not', () => {
    expect(renderClientSetupScript({ ...SPEC, defaultCodename: 'trixie' })).toContain("DEFAULT_CODENAME='trixie'\n");
    expect(() => renderClientSetupScript({ ...SPEC, defaultCodename: 'sid' })).toThrow(/'sid' is not served by channel prod/);
  });

  it('refuses what it cannot put in a script or a source', () => {
    expect(() => renderClientSetupScript({ ...SPEC, url: 'ftp://h/' })).toThrow(/not an http or https URL/);
    expect(() => renderClientSetupScript({ ...SPEC, url: 'https://u:p@h/' })).toThrow(/carries credentials/);
    expect(() => renderClientSetupScript({ ...SPEC, url: 'https://h/debian' })).toThrow(/must end with '\/'/);
    expect(() => renderClientSetupScript({ ...SPEC, url: 'https://h/?x=1' })).toThrow(/query/);
    expect(() => renderClientSetupScript({ ...SPEC, keyName: '../x' })).toThrow(/keyName/);
    expect(() => renderClientSetupScript({ ...SPEC, codenames: [] })).toThrow(/codenames/);
    expect(() => renderClientSetupScript({ ...SPEC, codenames: ['Bookworm'] })).toThrow(/codenames:Bookworm/);
    expect(() => renderClientSetupScript({ ...SPEC, publicKeyArmored: 'not a key' })).toThrow(/armored/);
    expect(() => renderClientSetupScript({ ...SPEC, publicKeyArmored: KEY.replace('=abcd', 'APT_REPO_PUBLIC_KEY') })).toThrow(
      /cannot embed/,
    );
  });

  it('names the auth.conf machine as renderAuthConf does: no scheme for https, http:// for http', () => {
    expect(authMachine('https://apt.example.org/')).toBe('apt.example.org');
    expect(authMachine('https://apt.example.org:8443/')).toBe('apt.example.org:8443');
    expect(authMachine('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(checkChannelUrl('HTTPS://Apt.Example.org:443/', 'url')).toBe('https://apt.example.org/');
    expect(renderClientSetupScript({ ...SPEC, url: 'http://127.0.0.1:8080/' })).toContain("AUTH_MACHINE='http://127.0.0.1:8080'\n");
  });
});

describe('the script run with dash into a temp root', () => {
  it('installs the key and the deb822 source 0644, the credentials 0600, from the environment', () => {
    const r = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const f = files(r.root);
    expect(fs.readFileSync(f.keyring, 'utf8')).toBe(KEY);
    expect(fs.readFileSync(f.sources, 'utf8')).toBe(
      ['Types: deb', 'URIs: https://apt-prod.example.org/', 'Suites: bookworm', 'Components: main', `Signed-By: ${f.keyring}`, ''].join(
        '\n',
      ),
    );
    expect(fs.readFileSync(f.auth, 'utf8')).toBe(`machine apt-prod.example.org login web1 password ${PASSWORD}\n`);
    expect([mode(f.keyring), mode(f.sources), mode(f.auth)]).toEqual(['644', '644', '600']);
    if (process.getuid?.() === 0) for (const x of Object.values(f)) expect([fs.statSync(x).uid, fs.statSync(x).gid]).toEqual([0, 0]);
    // No temp file left beside them.
    expect(tree(r.root)).toEqual([
      'etc/apt/auth.conf.d/epiconcept-prod.conf',
      'etc/apt/sources.list.d/epiconcept-prod.sources',
      'usr/share/keyrings/epiconcept-prod-archive-keyring.asc',
    ]);
    // The password is in no output.
    expect(r.stdout).not.toContain(PASSWORD);
  });

  it('changes nothing on a second run (same inode, mtime, content), and says so', () => {
    const env = { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD };
    const first = run(SPEC, ['trixie'], env);
    const f = files(first.root);
    const past = new Date(Date.now() - 3600_000);
    for (const x of Object.values(f)) fs.utimesSync(x, past, past);
    const before = Object.values(f).map((x) => [fs.statSync(x).ino, fs.statSync(x).mtimeMs, fs.readFileSync(x, 'utf8')]);
    const second = run(SPEC, ['trixie'], env, first.root);
    expect(second.code).toBe(0);
    expect(second.stdout.match(/unchanged /g)).toHaveLength(3);
    expect(second.stdout).not.toMatch(/wrote /);
    expect(Object.values(f).map((x) => [fs.statSync(x).ino, fs.statSync(x).mtimeMs, fs.readFileSync(x, 'utf8')])).toEqual(before);
    expect(tree(first.root)).toHaveLength(3);
  });

  it('repairs a wrong mode and replaces a link at a target instead of writing through it', () => {
    const first = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD });
    const f = files(first.root);
    fs.chmodSync(f.auth, 0o644);
    const elsewhere = path.join(work, 'elsewhere.sources');
    fs.writeFileSync(elsewhere, 'untouched\n');
    fs.rmSync(f.sources);
    fs.symlinkSync(elsewhere, f.sources);
    const again = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD }, first.root);
    expect(again.code).toBe(0);
    expect(mode(f.auth)).toBe('600');
    expect(fs.lstatSync(f.sources).isFile()).toBe(true);
    expect(fs.readFileSync(elsewhere, 'utf8')).toBe('untouched\n');
    expect(again.stdout).toContain(`wrote ${f.auth}`);
    expect(again.stdout).toContain(`wrote ${f.sources}`);
    expect(again.stdout).toContain(`unchanged ${f.keyring}`);
  });

  it('refuses a codename the channel does not serve, writing nothing (exit 2)', () => {
    const r = run(SPEC, ['sid'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("this repository serves no 'sid'");
    expect(r.stderr).toContain('one of: bookworm trixie');
    expect(tree(r.root)).toEqual([]);
    for (const bad of ['bookworm trixie', '*', 'Bookworm']) {
      const b = run(SPEC, [bad]);
      expect([bad, b.code]).toEqual([bad, 2]);
      expect(tree(b.root)).toEqual([]);
    }
    expect(run(SPEC, ['bookworm', 'trixie']).code).toBe(2);
  });

  it("takes the codename from /etc/os-release by default, else the renderer's default, else refuses", () => {
    const root = fs.mkdtempSync(path.join(work, 'root-'));
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME="trixie"\n');
    expect(run(SPEC, [], {}, root).code).toBe(0);
    expect(fs.readFileSync(files(root).sources, 'utf8')).toContain('Suites: trixie\n');
    const baked = run({ ...SPEC, defaultCodename: 'bookworm' }, [], {}, root);
    expect(baked.code).toBe(0);
    expect(fs.readFileSync(files(root).sources, 'utf8')).toContain('Suites: bookworm\n');
    fs.writeFileSync(path.join(root, 'etc/os-release'), 'VERSION_CODENAME=sid\n');
    const sid = run(SPEC, [], {}, root);
    expect(sid.code).toBe(2);
    expect(sid.stderr).toContain("serves no 'sid'");
    const none = run(SPEC);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no CODENAME given');
  });

  it('writes no credentials without APT_REPO_USERNAME, and keeps those already there', () => {
    const r = run(SPEC, ['bookworm']);
    expect(r.code).toBe(0);
    expect(fs.existsSync(files(r.root).auth)).toBe(false);
    expect(r.stdout).toContain('no APT_REPO_USERNAME');
    run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD }, r.root);
    expect(run(SPEC, ['bookworm'], {}, r.root).code).toBe(0);
    expect(fs.readFileSync(files(r.root).auth, 'utf8')).toContain(PASSWORD);
  });

  it('reads the password from APT_REPO_PASSWORD_FILE (its first line)', () => {
    const pw = path.join(work, 'pw');
    fs.writeFileSync(pw, `${PASSWORD}\nignored\n`, { mode: 0o600 });
    const r = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web2', APT_REPO_PASSWORD_FILE: pw });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(files(r.root).auth, 'utf8')).toBe(`machine apt-prod.example.org login web2 password ${PASSWORD}\n`);
    fs.writeFileSync(pw, PASSWORD); // no final newline
    const r2 = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web2', APT_REPO_PASSWORD_FILE: pw });
    expect(fs.readFileSync(files(r2.root).auth, 'utf8')).toContain(`password ${PASSWORD}\n`);
  });

  it('refuses half or unusable credentials and a relative root, writing nothing (exit 2)', () => {
    const cases: Record<string, string>[] = [
      { APT_REPO_USERNAME: 'web1' },
      { APT_REPO_PASSWORD: PASSWORD },
      { APT_REPO_USERNAME: 'web 1', APT_REPO_PASSWORD: PASSWORD },
      { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: 'a\tb' },
      { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD: PASSWORD, APT_REPO_PASSWORD_FILE: '/dev/null' },
    ];
    for (const env of cases) {
      const r = run(SPEC, ['bookworm'], env);
      expect([JSON.stringify(env), r.code]).toEqual([JSON.stringify(env), 2]);
      expect(tree(r.root)).toEqual([]);
    }
    const empty = path.join(work, 'empty-pw');
    fs.writeFileSync(empty, '\n');
    const r = run(SPEC, ['bookworm'], { APT_REPO_USERNAME: 'web1', APT_REPO_PASSWORD_FILE: empty });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('empty first line');
    const rel = run(SPEC, ['bookworm'], {}, 'relative/root');
    expect(rel.code).toBe(2);
    expect(rel.stderr).toContain('APT_REPO_ROOT must be an absolute path');
  });
});
