import { ConfigError } from '../errors';
import { normaliseFingerprint, parseStackConfig, type RawConfig } from './stackConfig';

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

function base(over: RawConfig = {}): RawConfig {
  return {
    domain: 'epiconcept.fr',
    sshHost: 'repo.example.org',
    sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q root@repo',
    sshPrivateKey: KEY,
    codenames: JSON.stringify(['bookworm', 'bullseye']),
    architectures: JSON.stringify(['amd64']),
    allowedCidrs: JSON.stringify(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']),
    clientCredentials: JSON.stringify([{ username: 'web1', password: 'a-long-password-1' }]),
    tls: JSON.stringify({ mode: 'files', certFile: 'certs/apt.pem', keyFile: 'certs/apt.key' }),
    ...over,
  };
}

function errorOf(raw: RawConfig, stack = 'preprod'): ConfigError {
  try {
    parseStackConfig(raw, stack);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseStackConfig', () => {
  it('fills the defaults from the stack name and the root', () => {
    const { config, secrets } = parseStackConfig(base(), 'preprod');
    expect(config).toMatchObject({
      channel: 'preprod',
      serverName: 'apt-preprod.epiconcept.fr',
      ssh: { host: 'repo.example.org', port: 22, user: 'root' },
      root: '/',
      webRoot: '/srv/apt/preprod',
      indexerPath: '/opt/apt-repo/preprod/apt-repo.cjs',
      incomingDir: '/srv/apt/incoming',
      nodePath: 'node',
      remotePrefix: '',
      allowedCidrs: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'],
      usernames: ['web1'],
      httpPort: 80,
      httpsPort: 443,
      services: 'systemd',
      keyName: 'epiconcept-preprod',
      generationsKeep: 5,
      backupKeep: 7,
    });
    expect(secrets.clientCredentials).toEqual([{ username: 'web1', password: 'a-long-password-1' }]);
    expect(JSON.stringify(config)).not.toContain('a-long-password-1');
    expect(JSON.stringify(config)).not.toContain('PRIVATE KEY');
  });

  it('puts every default path under a sandbox root and turns services off there', () => {
    const { config } = parseStackConfig(base({ root: '/tmp/sandbox', sshPort: '2222' }), 'prod');
    expect(config.webRoot).toBe('/tmp/sandbox/srv/apt/prod');
    expect(config.indexerPath).toBe('/tmp/sandbox/opt/apt-repo/prod/apt-repo.cjs');
    expect(config.incomingDir).toBe('/tmp/sandbox/srv/apt/incoming');
    expect(config.services).toBe('none');
    expect(config.ssh.port).toBe(2222);
  });

  it.each<[string, RawConfig, RegExp, string?]>([
    ['apt-repo:allowedCidrs.1', { allowedCidrs: JSON.stringify(['10.0.0.0/8', '10.0.0.300/32']) }, /not an IPv4 or IPv6 address/],
    ['apt-repo:allowedCidrs.0', { allowedCidrs: JSON.stringify(['10.1.2.3/8']) }, /bits set after the \/8 prefix/],
    ['apt-repo:allowedCidrs.0', { allowedCidrs: JSON.stringify(['10.0.0.0/33']) }, /longer than 32 bits/],
    ['apt-repo:allowedCidrs', { allowedCidrs: '[]' }, /at least one CIDR/],
    ['apt-repo:architectures.1', { architectures: JSON.stringify(['amd64', 'amd46']) }, /unknown architecture 'amd46'/],
    ['apt-repo:codenames', { codenames: '[]' }, /at least one codename/],
    ['apt-repo:codenames', { codenames: '[bookworm' }, /not valid JSON/],
    ['apt-repo:allowPlainHttp', { tls: JSON.stringify({ mode: 'none' }) }, /basic auth credentials would cross the network in clear/],
    ['apt-repo:sshHost', { sshHost: undefined }, /is required/],
    ['apt-repo:sshHostKey', { sshHostKey: undefined }, /is required/],
    ['apt-repo:sshHostKey', { sshHostKey: 'not a key' }, /public host key line/],
    ['apt-repo:sshPrivateKey', { sshPrivateKey: undefined }, /required/],
    ['apt-repo:domain', { domain: undefined }, /required/],
    ['apt-repo:sshPort', { sshPort: '70000' }, /port 1-65535/],
    ['apt-repo:root', { root: 'relative/dir' }, /absolute path/],
    ['apt-repo:root', { root: '/tmp/my sandbox' }, /unquoted into the nginx vhost/],
    ['apt-repo:webRoot', { webRoot: '/srv/apt/x;autoindex on' }, /unquoted into the nginx vhost/],
    ['apt-repo:indexerPath', { indexerPath: '/opt/%h/apt-repo.cjs' }, /unquoted into the nginx vhost and systemd units/],
    ['apt-repo:nodePath', { nodePath: '$NODE' }, /unquoted into systemd units/],
    ['apt-repo:tls.mode', { tls: JSON.stringify({ mode: 'letsencrypt' }) }, /mode: 'files'/],
    [
      'apt-repo:tls.certFile',
      { tls: JSON.stringify({ mode: 'files', keyFile: 'k' }) },
      /is required: expected the path of the PEM certificate chain/,
    ],
    ['apt-repo:tls.email', { tls: JSON.stringify({ mode: 'certbot', email: 'nope' }) }, /e-mail/],
    ['apt-repo:clientCredentials.0.password', { clientCredentials: JSON.stringify([{ username: 'a', password: 'short' }]) }, /at least 12/],
    [
      'apt-repo:clientCredentials',
      {
        clientCredentials: JSON.stringify([
          { username: 'a', password: 'a-long-password-1' },
          { username: 'a', password: 'a-long-password-2' },
        ]),
      },
      /appears twice/,
    ],
    ['apt-repo:upstream', { upstream: 'preprod' }, /cannot be the channel itself/],
    ['apt-repo:generationsKeep', { generationsKeep: '1' }, /at least 2/],
    ['apt-repo:backupKeep', { backupKeep: '0' }, /at least 1/],
    ['apt-repo:channel', {}, /stack name 'My_Stack' is not a channel name/, 'My_Stack'],
    ['apt-repo:colour', { colour: 'blue' }, /unknown key/],
    // A default for `stack` keeps the callback's arity at 3: jest would take a 4th parameter for `done`.
  ])('%s: %s', (key, over, reason, stack = 'preprod') => {
    const e = errorOf(base(over), stack);
    expect(e.key).toBe(key);
    expect(e.reason).toMatch(reason);
  });

  it('allows plain HTTP only when asked, and never echoes a secret in an error', () => {
    const { config } = parseStackConfig(base({ tls: JSON.stringify({ mode: 'none' }), allowPlainHttp: 'true' }), 'preprod');
    expect(config.allowPlainHttp).toBe(true);
    const e = errorOf(base({ clientCredentials: '{"username":"a","password":"hunter2-is-not-json' }));
    expect(e.key).toBe('apt-repo:clientCredentials');
    expect(e.message).not.toContain('hunter2');
  });

  it('lets the dev stack go without sshHost and sshHostKey', () => {
    const { config } = parseStackConfig(
      base({ sshHost: undefined, sshHostKey: undefined, devContainer: JSON.stringify({ authorizedKey: 'ssh-ed25519 AAAAC3Nza dev' }) }),
      'dev',
    );
    expect(config.ssh).toEqual({ host: '127.0.0.1', port: 2222, user: 'root' });
    expect(config.devContainer?.httpsPort).toBe(8443);
  });
});

describe('parseStackConfig refuses control characters and unit prefixes (injection)', () => {
  const KEY_LINE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q ci@build';
  /** A valid value for every scalar key: a control character is added to it. */
  const SCALARS: Record<string, string> = {
    channel: 'preprod',
    domain: 'epiconcept.fr',
    serverName: 'apt.example.org',
    sshHost: 'repo.example.org',
    sshPort: '22',
    sshUser: 'deploy',
    sshHostKey: KEY_LINE,
    root: '/',
    webRoot: '/srv/apt/preprod',
    indexerPath: '/opt/apt-repo/preprod/apt-repo.cjs',
    nodePath: '/usr/bin/node',
    remotePrefix: 'sudo -n',
    incomingDir: '/srv/apt/incoming',
    allowPlainHttp: 'false',
    httpPort: '80',
    httpsPort: '443',
    listenAddress: '127.0.0.1',
    upstream: 'staging',
    origin: 'Epiconcept',
    label: 'Epiconcept preprod',
    description: 'Epiconcept packages',
    keyName: 'epiconcept-preprod',
    keyEmail: 'apt-preprod@epiconcept.fr',
    generationsKeep: '5',
    validUntilDays: '7',
    metricsDir: '/var/lib/prometheus/node-exporter',
    serviceUser: 'aptrepo-preprod',
    poolGroup: 'aptrepo',
    signerUser: 'aptsign-preprod',
    uploadGroup: 'aptupload',
    operatorGroup: 'aptops',
    opsUser: 'ops',
    uploadUser: 'ci',
    services: 'systemd',
    installPackages: 'true',
    backupSchedule: '*-*-* 02:30:00',
  };
  /** JSON keys: the value with a control character at `path`. */
  const NESTED: [string, string, unknown][] = [
    ['codenames.1', 'codenames', ['bookworm', 'bullseye\r']],
    ['architectures.0', 'architectures', ['amd64\r']],
    ['allowedCidrs.0', 'allowedCidrs', ['10.0.0.0/8\r']],
    ['clientCredentials.0.username', 'clientCredentials', [{ username: 'web1\r', password: 'a-long-password-1' }]],
    ['clientCredentials.0.password', 'clientCredentials', [{ username: 'web1', password: 'a-long-\rpassword-1' }]],
    ['tls.certFile', 'tls', { mode: 'files', certFile: 'certs/apt.pem\r', keyFile: 'certs/apt.key' }],
    ['tls.email', 'tls', { mode: 'certbot', email: 'ops@epiconcept.fr\r' }],
    ['ingestSources.2', 'ingestSources', ['build', 'ci', 'php\r']],
    ['devContainer.authorizedKey', 'devContainer', { authorizedKey: `${KEY_LINE}\r` }],
    ['uploaders.0.name', 'uploaders', [{ name: 'ci\r', authorizedKeys: [KEY_LINE] }]],
    ['uploaders.0.authorizedKeys.0', 'uploaders', [{ name: 'ci', authorizedKeys: [`${KEY_LINE}\rcommand="sh"`] }]],
    ['operators.0.authorizedKeys.0', 'operators', [{ name: 'alice', authorizedKeys: [`${KEY_LINE}\n`] }]],
  ];

  it.each(Object.keys(SCALARS))('%s: a carriage return is refused, naming the key', (key) => {
    const e = errorOf(base({ [key]: `${SCALARS[key]}\rPersistent=false` }));
    expect(e.key).toBe(`apt-repo:${key}`);
    expect(e.reason).toMatch(/control character \(U\+000D\)/);
  });

  it.each(NESTED)('%s: a control character is refused, naming the key', (at, key, value) => {
    const e = errorOf(base({ [key]: JSON.stringify(value) }));
    expect(e.key).toBe(`apt-repo:${at}`);
    expect(e.reason).toMatch(/control character \(U\+000[AD]\)/);
  });

  it.each([
    ['NUL', '\0', '0000'],
    ['tab', '\t', '0009'],
    ['line feed', '\n', '000A'],
    ['escape', '\x1b', '001B'],
    ['delete', '\x7f', '007F'],
  ])('refuses a %s too (backupSchedule)', (_name, ch, code) => {
    const e = errorOf(base({ backupSchedule: `*-*-* 02:30:00${ch}` }));
    expect([e.key, e.reason]).toEqual(['apt-repo:backupSchedule', `holds a control character (U+${code}): only printable text is allowed`]);
  });

  it('lets armored keys keep their line breaks, but nothing else, and never echoes a secret', () => {
    expect(() => parseStackConfig(base({ sshPrivateKey: KEY.replace(/\n/g, '\r\n') }), 'preprod')).not.toThrow();
    const e = errorOf(base({ sshPrivateKey: KEY.replace('AAAA', 'AA\x1bAA') }));
    expect(e.key).toBe('apt-repo:sshPrivateKey');
    expect(e.message).not.toContain('AA\x1bAA');
    const p = errorOf(base({ clientCredentials: JSON.stringify([{ username: 'web1', password: 'secret-\x07-password' }]) }));
    expect(p.key).toBe('apt-repo:clientCredentials.0.password');
    expect(p.message).not.toContain('secret-');
  });

  it.each([
    ['nodePath', '+/usr/bin/node'],
    ['nodePath', '-/usr/bin/node'],
    ['nodePath', '@/usr/bin/node'],
    ['nodePath', '!/usr/bin/node'],
    ['nodePath', ':/usr/bin/node'],
    ['nodePath', '-node'],
    ['nodePath', ' /usr/bin/node'],
    ['indexerPath', '+/opt/apt-repo/apt-repo.cjs'],
    ['indexerPath', '-/opt/apt-repo/apt-repo.cjs'],
    ['webRoot', '@/srv/apt/preprod'],
    ['root', '!/'],
    ['incomingDir', ':/srv/apt/incoming'],
    // ReadWritePaths= reads a leading '-' as "ignore when missing".
    ['metricsDir', '-/var/lib/prometheus/node-exporter'],
  ])('%s %j: a systemd ExecStart= prefix is refused', (key, value) => {
    const e = errorOf(base({ [key]: value }));
    expect(e.key).toBe(`apt-repo:${key}`);
    expect(e.reason).toMatch(/cannot start with \+ - @ ! : or white space/);
  });

  it('still takes a plain command name or absolute path for nodePath', () => {
    expect(parseStackConfig(base({ nodePath: 'node' }), 'preprod').config.nodePath).toBe('node');
    expect(parseStackConfig(base({ nodePath: '/usr/local/bin/node-18' }), 'preprod').config.nodePath).toBe('/usr/local/bin/node-18');
  });

  it('takes a routing table for repo.yaml, and names the rule whose pattern is not a regular expression', () => {
    const routing = [
      { pattern: '\\+el(\\d+)$', codenames: ['bookworm'] },
      { pattern: '~php(\\d+)', codenames: ['$1'] },
    ];
    expect(parseStackConfig(base({ routing: JSON.stringify(routing) }), 'preprod').config.routing).toEqual(routing);
    expect(parseStackConfig(base(), 'preprod').config.routing).toBeUndefined();
    const bad = errorOf(base({ routing: JSON.stringify([...routing, { pattern: '(unclosed', codenames: ['bookworm'] }]) }));
    expect([bad.key, bad.message]).toEqual(['apt-repo:routing.2.pattern', expect.stringContaining('is not a valid regular expression')]);
    expect(errorOf(base({ routing: JSON.stringify([{ pattern: 'x', codenames: [] }]) })).key).toBe('apt-repo:routing.0.codenames');
  });

  it('takes metricsDir, an absolute folder of its own, normalised; unset: none', () => {
    expect(parseStackConfig(base(), 'preprod').config.metricsDir).toBeUndefined();
    expect(parseStackConfig(base({ metricsDir: '/var/lib/prometheus/node-exporter/' }), 'preprod').config.metricsDir).toBe(
      '/var/lib/prometheus/node-exporter',
    );
    // A sandbox root: the folder is a real path, like webRoot.
    expect(parseStackConfig(base({ root: '/srv/sandbox', metricsDir: '/srv/sandbox/metrics/prom' }), 'prod').config.metricsDir).toBe(
      '/srv/sandbox/metrics/prom',
    );
  });

  it.each<[string, RegExp]>([
    ['var/lib/prometheus/node-exporter', /expected an absolute path/],
    ['./metrics', /expected an absolute path/],
    ['/var/lib/../tmp/metrics', /expected an absolute path without \.\./],
    ['/var/lib/prometheus/node exporter', /letters, digits/],
    // The hardened units would write into their private /tmp, or not see the folder at all.
    ['/tmp/metrics', /cannot be under \/tmp /],
    ['/var/tmp/metrics', /cannot be under \/var\/tmp/],
    ['/home/prometheus/textfile', /cannot be under \/home/],
    ['/root/metrics', /cannot be under \/root/],
    ['/run/prometheus', /cannot be under \/run/],
    // Its owner and mode become root:aptrepo 1775: never a system folder.
    ['/', /system folder/],
    ['/var', /system folder/],
    ['/var/lib', /system folder/],
    ['/etc/prometheus', /cannot be under \/etc/],
    // Served by nginx, an uploader's chroot, or the channel's own folders.
    ['/srv/apt/preprod/metrics', /inside webRoot/],
    ['/srv/apt/prod/metrics', /inside the web roots/],
    ['/srv/apt/incoming/metrics', /inside incomingDir/],
    ['/var/lib/apt-repo/metrics', /inside the service home/],
    ['/var/backups/apt-repo/preprod/metrics', /inside backupDir/],
  ])('refuses metricsDir %j, naming the key', (value, reason) => {
    const e = errorOf(base({ metricsDir: value }));
    expect([e.key, e.reason]).toEqual(['apt-repo:metricsDir', expect.stringMatching(reason)]);
  });

  it('normalises a fingerprint as the SigningKey component compares it: every white space removed, upper case', () => {
    expect(normaliseFingerprint(' ab cd\tef\u00a0 01 ')).toBe('ABCDEF01');
    const spaced = 'abcd 0123 abcd 0123 abcd  0123 abcd 0123 abcd 0123';
    expect(parseStackConfig(base({ signingKeyFingerprint: spaced }), 'preprod').config.signingKeyFingerprint).toBe(
      normaliseFingerprint(spaced),
    );
  });
});
