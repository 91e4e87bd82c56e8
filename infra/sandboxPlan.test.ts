import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planForSandbox } from './sandboxPlan';

describe('planForSandbox', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-plan-'));
    fs.writeFileSync(path.join(dir, 'apt-repo.cjs'), 'console.log("bundle")\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps everything under the root, without packages or systemd, with the bundle inlined', () => {
    const root = path.join(dir, 'root');
    const { config, steps } = planForSandbox({
      root, codenames: ['bookworm'], architectures: ['amd64'], listenAddress: '127.0.0.1', httpPort: 18080, allowedCidrs: ['127.0.0.2'],
      credentials: [{ username: 'client', password: 'sandbox-password-1' }], bundlePath: path.join(dir, 'apt-repo.cjs'),
      signingKey: { privateArmored: '-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n', publicArmored: 'pub', publicBinary: new Uint8Array([1, 2]) },
    });
    expect(config).toMatchObject({ root, services: 'none', installPackages: false, allowPlainHttp: true, listenAddress: '127.0.0.1', httpPort: 18080 });
    const indexer = steps.find((s) => s.name === 'indexer')!;
    expect(indexer.files[0].content).toBe('console.log("bundle")\n');
    for (const s of steps) {
      expect(s.script).not.toContain('systemctl');
      expect(s.script).not.toContain('apt-get');
      for (const f of s.files) expect(f.remotePath.startsWith(root + '/')).toBe(true);
    }
    expect(steps.find((s) => s.name === 'vhost')!.files[0].content).toContain('listen 127.0.0.1:18080;');
  });
});
