/** The committed stack files: valid once their placeholders and secrets are set, refused before. */
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { CONFIG_KEYS, parseStackConfig, type RawConfig } from './config';

const root = path.resolve(__dirname, '..');

/** Reads Pulumi.<stack>.yaml's `apt-repo:` keys the way Pulumi hands them to the program (structured values as JSON). */
function rawConfig(stack: string): RawConfig {
  const doc = parse(fs.readFileSync(path.join(root, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
  const raw: RawConfig = {};
  for (const [k, v] of Object.entries(doc.config)) {
    expect(k.startsWith('apt-repo:')).toBe(true);
    raw[k.slice('apt-repo:'.length)] = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return raw;
}

const SECRETS: RawConfig = {
  sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
  clientCredentials: JSON.stringify([{ username: 'web-front-1', password: 'a-long-password-1' }]),
};
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q';

describe('Pulumi.yaml', () => {
  it('names the project apt-repo and runs stacks/index.ts with TypeScript', () => {
    const doc = parse(fs.readFileSync(path.join(root, 'Pulumi.yaml'), 'utf8'));
    expect(doc).toMatchObject({ name: 'apt-repo', main: 'stacks/index.ts', runtime: { name: 'nodejs', options: { typescript: true } } });
  });
});

describe.each(['preprod', 'prod'])('Pulumi.%s.yaml', (stack) => {
  it('uses only known keys, and holds every plain key apt-ops reads', () => {
    const raw = rawConfig(stack);
    for (const k of Object.keys(raw)) expect(CONFIG_KEYS).toContain(k);
    for (const k of [
      'sshHost',
      'sshPort',
      'sshUser',
      'sshHostKey',
      'indexerPath',
      'nodePath',
      'remotePrefix',
      'root',
      'channel',
      'incomingDir',
      'opsUser',
    ])
      expect(raw[k]).toBeDefined();
    for (const k of ['sshPrivateKey', 'clientCredentials', 'signingKey']) expect(raw[k]).toBeUndefined();
  });

  it('is refused until the host key placeholder is replaced', () => {
    expect(() => parseStackConfig({ ...rawConfig(stack), ...SECRETS }, stack)).toThrow(ConfigError);
    expect(() => parseStackConfig({ ...rawConfig(stack), ...SECRETS }, stack)).toThrow(/apt-repo:sshHostKey/);
  });

  it('is refused until the operator key placeholder is replaced', () => {
    expect(() => parseStackConfig({ ...rawConfig(stack), ...SECRETS, sshHostKey: HOST_KEY }, stack)).toThrow(
      /apt-repo:operators\.0\.authorizedKeys\.0/,
    );
  });

  it('is valid once the host key, the operator key and the secrets are set', () => {
    const { config } = parseStackConfig(
      {
        ...rawConfig(stack),
        ...SECRETS,
        sshHostKey: HOST_KEY,
        operators: JSON.stringify([{ name: 'apt-ops', authorizedKeys: [HOST_KEY + ' ci@example'] }]),
      },
      stack,
    );
    // Nobody but `pulumi up` connects as root: apt-ops runs as an operator, through sudo.
    expect(config.ssh.user).toBe('root');
    expect(config.opsUser).toBe('apt-ops');
    expect(config.operators.map((o) => o.name)).toContain(config.opsUser);
    expect(config.remotePrefix).toBe(`sudo -n -u aptrepo-${stack}`);
    expect(config.serviceUser).toBe(`aptrepo-${stack}`);
    expect(config.signerUser).toBe(`aptsign-${stack}`);
    expect(config.serverName).toBe(`apt-${stack}.epiconcept.fr`);
    expect(config.channel).toBe(stack);
    expect(config.indexerPath).toBe(`/opt/apt-repo/${stack}/apt-repo.cjs`);
    expect(config.services).toBe('systemd');
    expect(config.upstream).toBe(stack === 'prod' ? 'preprod' : undefined);
  });
});

describe('Pulumi.dev.yaml', () => {
  it('is valid once the authorized key is set, with a container running systemd', () => {
    const raw = rawConfig('dev');
    expect(() => parseStackConfig({ ...raw, ...SECRETS }, 'dev')).toThrow(/apt-repo:devContainer.authorizedKey/);
    const dev = JSON.parse(raw.devContainer!);
    const { config } = parseStackConfig(
      {
        ...raw,
        ...SECRETS,
        devContainer: JSON.stringify({ ...dev, authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDev dev@laptop' }),
      },
      'dev',
    );
    expect(config.ssh).toEqual({ host: '127.0.0.1', port: 2222, user: 'root' });
    expect(config.services).toBe('systemd');
    expect(config.allowPlainHttp).toBe(true);
  });
});
