import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { IngestEntry } from '../repo/ingest';
import { UsageError } from '../errors';
import { isSettling, planUploads, renderIngestSummary, summarizeIngest, uploadExitCode } from './upload';

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
    const items = planUploads([f('hello_1.0-1_all.deb'), f('hello_1.1-1_all.deb')], { incomingDir: '/srv/apt/incoming', source: 'ci', codename: 'bookworm' });
    expect(items[0]).toEqual({
      local: f('hello_1.0-1_all.deb'), name: 'hello_1.0-1_all.deb', size: 10, remoteDir: '/srv/apt/incoming/ci/bookworm',
      remoteTemp: '/srv/apt/incoming/ci/bookworm/.hello_1.0-1_all.deb.part', remoteFinal: '/srv/apt/incoming/ci/bookworm/hello_1.0-1_all.deb',
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
    const s = summarizeIngest([
      { entries: [e('ci/a_1_all.deb', 'skipped', { reason: 'changed less than 2000 ms ago (upload in progress?)' }), e('ci/b_1_all.deb', 'rejected', { reason: 'bad' })] },
      { entries: [e('ci/a_1_all.deb', 'accepted', { package: 'a', version: '1', architecture: 'all', codenames: ['bookworm'] })], generation: 'G1' },
    ], ours);
    expect(s.entries.map((x) => [x.file, x.status])).toEqual([['ci/a_1_all.deb', 'accepted'], ['ci/b_1_all.deb', 'rejected']]);
    expect(s.unseen).toEqual(['ci/c_1_all.deb']);
    expect(s.generation).toBe('G1');
    const text = renderIngestSummary(s, ours);
    expect(text).toContain('accepted  ci/a_1_all.deb (a 1 all) -> bookworm');
    expect(text).toContain('rejected  ci/b_1_all.deb: bad');
    expect(text).toContain('unseen    ci/c_1_all.deb');
    expect(text).toContain('published generation G1');
    expect(uploadExitCode(s, ours)).toBe(1);
    const fine = summarizeIngest([{ entries: [e('ci/a_1_all.deb', 'accepted'), e('ci/.x.part', 'skipped', { reason: 'temporary upload name (.part or dot file)' })] }], ['ci/a_1_all.deb']);
    expect(uploadExitCode(fine, ['ci/a_1_all.deb'])).toBe(0);
    const stuck = summarizeIngest([{ entries: [e('ci/a_1_all.deb', 'skipped', { reason: 'changed less than 2000 ms ago' })] }], ['ci/a_1_all.deb']);
    expect(uploadExitCode(stuck, ['ci/a_1_all.deb'])).toBe(1);
  });

  test('only "too fresh" skips are retried', () => {
    expect(isSettling(e('x', 'skipped', { reason: 'changed less than 2000 ms ago (upload in progress?)' }))).toBe(true);
    expect(isSettling(e('x', 'skipped', { reason: 'still being written (size or time changed)' }))).toBe(true);
    expect(isSettling(e('x', 'skipped', { reason: 'temporary upload name (.part or dot file)' }))).toBe(false);
    expect(isSettling(e('x', 'accepted'))).toBe(false);
  });

  test("other uploaders' skipped temp files are not printed", () => {
    const s = summarizeIngest([{ entries: [e('ci/.x.deb.part', 'skipped', { reason: 'temporary upload name (.part or dot file)' })] }], []);
    expect(renderIngestSummary(s, [])).toBe('');
  });
});
