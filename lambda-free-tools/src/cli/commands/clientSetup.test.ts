/**
 * `apt-repo client-setup` through the CLI's main(): the script for the channel's own key and
 * codenames, the URL from --url or repo.yaml `url`, usage errors (exit 2), --json.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../apt-repo';
import { initChannel } from '../../repo/channel';
import { renderClientSetupScript } from '../../client/setupScript';

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZWVkMjU1MTk=\n=wxyz\n-----END PGP PUBLIC KEY BLOCK-----\n';

let root: string;
let configDir: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'client-setup-cli-'));
  const ch = await initChannel({ root, channel: 'prod', codenames: ['bookworm', 'trixie'] });
  configDir = ch.configDir;
  fs.writeFileSync(path.join(ch.webRoot, 'epiconcept-prod-archive-keyring.asc'), KEY);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs apt-repo with `args` after the global options; resolves to the exit code and the output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await main(['node', 'apt-repo', '--root', root, '--channel', 'prod', ...args]);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

describe('apt-repo client-setup', () => {
  it('prints the script for --url with the channel key, codenames and component', async () => {
    const r = await cli('client-setup', '--url', 'https://apt-prod.example.org/');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      renderClientSetupScript({
        channel: 'prod',
        url: 'https://apt-prod.example.org/',
        keyName: 'epiconcept-prod',
        codenames: ['bookworm', 'trixie'],
        component: 'main',
        publicKeyArmored: KEY,
      }),
    );
  });

  it('bakes --codename in, and refuses one the channel does not serve (exit 2)', async () => {
    const r = await cli('client-setup', '--url', 'https://apt-prod.example.org/', '--codename', 'trixie');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("DEFAULT_CODENAME='trixie'\n");
    const bad = await cli('client-setup', '--url', 'https://apt-prod.example.org/', '--codename', 'sid');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--codename 'sid' is not served by channel prod (it serves: bookworm, trixie)");
    expect(bad.stdout).toBe('');
  });

  it('takes the URL from repo.yaml url (checked on load), --url first; a clear usage error without either (exit 2)', async () => {
    const none = await cli('client-setup');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no URL for channel prod: give --url/);
    const yamlFile = path.join(configDir, 'repo.yaml');
    const before = fs.readFileSync(yamlFile, 'utf8');
    try {
      fs.appendFileSync(yamlFile, 'url: http://127.0.0.1:8080/\n');
      const r = await cli('client-setup');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("URL='http://127.0.0.1:8080/'\n");
      expect(r.stdout).toContain("AUTH_MACHINE='http://127.0.0.1:8080'\n");
      expect((await cli('client-setup', '--url', 'https://other.example.org/')).stdout).toContain("URL='https://other.example.org/'\n");
      fs.writeFileSync(yamlFile, before + 'url: https://apt-prod.example.org/debian\n');
      // A bad repo.yaml value is a configuration error, as for every other key (exit 1).
      const bad = await cli('client-setup');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/repo\.yaml:url: must be the http or https URL clients use/);
    } finally {
      fs.writeFileSync(yamlFile, before);
    }
    const badUrl = await cli('client-setup', '--url', 'https://user:pw@apt-prod.example.org/');
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('carries credentials');
  });

  it('prints { channel, url, codenames, defaultCodename, keyringFile, script } with --json', async () => {
    const r = await cli('--json', 'client-setup', '--url', 'https://apt-prod.example.org/');
    expect(r.code).toBe(0);
    const data = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(data).toEqual({
      channel: 'prod',
      url: 'https://apt-prod.example.org/',
      codenames: ['bookworm', 'trixie'],
      defaultCodename: null,
      keyringFile: '/usr/share/keyrings/epiconcept-prod-archive-keyring.asc',
      script: expect.stringContaining(KEY) as unknown,
    });
  });

  it('fails with the key file named when the channel has no public key yet (exit 1)', async () => {
    const other = await initChannel({ root, channel: 'bare' });
    expect(other.name).toBe('bare');
    const out: string[] = [];
    const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      expect(await main(['node', 'apt-repo', '--root', root, '--channel', 'bare', 'client-setup', '--url', 'https://h/'])).toBe(1);
    } finally {
      e.mockRestore();
      process.exitCode = undefined;
    }
    expect(out.join('')).toContain(`${other.webRoot}/epiconcept-bare-archive-keyring.asc: cannot read the channel's public key`);
  });
});
