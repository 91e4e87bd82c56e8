/**
 * `npm run bench`: times apt-repo against its peers (apt-ftparchive plain and with its cache db,
 * dpkg-scanpackages -m) on the same generated files, in the same run, and prints each ratio.
 *
 * Datasets (generated once into .cache/bench/, reused):
 *   small  N synthetic packages (default 3,000: N/3 names x 3 versions, control.tar in gzip/xz/zstd in turn)
 *   big    20 packages of ~50 MiB of incompressible payload
 *   real   an optional folder of real .deb files (--real DIR)
 *   large  10,000 packages for the channel figures (ingest 1,000 more, pending, promote one), with --channels
 *
 * Figures: wall time (ms) of each command as a separate process, warm page cache (each dataset is read once
 * before timing), and peak RSS from GNU time (%M, KiB). Options: --small N, --big N, --big-mib M, --real DIR,
 * --channels, --large N, --only small,big,real.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../test/harness/debs';

const project = path.resolve(__dirname, '..', '..');
const cacheRoot = path.join(project, '.cache', 'bench');
const aptRepo = path.join(project, 'dist', 'apt-repo.cjs');

interface Timing { ms: number; rssKiB: number }

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

/** Runs a command under GNU time; throws with its stderr when it fails. */
function timed(cmd: string[], opts: { cwd?: string; stdoutFile?: string } = {}): Timing {
  const rssFile = path.join(cacheRoot, '.rss');
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'ignore';
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, ...cmd], { cwd: opts.cwd, stdio: ['ignore', out, 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (typeof out === 'number') fs.closeSync(out);
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${r.stderr?.toString().slice(-2000)}`);
  return { ms, rssKiB: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) };
}

function aptRepoCmd(root: string, ...args: string[]): string[] {
  return [process.execPath, aptRepo, '--root', root, ...args];
}

/** Generates (once) a folder of debs; `make(i)` builds the i-th into dir. */
function dataset(name: string, count: number, make: (dir: string, i: number) => void): string {
  const dir = path.join(cacheRoot, name);
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  process.stderr.write(`generating dataset ${name} (${count} packages)…\n`);
  for (let i = 0; i < count; i++) make(dir, i);
  fs.writeFileSync(done, '');
  return dir;
}

const compressions = ['gzip', 'xz', 'zstd'] as const;

function smallDataset(n: number): string {
  return dataset(`small-${n}`, n, (dir, i) => {
    const nameIdx = Math.floor(i / 3);
    buildDeb(dir, {
      name: `bench-pkg-${nameIdx}`,
      version: `1.${i % 3}-1`,
      architecture: nameIdx % 2 ? 'amd64' : 'all',
      compression: compressions[i % 3],
      depends: 'libc6 (>= 2.36)',
      payloadBytes: 2048,
      description: `synthetic package ${nameIdx}\n multi-line description for realism.`,
    });
  });
}

function bigDataset(n: number, mib: number): string {
  return dataset(`big-${n}x${mib}`, n, (dir, i) => {
    buildDeb(dir, { name: `bench-big-${i}`, version: '1.0-1', architecture: 'amd64', compression: 'xz', payloadBytes: mib * 1024 * 1024 });
  });
}

function debsIn(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.deb')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** A fresh channel root whose pool holds hard links to the dataset's debs (minus `holdBack`). */
function channelRoot(name: string, debs: string[]): { root: string; pool: string } {
  const root = path.join(cacheRoot, 'roots', name);
  fs.rmSync(root, { recursive: true, force: true });
  execFileSync(process.execPath, [aptRepo, '--root', root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64'], { stdio: 'ignore' });
  execFileSync(process.execPath, [aptRepo, '--root', root, 'keygen'], { stdio: 'ignore' });
  const pool = path.join(root, 'srv/apt/preprod/pool/main/b');
  fs.mkdirSync(pool, { recursive: true });
  for (const d of debs) fs.linkSync(d, path.join(pool, path.basename(d)));
  return { root, pool };
}

function warm(files: string[]): void {
  const buf = Buffer.alloc(1 << 20);
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    fs.closeSync(fd);
  }
}

interface Row { dataset: string; what: string; t: Timing }
const rows: Row[] = [];

function benchPublish(label: string, debs: string[]): void {
  const extra = debs[debs.length - 1];
  const base = debs.slice(0, -1);
  warm(debs);
  const { root, pool } = channelRoot(label, base);
  const poolRoot = path.join(root, 'srv/apt/preprod');
  rows.push({ dataset: label, what: 'apt-repo publish (full)', t: timed(aptRepoCmd(root, 'publish')) });
  fs.linkSync(extra, path.join(pool, path.basename(extra)));
  rows.push({ dataset: label, what: 'apt-repo publish (add one)', t: timed(aptRepoCmd(root, 'publish')) });
  fs.unlinkSync(path.join(pool, path.basename(extra)));

  const scratch = path.join(cacheRoot, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  rows.push({ dataset: label, what: 'dpkg-scanpackages -m', t: timed(['dpkg-scanpackages', '-m', 'pool'], { cwd: poolRoot, stdoutFile: path.join(scratch, 'Packages.dsp') }) });
  rows.push({ dataset: label, what: 'apt-ftparchive packages', t: timed(['apt-ftparchive', 'packages', 'pool'], { cwd: poolRoot, stdoutFile: path.join(scratch, 'Packages.af') }) });
  const db = path.join(scratch, `${label}.db`);
  fs.rmSync(db, { force: true });
  rows.push({ dataset: label, what: 'apt-ftparchive --db (cold)', t: timed(['apt-ftparchive', '--db', db, 'packages', 'pool'], { cwd: poolRoot, stdoutFile: path.join(scratch, 'Packages.afdb') }) });
  fs.linkSync(extra, path.join(pool, path.basename(extra)));
  rows.push({ dataset: label, what: 'apt-ftparchive --db (add one)', t: timed(['apt-ftparchive', '--db', db, 'packages', 'pool'], { cwd: poolRoot, stdoutFile: path.join(scratch, 'Packages.afdb') }) });
  rows.push({ dataset: label, what: 'dpkg-scanpackages -m (add one)', t: timed(['dpkg-scanpackages', '-m', 'pool'], { cwd: poolRoot, stdoutFile: path.join(scratch, 'Packages.dsp') }) });
}

function benchChannels(n: number): void {
  const label = `channels-${n}`;
  const debs = debsIn(smallDataset(n + 1000));
  warm(debs);
  const root = path.join(cacheRoot, 'roots', label);
  fs.rmSync(root, { recursive: true, force: true });
  const run = (...a: string[]) => execFileSync(process.execPath, [aptRepo, '--root', root, ...a], { stdio: 'ignore' });
  run('--channel', 'preprod', 'init', '--codenames', 'bookworm', '--architectures', 'amd64');
  run('--channel', 'preprod', 'keygen');
  run('--channel', 'prod', 'init', '--codenames', 'bookworm', '--architectures', 'amd64', '--upstream', 'preprod');
  run('--channel', 'prod', 'keygen');
  const incoming = path.join(root, 'srv/apt/incoming/bench');
  fs.mkdirSync(incoming, { recursive: true });
  const old = Date.now() / 1000 - 60;
  const drop = (files: string[]) => {
    for (const d of files) {
      const p = path.join(incoming, path.basename(d));
      fs.linkSync(d, p);
      fs.utimesSync(p, old, old);
    }
  };
  drop(debs.slice(0, n));
  rows.push({ dataset: label, what: `ingest ${n} into empty preprod`, t: timed(aptRepoCmd(root, '--channel', 'preprod', 'ingest')) });
  rows.push({ dataset: label, what: `promote --all-pending (${n})`, t: timed(aptRepoCmd(root, '--channel', 'prod', 'promote', '--all-pending')) });
  drop(debs.slice(n));
  rows.push({ dataset: label, what: `ingest ${debs.length - n} into preprod holding ${n}`, t: timed(aptRepoCmd(root, '--channel', 'preprod', 'ingest')) });
  rows.push({ dataset: label, what: `pending (${debs.length} vs ${n} in prod)`, t: timed(aptRepoCmd(root, '--channel', 'prod', '--json', 'pending')) });
  const newest = path.basename(debs[debs.length - 1]).split('_')[0];
  rows.push({ dataset: label, what: `promote one into prod holding ${n}`, t: timed(aptRepoCmd(root, '--channel', 'prod', 'promote', newest)) });
}

function report(): void {
  const peers = ['dpkg-scanpackages -m', 'apt-ftparchive packages', 'apt-ftparchive --db (cold)'];
  const addPeers = ['apt-ftparchive --db (add one)', 'dpkg-scanpackages -m (add one)'];
  process.stdout.write(`\n${'dataset'.padEnd(16)} ${'command'.padEnd(44)} ${'ms'.padStart(9)} ${'peak RSS MB'.padStart(12)}  ratio\n`);
  for (const r of rows) {
    let ratio = '';
    if (r.what === 'apt-repo publish (full)' || r.what === 'apt-repo publish (add one)') {
      const pool = r.what.endsWith('(full)') ? peers : addPeers;
      const best = rows.filter((p) => p.dataset === r.dataset && pool.includes(p.what)).sort((a, b) => a.t.ms - b.t.ms)[0];
      if (best) ratio = `${(best.t.ms / r.t.ms).toFixed(2)}x vs ${best.what}`;
    }
    process.stdout.write(`${r.dataset.padEnd(16)} ${r.what.padEnd(44)} ${r.t.ms.toFixed(0).padStart(9)} ${(r.t.rssKiB / 1024).toFixed(1).padStart(12)}  ${ratio}\n`);
  }
  process.stdout.write('\nratio > 1: apt-repo is faster than the fastest peer (peers write an uncompressed, unsigned Packages only;\napt-repo writes Packages, .gz, .xz, Release, InRelease, Release.gpg and by-hash).\n');
}

function main(): void {
  if (!fs.existsSync(aptRepo)) throw new Error(`${aptRepo} is missing: run npm run build`);
  fs.mkdirSync(cacheRoot, { recursive: true });
  const only = (arg('only', 'small,big,real') ?? '').split(',');
  if (only.includes('small')) benchPublish(`small-${arg('small', '3000')}`, debsIn(smallDataset(Number(arg('small', '3000')))));
  if (only.includes('big')) benchPublish('big', debsIn(bigDataset(Number(arg('big', '20')), Number(arg('big-mib', '50')))));
  const real = arg('real');
  if (real && only.includes('real')) benchPublish('real', debsIn(real));
  if (flag('channels')) benchChannels(Number(arg('large', '10000')));
  report();
}

main();
