import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { IngestEntry } from '../repo/ingest';
import { UsageError } from '../errors';
import {
  DropOutcome,
  dropExitCode,
  findReason,
  isSettling,
  parseIngestReport,
  planUploads,
  renderDropOutcomes,
  renderIngestSummary,
  summarizeIngest,
  uploadExitCode,
  WAIT_TIMEOUT_EXIT,
} from './upload';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-test-'));
  fs.writeFileSync(path.join(dir, 'hello_1.0-1_all.deb'), 'x'.repeat(10));
  fs.writeFileSync(path.join(dir, 'hello_1.1-1_all.deb'), 'y'.repeat(20));
  fs.writeFileSync(path.join(dir, 'notes.txt'), '');
  fs.writeFileSync(path.join(dir, '.hidden.deb'), '');
  fs.mkdirSync(path.join(dir, 'dir.deb'));
  fs.mkdirSync(path.join(dir, 'other'));
  fs.writeFileSync(path.join(dir, 'other', 'hello_1.0-1_all.deb'), '');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const f = (n: string) => path.join(dir, n);

describe('planUploads', () => {
  test('files go to a dot .part name in the drop folder, then their own name', () => {
    const items = planUploads([f('hello_1.0-1_all.deb'), f('hello_1.1-1_all.deb')], {
      incomingDir: '/srv/apt/incoming',
      source: 'ci',
      codename: 'bookworm',
    });
    expect(items[0]).toEqual({
      local: f('hello_1.0-1_all.deb'),
      name: 'hello_1.0-1_all.deb',
      size: 10,
      remoteDir: '/srv/apt/incoming/ci/bookworm',
      remoteTemp: '/srv/apt/incoming/ci/bookworm/.hello_1.0-1_all.deb.part',
      remoteFinal: '/srv/apt/incoming/ci/bookworm/hello_1.0-1_all.deb',
      rel: 'ci/bookworm/hello_1.0-1_all.deb',
    });
    expect(items[1].size).toBe(20);
    const flat = planUploads([f('hello_1.0-1_all.deb')], { incomingDir: '/in', source: 'build' });
    expect(flat[0].remoteTemp).toBe('/in/build/.hello_1.0-1_all.deb.part');
    expect(flat[0].rel).toBe('build/hello_1.0-1_all.deb');
  });

  test('refuses what ingest would not take, naming the file or option', () => {
    const o = { incomingDir: '/in', source: 'ci' };
    expect(() => planUploads([], o)).toThrow(UsageError);
    expect(() => planUploads([f('notes.txt')], o)).toThrow(/notes\.txt: not a \.deb/);
    expect(() => planUploads([f('.hidden.deb')], o)).toThrow(/ingest ignores dot files/);
    expect(() => planUploads([f('dir.deb')], o)).toThrow(/not a regular file/);
    expect(() => planUploads([f('missing_1_all.deb')], o)).toThrow(/missing_1_all\.deb: no such file/);
    expect(() => planUploads([f('hello_1.0-1_all.deb'), f('other/hello_1.0-1_all.deb')], o)).toThrow(/two files named/);
    expect(() => planUploads([f('hello_1.0-1_all.deb')], { ...o, source: '../etc' })).toThrow(/--source '\.\.\/etc'/);
    expect(() => planUploads([f('hello_1.0-1_all.deb')], { ...o, source: 'rejected' })).toThrow(/holds rejected uploads/);
    expect(() => planUploads([f('hello_1.0-1_all.deb')], { ...o, codename: 'Book/worm' })).toThrow(/--codename/);
    expect(() => planUploads([path.join(dir, 'a\nb.deb')], o)).toThrow(/control characters/);
  });
});

describe('ingest report', () => {
  const e = (file: string, status: IngestEntry['status'], extra: Partial<IngestEntry> = {}): IngestEntry => ({ file, status, ...extra });

  test('a file skipped as too fresh is settled by a later run; others are kept; ours never seen are listed', () => {
    const ours = ['ci/a_1_all.deb', 'ci/b_1_all.deb', 'ci/c_1_all.deb'];
    const s = summarizeIngest(
      [
        {
          entries: [
            e('ci/a_1_all.deb', 'skipped', { reason: 'changed less than 2000 ms ago (upload in progress?)' }),
            e('ci/b_1_all.deb', 'rejected', { reason: 'bad' }),
          ],
        },
        {
          entries: [e('ci/a_1_all.deb', 'accepted', { package: 'a', version: '1', architecture: 'all', codenames: ['bookworm'] })],
          generation: 'G1',
        },
      ],
      ours,
    );
    expect(s.entries.map((x) => [x.file, x.status])).toEqual([
      ['ci/a_1_all.deb', 'accepted'],
      ['ci/b_1_all.deb', 'rejected'],
    ]);
    expect(s.unseen).toEqual(['ci/c_1_all.deb']);
    expect(s.generation).toBe('G1');
    const text = renderIngestSummary(s, ours);
    expect(text).toContain('accepted  ci/a_1_all.deb (a 1 all) -> bookworm');
    expect(text).toContain('rejected  ci/b_1_all.deb: bad');
    expect(text).toContain('unseen    ci/c_1_all.deb');
    expect(text).toContain('published generation G1');
    expect(uploadExitCode(s, ours)).toBe(1);
    const fine = summarizeIngest(
      [{ entries: [e('ci/a_1_all.deb', 'accepted'), e('ci/.x.part', 'skipped', { reason: 'temporary upload name (.part or dot file)' })] }],
      ['ci/a_1_all.deb'],
    );
    expect(uploadExitCode(fine, ['ci/a_1_all.deb'])).toBe(0);
    const stuck = summarizeIngest(
      [{ entries: [e('ci/a_1_all.deb', 'skipped', { reason: 'changed less than 2000 ms ago' })] }],
      ['ci/a_1_all.deb'],
    );
    expect(uploadExitCode(stuck, ['ci/a_1_all.deb'])).toBe(1);
  });

  test('only "too fresh" skips are retried', () => {
    expect(isSettling(e('x', 'skipped', { reason: 'changed less than 2000 ms ago (upload in progress?)' }))).toBe(true);
    expect(isSettling(e('x', 'skipped', { reason: 'still being written (size or time changed)' }))).toBe(true);
    expect(isSettling(e('x', 'skipped', { reason: 'temporary upload name (.part or dot file)' }))).toBe(false);
    expect(isSettling(e('x', 'accepted'))).toBe(false);
  });

  test('the retry decision follows reasonCode, whatever the message says; the wording only counts without a code (older indexers)', () => {
    expect(isSettling(e('x', 'skipped', { reason: 'anything at all', reasonCode: 'settling' }))).toBe(true);
    expect(isSettling(e('x', 'skipped', { reason: 'changed less than 2000 ms ago', reasonCode: 'temporary-name' }))).toBe(false);
    expect(isSettling(e('x', 'rejected', { reason: 'x', reasonCode: 'settling' }))).toBe(false);
  });

  test('the ingest report is validated with its schema: a wrong shape names the field and the host', () => {
    const report = {
      entries: [e('ci/a_1_all.deb', 'skipped', { reason: 'changed less than 2000 ms ago', reasonCode: 'settling' })],
      generation: 'g1',
      publish: { ignored: true },
    };
    expect(parseIngestReport(report, 'h')).toEqual({ entries: report.entries, generation: 'g1' });
    expect(
      parseIngestReport({ entries: [e('ci/b.deb', 'skipped', { reason: 'old indexer' })] }, 'h').entries[0].reasonCode,
    ).toBeUndefined();
    expect(() => parseIngestReport({ entries: [{ file: 'x', status: 'eaten' }] }, 'repo.example')).toThrow(
      /^the remote apt-repo ingest --json on repo\.example is not an ingest report: entries\.0\.status: /,
    );
    expect(() => parseIngestReport({ entries: [{ file: 'x', status: 'skipped', reasonCode: 'made-up' }] }, 'h')).toThrow(
      /entries\.0\.reasonCode/,
    );
    expect(() => parseIngestReport([{ id: 'A' }], 'h')).toThrow(/not an ingest report/);
  });

  test("other uploaders' skipped temp files are not printed", () => {
    const s = summarizeIngest([{ entries: [e('ci/.x.deb.part', 'skipped', { reason: 'temporary upload name (.part or dot file)' })] }], []);
    expect(renderIngestSummary(s, [])).toBe('');
  });
});

describe('upload through the upload account', () => {
  /** A stand-in for ssh2's SFTP session over a map of chroot paths to { text, mtime }. */
  function fakeSftp(files: Record<string, { text: string; mtime: number }>) {
    const reads: string[] = [];
    return {
      reads,
      readdir(dir: string, cb: (e: Error | undefined, l?: unknown) => void) {
        const list = Object.entries(files)
          .filter(([p]) => p.startsWith(dir + '/'))
          .map(([p, f]) => ({ filename: p.slice(dir.length + 1), attrs: { mtime: f.mtime, size: f.text.length } }));
        cb(undefined, list);
      },
      readFile(p: string, cb: (e: Error | undefined, b?: Buffer) => void) {
        reads.push(p);
        cb(undefined, Buffer.from(files[p].text));
      },
    };
  }

  test('findReason takes the newest .reason naming the file as dropped, written since the upload', async () => {
    const sftp = fakeSftp({
      '/rejected/20261121T050000Z-broken.deb': { text: 'x', mtime: 1000 },
      '/rejected/20261121T050000Z-broken.deb.reason': {
        text: 'reason: an old rejection\nfile: ci/broken.deb\ntime: 2026-11-21T05:00:00Z\n',
        mtime: 1000,
      },
      '/rejected/20261121T060000Z-broken.deb.reason': {
        text: 'reason: not an ar archive\nfile: ci/bookworm/broken.deb\ntime: 2026-11-21T06:00:00Z\n',
        mtime: 2000,
      },
      '/rejected/20261121T060001Z-broken.deb.reason': {
        text: 'reason: this one\nfile: ci/broken.deb\ntime: 2026-11-21T06:00:01Z\n',
        mtime: 2001,
      },
    });
    expect(await findReason(sftp, '/rejected', 'ci/broken.deb', 1999)).toEqual({ reason: 'this one', name: '20261121T060001Z-broken.deb' });
    expect(await findReason(sftp, '/rejected', 'ci/bookworm/broken.deb', 1999)).toEqual({
      reason: 'not an ar archive',
      name: '20261121T060000Z-broken.deb',
    });
    // The old rejection of the same path is not this upload's.
    expect(await findReason(sftp, '/rejected', 'ci/other.deb', 1999)).toBeUndefined();
    expect(sftp.reads.some((p) => p.includes('T050000Z'))).toBe(false);
  });

  test('exit codes and report: 1 for a rejection, 124 for a file still waiting, 0 when all were taken', () => {
    const ok: DropOutcome = { file: 'ci/a.deb', status: 'accepted' };
    const rej: DropOutcome = { file: 'ci/b.deb', status: 'rejected', reason: 'not an ar archive' };
    const wait: DropOutcome = { file: 'ci/c.deb', status: 'waiting' };
    expect(dropExitCode([ok])).toBe(0);
    expect(dropExitCode([ok, wait])).toBe(WAIT_TIMEOUT_EXIT);
    expect(WAIT_TIMEOUT_EXIT).toBe(124);
    expect(dropExitCode([ok, wait, rej])).toBe(1);
    expect(renderDropOutcomes([ok, rej, wait], 5)).toBe(
      [
        'accepted  ci/a.deb',
        'rejected  ci/b.deb: not an ar archive',
        'waiting   ci/c.deb: still in the drop folder after 5 s (is the ingest service running?)',
      ].join('\n'),
    );
  });

  test('planUploads with the chroot as incomingDir gives chroot-relative paths', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-plan-'));
    try {
      const f = path.join(tmp, 'hello_1.0_all.deb');
      fs.writeFileSync(f, 'x');
      const [item] = planUploads([f], { incomingDir: '/', source: 'ci', codename: 'bookworm' });
      expect(item).toMatchObject({
        remoteTemp: '/ci/bookworm/.hello_1.0_all.deb.part',
        remoteFinal: '/ci/bookworm/hello_1.0_all.deb',
        rel: 'ci/bookworm/hello_1.0_all.deb',
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
