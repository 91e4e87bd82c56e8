import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { clientSetup } from '../lambda-free-tools/src/cli/commands/clientSetup';
import { loadChannel } from '../lambda-free-tools/src/repo/channel';
import { parseStackConfig, type RawConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelUrl, publicKeyFiles, renderAuthConf, renderClientFiles, stackChannelUrl } from './clientFiles';
import { renderHostBaseScript } from './hostBaseScript';
import { channelLayout } from './layout';
import { renderListes, renderRepoYaml } from './repoFiles';
import { renderSystemdUnits } from './systemd';

function config(over: RawConfig = {}, stack = 'preprod') {
  return parseStackConfig(
    {
      domain: 'example.org',
      sshHost: 'h',
      sshHostKey: 'ssh-ed25519 AAAA',
      sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n',
      codenames: '["bookworm","bullseye"]',
      architectures: '["amd64"]',
      allowedCidrs: '["10.0.0.0/8"]',
      tls: '{"mode":"certbot","email":"ops@example.org"}',
      ...over,
    },
    stack,
  ).config;
}

describe('renderListes / renderRepoYaml', () => {
  it('writes one item per line and the explicit paths repo/channel.ts reads', () => {
    const { listeDist, listeArch } = renderListes(['bookworm', 'bullseye'], ['amd64', 'arm64']);
    expect(listeDist.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['bookworm', 'bullseye']);
    expect(listeArch.endsWith('amd64\narm64\n')).toBe(true);
    const cfg = config({ root: '/sb', upstream: 'preprod', validUntilDays: '10', tls: '{"mode":"none"}', allowPlainHttp: 'true' }, 'prod');
    const doc = parse(renderRepoYaml(cfg, channelLayout(cfg)));
    expect(doc).toEqual({
      origin: 'Epiconcept',
      label: 'Epiconcept prod',
      description: 'Epiconcept packages, prod channel',
      component: 'main',
      keyName: 'epiconcept-prod',
      // The channel URL clients use (stackChannelUrl): apt-repo client-setup's default --url.
      url: 'http://apt-prod.example.org/',
      webRoot: '/sb/srv/apt/prod',
      stateDir: '/sb/var/lib/apt-repo/prod',
      backupDir: '/sb/var/backups/apt-repo/prod',
      incomingDir: '/sb/srv/apt/incoming',
      generationsKeep: 5,
      backupKeep: 7,
      validUntilDays: 10,
      upstream: 'preprod',
      signerSocket: '/sb/run/apt-repo/sign-prod/sign.sock',
    });
    // The stack key backupKeep reaches the indexer through repo.yaml (repo/channel.ts reads it).
    expect(parse(renderRepoYaml(config({ backupKeep: '3' }), channelLayout(config({}))))).toMatchObject({ backupKeep: 3 });
  });
});

describe('repo.yaml url and apt-repo client-setup', () => {
  it('the indexer loads the rendered repo.yaml, and client-setup takes the stack channel URL from it', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'repo-yaml-url-'));
    try {
      const cfg = config({ root: tmp, tls: '{"mode":"none"}', allowPlainHttp: 'true', httpPort: '8080' }, 'prod');
      const l = channelLayout(cfg);
      const { listeDist, listeArch } = renderListes(cfg.codenames, cfg.architectures);
      fs.mkdirSync(l.configDir, { recursive: true });
      fs.mkdirSync(l.webRoot, { recursive: true });
      fs.writeFileSync(path.join(l.configDir, 'liste_dist'), listeDist);
      fs.writeFileSync(path.join(l.configDir, 'liste_arch'), listeArch);
      fs.writeFileSync(path.join(l.configDir, 'repo.yaml'), renderRepoYaml(cfg, l));
      fs.writeFileSync(
        path.join(l.webRoot, `${cfg.keyName}-archive-keyring.asc`),
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nx\n-----END PGP PUBLIC KEY BLOCK-----\n',
      );
      const ch = await loadChannel({ root: tmp, channel: 'prod' });
      expect(ch.url).toBe('http://apt-prod.example.org:8080/');
      expect(ch.url).toBe(stackChannelUrl(cfg));
      const r = await clientSetup(ch, {});
      expect(r.url).toBe(ch.url);
      expect(r.script).toContain("URL='http://apt-prod.example.org:8080/'\n");
      expect(r.script).toContain("AUTH_MACHINE='http://apt-prod.example.org:8080'\n");
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('renderSystemdUnits', () => {
  it('watches the drop zones and runs ingest and backup as the service user', () => {
    const cfg = config({ ingestSources: '["ci"]' });
    const units = Object.fromEntries(renderSystemdUnits(cfg, channelLayout(cfg)).map((u) => [u.name, u.content]));
    expect(Object.keys(units)).toEqual([
      'apt-repo-ingest-preprod.service',
      'apt-repo-ingest-preprod.path',
      'apt-repo-ingest-preprod.timer',
      'apt-repo-catalogue-preprod.service',
      'apt-repo-catalogue-preprod.timer',
      'apt-repo-backup-preprod.service',
      'apt-repo-backup-preprod.timer',
    ]);
    expect(units['apt-repo-ingest-preprod.path'].match(/^PathChanged=.*$/gm)).toEqual([
      'PathChanged=/srv/apt/incoming',
      'PathChanged=/srv/apt/incoming/ci',
      'PathChanged=/srv/apt/incoming/ci/bookworm',
      'PathChanged=/srv/apt/incoming/ci/bullseye',
    ]);
    expect(units['apt-repo-ingest-preprod.service']).toContain(
      'ExecStart=node /opt/apt-repo/preprod/apt-repo.cjs --root / --channel preprod ingest\n',
    );
    expect(units['apt-repo-ingest-preprod.service']).toContain('User=aptrepo-preprod\n');
    expect(units['apt-repo-backup-preprod.service']).toContain('backup --to /var/backups/apt-repo/preprod\n');
    expect(units['apt-repo-backup-preprod.timer']).toContain('OnCalendar=*-*-* 02:30:00\n');
    // The catalogue's refresh: every 10 minutes, writing what a writer writes (recovery may finish an ingest).
    expect(units['apt-repo-catalogue-preprod.service']).toContain(
      'ExecStart=node /opt/apt-repo/preprod/apt-repo.cjs --root / --channel preprod catalogue\n',
    );
    expect(units['apt-repo-catalogue-preprod.service']).toContain(
      'ReadWritePaths=/srv/apt/preprod /var/lib/apt-repo/preprod /srv/apt/incoming\n',
    );
    expect(units['apt-repo-catalogue-preprod.timer']).toContain('OnCalendar=*:0/10\n');
  });

  it('has no ingest units for a downstream channel', () => {
    const cfg = config({ upstream: 'preprod' }, 'prod');
    expect(renderSystemdUnits(cfg, channelLayout(cfg)).map((u) => u.name)).toEqual([
      'apt-repo-catalogue-prod.service',
      'apt-repo-catalogue-prod.timer',
      'apt-repo-backup-prod.service',
      'apt-repo-backup-prod.timer',
    ]);
  });
});

describe('renderClientFiles / renderAuthConf', () => {
  it('renders a one-line entry and a deb822 stanza per codename with Signed-By', () => {
    const url = channelUrl('apt-prod.example.org', true, 80, 443);
    expect(url).toBe('https://apt-prod.example.org/');
    const files = renderClientFiles({ url, codenames: ['bookworm'], component: 'main', keyName: 'epiconcept-prod' });
    expect(files.sourcesList.bookworm).toBe(
      'deb [signed-by=/usr/share/keyrings/epiconcept-prod-archive-keyring.gpg] https://apt-prod.example.org/ bookworm main\n',
    );
    expect(files.sources.bookworm).toBe(
      'Types: deb\nURIs: https://apt-prod.example.org/\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/epiconcept-prod-archive-keyring.gpg\n',
    );
  });

  it('names the public key files as the server publishes them, with their URLs', () => {
    const url = channelUrl('apt-prod.example.org', true, 80, 8443);
    expect(publicKeyFiles(url, 'epiconcept-prod')).toEqual({
      armored: 'epiconcept-prod-archive-keyring.asc',
      binary: 'epiconcept-prod-archive-keyring.gpg',
      armoredUrl: 'https://apt-prod.example.org:8443/epiconcept-prod-archive-keyring.asc',
      binaryUrl: 'https://apt-prod.example.org:8443/epiconcept-prod-archive-keyring.gpg',
    });
    // The names are those of the files the signing-key step installs in the web root.
    const cfg = config();
    const l = channelLayout(cfg);
    const files = publicKeyFiles('https://x/', cfg.keyName);
    expect([path.posix.basename(l.publicKeyAsc), path.posix.basename(l.publicKeyGpg)]).toEqual([files.armored, files.binary]);
    expect(renderClientFiles({ url: 'https://x/', codenames: ['bookworm'], component: 'main', keyName: cfg.keyName }).keyringPath).toBe(
      `/usr/share/keyrings/${files.binary}`,
    );
  });

  it('writes auth.conf entries without scheme for HTTPS, with http:// and the port for plain HTTP', () => {
    expect(renderAuthConf('https://apt-prod.example.org/', [{ username: 'u', password: 'p' }])).toEqual({
      u: 'machine apt-prod.example.org login u password p\n',
    });
    expect(renderAuthConf(channelUrl('h.example.org', false, 8080, 443), [{ username: 'u', password: 'p' }])).toEqual({
      u: 'machine http://h.example.org:8080 login u password p\n',
    });
  });
});

describe('renderHostBaseScript', () => {
  it('installs only missing packages (certbot only when used) and creates the service user', () => {
    const s = renderHostBaseScript(config());
    expect(s).toContain('for p in nginx nodejs xz-utils certbot; do');
    expect(s).toContain('useradd --system --user-group');
    expect(renderHostBaseScript(config({ tls: '{"mode":"none"}', allowPlainHttp: 'true' }))).toContain(
      'for p in nginx nodejs xz-utils; do',
    );
    expect(renderHostBaseScript(config({ installPackages: 'false' }))).not.toContain('apt-get');
    expect(renderHostBaseScript(config({ remotePrefix: 'sudo -n -u aptrepo' }))).toContain(
      'for p in nginx nodejs xz-utils certbot sudo; do',
    );
    expect(
      renderHostBaseScript(
        config({ nodePath: '/usr/bin/node', operators: JSON.stringify([{ name: 'alice', authorizedKeys: ['ssh-ed25519 AAAA a'] }]) }),
      ),
    ).toContain('for p in nginx nodejs xz-utils certbot sudo; do');
  });

  it('creates the indexer and signer users, the uploaders (no shell, no password) and the operators (a shell)', () => {
    const s = renderHostBaseScript(
      config({
        nodePath: '/usr/bin/node',
        uploaders: JSON.stringify([{ name: 'ci-upload', authorizedKeys: ['ssh-ed25519 AAAA c'] }]),
        operators: JSON.stringify([{ name: 'alice', authorizedKeys: ['ssh-ed25519 AAAA a'] }]),
      }),
    );
    for (const g of ['aptrepo', 'aptops', 'aptupload']) expect(s).toContain(`ensure_group '${g}'\n`);
    expect(s).toContain(
      "useradd --system --user-group --no-create-home --home-dir '/var/lib/apt-repo' --shell /usr/sbin/nologin 'aptrepo-preprod'\n",
    );
    expect(s).toContain("ensure_member 'aptrepo-preprod' 'aptrepo'\n");
    expect(s).toContain(
      "useradd --system --user-group --no-create-home --home-dir '/var/lib/apt-repo' --shell /usr/sbin/nologin 'aptsign-preprod'\n",
    );
    expect(s).toContain("--shell /usr/sbin/nologin --password '*' 'ci-upload'\n");
    expect(s).toContain("ensure_member 'ci-upload' 'aptupload'\n");
    expect(s).toContain("--shell /bin/bash --password '*' 'alice'\n");
    expect(s).toContain("ensure_member 'alice' 'aptops'\n");
    // prod has no drop folders: no upload group to manage.
    expect(renderHostBaseScript(config({ upstream: 'preprod' }, 'prod'))).not.toContain('aptupload');
  });
});
