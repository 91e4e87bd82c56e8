import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, UnknownChannelError, UsageError } from '../errors';
import { channelPaths, defaultSignerSocket, initChannel, loadChannel, parseList, resolveChannelPair } from './channel';
import { DEFAULT_ROUTING } from './routing';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'channel-test-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const cfg = (name = 'preprod') => channelPaths(root, name).configDir;
function write(file: string, text: string) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}
async function configError(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

test('parseList ignores comments and blank lines', () => {
  expect(parseList('# dists\nbookworm\n\n  bullseye  # old\n#trixie\n')).toEqual(['bookworm', 'bullseye']);
});

test('initChannel creates directories and defaults, loadChannel reads them back', async () => {
  const ch = await initChannel({ root, channel: 'preprod' });
  expect(ch.codenames).toEqual(['bookworm']);
  expect(ch.architectures).toEqual(['amd64']);
  expect(ch.webRoot).toBe(path.join(root, 'srv/apt/preprod'));
  expect(ch.stateDir).toBe(path.join(root, 'var/lib/apt-repo/preprod'));
  expect(ch.signingKeyFile).toBe(path.join(cfg(), 'signing-key.asc'));
  for (const d of [path.join(ch.webRoot, 'pool'), ch.stateDir, ch.backupDir, ch.incomingDir, ch.rejectedDir])
    expect(fs.statSync(d).isDirectory()).toBe(true);
  expect(fs.statSync(ch.configDir).mode & 0o777).toBe(0o750);
  expect(ch.routing).toEqual(DEFAULT_ROUTING);
  expect(ch.lockTimeoutMs).toBe(120_000);
  expect(ch.generationsKeep).toBeGreaterThanOrEqual(2);
  expect(await loadChannel({ root, channel: 'preprod' })).toEqual(ch);
});

test('initChannel never overwrites existing files', async () => {
  write(path.join(cfg('prod'), 'liste_dist'), 'bullseye\ntrixie\n');
  const ch = await initChannel({ root, channel: 'prod', codenames: ['jammy'], architectures: ['arm64', 'amd64'], upstream: 'preprod' });
  expect(ch.codenames).toEqual(['bullseye', 'trixie']);
  expect(ch.architectures).toEqual(['arm64', 'amd64']);
  expect(ch.upstream).toBe('preprod');
  const again = await initChannel({ root, channel: 'prod', upstream: 'other' });
  expect(again.upstream).toBe('preprod');
});

test('repo.yaml settings are applied', async () => {
  write(path.join(cfg(), 'liste_dist'), 'bookworm\n');
  write(path.join(cfg(), 'liste_arch'), 'amd64\narm64\n');
  write(
    path.join(cfg(), 'repo.yaml'),
    [
      'origin: Example',
      'label: Example preprod',
      'webRoot: /var/www/apt',
      'generationsKeep: 3',
      'validUntilDays: 10',
      'lockTimeoutSeconds: 2.5',
      'routing:',
      '  - pattern: "\\\\+php(\\\\d+)$"',
      '    codenames: [bookworm]',
    ].join('\n'),
  );
  const ch = await loadChannel({ root, channel: 'preprod' });
  expect(ch).toMatchObject({
    origin: 'Example',
    label: 'Example preprod',
    webRoot: '/var/www/apt',
    generationsKeep: 3,
    validUntilDays: 10,
    lockTimeoutMs: 2500,
  });
  expect(ch.routing).toEqual([{ pattern: '\\+php(\\d+)$', codenames: ['bookworm'] }]);
});

test('repo.yaml signerSocket: absent means in-process signing, set means the signing service', async () => {
  const ch = await initChannel({ root, channel: 'preprod' });
  expect(ch.signerSocket).toBeUndefined();
  // The line init writes stays a comment: init alone keeps in-process signing (init + keygen + publish).
  expect(fs.readFileSync(path.join(cfg(), 'repo.yaml'), 'utf8')).toMatch(/^# signerSocket: \/run\/apt-repo\/sign-preprod\/sign\.sock/m);
  fs.appendFileSync(path.join(cfg(), 'repo.yaml'), `signerSocket: ${defaultSignerSocket(root, 'preprod')}\n`);
  expect((await loadChannel({ root, channel: 'preprod' })).signerSocket).toBe(path.join(root, 'run/apt-repo/sign-preprod/sign.sock'));
  write(path.join(cfg(), 'repo.yaml'), 'signerSocket: run/sign.sock\n');
  const e = await configError(loadChannel({ root, channel: 'preprod' }));
  expect(e.key).toBe(`${path.join(cfg(), 'repo.yaml')}:signerSocket`);
  expect(e.message).toMatch(/absolute/);
});

describe('configuration errors name the file and key', () => {
  beforeEach(() => {
    write(path.join(cfg(), 'liste_dist'), 'bookworm\n');
    write(path.join(cfg(), 'liste_arch'), 'amd64\n');
  });

  test('missing liste_dist', async () => {
    fs.rmSync(path.join(cfg(), 'liste_dist'));
    const e = await configError(loadChannel({ root, channel: 'preprod' }));
    expect(e.key).toBe(path.join(cfg(), 'liste_dist'));
    expect(e.message).toMatch(/missing/);
  });

  test('empty liste_arch (comments only)', async () => {
    write(path.join(cfg(), 'liste_arch'), '# nothing yet\n\n');
    const e = await configError(loadChannel({ root, channel: 'preprod' }));
    expect(e.key).toBe(path.join(cfg(), 'liste_arch'));
    expect(e.message).toMatch(/no architecture/);
  });

  test('unknown architecture', async () => {
    write(path.join(cfg(), 'liste_arch'), 'amd64\namd46\n');
    const e = await configError(loadChannel({ root, channel: 'preprod' }));
    expect(e.key).toBe(`${path.join(cfg(), 'liste_arch')}:amd46`);
    expect(e.message).toMatch(/unknown architecture/);
  });

  test('all in liste_arch', async () => {
    write(path.join(cfg(), 'liste_arch'), 'amd64\nall\n');
    expect((await configError(loadChannel({ root, channel: 'preprod' }))).message).toMatch(/implied/);
  });

  test('malformed codename', async () => {
    write(path.join(cfg(), 'liste_dist'), 'Bookworm/main\n');
    expect((await configError(loadChannel({ root, channel: 'preprod' }))).key).toBe(`${path.join(cfg(), 'liste_dist')}:Bookworm/main`);
  });

  test('unknown repo.yaml key', async () => {
    write(path.join(cfg(), 'repo.yaml'), 'origin: X\nlabell: typo\n');
    const e = await configError(loadChannel({ root, channel: 'preprod' }));
    expect(e.key).toBe(`${path.join(cfg(), 'repo.yaml')}:labell`);
    expect(e.message).toMatch(/unknown key/);
  });

  test('wrong type in repo.yaml', async () => {
    write(path.join(cfg(), 'repo.yaml'), 'generationsKeep: 1\n');
    expect((await configError(loadChannel({ root, channel: 'preprod' }))).key).toBe(`${path.join(cfg(), 'repo.yaml')}:generationsKeep`);
  });

  test('relative path in repo.yaml', async () => {
    write(path.join(cfg(), 'repo.yaml'), 'webRoot: srv/apt\n');
    const e = await configError(loadChannel({ root, channel: 'preprod' }));
    expect(e.key).toBe(`${path.join(cfg(), 'repo.yaml')}:webRoot`);
    expect(e.message).toMatch(/absolute/);
  });

  test('invalid routing pattern', async () => {
    write(path.join(cfg(), 'repo.yaml'), 'routing:\n  - pattern: "+deb("\n    codenames: [bookworm]\n');
    expect((await configError(loadChannel({ root, channel: 'preprod' }))).key).toBe(`${path.join(cfg(), 'repo.yaml')}:routing.0.pattern`);
  });

  test('repo.yaml that is not YAML', async () => {
    write(path.join(cfg(), 'repo.yaml'), 'origin: [unclosed\n');
    expect((await configError(loadChannel({ root, channel: 'preprod' }))).key).toBe(path.join(cfg(), 'repo.yaml'));
  });

  test('bad channel name: a usage error (exit 2), nothing created', async () => {
    const err = await loadChannel({ root, channel: '../etc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownChannelError);
    expect((err as UnknownChannelError).exitCode).toBe(2);
    expect((err as Error).message).toContain("unknown channel '../etc'");
    expect((err as Error).message).toContain('not a channel name');
    await expect(initChannel({ root, channel: '../etc' })).rejects.toThrow(UsageError);
  });

  test('a channel without its folder is unknown (exit 2): the configured channels are named, nothing is created', async () => {
    await initChannel({ root, channel: 'preprod' });
    await initChannel({ root, channel: 'prod', upstream: 'preprod' });
    const before = fs.readdirSync(root, { recursive: true }).map(String).sort();
    const err = await loadChannel({ root, channel: 'prd' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownChannelError);
    expect((err as UnknownChannelError).known).toEqual(['preprod', 'prod']);
    expect((err as Error).message).toBe(
      `unknown channel 'prd' under --root ${root}: ${path.join(root, 'etc/epiconcept/apt_repo/prd')} does not exist; known channels: preprod, prod`,
    );
    expect(fs.readdirSync(root, { recursive: true }).map(String).sort()).toEqual(before);
  });
});

describe('channel pairs', () => {
  test('prod without an upstream key takes preprod (loadChannel); another channel has no upstream by default', async () => {
    await initChannel({ root, channel: 'preprod' });
    expect((await initChannel({ root, channel: 'prod' })).upstream).toBe('preprod');
    expect((await loadChannel({ root, channel: 'preprod' })).upstream).toBeUndefined();
    expect((await initChannel({ root, channel: 'staging' })).upstream).toBeUndefined();
    write(path.join(cfg('prod'), 'repo.yaml'), 'upstream: staging\n');
    expect((await loadChannel({ root, channel: 'prod' })).upstream).toBe('staging');
  });

  test('a broken repo.yaml in a third channel stops neither side of prod→preprod', async () => {
    await initChannel({ root, channel: 'preprod' });
    const prod = await initChannel({ root, channel: 'prod' });
    // Sorted before both, so a search over every channel would meet it first.
    await initChannel({ root, channel: 'aaa' });
    write(path.join(cfg('aaa'), 'repo.yaml'), 'upstream: [not, a, name\n');
    await configError(loadChannel({ root, channel: 'aaa' }));
    for (const side of ['prod', 'preprod', prod]) {
      const pair = await resolveChannelPair(root, side);
      expect([pair.upstream.name, pair.downstream.name]).toEqual(['preprod', 'prod']);
    }
  });

  test("a channel no one takes from: the unreadable channel's error when there is one, a usage error otherwise", async () => {
    await initChannel({ root, channel: 'lonely' });
    await initChannel({ root, channel: 'aaa' });
    write(path.join(cfg('aaa'), 'repo.yaml'), 'upstream: [not, a, name\n');
    await configError(resolveChannelPair(root, 'lonely'));
    fs.rmSync(cfg('aaa'), { recursive: true });
    await expect(resolveChannelPair(root, 'lonely')).rejects.toThrow(
      new UsageError(
        `no channel takes packages from lonely: none has upstream: lonely under ${path.join(root, 'etc/epiconcept/apt_repo')}`,
      ),
    );
  });

  test("prod's upstream not configured is a usage error", async () => {
    await initChannel({ root, channel: 'prod' });
    await expect(resolveChannelPair(root, 'prod')).rejects.toThrow(UsageError);
  });
});
