/**
 * readDebs on the calling thread against readDeb, on 40 generated packages of every compression and
 * one bad file. Publishing them through the bundle with worker threads is parallel.e2e.test.ts.
 */
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { buildDebSet } from '../../../test/harness/debs';
import { DebError } from '../errors';
import { readDeb, type DebInfo } from './debfile';
import { readDebs } from './parallel';

let dir: string;
let files: string[];

beforeAll(() => {
  dir = mkTemp('parallel-debs');
  files = buildDebSet(dir);
});
afterAll(() => rmTemp(dir));

test('readDebs on the calling thread: every result at its index, the same as readDeb, errors as DebError', async () => {
  const got = new Map<number, DebInfo | Error>();
  await readDebs(files, { onResult: (i, r) => got.set(i, r) });
  expect(got.size).toBe(files.length);
  for (let i = 0; i < files.length; i++) {
    const r = got.get(i)!;
    if (i === 17) {
      expect(r).toBeInstanceOf(DebError);
      expect((r as DebError).file).toBe(files[17]);
      continue;
    }
    expect(r).toEqual(await readDeb(files[i]));
  }
});

test("an error thrown by onResult rejects readDebs; it is never passed back as the file's result", async () => {
  const calls: [number, DebInfo | Error][] = [];
  const boom = new Error('callback failed');
  const err = await readDebs(files.slice(0, 3), {
    onResult: (i, r) => {
      calls.push([i, r]);
      if (i === 1) throw boom;
    },
  }).catch((e: unknown) => e);
  expect(err).toBe(boom);
  expect(calls.map(([i]) => i)).toEqual([0, 1]);
  expect(calls.every(([, r]) => !(r instanceof Error))).toBe(true);
});
