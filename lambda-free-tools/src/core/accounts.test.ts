import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { idName, idNames } from './accounts';

let dir: string;
beforeEach(() => {
  dir = mkTemp('accounts-test');
});
afterEach(() => rmTemp(dir));

test('reads id → name from a passwd(5) file: the first name of an id wins, malformed lines are skipped', () => {
  const passwd = path.join(dir, 'passwd');
  fs.writeFileSync(
    passwd,
    [
      'root:x:0:0:root:/root:/bin/bash',
      'toor:x:0:0::/root:/bin/sh',
      ':x:5:5::/:',
      'odd:x:abc:1::/:',
      'short:x',
      'aptrepo-prod:x:998:998::/var/lib/apt-repo:/usr/sbin/nologin',
      '',
    ].join('\n'),
  );
  const names = idNames(passwd);
  expect([...names.entries()]).toEqual([
    [0, 'root'],
    [998, 'aptrepo-prod'],
  ]);
  expect(idName(names, 998, 'uid')).toBe('aptrepo-prod');
  expect(idName(names, 5, 'uid')).toBe('uid 5');
  expect(idName(names, 42, 'gid')).toBe('gid 42');
});

test('a file that cannot be read gives no names, and ids are shown as numbers', () => {
  const names = idNames(path.join(dir, 'absent'));
  expect(names.size).toBe(0);
  expect(idName(names, 0, 'uid')).toBe('uid 0');
});
