import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatBytes, generationsOf, lastAdded, pairOf, parseDuBytes, pendingCountOf, renderStatus, StatusReport } from './status';

describe('status pieces', () => {
  test('parseDuBytes reads real du -sb output', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'status-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'f'), Buffer.alloc(12345));
      const out = execFileSync('du', ['-sb', '--', dir]).toString();
      const n = parseDuBytes(out)!;
      expect(n).toBeGreaterThanOrEqual(12345);
      expect(out.startsWith(String(n))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(parseDuBytes('du: cannot access')).toBeUndefined();
  });

  test('generations and pending reports are read in either shape', () => {
    const g = [{ id: 'A', date: '2026-01-01T00:00:00Z', packages: { bookworm: 2 }, poolPaths: [], current: true }];
    expect(generationsOf(g)).toEqual(g);
    expect(generationsOf({ generations: g })).toEqual(g);
    expect(() => generationsOf({})).toThrow(/not a list/);
    expect(pendingCountOf([1, 2])).toBe(2);
    expect(pendingCountOf({ rows: [1] })).toBe(1);
    expect(pendingCountOf({ pending: [] })).toBe(0);
    expect(pendingCountOf({})).toBeUndefined();
    expect(pairOf({ upstream: 'preprod', downstream: 'prod', pending: [] })).toEqual(['preprod', 'prod']);
    expect(pairOf({ upstream: '../x' })).toEqual([]);
  });

  test('lastAdded is the newest upload time', () => {
    expect(lastAdded({ 'pool/a.deb': 1000, 'pool/b.deb': Date.UTC(2026, 10, 21, 5, 0, 0) })).toBe('2026-11-21T05:00:00.000Z');
    expect(lastAdded({})).toBeUndefined();
    expect(lastAdded(null)).toBeUndefined();
  });

  test('formatBytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
  });

  test('renderStatus shows every fact, rejected uploads with their reason', () => {
    const r: StatusReport = {
      stack: 'prod', channel: 'prod', host: 'repo.example', webRoot: '/srv/apt/prod', diskBytes: 2048,
      current: { id: '20261121T050000Z-000002', date: '2026-11-21T05:00:00.000Z', packages: { bookworm: 3, bullseye: 1 } }, generationsKept: 2,
      lastIngest: '2026-11-21T04:59:00.000Z', pending: 4, channels: { preprod: { bookworm: 5 }, prod: { bookworm: 3, bullseye: 1 } }, rejectedDir: '/srv/apt/incoming/rejected',
      rejected: [{ file: '20261121T045900Z-bad.deb', size: 7, date: '2026-11-21T04:59:00.000Z', reason: 'not an ar archive' }], problems: ['du failed'],
    };
    const text = renderStatus(r);
    expect(text).toContain('/srv/apt/prod: 2.0 KiB (2048 bytes)');
    expect(text).toContain('2026-11-21T05:00:00.000Z (generation 20261121T050000Z-000002, 2 kept)');
    expect(text).toMatch(/packages\s+prod: bookworm 3, bullseye 1\npackages\s+preprod: bookworm 5/);
    expect(text).toContain('pending       4');
    expect(text).toMatch(/20261121T045900Z-bad\.deb\s+7\s+2026-11-21T04:59:00\.000Z\s+not an ar archive/);
    expect(text).toContain('problem       du failed');
  });
});
