import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildSampleDebs, SAMPLE_SPECS } from './sampleDebs';

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sample-debs-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('the samples: names Debian does not have, older versions, a +deb12u1 one, an arch:all one, each with its /usr/bin script', () => {
  const debs = buildSampleDebs(tmp(), 'amd64');
  expect(debs.map((d) => path.basename(d.file))).toEqual([
    'epi-hello_1.0-1_amd64.deb',
    'epi-hello_1.1-1_amd64.deb',
    'epi-hello_2.0-1_amd64.deb',
    'epi-php-tools_1.0-1+deb12u1_amd64.deb',
    'epi-docs_1.0-1_all.deb',
  ]);
  expect(debs.filter((d) => !d.ingest).map((d) => `${d.name}=${d.version}`)).toEqual(['epi-hello=2.0-1']);
  for (const d of debs) {
    const field = (f: string) => execFileSync('dpkg-deb', ['-f', d.file, f], { encoding: 'utf8' }).trim();
    expect([field('Package'), field('Version'), field('Architecture')]).toEqual([d.name, d.version, d.architecture]);
    const list = execFileSync('dpkg-deb', ['-c', d.file], { encoding: 'utf8' });
    expect(list).toMatch(new RegExp(`^-rwxr-xr-x root/root .* 2023-11-14 22:13 \\./usr/bin/${d.name}$`, 'm'));
    const x = tmp();
    execFileSync('dpkg-deb', ['-x', d.file, x]);
    expect(execFileSync('sh', [path.join(x, 'usr/bin', d.name)], { encoding: 'utf8' })).toBe(`${d.name} ${d.version}\n`);
  }
});

test('the bytes are the same from one build to the next, and a file already built is kept as it is', () => {
  const a = buildSampleDebs(tmp(), 'arm64');
  const b = buildSampleDebs(tmp(), 'arm64');
  expect(a.map((d) => sha(d.file))).toEqual(b.map((d) => sha(d.file)));
  expect(a.find((d) => d.name === 'epi-docs')!.file).toMatch(/_all\.deb$/);
  expect(a.find((d) => d.name === 'epi-hello')!.file).toMatch(/_arm64\.deb$/);
  // A kept file is never rebuilt: the pool must never be offered other bytes under the same name.
  fs.writeFileSync(a[0].file, 'kept');
  const again = buildSampleDebs(path.dirname(a[0].file), 'arm64');
  expect(fs.readFileSync(again[0].file, 'utf8')).toBe('kept');
  expect(again.length).toBe(SAMPLE_SPECS.length);
});
