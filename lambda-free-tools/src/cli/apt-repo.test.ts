/**
 * The global options of apt-repo as the operators' sudo rule uses them (infra/sudoers.ts:
 * `<node> <indexer> --root <root> --channel <channel> *`): the rule fixes the root and the channel,
 * and the `*` must not be able to give another one, before or after the command name.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from './apt-repo';

let dir: string;
let stderr: string;
let write: jest.SpyInstance;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-repo-cli-'));
  stderr = '';
  write = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  process.exitCode = undefined;
});
afterEach(() => {
  write.mockRestore();
  process.exitCode = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const run = (...args: string[]) => main(['node', 'apt-repo', ...args]);

describe('--root and --channel are taken once', () => {
  it.each([
    ['a second --root before the command', ['--root', '/srv/fixed', '--channel', 'prod', '--root', 'OTHER', 'status']],
    ['a second --root after the command', ['--root', '/srv/fixed', '--channel', 'prod', 'status', '--root', 'OTHER']],
    ['a second --root in the = form', ['--root', '/srv/fixed', '--channel', 'prod', 'status', '--root=OTHER']],
    ['a second --channel', ['--root', 'OTHER', '--channel', 'prod', 'status', '--channel', 'preprod']],
  ])('%s is a usage error (exit 2) and nothing is read', async (_what, args) => {
    const code = await run(...args.map((a) => a.replace('OTHER', dir)));
    expect(code).toBe(2);
    expect(stderr).toMatch(/option '--(root|channel) <\w+>' argument .* is invalid\. given twice: the first value \(.*\) stays, another is refused/);
    expect(stderr).not.toContain('missing (one codename per line');
  });

  it('one --root and one --channel still work, and the defaults apply when they are absent', async () => {
    expect(await run('--root', dir, '--channel', 'prod', 'init', '--codenames', 'bookworm')).toBe(0);
    expect(fs.existsSync(path.join(dir, 'etc/epiconcept/apt_repo/prod/liste_dist'))).toBe(true);
    process.exitCode = undefined;
    expect(await run('--root', dir, 'init', '--codenames', 'bookworm')).toBe(0);
    expect(fs.existsSync(path.join(dir, 'etc/epiconcept/apt_repo/preprod/liste_dist'))).toBe(true);
  });
});
