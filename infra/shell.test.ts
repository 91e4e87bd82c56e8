import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SCRIPT_PRELUDE } from './shell';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
(asRoot ? describe : describe.skip)('SCRIPT_PRELUDE ensure_dir', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shell-test-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (body: string) => spawnSync('bash', ['-c', `${SCRIPT_PRELUDE}${body}\nfinish\n`], { encoding: 'utf8' });

  it("refuses a symlink another user planted, leaving its target's mode and owner alone", () => {
    const target = path.join(dir, 'target');
    fs.mkdirSync(target, { mode: 0o700 });
    const link = path.join(dir, 'build');
    fs.symlinkSync(target, link);
    fs.lchownSync(link, 65534, 65534);
    const r = run(`ensure_dir '${link}' 2775 nobody root`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/symbolic link/);
    const st = fs.statSync(target);
    expect([st.mode & 0o7777, st.uid]).toEqual([0o700, 0]);
  });

  it("accepts a symlink root made (a data disk) and fixes the directory's mode", () => {
    const target = path.join(dir, 'data');
    fs.mkdirSync(target, { mode: 0o700 });
    const link = path.join(dir, 'srv');
    fs.symlinkSync(target, link);
    const r = run(`ensure_dir '${link}' 0755 root root`);
    expect([r.status, r.stdout.trim()]).toEqual([0, 'CHANGED']);
    expect(fs.statSync(target).mode & 0o7777).toBe(0o755);
  });
});
