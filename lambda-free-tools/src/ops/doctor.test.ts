import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ExpectedStateError } from '../repo/expectedState';
import { UsageError } from '../errors';
import { DoctorOpsReport, parseDoctorReport, readLocalManifest, renderDoctor } from './doctor';

const report: DoctorOpsReport = {
  stack: 'prod',
  host: 'repo.example',
  expected: 'server',
  channel: 'prod',
  checked: 12,
  differences: [
    { path: '/etc/nginx/sites-available/apt-prod.conf', field: 'sha256', expected: 'a'.repeat(64), found: 'b'.repeat(64), step: 'vhost' },
    { path: '/srv/apt/prod', field: 'mode', expected: '2755', found: '0777', step: 'dirs' },
  ],
  notChecked: [{ path: '/etc/epiconcept/apt_repo/prod/signing-key.asc', reason: 'content of a secret file: run as root to check' }],
};

describe('apt-ops doctor', () => {
  test('the indexer report is validated: a wrong shape names the field and the host', () => {
    const { stack: _s, host: _h, expected: _e, ...data } = report;
    expect(parseDoctorReport(JSON.parse(JSON.stringify({ ...data, extra: 1 })), 'h')).toEqual(data);
    expect(() => parseDoctorReport({ ...data, checked: '12' }, 'repo.example')).toThrow(
      /^the remote apt-repo doctor --json on repo\.example is not a doctor report: checked: /,
    );
    expect(() => parseDoctorReport({ ...data, differences: [{ ...data.differences[0], field: 'colour' }] }, 'h')).toThrow(
      /differences\.0\.field/,
    );
    expect(() => parseDoctorReport(undefined, 'h')).toThrow(/\(top level\)/);
  });

  test('renders the table on stdout and the summary, unchecked paths and the re-apply command for the stack on stderr', () => {
    const t = renderDoctor(report);
    expect(t.stdout.split('\n')).toEqual([
      expect.stringMatching(/^PATH\s+WHAT\s+EXPECTED\s+FOUND\s+STEP$/),
      expect.stringMatching(/^\/etc\/nginx\/sites-available\/apt-prod\.conf\s+sha256\s+a{64}\s+b{64}\s+vhost$/),
      expect.stringMatching(/^\/srv\/apt\/prod\s+mode\s+2755\s+0777\s+dirs$/),
    ]);
    expect(t.stderr).toContain(
      "prod (stack prod) on repo.example, against the server's expected-state.json: 2 differences from the expected state (12 paths checked, 1 not checked)",
    );
    expect(t.stderr).toContain(
      '  not checked: /etc/epiconcept/apt_repo/prod/signing-key.asc: content of a secret file: run as root to check',
    );
    expect(t.stderr).toContain(
      'to repair: re-apply steps dirs, vhost with\n  pulumi config set --stack prod apt-repo:reapply "$(date -u +%Y%m%dT%H%M%SZ)" && pulumi up --stack prod',
    );
    const clean = renderDoctor({ ...report, expected: 'state.json', differences: [], notChecked: [] });
    expect(clean).toEqual({
      stdout: '',
      stderr: 'prod (stack prod) on repo.example, against state.json: no difference from the expected state (12 paths checked)',
    });
  });

  test('readLocalManifest checks the file before connecting', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-doctor-'));
    try {
      const file = path.join(dir, 'state.json');
      const text = JSON.stringify({
        format: 1,
        channel: 'prod',
        root: '/',
        secretDigests: '/etc/epiconcept/apt_repo/prod/secret-digests',
        entries: [],
      });
      fs.writeFileSync(file, text);
      expect(readLocalManifest(file, 'prod')).toEqual({ file, data: Buffer.from(text) });
      expect(() => readLocalManifest(file, 'preprod')).toThrow(/is the expected state of channel 'prod', not of channel preprod/);
      expect(() => readLocalManifest(path.join(dir, 'none.json'), 'prod')).toThrow(UsageError);
      fs.writeFileSync(file, '{"format":2}');
      expect(() => readLocalManifest(file, 'prod')).toThrow(ExpectedStateError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
