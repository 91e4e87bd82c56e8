import { channelPaths } from '../repo/channel';
import { channelLayout, serverDefaults } from './layout';
import { keySchema, parseStackConfig } from './stackConfig';

const RAW = {
  domain: 'example.org',
  sshHost: 'repo.example.org',
  sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q',
  sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
  codenames: '["bookworm"]',
  architectures: '["amd64"]',
  allowedCidrs: '["10.0.0.0/8"]',
  tls: '{"mode":"none"}',
  allowPlainHttp: 'true',
};

describe('serverDefaults', () => {
  test.each(['/', '/tmp/sandbox'])('agrees with the indexer defaults under %s, and the stack config takes it', (root) => {
    const d = serverDefaults(root, 'preprod');
    const repo = channelPaths(root, 'preprod');
    expect(d).toEqual({
      webRoot: repo.webRoot,
      incomingDir: repo.incomingDir,
      indexerPath: `${root === '/' ? '' : root}/opt/apt-repo/preprod/apt-repo.cjs`,
    });
    const { config } = parseStackConfig({ ...RAW, root }, 'preprod');
    expect({ webRoot: config.webRoot, incomingDir: config.incomingDir, indexerPath: config.indexerPath }).toEqual(d);
    const layout = channelLayout(config);
    expect(layout.configDir).toBe(repo.configDir);
    expect(layout.indexerDir).toBe(`${root === '/' ? '' : root}/opt/apt-repo/preprod`);
  });
});

describe('keySchema', () => {
  test('is the key rule without its default: a value is checked, none is refused', () => {
    expect(keySchema('sshPort').parse('2200')).toBe(2200);
    expect(() => keySchema('sshPort').parse(undefined)).toThrow();
    expect(() => keySchema('channel').parse('Prod!')).toThrow(/expected a channel name/);
    expect(keySchema('remotePrefix').parse('sudo -n -u aptrepo')).toBe('sudo -n -u aptrepo');
  });
});
