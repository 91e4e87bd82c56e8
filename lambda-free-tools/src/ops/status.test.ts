import { ChannelStatusSchema, formatBytes, parseChannelStatus, renderStatus, StatusReport } from './status';

const report: StatusReport = {
  stack: 'prod',
  host: 'repo.example',
  channel: 'prod',
  webRoot: '/srv/apt/prod',
  diskBytes: 2048,
  current: { id: '20261121T050000Z-000002', date: '2026-11-21T05:00:00.000Z', packages: { bookworm: 3, bullseye: 1 } },
  generationsKept: 2,
  lastAdded: '2026-11-21T04:59:00.000Z',
  pair: { upstream: 'preprod', downstream: 'prod' },
  pending: 4,
  channels: { preprod: { bookworm: 5 }, prod: { bookworm: 3, bullseye: 1 } },
  rejectedDir: '/srv/apt/incoming/rejected',
  rejectedCount: 2,
  rejected: [
    {
      name: '20261121T045900Z-bad.deb',
      file: 'ci/bookworm/bad.deb',
      size: 7,
      date: '2026-11-21T04:59:00.000Z',
      reason: 'not an ar archive',
    },
    { name: '20261120T000000Z-old.deb', size: 3, date: '2026-11-20T00:00:00.000Z' },
  ],
  lock: { pid: 4242, host: 'repo', since: '2026-11-21T05:01:00.000Z' },
  problems: ['pending: something odd'],
};

describe('apt-ops status', () => {
  test('formatBytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
  });

  test('renderStatus shows every fact, rejected uploads as dropped with their reason, and the lock holder', () => {
    const text = renderStatus(report);
    expect(text.split('\n')[0]).toBe('channel       prod (stack prod) on repo.example');
    expect(text).toContain('/srv/apt/prod: 2.0 KiB (2048 bytes)');
    expect(text).toContain('2026-11-21T05:00:00.000Z (generation 20261121T050000Z-000002, 2 kept)');
    expect(text).toMatch(/packages\s+prod: bookworm 3, bullseye 1\npackages\s+preprod: bookworm 5/);
    expect(text).toContain('pending       4 (in preprod, not in prod');
    expect(text).toContain('lock          held by pid 4242 on repo since 2026-11-21T05:01:00.000Z');
    expect(text).toMatch(/ci\/bookworm\/bad\.deb\s+7\s+2026-11-21T04:59:00\.000Z\s+not an ar archive/);
    expect(text).toMatch(/20261120T000000Z-old\.deb\s+3\s+2026-11-20T00:00:00\.000Z\s+\(no \.reason file\)/);
    expect(text).toContain('problem       pending: something odd');
  });

  test('the indexer report is validated: a wrong shape names the field and the host', () => {
    const { stack: _s, host: _h, ...data } = report;
    expect(parseChannelStatus(JSON.parse(JSON.stringify(data)), 'h')).toEqual(data);
    expect(() => parseChannelStatus({ ...data, diskBytes: '12' }, 'repo.example')).toThrow(
      /^the remote apt-repo status --json on repo\.example is not a status report: diskBytes: /,
    );
    expect(() => parseChannelStatus({ ...data, rejected: [{ name: 'x', size: 1, date: 'yesterday' }] }, 'h')).toThrow(
      /rejected\.0\.date: expected an ISO 8601 date/,
    );
    // What an indexer without `status` (or another command's report) prints is refused, not half-read.
    expect(() => parseChannelStatus([{ id: 'A', current: true }], 'h')).toThrow(/not a status report/);
    expect(() => parseChannelStatus({ upstream: 'preprod', downstream: 'prod', pending: [] }, 'h')).toThrow(/not a status report/);
    expect(ChannelStatusSchema.safeParse(undefined).success).toBe(false);
  });

  test('drift: an optional field (older indexers omit it), rendered with the apt-ops command to run', () => {
    const { stack: _s, host: _h, ...data } = report;
    expect(renderStatus(report)).not.toContain('drift');
    const drifted = { ...data, drift: { differences: 3, notChecked: 1 } };
    expect(parseChannelStatus(JSON.parse(JSON.stringify(drifted)), 'h')).toEqual(drifted);
    expect(() => parseChannelStatus({ ...data, drift: { differences: -1, notChecked: 0 } }, 'h')).toThrow(/drift\.differences/);
    expect(renderStatus({ ...report, drift: { differences: 3, notChecked: 1 } })).toContain(
      'drift         3 differences (1 not checked) — apt-ops --stack prod doctor\n',
    );
    expect(renderStatus({ ...report, drift: { differences: 0, notChecked: 0 } })).toContain('drift         none\n');
  });
});
