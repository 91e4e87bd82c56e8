/**
 * version.ts against the real `dpkg --compare-versions`: 10,000+ generated pairs (ordering) and a
 * few hundred generated strings (validity), each batch checked by ONE bash process. In the e2e
 * project because it spawns dpkg some 11,000 times (about 30 s); the hand-written cases stay in
 * version.test.ts.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compareVersions, isValidVersion } from './version';
import { prng } from '../../../test/harness/prng';

const rand = prng(0x5eed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const digits = (): string => pick(['0', '1', '2', '9', '10', '01', '007', '100', '99999999999999999999', '2']);
const letters = (): string => pick(['a', 'b', 'z', 'A', 'Z', 'rc', 'beta', 'dfsg', 'deb', 'ubuntu']);

/** One fragment of alternating digit / non-digit runs drawn from `seps`, starting with a digit run when `digitFirst`. */
function fragment(seps: readonly string[], digitFirst: boolean): string {
  let s = digitFirst ? digits() : '';
  const n = Math.floor(rand() * 5);
  for (let k = 0; k < n; k++) {
    s += rand() < 0.5 ? pick(seps) : letters();
    if (rand() < 0.7) s += digits();
  }
  return s || digits();
}

/** A valid version with the tricky parts: epochs (with leading zeros), '~', '+', '.', '-' and ':' inside upstream, letters, empty revision. */
function genVersion(): string {
  const epoch = rand() < 0.3 ? pick(['0', '1', '2', '00', '01', '10']) + ':' : '';
  const hasRevision = rand() < 0.6;
  const upSeps = ['.', '+', '~', '~~', '.'];
  if (hasRevision) upSeps.push('-');
  if (epoch) upSeps.push(':');
  const upstream = fragment(upSeps, true);
  const revision = hasRevision ? '-' + fragment(['.', '+', '~'], rand() < 0.8) : '';
  return epoch + upstream + revision;
}

/** A version near `v`: same, with '~'/'+' suffixes, one digit bumped, revision added or epoch changed. */
function mutate(v: string): string {
  const m = mutation(v);
  return isValidVersion(m) ? m : v; // e.g. dropping the epoch of '1:2:3' would leave a colon behind
}

function mutation(v: string): string {
  switch (Math.floor(rand() * 7)) {
    case 0:
      return v;
    case 1:
      return v + '~' + pick(['', 'rc1', '~']);
    case 2:
      return v + pick(['+b1', '.0', 'a', '+']);
    case 3:
      return v.replace(/[0-9]/, (d) => String((Number(d) + 1) % 10));
    case 4:
      return v.includes('-') ? v.replace(/-[^-]*$/, '-0') : v + '-0';
    case 5:
      return v.includes(':') ? v.replace(/^[0-9]+:/, '') : '0' + ':' + v;
    default:
      return v.replace(/^([0-9:]*?)([0-9]+)/, (_m, pre: string, n: string) => pre + '0' + n);
  }
}

/** Runs a bash script once, with `input` on stdin; returns stdout and stderr. */
function bash(script: string, input: string): { stdout: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deb-version-'));
  try {
    const errFile = path.join(dir, 'stderr');
    const stdout = execFileSync('bash', ['-c', `${script} 2>${errFile}`], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
    return { stdout, stderr: fs.readFileSync(errFile, 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('compareVersions', () => {
  test('agrees with dpkg --compare-versions on 10,000+ generated pairs', () => {
    const pairs: [string, string][] = [];
    while (pairs.length < 10500) {
      const a = genVersion();
      pairs.push([a, rand() < 0.5 ? mutate(a) : genVersion()]);
    }
    // Every generated version must be one this module calls valid, or the test proves nothing.
    for (const [a, b] of pairs) expect([a, isValidVersion(a), b, isValidVersion(b)]).toEqual([a, true, b, true]);
    const { stdout, stderr } = bash(
      'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo lt; ' +
        'elif dpkg --compare-versions "$a" eq "$b"; then echo eq; else echo gt; fi; done',
      pairs.map(([a, b]) => `${a} ${b}\n`).join(''),
    );
    expect(stderr).toBe(''); // dpkg warned about none of them: they are valid for dpkg too
    const expected = stdout.trim().split('\n');
    expect(expected).toHaveLength(pairs.length);
    const word = (n: number): string => (n < 0 ? 'lt' : n > 0 ? 'gt' : 'eq');
    const mismatches = pairs
      .map(([a, b], k) => ({ a, b, dpkg: expected[k], ours: word(compareVersions(a, b)) }))
      .filter((m) => m.dpkg !== m.ours);
    expect(mismatches.slice(0, 10)).toEqual([]);
    // The generator must produce every outcome, including a fair share of equal pairs.
    for (const w of ['lt', 'eq', 'gt']) expect(expected.filter((e) => e === w).length).toBeGreaterThan(500);
  }, 300000);
});

describe('isValidVersion', () => {
  test('validity agrees with dpkg (no error and no warning) on generated strings', () => {
    const alphabet = ['0', '1', '9', 'a', 'Z', '.', '+', '~', '-', ':', '_', '!', '/', '@'];
    const candidates = new Set<string>();
    while (candidates.size < 400) {
      let s = '';
      if (candidates.size % 2) {
        const n = 1 + Math.floor(rand() * 7);
        for (let k = 0; k < n; k++) s += pick(alphabet);
      } else {
        // A valid version with one character replaced: mostly near the edge of validity.
        const v = genVersion();
        const at = Math.floor(rand() * v.length);
        s = v.slice(0, at) + pick(alphabet) + v.slice(at + 1);
      }
      if (!s.startsWith('-')) candidates.add(s); // dpkg would read a leading '-' as an option
    }
    const list = [...candidates];
    const { stdout } = bash(
      'while IFS= read -r v; do if dpkg --compare-versions "$v" eq 1 2>&1 | grep -q "bad syntax"; then echo bad; else echo ok; fi; done',
      list.map((v) => v + '\n').join(''),
    );
    const dpkgSays = stdout.trim().split('\n');
    expect(dpkgSays).toHaveLength(list.length);
    const disagree = list.filter((v, k) => (dpkgSays[k] === 'ok') !== isValidVersion(v));
    expect(disagree).toEqual([]);
    expect(dpkgSays.filter((s) => s === 'ok').length).toBeGreaterThan(20);
    expect(dpkgSays.filter((s) => s === 'bad').length).toBeGreaterThan(20);
  }, 120000);
});
