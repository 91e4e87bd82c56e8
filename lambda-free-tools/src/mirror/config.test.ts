import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { loadMirror, loadMirrors, mirrorsFile } from './config';

let root: string;
beforeEach(() => {
  root = mkTemp('mirror-config');
  fs.mkdirSync(path.dirname(mirrorsFile(root)), { recursive: true });
});
afterEach(() => rmTemp(root));

const write = (text: string) => fs.writeFileSync(mirrorsFile(root), text);

test('a mirror with its defaults: folders under the root, keys read by file name, keep 5', () => {
  const key = path.join(root, 'k.rsa.pub');
  fs.writeFileSync(key, '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n');
  write(
    `mirrors:\n  alpine:\n    url: https://dl-cdn.alpinelinux.org/alpine/\n    paths: [v3.15/main/x86_64]\n    version: 3.15.5\n    keys: [${key}]\n`,
  );
  const m = loadMirror(root, 'alpine');
  expect(m).toMatchObject({
    name: 'alpine',
    paths: ['v3.15/main/x86_64'],
    version: '3.15.5',
    keep: 5,
    dir: path.join(root, 'srv/mirrors/alpine'),
    stateDir: path.join(root, 'var/lib/apt-repo/mirror-alpine'),
  });
  expect([...m.keys.keys()]).toEqual(['k.rsa.pub']);
  expect(loadMirrors(root).map((x) => x.name)).toEqual(['alpine']);
});

test.each([
  [
    'a path leaving the upstream',
    'url: https://h/a/\n    paths: [../etc]\n    version: "1"',
    /mirrors\.alpine\.paths\.0: must be a relative folder path/,
  ],
  [
    'a URL without its final slash',
    'url: https://h/a\n    paths: [x]\n    version: "1"',
    /mirrors\.alpine\.url: must be an http\(s\) URL ending with/,
  ],
  ['credentials in the URL', 'url: https://u:p@h/a/\n    paths: [x]\n    version: "1"', /without credentials/],
  ['neither version nor versionFrom', 'url: https://h/a/\n    paths: [x]', /give version or versionFrom/],
  ['a version that is not a path segment', 'url: https://h/a/\n    paths: [x]\n    version: ../1', /must be a version label/],
  [
    'an unquoted version (YAML makes 3.10 the number 3.1)',
    'url: https://h/a/\n    paths: [x]\n    version: 3.10',
    /must be a quoted string/,
  ],
  ['an unknown key', 'url: https://h/a/\n    paths: [x]\n    version: "1"\n    mirorRoot: /x', /mirrors\.alpine/],
])('refuses %s, naming the key', (_what, body, message) => {
  write(`mirrors:\n  alpine:\n    ${body}\n`);
  expect(() => loadMirror(root, 'alpine')).toThrow(message);
});

test('an unknown mirror and an unreadable key file are named', () => {
  write('mirrors:\n  alpine:\n    url: https://h/a/\n    paths: [x]\n    version: "1"\n    keys: [/nonexistent/k.pub]\n');
  expect(() => loadMirror(root, 'other')).toThrow(/no mirror 'other'/);
  expect(() => loadMirror(root, 'alpine')).toThrow(/mirrors\.alpine\.keys: \/nonexistent\/k\.pub cannot be read/);
  fs.rmSync(mirrorsFile(root));
  expect(() => loadMirror(root, 'alpine')).toThrow(/mirrors\.yaml: cannot be read \(ENOENT\)/);
});
