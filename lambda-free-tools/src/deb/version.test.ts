/**
 * version.ts on hand-written cases: Debian Policy's ordering examples, the parts of a version, and
 * the reasons a string is refused. The comparison with the real `dpkg --compare-versions` on
 * generated versions is version.e2e.test.ts.
 */
import { VersionError } from '../errors';
import { compareVersions, isValidVersion, parseVersion } from './version';

describe('compareVersions', () => {
  test('fixed cases from Debian Policy §5.6.12', () => {
    const lt: [string, string][] = [
      ['1.0~rc1', '1.0'],
      ['1.0~~', '1.0~'],
      ['1.0', '1.0a'],
      ['1.0a', '1.0+'],
      ['1.0', '1.0.1'],
      ['1.9', '1.10'],
      ['1:0.1', '2:0.0'],
      ['9.9', '1:0'],
      ['1.0-1', '1.0-2'],
      ['1.0-1', '1.0-1+b1'],
      ['1.0-1~bpo1', '1.0-1'],
      ['2.10-3', '2.10-3+deb12u1'],
      ['1.0-9', '1.0-10'],
      ['1.0', '1.0-0.1'],
      ['99999999999999999998', '99999999999999999999'],
    ];
    for (const [a, b] of lt) {
      expect([a, b, Math.sign(compareVersions(a, b))]).toEqual([a, b, -1]);
      expect([b, a, Math.sign(compareVersions(b, a))]).toEqual([b, a, 1]);
    }
    for (const [a, b] of [
      ['1.0', '1.0-0'],
      ['1.01', '1.1'],
      ['0:1.0', '1.0'],
      ['00:1', '0:1'],
    ]) {
      expect([a, b, compareVersions(a, b)]).toEqual([a, b, 0]);
    }
  });
});

describe('parseVersion / isValidVersion', () => {
  test('splits epoch, upstream and revision at the first colon and the last hyphen', () => {
    expect(parseVersion('1:2.3-4')).toEqual({ epoch: 1, upstream: '2.3', revision: '4' });
    expect(parseVersion('2.3')).toEqual({ epoch: 0, upstream: '2.3', revision: '' });
    expect(parseVersion('1:2:3-a-b')).toEqual({ epoch: 1, upstream: '2:3-a', revision: 'b' });
  });

  test('rejects invalid strings with VersionError and a reason', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['1:', /nothing after colon/],
      [':1', /epoch in version is empty/],
      ['x:1', /epoch.*not number/],
      ['2147483648:1', /too big/],
      ['1.0-', /revision number is empty/],
      ['-1', /version number is empty/],
      ['a1', /does not start with digit/],
      ['1_0', /invalid character in version/],
      ['1.0-a_b', /invalid character in revision/],
      ['1 2', /whitespace/],
      [' 1.0', /whitespace/],
      ['1.0-1:2', /epoch in version is not number/],
      ['1.0é', /invalid character/],
    ];
    for (const [v, reason] of bad) {
      expect(isValidVersion(v)).toBe(false);
      expect(() => parseVersion(v)).toThrow(VersionError);
      expect(() => parseVersion(v)).toThrow(reason);
      expect(() => compareVersions(v, '1')).toThrow(VersionError);
    }
    expect(isValidVersion('2147483647:1')).toBe(true);
  });
});

describe('parseVersion refuses what would break a pool path (issue 8)', () => {
  test.each(['1/../../x', '1.0/2', '1\u0000', '1\n2', '1 2', '1\t2', '../1', '1.0-1/x'])('%j', (v) => {
    expect(() => parseVersion(v)).toThrow(VersionError);
  });
});
