import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp, runCli } from '../../../../test/harness/cli';

let root: string;
beforeEach(() => {
  root = mkTemp('init-cli');
});
afterEach(() => rmTemp(root));

test('init creates the channel layout with defaults, and a second run changes nothing', async () => {
  const r = await runCli([
    '--root',
    root,
    '--channel',
    'prod',
    '--json',
    'init',
    '--upstream',
    'preprod',
    '--codenames',
    'bullseye,bookworm',
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const data = JSON.parse(r.stdout);
  expect(data).toMatchObject({ channel: 'prod', codenames: ['bullseye', 'bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  const configDir = path.join(root, 'etc/epiconcept/apt_repo/prod');
  expect(fs.statSync(configDir).mode & 0o777).toBe(0o750);
  expect(fs.readFileSync(path.join(configDir, 'liste_dist'), 'utf8')).toBe('bullseye\nbookworm\n');
  expect(fs.readFileSync(path.join(configDir, 'liste_arch'), 'utf8')).toBe('amd64\n');
  for (const d of [
    'srv/apt/prod/pool',
    'var/lib/apt-repo/prod',
    'var/backups/apt-repo/prod',
    'srv/apt/incoming',
    'srv/apt/incoming/rejected',
  ]) {
    expect(fs.statSync(path.join(root, d)).isDirectory()).toBe(true);
  }
  fs.writeFileSync(path.join(configDir, 'liste_arch'), 'amd64\narm64\n');
  const again = await runCli(['--root', root, '--channel', 'prod', 'init', '--architectures', 'i386']);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/architectures\s+amd64 arm64/);
  expect(fs.readFileSync(path.join(configDir, 'liste_arch'), 'utf8')).toBe('amd64\narm64\n');
});

test('init refuses an unknown architecture before writing anything', async () => {
  const r = await runCli(['--root', root, 'init', '--architectures', 'amd64,x86']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/architectures:x86: unknown architecture/);
  expect(fs.existsSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/liste_arch'))).toBe(false);
});

test('a channel with an invalid liste_arch is reported naming the file and item', async () => {
  expect((await runCli(['--root', root, 'init'])).code).toBe(0);
  fs.writeFileSync(path.join(root, 'etc/epiconcept/apt_repo/preprod/liste_arch'), 'amd64\nx86\n');
  const r = await runCli(['--root', root, 'generations']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(path.join(root, 'etc/epiconcept/apt_repo/preprod/liste_arch:x86'));
});
