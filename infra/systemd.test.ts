/**
 * The rendered systemd units, rated by systemd itself: `systemd-analyze security --offline=true`
 * (systemd-analyze(1)) on every service file, written to a temp folder. Each must be rated at
 * most 3.0 ("OK"); the signer must be cut off from every network and write nothing.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseStackConfig, type RawConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelLayout } from './layout';
import { renderSignerUnits, renderSystemdUnits, type UnitFile } from './systemd';

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
      nodePath: '/usr/bin/node',
      ...over,
    },
    stack,
  ).config;
}

function allUnits(stack: 'preprod' | 'prod'): UnitFile[] {
  const cfg = config(stack === 'prod' ? { upstream: 'preprod' } : {}, stack);
  const l = channelLayout(cfg);
  return [...renderSystemdUnits(cfg, l), ...renderSignerUnits(cfg, l).units];
}

/** The overall exposure systemd-analyze gives the unit file `file` (0.0 safest … 10.0). */
function exposure(file: string): { score: number; report: string } {
  const report = execFileSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(report);
  if (!m) throw new Error(`no exposure level in the report of ${file}:\n${report}`);
  return { score: Number(m[1]), report };
}

describe('systemd units: hardening rated by systemd-analyze security', () => {
  let dir: string;
  const dirOf = () => dir;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'units-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['preprod', 'prod'] as const)('rates every %s service at most 3.0 (OK)', (stack) => {
    const services = allUnits(stack).filter((u) => u.name.endsWith('.service'));
    expect(services.map((u) => u.name).sort()).toEqual(
      stack === 'preprod'
        ? [
            'apt-repo-backup-preprod.service',
            'apt-repo-catalogue-preprod.service',
            'apt-repo-ingest-preprod.service',
            'apt-repo-sign-preprod@.service',
          ]
        : ['apt-repo-backup-prod.service', 'apt-repo-catalogue-prod.service', 'apt-repo-sign-prod@.service'],
    );
    for (const u of services) {
      const file = path.join(dir, stack, u.name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, u.content);
      const { score, report } = exposure(file);
      expect([u.name, score <= 3.0 ? 'OK' : report]).toEqual([u.name, 'OK']);
    }
  });

  it.each(['preprod', 'prod'] as const)('with validUntilDays, rates the %s re-signing service at most 3.0 and runs it hourly', (stack) => {
    const cfg = config({ validUntilDays: '7', ...(stack === 'prod' ? { upstream: 'preprod' } : {}) }, stack);
    const units = Object.fromEntries(renderSystemdUnits(cfg, channelLayout(cfg)).map((u) => [u.name, u.content]));
    const service = units[`apt-repo-refresh-${stack}.service`];
    const file = path.join(dir, `refresh-${stack}.service`);
    fs.writeFileSync(file, service);
    const { score, report } = exposure(file);
    expect(score <= 3.0 ? 'OK' : report).toBe('OK');
    expect(service).toContain(
      `ExecStart=/usr/bin/node /opt/apt-repo/${stack}/apt-repo.cjs --root / --channel ${stack} publish --if-expiring\n`,
    );
    expect(service).toContain(`User=aptrepo-${stack}\n`);
    expect(service).toContain('RestrictAddressFamilies=AF_UNIX\n');
    expect(service).toContain(
      `ReadWritePaths=/srv/apt/${stack} /var/lib/apt-repo/${stack}${stack === 'preprod' ? ' /srv/apt/incoming' : ''}\n`,
    );
    const timer = units[`apt-repo-refresh-${stack}.timer`];
    expect(timer).toContain('OnCalendar=hourly\nRandomizedDelaySec=10min\nPersistent=yes\n');
    expect(timer).toContain(`Unit=apt-repo-refresh-${stack}.service\n`);
  });

  it.each(['preprod', 'prod'] as const)(
    'with metricsDir, rates the %s metrics service at most 3.0, runs it every 5 minutes, and lets every writer write the folder',
    (stack) => {
      const dir = '/var/lib/prometheus/node-exporter';
      const cfg = config({ metricsDir: dir, validUntilDays: '7', ...(stack === 'prod' ? { upstream: 'preprod' } : {}) }, stack);
      const units = Object.fromEntries(renderSystemdUnits(cfg, channelLayout(cfg)).map((u) => [u.name, u.content]));
      const service = units[`apt-repo-metrics-${stack}.service`];
      const file = path.join(dirOf(), `metrics-${stack}.service`);
      fs.writeFileSync(file, service);
      const { score, report } = exposure(file);
      expect(score <= 3.0 ? 'OK' : report).toBe('OK');
      expect(service).toContain(
        `ExecStart=/usr/bin/node /opt/apt-repo/${stack}/apt-repo.cjs --root / --channel ${stack} metrics --to ${dir}\n`,
      );
      expect(service).toContain(`User=aptrepo-${stack}\nGroup=aptrepo-${stack}\n`);
      // It reads the channel and writes its one file: the folder only, which must exist.
      expect(service).toContain(`\nReadWritePaths=${dir}\n`);
      expect(service).toContain('\nRestrictSUIDSGID=yes\n');
      const timer = units[`apt-repo-metrics-${stack}.timer`];
      expect(timer).toContain('[Timer]\nOnCalendar=*:0/5\nPersistent=yes\n');
      expect(timer).toContain(`Unit=apt-repo-metrics-${stack}.service\n`);
      expect(timer).toContain('WantedBy=timers.target\n');
      // Every writing command ends by writing the metrics file: each other indexer service may write
      // the folder ('-': a folder removed by hand costs the command a warning, not its run).
      const writers = Object.keys(units).filter((n) => n.endsWith('.service') && !n.includes('-metrics-'));
      expect(writers.sort()).toEqual(
        [
          `apt-repo-backup-${stack}.service`,
          `apt-repo-catalogue-${stack}.service`,
          `apt-repo-refresh-${stack}.service`,
          ...(stack === 'preprod' ? ['apt-repo-ingest-preprod.service'] : []),
        ].sort(),
      );
      for (const w of writers)
        expect([w, /^ReadWritePaths=.*$/m.exec(units[w])![0]]).toEqual([w, expect.stringMatching(new RegExp(` -${dir}$`))]);
    },
  );

  it('renders no metrics units, and no metrics folder in any unit, without metricsDir', () => {
    const units = allUnits('preprod');
    expect(units.map((u) => u.name).filter((n) => n.includes('metrics'))).toEqual([]);
    for (const u of units) expect(u.content).not.toMatch(/prometheus| -\//);
  });

  it('renders no re-signing units without validUntilDays', () => {
    expect(
      allUnits('preprod')
        .map((u) => u.name)
        .filter((n) => n.includes('refresh')),
    ).toEqual([]);
  });

  it('the unhardened unit of before would fail the same check (the check can fail)', () => {
    const file = path.join(dir, 'plain.service');
    fs.writeFileSync(
      file,
      '[Service]\nType=oneshot\nUser=aptrepo-preprod\nExecStart=/usr/bin/node /opt/apt-repo/preprod/apt-repo.cjs ingest\n',
    );
    expect(exposure(file).score).toBeGreaterThan(3.0);
  });

  it('limits what each unit writes and reaches', () => {
    const units = Object.fromEntries(allUnits('preprod').map((u) => [u.name, u.content]));
    const setting = (unit: string, key: string) => [...units[unit].matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
    expect(setting('apt-repo-ingest-preprod.service', 'ReadWritePaths')).toEqual([
      '/srv/apt/preprod /var/lib/apt-repo/preprod /srv/apt/incoming',
    ]);
    // Crash recovery, run by backup first, may finish an interrupted writer: the web root and drop zones too.
    expect(setting('apt-repo-backup-preprod.service', 'ReadWritePaths')).toEqual([
      '/var/backups/apt-repo/preprod /srv/apt/preprod /var/lib/apt-repo/preprod /srv/apt/incoming',
    ]);
    expect(setting('apt-repo-sign-preprod@.service', 'ReadWritePaths')).toEqual([]);
    for (const u of ['apt-repo-ingest-preprod.service', 'apt-repo-backup-preprod.service']) {
      expect(setting(u, 'User')).toEqual(['aptrepo-preprod']);
      expect(setting(u, 'RestrictAddressFamilies')).toEqual(['AF_UNIX']);
      // V8's JIT needs writable and executable memory.
      expect(setting(u, 'MemoryDenyWriteExecute')).toEqual([]);
    }
    const signer = 'apt-repo-sign-preprod@.service';
    expect(setting(signer, 'User')).toEqual(['aptsign-preprod']);
    expect(setting(signer, 'RestrictAddressFamilies')).toEqual(['none']);
    expect(setting(signer, 'PrivateNetwork')).toEqual(['yes']);
    expect(setting(signer, 'StandardInput')).toEqual(['socket']);
    expect(setting(signer, 'StandardOutput')).toEqual(['socket']);
    expect(setting(signer, 'ExecStart')).toEqual([
      '/usr/bin/node /opt/apt-repo/preprod/apt-repo.cjs --root / --channel preprod sign --stdio',
    ]);
    const socket = units['apt-repo-sign-preprod.socket'];
    expect(socket).toContain('ListenStream=/run/apt-repo/sign-preprod/sign.sock\n');
    expect(socket).toContain('Accept=yes\n');
    expect(socket).toContain('SocketUser=aptsign-preprod\nSocketGroup=aptrepo-preprod\nSocketMode=0660\n');
  });

  it('recreates the socket folder at boot with tmpfiles.d', () => {
    const cfg = config();
    expect(renderSignerUnits(cfg, channelLayout(cfg)).tmpfiles).toContain(
      'd /run/apt-repo/sign-preprod 0750 aptsign-preprod aptrepo-preprod -\n',
    );
  });
});
