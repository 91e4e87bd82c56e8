import { DEFAULT_ROUTING, folderCodename, routeCodenames, suffixCodenames } from './routing';

const every = [
  'wheezy',
  'jessie',
  'stretch',
  'buster',
  'bullseye',
  'bookworm',
  'trixie',
  'trusty',
  'xenial',
  'bionic',
  'focal',
  'jammy',
  'noble',
];
const ch = { codenames: every, routing: DEFAULT_ROUTING };
const flat = 'pool/main/d/demo/demo_1.0_all.deb';

describe('routeCodenames with the default table', () => {
  test.each([
    ['1.0-2+deb9u1', ['stretch']],
    ['1.0-2+deb12u3', ['bookworm']],
    ['1.0-2+deb10', ['buster']],
    ['1.0-2~deb11u1', ['bullseye']],
    ['1.0-2+deb9u1+b1', ['stretch']],
    ['1.0-1+jessie8', ['jessie']],
    ['1.0-1+jessie', ['jessie']],
    ['2.0~bionic1', ['bionic']],
    ['2.0~focal', ['focal']],
    ['3.1.bookworm', ['bookworm']],
    ['1.0-1~bpo11+1', ['bullseye']],
    ['1.0-1~bpo70+1', ['wheezy']],
    ['1.0-1~bpo8+1', ['jessie']],
    ['1.0-1~ubuntu22.04.1', ['jammy']],
    ['1.0-1~ubuntu24.04', ['noble']],
    ['7:1.0-1+deb13u1', ['trixie']],
    ['6.16-1+deb13u1~deb12u1', ['bookworm']],
    ['2.0-1~bpo12+1+deb12u1', ['bookworm']],
  ])('%s → %j', (version, expected) => {
    expect(routeCodenames(version, flat, ch)).toEqual(expected);
  });

  test('a version without a routing suffix goes to every codename, in liste_dist order', () => {
    expect(routeCodenames('1.0-1', flat, ch)).toEqual(every);
    expect(routeCodenames('1.0+debian-1', flat, ch)).toEqual(every);
    expect(routeCodenames('2.0+focaltest1', flat, ch)).toEqual(every);
  });

  test('a suffix for a codename the channel does not publish routes nowhere', () => {
    const small = { codenames: ['bookworm'], routing: DEFAULT_ROUTING };
    expect(routeCodenames('1.0-2+deb9u1', flat, small)).toEqual([]);
    expect(suffixCodenames('1.0-2+deb9u1', DEFAULT_ROUTING)).toEqual(['stretch']);
    expect(suffixCodenames('1.0-2', DEFAULT_ROUTING)).toBeUndefined();
  });

  test('an unknown Debian number maps to nothing known, so routes nowhere', () => {
    expect(suffixCodenames('1.0+deb99u1', DEFAULT_ROUTING)).toEqual([]);
  });
});

describe('folder routing', () => {
  const small = { codenames: ['bullseye', 'bookworm'], routing: DEFAULT_ROUTING };
  test('a codename folder below the source folder routes there', () => {
    expect(routeCodenames('1.0', 'pool/main/d/demo/bookworm/demo_1.0_all.deb', small)).toEqual(['bookworm']);
  });
  test('the version suffix wins over the folder', () => {
    expect(routeCodenames('1.0+deb11u1', 'pool/main/d/demo/bookworm/demo_1.0+deb11u1_all.deb', small)).toEqual(['bullseye']);
  });
  test('a source package named like a codename does not route by its source folder', () => {
    expect(folderCodename('pool/main/b/bookworm/bookworm_1.0_all.deb', small.codenames)).toBeUndefined();
    expect(routeCodenames('1.0', 'pool/main/b/bookworm/bookworm_1.0_all.deb', small)).toEqual(['bullseye', 'bookworm']);
  });
  test('a folder naming a codename outside liste_dist is ignored', () => {
    expect(routeCodenames('1.0', 'pool/main/d/demo/stretch/demo_1.0_all.deb', small)).toEqual(['bullseye', 'bookworm']);
  });
});

describe('configured tables', () => {
  test('rules are tried in order and $N expands, with literal codenames too', () => {
    const routing = [
      { pattern: '\\+php(\\d+)$', codenames: ['bookworm', 'trixie'] },
      { pattern: '\\+rel(\\d+)$', codenames: ['$1'] },
    ];
    const c = { codenames: ['bookworm', 'trixie', 'bullseye'], routing };
    expect(routeCodenames('1.0+php8', flat, c)).toEqual(['bookworm', 'trixie']);
    expect(routeCodenames('1.0+rel11', flat, c)).toEqual(['bullseye']);
    // The default table is replaced, not extended.
    expect(routeCodenames('1.0+deb11u1', flat, c)).toEqual(['bookworm', 'trixie', 'bullseye']);
  });
});
