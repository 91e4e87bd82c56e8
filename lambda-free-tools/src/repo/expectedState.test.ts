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

/** `f` throws a UsageError (exit 2) whose message is `message` (a string: exactly; a RegExp: matching). */
function refuses(f: () => unknown, message: string | RegExp): void {
  expect(f).toThrow(UsageError);
  expect(f).toThrow(typeof message === 'string' ? new UsageError(message) : message);
}

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
    refuses(() => readManifestFile(file), `${file}: a manifest larger than ${MANIFEST_MAX_BYTES} bytes`);
    fs.truncateSync(file, MANIFEST_MAX_BYTES);
    expect(readManifestFile(file).length).toBe(MANIFEST_MAX_BYTES);
  });

  test('refuses a folder and a FIFO without blocking on it', () => {
    refuses(() => readManifestFile(dir), `${dir}: not a file`);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    refuses(() => readManifestFile(fifo), `${fifo}: not a file`);
  });

  test("a missing file: the caller's message when given, the file system's otherwise", () => {
    const none = path.join(dir, 'none.json');
    refuses(() => readManifestFile(none, 'no manifest here'), 'no manifest here');
    refuses(() => readManifestFile(none), /^cannot read .*none\.json: ENOENT/);
  });
});

test('assertManifestChannel refuses the manifest of another channel with a UsageError naming both', () => {
  expect(() => assertManifestChannel(state, 'prod', 'state.json')).not.toThrow();
  refuses(
    () => assertManifestChannel(state, 'preprod', 'state.json'),
    "state.json is the expected state of channel 'prod', not of channel preprod",
  );
  refuses(
    () => assertManifestChannel(state, 'preprod', 'stdin', '--channel preprod'),
    "stdin is the expected state of channel 'prod', not of --channel preprod",
  );
});
