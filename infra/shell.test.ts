/**
 * SCRIPT_PRELUDE's ensure_dir and install_file, run by bash as root on one folder at a time (links
 * planted by another user, modes, idempotence). The same helpers under a rename race by another
 * user are shell.e2e.test.ts.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SCRIPT_PRELUDE } from './shell';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const NOBODY = 65534;

const run = (body: string) => spawnSync('bash', ['-c', `${SCRIPT_PRELUDE}${body}\nfinish\n`], { encoding: 'utf8' });
const meta = (p: string) => {
  const st = fs.lstatSync(p);
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
};

(asRoot ? describe : describe.skip)('SCRIPT_PRELUDE ensure_dir and install_file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shell-test-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A folder like a drop folder before issue 8: group-writable by nogroup (the "uploaders"), no sticky bit. */
  function groupWritable(name: string): string {
    const g = path.join(dir, name);
    fs.mkdirSync(g);
    fs.chownSync(g, 0, NOBODY);
    fs.chmodSync(g, 0o2775);
    return g;
  }

  it("refuses a symlink another user planted, leaving its target's mode and owner alone", () => {
    const target = path.join(dir, 'target');
    fs.mkdirSync(target, { mode: 0o700 });
    const link = path.join(dir, 'build');
    fs.symlinkSync(target, link);
    fs.lchownSync(link, NOBODY, NOBODY);
    const r = run(`ensure_dir '${link}' 2775 nobody root`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${link} is a symbolic link owned by another user than root`);
    expect(meta(target)).toBe('700 0:0');
  });

  it('refuses any symlink in a folder other users can write, whoever owns the link', () => {
    const g = groupWritable('incoming');
    const target = path.join(dir, 'target');
    fs.mkdirSync(target, { mode: 0o700 });
    fs.symlinkSync(target, path.join(g, 'build'));
    for (const body of [
      `ensure_dir '${g}/build' 2775 nobody nogroup`,
      `ensure_dir '${g}/build/bookworm' 2775 nobody nogroup`,
      `echo x > "$APT_REPO_TMP/x"; install_file "$APT_REPO_TMP/x" '${g}/build/f' 0644 root root`,
    ]) {
      const r = run(body);
      expect([body, r.status]).toEqual([body, 1]);
      expect(r.stderr).toContain(`${g}/build is a symbolic link in a folder another user can write`);
    }
    expect(fs.readdirSync(target)).toEqual([]);
    expect(meta(target)).toBe('700 0:0');
  });

  it("accepts a symlink root made (a data disk) and fixes the directory's mode", () => {
    const target = path.join(dir, 'data');
    fs.mkdirSync(target, { mode: 0o700 });
    const link = path.join(dir, 'srv');
    fs.symlinkSync(target, link);
    const r = run(`ensure_dir '${link}' 0755 root root`);
    expect([r.status, r.stdout.trim()]).toEqual([0, 'CHANGED']);
    expect(fs.statSync(target).mode & 0o7777).toBe(0o755);
    // Parents through the link are fine too.
    expect(run(`ensure_dir '${link}/apt/preprod' 0750 nobody nogroup`).status).toBe(0);
    expect(meta(path.join(target, 'apt/preprod'))).toBe(`750 ${NOBODY}:${NOBODY}`);
  });

  it('creates missing parents, then changes nothing on a second run', () => {
    const p = path.join(dir, 'srv/apt/incoming');
    expect(run(`ensure_dir '${p}' 2775 nobody nogroup`).stdout.trim()).toBe('CHANGED');
    expect(meta(p)).toBe(`2775 ${NOBODY}:${NOBODY}`);
    expect(meta(path.join(dir, 'srv/apt'))).toBe('755 0:0');
    const again = run(`ensure_dir '${p}' 2775 nobody nogroup`);
    expect([again.status, again.stdout]).toEqual([0, '']);
  });

  it('clears set-group-ID when the wanted mode has none, and is then a no-op', () => {
    // `chmod 0755` keeps set-group-ID on a directory (coreutils): the mode never converged and
    // every run reported CHANGED.
    const p = path.join(dir, 'incoming');
    fs.mkdirSync(p);
    fs.chmodSync(p, 0o2775);
    expect(run(`ensure_dir '${p}' 0755 root root`).stdout.trim()).toBe('CHANGED');
    expect(meta(p)).toBe('755 0:0');
    expect(run(`ensure_dir '${p}' 0755 root root`).stdout).toBe('');
  });

  it('installs a file with its mode and owner, replaces a planted link instead of writing through it, and is idempotent', () => {
    const g = groupWritable('web');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'victim\n', { mode: 0o644 });
    fs.symlinkSync(victim, path.join(g, 'key.asc'));
    const body = `printf 'public key\\n' > "$APT_REPO_TMP/k"\ninstall_file "$APT_REPO_TMP/k" '${g}/key.asc' 0640 nobody nogroup\necho "changed=$FILE_CHANGED"`;
    const r = run(body);
    expect([r.status, r.stdout]).toEqual([0, 'changed=1\nCHANGED\n']);
    expect(meta(path.join(g, 'key.asc'))).toBe(`640 ${NOBODY}:${NOBODY}`);
    expect(fs.readFileSync(path.join(g, 'key.asc'), 'utf8')).toBe('public key\n');
    expect([meta(victim), fs.readFileSync(victim, 'utf8')]).toEqual(['644 0:0', 'victim\n']);
    expect(fs.readdirSync(g)).toEqual(['key.asc']);
    expect(run(body).stdout).toBe('changed=0\n');
  });

  it('install_file refuses a missing folder instead of creating it', () => {
    const r = run(`echo x > "$APT_REPO_TMP/x"; install_file "$APT_REPO_TMP/x" '${dir}/nope/f' 0644 root root`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${dir}/nope does not exist`);
  });
});
