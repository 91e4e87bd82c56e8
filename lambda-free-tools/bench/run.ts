/**
 * `npm run bench`: times apt-repo against its peers (apt-ftparchive plain and with its cache db,
 * dpkg-scanpackages -m) on the same files, in the same run, and prints each ratio.
 *
 * Datasets (generated or fetched once into .cache/, reused):
 *   small     N synthetic packages (default 3,000: N/3 names x 3 versions, control.tar in gzip/xz/zstd in turn)
 *   big       20 packages of ~50 MiB of incompressible payload
 *   real      150 real Debian bookworm packages (~490 MB; REAL_NAMES below) fetched with apt-get download
 *             into .cache/debs (test/harness/debs.ts fetchRealDebs), or the .deb files of --real DIR
 *   channels  10,000 packages (--channels; --large N) for the channel figures: ingest 1,000 more,
 *             pending, promote one, ingest one, publish with one package added
 *   startup   `apt-repo --help` against `node -e 0` (the cost of loading the bundle)
 *
 * Method: every command runs as a separate process, page cache warm (each dataset is read once before
 * timing). Each timed command runs --repeat times (default 3) and the table shows the MEDIAN wall time
 * and the largest peak RSS of those runs (GNU time %M). Between runs the state is put back so every
 * run does the same work:
 *   - publish (full): the channel's state (cache, generations, dists) is removed first, so every
 *     file is read, hashed and parsed and every index compressed and signed;
 *   - publish (add one): a different held-back package is linked into the pool before each run
 *     (the pool is N-3 packages for the full runs, N-3+k for the k-th add-one run);
 *   - apt-ftparchive --db (add one) and dpkg-scanpackages -m (add one) run on the same pool right after;
 *   - channel commands: the channel roots are restored from a snapshot (cp -a, pool files hard-linked)
 *     taken before the first run; ingest runs with --settle-ms 0 (no upload-in-progress wait). The
 *     two set-up steps (ingest N into an empty channel, promote --all-pending) run once.
 * A command whose first run takes over 10 s (dpkg-scanpackages on thousands of files) runs once.
 * The load average is printed with the figures: the machine may be shared.
 *
 * Every dataset keeps its last 3 packages (--repeat) for the add-one runs: "big" is 17 + 3 files,
 * "real-150" 147 + 3. The environment goes through to apt-repo (APT_REPO_READ_WORKERS=0 reads on
 * one thread; see lambda-free-tools/src/deb/parallel.ts).
 *
 * Options: --small N, --big N, --big-mib M, --real DIR, --channels, --large N, --repeat R, --bundle FILE
 * (another build of apt-repo.cjs, to compare builds; default dist/apt-repo.cjs),
 * --only small,big,real,startup (default: all four; --channels adds the channel figures).
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildDeb, fetchRealDebs } from '../../test/harness/debs';
import { walkNoFollow } from '../src/core/files';

const project = path.resolve(__dirname, '..', '..');
const cacheRoot = path.join(project, '.cache', 'bench');

/**
 * 150 common Debian 12 (bookworm) amd64/all binary packages, small to large (~490 MB together):
 * libraries, tools, compilers, fonts, data packages, a JRE and an office core.
 */
const REAL_NAMES = `
apache2-bin apache2-data bash binutils-common binutils-x86-64-linux-gnu ca-certificates cmake cmake-data coreutils
cpp-12 cryptsetup-bin curl diffutils dpkg dpkg-dev e2fsprogs emacs-common emacs-nox ffmpeg figlet findutils fish
fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-noto-mono g++-12 gawk gcc-12 gdb git git-man
golang-1.19-go golang-1.19-src grep groff-base gzip htop imagemagick-6-common iproute2 iptables less libaom3
libapache2-mod-php8.2 libasound2 libavcodec59 libavformat59 libavutil57 libbinutils libclang-cpp15 libclang1-15
libcryptsetup12 libdav1d6 libext2fs2 libflac12 libgcc-12-dev libgl1-mesa-dri libglib2.0-0 libglib2.0-data libgs10
libgs10-common libgtk-3-0 libgtk-3-common libicu72 liblept5 libllvm15 libmagic-mgc libmagickcore-6.q16-6
libmagickwand-6.q16-6 libmount1 libnftables1 libnode108 libopus0 libpcap0.8 libperl5.36 libpoppler126 libpq5
libpulse0 libpython3.11 libpython3.11-minimal libpython3.11-stdlib libruby3.1 libsndfile1 libsqlite3-0 libssl3
libstdc++-12-dev libswscale6 libsystemd0 libtesseract5 libvpx7 libx11-6 libx11-data libx264-164 libx265-199 libxcb1
libxml2 locales lsof lvm2 make man-db manpages mariadb-client-core mariadb-server-core mesa-vulkan-drivers mount
nano openjdk-17-jre-headless openssh-client openssh-server openssl p7zip-full perl perl-base perl-modules-5.36
php8.2-cli php8.2-common poppler-utils postgresql-15 postgresql-client-15 procps psmisc python3.11
python3.11-minimal redis-tools rsync ruby3.1 screen sed sqlite3 strace sudo systemd tar tcpdump tesseract-ocr
texlive-base tmux tzdata udev unzip util-linux valgrind vim vim-runtime wget xz-utils zip zsh zstd
`
  .split(/\s+/)
  .filter(Boolean);

interface Timing {
  ms: number;
  rssKiB: number;
}

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const REPEAT = Number(arg('repeat', '3'));
/** A command slower than this (dpkg-scanpackages runs dpkg-deb per file) is run once: its figure is far from any other. */
const SLOW_MS = 10_000;
const aptRepo = path.resolve(arg('bundle', path.join(project, 'dist', 'apt-repo.cjs'))!);

/** Runs a command under GNU time; throws with its stderr when it fails. */
function timed(cmd: string[], opts: { cwd?: string; stdoutFile?: string; okCodes?: number[] } = {}): Timing {
  const rssFile = path.join(cacheRoot, '.rss');
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'ignore';
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, ...cmd], { cwd: opts.cwd, stdio: ['ignore', out, 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (typeof out === 'number') fs.closeSync(out);
  if (!(opts.okCodes ?? [0]).includes(r.status ?? -1))
    throw new Error(`${cmd.join(' ')} exited ${r.status}: ${r.stderr?.toString().slice(-2000)}`);
  return { ms, rssKiB: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) };
}

interface Row {
  dataset: string;
  what: string;
  runs: Timing[];
}
const rows: Row[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const msOf = (r: Row) => median(r.runs.map((t) => t.ms));
const rssOf = (r: Row) => Math.max(...r.runs.map((t) => t.rssKiB));

/** Times `cmd(i)` `runs` times, calling `before(i)` (untimed) before each run; adds one row. */
function bench(
  dataset: string,
  what: string,
  cmd: (i: number) => string[],
  o: { before?: (i: number) => void; cwd?: string; stdoutFile?: string; runs?: number; okCodes?: number[] } = {},
): void {
  const row: Row = { dataset, what, runs: [] };
  for (let i = 0; i < (o.runs ?? REPEAT); i++) {
    o.before?.(i);
    row.runs.push(timed(cmd(i), { cwd: o.cwd, stdoutFile: o.stdoutFile, okCodes: o.okCodes }));
    if (row.runs[0].ms > SLOW_MS) break;
  }
  rows.push(row);
  process.stderr.write(`  ${dataset} ${what}: ${row.runs.map((t) => t.ms.toFixed(0)).join(', ')} ms\n`);
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

/** The real packages: fetched once into .cache/debs, hard-linked into .cache/bench/real-<n>. */
function realDataset(): string {
  const dir = path.join(cacheRoot, `real-${REAL_NAMES.length}`);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;
  process.stderr.write(`fetching ${REAL_NAMES.length} real packages with apt-get download…\n`);
  const files = fetchRealDebs(REAL_NAMES);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.linkSync(f, path.join(dir, path.basename(f)));
  fs.writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

function debsIn(dir: string): string[] {
  return walkNoFollow(dir)
    .filter((r) => r.endsWith('.deb'))
    .map((r) => path.join(dir, r))
    .sort();
}

/** A fresh channel root whose pool holds hard links to `debs`. */
function channelRoot(name: string, debs: string[]): { root: string; pool: string } {
  const root = path.join(cacheRoot, 'roots', name);
  fs.rmSync(root, { recursive: true, force: true });
  execFileSync(process.execPath, [aptRepo, '--root', root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64'], {
    stdio: 'ignore',
  });
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

function benchPublish(label: string, debs: string[]): void {
  const extras = debs.slice(-REPEAT);
  const base = debs.slice(0, -REPEAT);
  warm(debs);
  const bytes = debs.reduce((s, f) => s + fs.statSync(f).size, 0);
  process.stderr.write(`${label}: ${base.length} packages (+${extras.length} for add-one), ${(bytes / 1e6).toFixed(0)} MB\n`);
  const { root, pool } = channelRoot(label, base);
  const webRoot = path.join(root, 'srv/apt/preprod');
  const stateDir = path.join(root, 'var/lib/apt-repo/preprod');
  const forget = () => {
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.mkdirSync(stateDir, { recursive: true });
    fs.rmSync(path.join(webRoot, '.generations'), { recursive: true, force: true });
    fs.rmSync(path.join(webRoot, 'dists'), { force: true });
  };
  bench(label, 'apt-repo publish (full)', () => aptRepoCmd(root, 'publish'), { before: forget });

  const scratch = path.join(cacheRoot, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  const db = path.join(scratch, `${label}.db`);
  bench(label, 'dpkg-scanpackages -m', () => ['dpkg-scanpackages', '-m', 'pool'], {
    cwd: webRoot,
    stdoutFile: path.join(scratch, 'Packages.dsp'),
  });
  bench(label, 'apt-ftparchive packages', () => ['apt-ftparchive', 'packages', 'pool'], {
    cwd: webRoot,
    stdoutFile: path.join(scratch, 'Packages.af'),
  });
  bench(label, 'apt-ftparchive --db (cold)', () => ['apt-ftparchive', '--db', db, 'packages', 'pool'], {
    cwd: webRoot,
    stdoutFile: path.join(scratch, 'Packages.afdb'),
    before: () => fs.rmSync(db, { force: true }),
  });
  // Interleaved so that each tool sees the same pool: add one package, run the three.
  const add: Record<string, Row> = {};
  for (const what of ['apt-repo publish (add one)', 'apt-ftparchive --db (add one)', 'dpkg-scanpackages -m (add one)']) {
    add[what] = { dataset: label, what, runs: [] };
    rows.push(add[what]);
  }
  for (const extra of extras) {
    fs.linkSync(extra, path.join(pool, path.basename(extra)));
    add['apt-repo publish (add one)'].runs.push(timed(aptRepoCmd(root, 'publish')));
    add['apt-ftparchive --db (add one)'].runs.push(
      timed(['apt-ftparchive', '--db', db, 'packages', 'pool'], { cwd: webRoot, stdoutFile: path.join(scratch, 'Packages.afdb') }),
    );
    const dsp = add['dpkg-scanpackages -m (add one)'].runs;
    if (dsp.length === 0 || dsp[0].ms <= SLOW_MS)
      dsp.push(timed(['dpkg-scanpackages', '-m', 'pool'], { cwd: webRoot, stdoutFile: path.join(scratch, 'Packages.dsp') }));
  }
  for (const r of Object.values(add)) process.stderr.write(`  ${label} ${r.what}: ${r.runs.map((t) => t.ms.toFixed(0)).join(', ')} ms\n`);
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
  // Copied, not linked: ingest refuses a file with other names (an uploader could link anything in).
  const drop = (files: string[]) => {
    for (const d of files) fs.copyFileSync(d, path.join(incoming, path.basename(d)));
  };
  const ingest = () => aptRepoCmd(root, '--channel', 'preprod', 'ingest', '--settle-ms', '0');
  drop(debs.slice(0, n));
  bench(label, `ingest ${n} into empty preprod`, ingest, { runs: 1 });
  bench(label, `promote --all-pending (${n})`, () => aptRepoCmd(root, '--channel', 'prod', 'promote', '--all-pending'), { runs: 1 });

  // Snapshot (pool files as hard links, state and generations copied) to put back before each run.
  // The drop folder is copied too: ingest refuses a file that has other names.
  const COPIED = ['var', 'srv/apt/preprod/.generations', 'srv/apt/prod/.generations', 'srv/apt/incoming'];
  const snap = `${root}.snapshot`;
  const save = () => {
    fs.rmSync(snap, { recursive: true, force: true });
    execFileSync('cp', ['-al', root, snap]);
    // State and generations are rewritten by rename, never in place, but copy them anyway to be safe.
    for (const d of COPIED) {
      fs.rmSync(path.join(snap, d), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(root, d), path.join(snap, d)]);
    }
  };
  const restore = () => {
    fs.rmSync(root, { recursive: true, force: true });
    execFileSync('cp', ['-al', snap, root]);
    for (const d of COPIED) {
      fs.rmSync(path.join(root, d), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(snap, d), path.join(root, d)]);
    }
  };
  drop(debs.slice(n));
  save();
  bench(label, `ingest ${debs.length - n} into preprod holding ${n}`, ingest, {
    before: (i) => {
      if (i > 0) restore();
    },
  });
  bench(label, `pending (${debs.length} in preprod vs ${n} in prod)`, () => aptRepoCmd(root, '--channel', 'prod', '--json', 'pending'));
  save();
  const newest = path.basename(debs[debs.length - 1]).split('_')[0];
  bench(label, `promote one into prod holding ${n}`, () => aptRepoCmd(root, '--channel', 'prod', 'promote', newest), {
    before: (i) => {
      if (i > 0) restore();
    },
  });
  // Add one package the way CI does (ingest → served, signing included), a different one each run.
  const extras = dataset('extras', REPEAT, (dir, i) =>
    buildDeb(dir, { name: `bench-extra-${i}`, version: '1.0-1', architecture: 'amd64', payloadBytes: 2048 }),
  );
  const extraDebs = debsIn(extras);
  bench(label, `ingest one into preprod holding ${debs.length}`, ingest, {
    before: (i) => {
      restore();
      drop([extraDebs[i]]);
    },
  });
  restore();
  // A different package each run, linked straight into prod's pool (as in the publish figures).
  const extraDir = path.join(root, 'srv/apt/prod/pool/main/x');
  bench(label, `publish (add one) of prod holding ${n}`, () => aptRepoCmd(root, '--channel', 'prod', 'publish'), {
    before: (i) => {
      fs.mkdirSync(extraDir, { recursive: true });
      fs.linkSync(debs[n + i], path.join(extraDir, path.basename(debs[n + i])));
    },
  });
  fs.rmSync(snap, { recursive: true, force: true });
}

function benchStartup(): void {
  bench('startup', 'node -e 0', () => [process.execPath, '-e', '0']);
  bench('startup', 'apt-repo --help', () => [process.execPath, aptRepo, '--help']);
}

function report(): void {
  const peers = ['dpkg-scanpackages -m', 'apt-ftparchive packages', 'apt-ftparchive --db (cold)'];
  const addPeers = ['apt-ftparchive --db (add one)', 'dpkg-scanpackages -m (add one)'];
  const [l1, l5, l15] = os.loadavg();
  process.stdout.write(
    `\napt-repo benchmark, ${new Date().toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}\n`,
  );
  process.stdout.write(
    `load average at the end: ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)}; each figure: median wall time of ${REPEAT} runs, largest peak RSS\n`,
  );
  process.stdout.write(
    `\n${'dataset'.padEnd(16)} ${'command'.padEnd(44)} ${'ms'.padStart(8)} ${'runs (ms)'.padEnd(20)} ${'peak RSS MB'.padStart(11)}  ratio\n`,
  );
  for (const r of rows) {
    let ratio = '';
    if (r.what === 'apt-repo publish (full)' || r.what === 'apt-repo publish (add one)') {
      const pool = r.what.endsWith('(full)') ? peers : addPeers;
      const best = rows.filter((p) => p.dataset === r.dataset && pool.includes(p.what)).sort((a, b) => msOf(a) - msOf(b))[0];
      if (best) ratio = `${(msOf(best) / msOf(r)).toFixed(2)}x vs ${best.what}`;
    }
    const runs = r.runs.map((t) => t.ms.toFixed(0)).join(' ');
    process.stdout.write(
      `${r.dataset.padEnd(16)} ${r.what.padEnd(44)} ${msOf(r).toFixed(0).padStart(8)} ${runs.padEnd(20)} ${(rssOf(r) / 1024).toFixed(1).padStart(11)}  ${ratio}\n`,
    );
  }
  // The issue's reference: the fastest peer as its author measured it on a 2-core machine, page cache warm.
  const issue: [string, string, number][] = [
    ['small-3000', 'apt-repo publish (full)', 890],
    ['small-3000', 'apt-repo publish (add one)', 690],
    ['real-150', 'apt-repo publish (full)', 1920],
    ['real-150', 'apt-repo publish (add one)', 80],
    ['big', 'apt-repo publish (full)', 3990],
  ];
  const against = issue.flatMap(([d, w, ms]) => {
    const r = rows.find((x) => x.dataset === d && x.what === w);
    return r
      ? [
          `  ${d.padEnd(12)} ${w.padEnd(28)} fastest peer in the issue ${String(ms).padStart(5)} ms, apt-repo here ${msOf(r).toFixed(0).padStart(5)} ms: ${(ms / msOf(r)).toFixed(2)}x`,
        ]
      : [];
  });
  if (against.length)
    process.stdout.write(`\nagainst the issue's figures (fastest peer on the issue author's 2-core machine):\n${against.join('\n')}\n`);
  process.stdout.write(
    '\nratio > 1: apt-repo is that many times faster than the fastest peer measured here (peers write an\n' +
      'uncompressed, unsigned Packages on stdout; apt-repo writes Packages, .gz, .xz, by-hash, Release, InRelease and\n' +
      'Release.gpg, fsyncs them, and flips the dists symlink).\n',
  );
}

function main(): void {
  if (!fs.existsSync(aptRepo)) throw new Error(`${aptRepo} is missing: run npm run build`);
  fs.mkdirSync(cacheRoot, { recursive: true });
  const only = (arg('only', 'startup,small,big,real') ?? '').split(',');
  if (only.includes('startup')) benchStartup();
  if (only.includes('small')) benchPublish(`small-${arg('small', '3000')}`, debsIn(smallDataset(Number(arg('small', '3000')))));
  if (only.includes('big')) benchPublish('big', debsIn(bigDataset(Number(arg('big', '20')), Number(arg('big-mib', '50')))));
  if (only.includes('real')) {
    const real = arg('real');
    let dir: string | undefined = real;
    if (!dir) {
      try {
        dir = realDataset();
      } catch (e) {
        process.stderr.write(`real packages skipped: cannot fetch them (${(e as Error).message.split('\n')[0]})\n`);
      }
    }
    if (dir) benchPublish(`real-${debsIn(dir).length}`, debsIn(dir));
  }
  if (flag('channels')) benchChannels(Number(arg('large', '10000')));
  report();
}

main();
