/**
 * The global options of apt-repo as the operators' sudo rule uses them (infra/sudoers.ts:
 * `<node> <indexer> --root <root> --channel <channel> *`): the rule fixes the root and the channel,
 * and the `*` must not be able to give another one, before or after the command name.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as channelModule from '../repo/channel';
import { main } from './apt-repo';

let dir: string;
let stderr: string;
let write: jest.SpyInstance;
let out: jest.SpyInstance;
beforeEach(() => {
  out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
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
  out.mockRestore();
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
    expect(stderr).toMatch(
      /option '--(root|channel) <\w+>' argument .* is invalid\. given twice: the first value \(.*\) stays, another is refused/,
    );
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

describe('an unknown --channel is a usage error naming the known channels, and nothing is created', () => {
  beforeEach(async () => {
    expect(await run('--root', dir, 'init', '--codenames', 'bookworm')).toBe(0);
    expect(await run('--root', dir, '--channel', 'prod', 'init', '--upstream', 'preprod', '--codenames', 'bookworm')).toBe(0);
    stderr = '';
  });
  const channels = () => fs.readdirSync(path.join(dir, 'etc/epiconcept/apt_repo')).sort();
  const tree = () => fs.readdirSync(dir, { recursive: true }).map(String).sort();

  it.each([
    ['a read-only command', ['pending']],
    ['a writing command', ['publish']],
    ['ingest', ['ingest']],
    ['versions (which reads every channel)', ['versions', 'hello']],
  ])('--channel prd with %s: exit 2, known channels listed, no init suggested, nothing written', async (_what, cmd) => {
    const before = tree();
    expect(await run('--root', dir, '--channel', 'prd', ...cmd)).toBe(2);
    expect(stderr).toContain("unknown channel 'prd'");
    expect(stderr).toContain('known channels: preprod, prod');
    expect(stderr).not.toContain('init');
    expect(channels()).toEqual(['preprod', 'prod']);
    expect(tree()).toEqual(before);
  });

  it('a name that is not a channel name is exit 2 too', async () => {
    expect(await run('--root', dir, '--channel', 'Prod', 'status')).toBe(2);
    expect(stderr).toMatch(/unknown channel 'Prod'.*not a channel name.*known channels: preprod, prod/);
  });

  it('a root without channels (a forgotten --root) says so: exit 2, nothing created there', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-repo-empty-'));
    try {
      expect(await run('--root', empty, 'publish')).toBe(2);
      expect(stderr).toContain(`unknown channel 'preprod' under --root ${empty}`);
      expect(stderr).toContain('no channel is configured there (is --root right?');
      expect(fs.readdirSync(empty)).toEqual([]);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('init still creates a new channel', async () => {
    expect(await run('--root', dir, '--channel', 'staging', 'init')).toBe(0);
    expect(channels()).toEqual(['preprod', 'prod', 'staging']);
  });
});

describe('a writing command run by another user than the owner of the web root refuses (exit 2)', () => {
  // The owner: an account that is not us. `nobody` (65534) exists on every Debian system.
  const NOBODY = 65534;
  beforeEach(async () => {
    expect(await run('--root', dir, 'init', '--codenames', 'bookworm')).toBe(0);
    expect(await run('--root', dir, 'keygen', '--type', 'ed25519')).toBe(0);
    expect(await run('--root', dir, 'publish')).toBe(0);
    stderr = '';
  });
  // The tests run as root (README): root is the usual wrong user.
  it('as root on a channel owned by nobody: every writer refuses and names the user; readers still work', async () => {
    const webRoot = path.join(dir, 'srv/apt/preprod');
    const chown = (p: string) => {
      fs.lchownSync(p, NOBODY, NOBODY);
      if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chown(path.join(p, n));
    };
    chown(webRoot);
    const before = fs.readdirSync(dir, { recursive: true }).map(String).sort();
    for (const cmd of [
      ['publish'],
      ['ingest'],
      ['gc'],
      ['rollback'],
      ['remove', 'hello=1.0'],
      ['keygen', '--force'],
      ['backup', '--to', path.join(dir, 'b')],
      ['init'],
      ['import', dir],
    ]) {
      stderr = '';
      expect([cmd, await run('--root', dir, ...cmd)]).toEqual([cmd, 2]);
      expect(stderr).toContain(`${webRoot} belongs to nobody`);
      expect(stderr).toContain('it runs as root');
      expect(stderr).toMatch(new RegExp(`Run it as nobody: runuser -u nobody -- \\S+ \\S+ --root ${dir} ${cmd[0]}`));
    }
    expect(fs.readdirSync(dir, { recursive: true }).map(String).sort()).toEqual(before);
    for (const cmd of [['status'], ['verify'], ['generations'], ['versions', 'hello']]) {
      stderr = '';
      const code = await run('--root', dir, ...cmd);
      expect(stderr).not.toContain('belongs to');
      // versions: no such package (exit 2 with its own message), the others succeed.
      expect([cmd, code]).toEqual([cmd, cmd[0] === 'versions' ? 2 : 0]);
    }
  });
});

describe('the channel is loaded once per command run', () => {
  it('a writing command checks its owner and acts on the same loaded channel; a reader loads it once too', async () => {
    expect(await run('--root', dir, '--channel', 'preprod', 'init', '--codenames', 'bookworm')).toBe(0);
    expect(await run('--root', dir, '--channel', 'prod', 'init', '--codenames', 'bookworm')).toBe(0);
    const loads = jest.spyOn(channelModule, 'loadChannel');
    try {
      for (const [cmd, channel] of [
        [['gc'], 'preprod'],
        [['status'], 'preprod'],
        [['promote', '--all-pending', '--dry-run'], 'prod'],
      ] as const) {
        loads.mockClear();
        expect([cmd, await run('--root', dir, '--channel', channel, ...cmd)]).toEqual([cmd, 0]);
        // Counted: the loads through the module (the CLI's); the pair's other side is loaded inside repo/channel.ts.
        expect([cmd, loads.mock.calls.map(([o]) => o.channel)]).toEqual([cmd, [channel]]);
      }
    } finally {
      loads.mockRestore();
    }
  });
});
