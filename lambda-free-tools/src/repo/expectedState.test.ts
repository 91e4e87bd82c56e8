import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { UsageError } from '../errors';
import { assertManifestChannel, ExpectedState, MANIFEST_MAX_BYTES, parseExpectedState, readManifestFile } from './expectedState';

const state: ExpectedState = {
  format: 1,
  channel: 'prod',
  root: '/',
  secretDigests: '/etc/epiconcept/apt_repo/prod/secret-digests',
  entries: [],
};

let dir: string;
beforeEach(() => {
  dir = mkTemp('expected-state-test');
});
afterEach(() => rmTemp(dir));

const usageError = (f: () => unknown): UsageError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('did not throw');
};

describe('readManifestFile: the one read of a manifest file (apt-repo doctor, apt-ops doctor --expected)', () => {
  test('reads a manifest, through a link an operator made', () => {
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, JSON.stringify(state));
    fs.symlinkSync(file, path.join(dir, 'link.json'));
    expect(parseExpectedState(readManifestFile(path.join(dir, 'link.json')).toString('utf8'), 'x')).toEqual(state);
  });

  test('refuses a file larger than MANIFEST_MAX_BYTES and takes one of exactly that size', () => {
    const file = path.join(dir, 'big.json');
    fs.writeFileSync(file, Buffer.alloc(MANIFEST_MAX_BYTES + 1, 0x20));
    expect(usageError(() => readManifestFile(file)).message).toBe(`${file}: a manifest larger than ${MANIFEST_MAX_BYTES} bytes`);
    fs.truncateSync(file, MANIFEST_MAX_BYTES);
    expect(readManifestFile(file).length).toBe(MANIFEST_MAX_BYTES);
  });

  test('refuses a folder and a FIFO without blocking on it', () => {
    expect(usageError(() => readManifestFile(dir)).message).toBe(`${dir}: not a file`);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(usageError(() => readManifestFile(fifo)).message).toBe(`${fifo}: not a file`);
  });

  test("a missing file: the caller's message when given, the file system's otherwise", () => {
    const none = path.join(dir, 'none.json');
    expect(usageError(() => readManifestFile(none, 'no manifest here')).message).toBe('no manifest here');
    expect(usageError(() => readManifestFile(none)).message).toMatch(/^cannot read .*none\.json: ENOENT/);
  });
});

test('assertManifestChannel refuses the manifest of another channel with a UsageError naming both', () => {
  expect(() => assertManifestChannel(state, 'prod', 'state.json')).not.toThrow();
  expect(usageError(() => assertManifestChannel(state, 'preprod', 'state.json')).message).toBe(
    "state.json is the expected state of channel 'prod', not of channel preprod",
  );
  expect(usageError(() => assertManifestChannel(state, 'preprod', 'stdin', '--channel preprod')).message).toBe(
    "stdin is the expected state of channel 'prod', not of --channel preprod",
  );
});
