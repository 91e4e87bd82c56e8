/**
 * `npm run bench`: times apt-repo against its peers on the same files, in the same run, and prints
 * the table (ratio = apt-repo median / fastest peer median: below 1, apt-repo is faster).
 *
 * Peers: apt-ftparchive packages (plain, and --db with its cache), dpkg-scanpackages -m (datasets of
 * at most 500 files: it runs dpkg-deb per file, 30 s at 3,000), aptly and reprepro when installed (a line says so
 * when one is not). aptly and reprepro sign with apt-repo's own key: the armored private key that
 * `apt-repo keygen` wrote (etc/epiconcept/apt_repo/<channel>/signing-key.asc under the root) is
 * imported into a private GNUPGHOME under .cache/bench/gnupg. aptly runs with its own -config file
 * (gpgProvider gpg2, rootDir under .cache/bench/peers), Contents skipped; reprepro with SignWith.
 *
 * Datasets (generated or fetched once into .cache/bench, reused; `.complete` marks a whole one):
 *   small     --small N synthetic packages built with dpkg-deb (default 3,000: N/3 names x 3 versions)
 *   big       --big N packages of --big-mib MiB of incompressible payload (default 20 x 50)
 *   real      150 real Debian bookworm packages fetched with apt-get download, or the .deb files of --real DIR
 *   gen       --sizes N,M (default 10000,30000) tiny packages written directly as bytes (datasets.ts writeTinyDeb)
 *   huge      --huge: 100,000 packages the same way (not run by default; generated once in about a minute)
 *   channels  --channels (--large N, default 10,000): ingest N into an empty channel, promote all, ingest
 *             1,000 more, pending (vs aptly snapshot create x2 + snapshot diff), promote one (vs aptly repo
 *             copy + publish update), ingest one, publish with one package added
 *   startup   `apt-repo --help` against `node -e 0`
 *
 * Per dataset, two pieces of work: full publish (from nothing: apt-repo's state removed; aptly repo
 * create + add + publish repo; reprepro includedeb of every file) and add one (the last --repeat files
 * are held back; in round k the k-th is added: dropped into apt-repo's incoming folder then ingest
 * (placed in the pool, published, signed), aptly repo add + publish update, reprepro includedeb,
 * apt-ftparchive --db on apt-repo's pool).
 *
 * Method: every command is a separate process, page cache warm (each dataset is read once first).
 * Runs are interleaved: round i runs every tool of one piece of work once, in turn, --repeat rounds
 * (default 3). Each row reports min and median wall time, the largest peak RSS (GNU time %M; the
 * largest of a tool's steps) and the 1-minute load average sampled before its first run: the machine
 * may be shared. A tool whose first run takes over 10 s runs once.
 *
 * Options: --only startup,small,big,real,gen (default: all; `none` for none), --channels, --large N,
 * --huge, --small N, --big N, --big-mib M, --real DIR, --sizes N,M, --repeat R,
 * --bundle FILE (the apt-repo build to time; default dist/apt-repo.cjs),
 * --compare FILE (another build, e.g. the one before a change: its apt-repo rows run interleaved with
 * the bundle's, each on its own channel root, and a before/after table is printed).
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bigDataset, debsIn, generatedDataset, realDataset, smallDataset, warm } from './datasets';
import { Contender, interleave, rows, setScratch, Step, timed, timedSteps } from './measure';
import { Aptly, Gnupg, importKey, installed, linkFolder, Reprepro, stopAgent } from './peers';
import { report } from './report';

const project = path.resolve(__dirname, '..', '..');
const cacheRoot = path.join(project, '.cache', 'bench');

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const REPEAT = Number(arg('repeat', '3'));
/** dpkg-scanpackages runs dpkg-deb per file: above this many files it would dwarf the run. */
const SCANPACKAGES_MAX = 500;

/** One build of apt-repo under test; with --compare there are two, interleaved. */
interface Build {
  tool: string;
  bundle: string;
  /** Appended to row names and channel roots: '' or ' (before)'. */
  suffix: string;
}
const builds: Build[] = [
  { tool: 'apt-repo', bundle: path.resolve(arg('bundle', path.join(project, 'dist', 'apt-repo.cjs'))!), suffix: '' },
];
if (arg('compare')) builds.push({ tool: 'apt-repo (before)', bundle: path.resolve(arg('compare')!), suffix: ' (before)' });

const dirName = (s: string) => s.replace(/[^\w.-]+/g, '');

/** An apt-repo command line of a build. */
function aptRepo(b: Build, root: string, ...args: string[]): Step {
  return { cmd: [process.execPath, b.bundle, '--root', root, ...args] };
}

function run(step: Step): void {
  execFileSync(step.cmd[0], step.cmd.slice(1), { stdio: 'ignore', cwd: step.cwd, env: { ...process.env, ...step.env } });
}

const keyFile = (root: string, channel: string) => path.join(root, 'etc/epiconcept/apt_repo', channel, 'signing-key.asc');

/** A fresh channel root (preprod) for a build whose pool holds hard links to `debs`. */
function channelRoot(b: Build, name: string, debs: string[]): { root: string; pool: string } {
  const root = path.join(cacheRoot, 'roots', dirName(name + b.suffix));
  fs.rmSync(root, { recursive: true, force: true });
  run(aptRepo(b, root, 'init', '--codenames', 'bookworm', '--architectures', 'amd64'));
  run(aptRepo(b, root, 'keygen'));
  const pool = path.join(root, 'srv/apt/preprod/pool/main/b');
  fs.mkdirSync(pool, { recursive: true });
  for (const d of debs) fs.linkSync(d, path.join(pool, path.basename(d)));
  return { root, pool };
}

/** aptly and reprepro for one dataset, signing with the key in `key`; undefined when not installed. */
function peers(label: string, key: string): { gpg?: Gnupg; aptly?: Aptly; reprepro?: Reprepro } {
  const has = { aptly: installed('aptly'), reprepro: installed('reprepro') };
  for (const [name, ok] of Object.entries(has)) if (!ok) process.stderr.write(`${label}: ${name} skipped: not installed\n`);
  if (!has.aptly && !has.reprepro) return {};
  const gpg = importKey(cacheRoot, key);
  const dir = path.join(cacheRoot, 'peers', dirName(label));
  return {
    gpg,
    aptly: has.aptly ? new Aptly(path.join(dir, 'aptly'), gpg) : undefined,
    reprepro: has.reprepro ? new Reprepro(path.join(dir, 'reprepro'), gpg) : undefined,
  };
}

function benchPublish(label: string, debs: string[]): void {
  const extras = debs.slice(-REPEAT);
  const base = debs.slice(0, -REPEAT);
  warm(debs);
  const bytes = debs.reduce((s, f) => s + fs.statSync(f).size, 0);
  process.stderr.write(`${label}: ${base.length} packages (+${extras.length} for add-one), ${(bytes / 1e6).toFixed(0)} MB\n`);
  const ours = builds.map((b) => {
    const { root, pool } = channelRoot(b, label, base);
    const webRoot = path.join(root, 'srv/apt/preprod');
    const stateDir = path.join(root, 'var/lib/apt-repo/preprod');
    const forget = () => {
      fs.rmSync(stateDir, { recursive: true, force: true });
      fs.mkdirSync(stateDir, { recursive: true });
      fs.rmSync(path.join(webRoot, '.generations'), { recursive: true, force: true });
      fs.rmSync(path.join(webRoot, 'dists'), { force: true });
    };
    return { b, root, pool, webRoot, forget };
  });
  const webRoot = ours[0].webRoot;
  const scratch = path.join(cacheRoot, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  const db = path.join(scratch, `${dirName(label)}.db`);
  const p = peers(label, keyFile(ours[0].root, 'preprod'));
  const baseDir = linkFolder(path.join(cacheRoot, 'peers', dirName(label), 'base'), base);
  const scan = base.length <= SCANPACKAGES_MAX;
  if (!scan) process.stderr.write(`${label}: dpkg-scanpackages skipped: over ${SCANPACKAGES_MAX} files\n`);
  const scanStep = (): Step => ({ cmd: ['dpkg-scanpackages', '-m', 'pool'], cwd: webRoot, stdoutFile: path.join(scratch, 'Packages.dsp') });
  const dbStep = (): Step => ({
    cmd: ['apt-ftparchive', '--db', db, 'packages', 'pool'],
    cwd: webRoot,
    stdoutFile: path.join(scratch, 'Packages.afdb'),
  });
  const reppNote =
    'keeps one version per package name (reprepro 5.3 has no Limit:), so it indexes a third of a 3-versions-per-name dataset';

  const full: Contender[] = ours.map((o) => ({
    tool: o.b.tool,
    what: `apt-repo publish (full)${o.b.suffix}`,
    before: o.forget,
    run: () => timed(aptRepo(o.b, o.root, 'publish')),
  }));
  if (scan) full.push({ tool: 'dpkg-scanpackages -m', what: 'dpkg-scanpackages -m', run: () => timed(scanStep()) });
  full.push({
    tool: 'apt-ftparchive',
    what: 'apt-ftparchive packages',
    run: () => timed({ cmd: ['apt-ftparchive', 'packages', 'pool'], cwd: webRoot, stdoutFile: path.join(scratch, 'Packages.af') }),
  });
  full.push({
    tool: 'apt-ftparchive --db',
    what: 'apt-ftparchive --db (cold)',
    before: () => fs.rmSync(db, { force: true }),
    run: () => timed(dbStep()),
  });
  const { aptly, reprepro } = p;
  if (aptly)
    full.push({
      tool: 'aptly',
      what: 'aptly repo create + add + publish repo',
      before: () => aptly.reset(),
      run: () => timedSteps([aptly.create('bench'), aptly.add('bench', baseDir), aptly.publishRepo('bench')]),
    });
  if (reprepro)
    full.push({
      tool: 'reprepro',
      what: 'reprepro includedeb (all)',
      note: reppNote,
      before: () => reprepro.reset(),
      run: () => timedSteps(reprepro.include(base)),
    });
  interleave(label, `${label}, full publish`, REPEAT, full);

  // Round k adds extras[k] everywhere: each tool's repository holds base + k packages before it.
  // Ours adds one the way CI does: the file dropped into an incoming folder, then `ingest` (read,
  // checked, placed in the pool, published and signed), as reprepro includedeb and aptly repo add do.
  const add: Contender[] = ours.map((o) => ({
    tool: o.b.tool,
    what: `apt-repo ingest one (→ served)${o.b.suffix}`,
    before: (i) => {
      const incoming = path.join(o.root, 'srv/apt/incoming/bench');
      fs.mkdirSync(incoming, { recursive: true });
      fs.copyFileSync(extras[i], path.join(incoming, path.basename(extras[i])));
    },
    run: () => timed(aptRepo(o.b, o.root, 'ingest', '--settle-ms', '0')),
  }));
  add.push({ tool: 'apt-ftparchive --db', what: 'apt-ftparchive --db (add one)', run: () => timed(dbStep()) });
  if (scan) add.push({ tool: 'dpkg-scanpackages -m', what: 'dpkg-scanpackages -m (add one)', run: () => timed(scanStep()) });
  if (aptly)
    add.push({
      tool: 'aptly',
      what: 'aptly repo add one + publish update',
      run: (i) => timedSteps([aptly.add('bench', extras[i]), aptly.publishUpdate()]),
    });
  if (reprepro)
    add.push({
      tool: 'reprepro',
      what: 'reprepro includedeb (one)',
      note: reppNote,
      run: (i) => timedSteps(reprepro.include([extras[i]])),
    });
  interleave(label, `${label}, add one`, REPEAT, add);
  if (p.gpg) stopAgent(p.gpg);
}

/** One build's two channels (preprod, prod upstream preprod) with a snapshot to put back before each run. */
class Channels {
  readonly incoming: string;
  private readonly snap: string;
  /** Copied rather than hard-linked in the snapshot: state and generations (rewritten by rename, but be safe) and the drop folder (ingest refuses a file with other names). */
  private static readonly COPIED = ['var', 'srv/apt/preprod/.generations', 'srv/apt/prod/.generations', 'srv/apt/incoming'];

  constructor(
    readonly b: Build,
    readonly root: string,
  ) {
    this.incoming = path.join(root, 'srv/apt/incoming/bench');
    this.snap = `${root}.snapshot`;
    fs.rmSync(root, { recursive: true, force: true });
    run(aptRepo(b, root, '--channel', 'preprod', 'init', '--codenames', 'bookworm', '--architectures', 'amd64'));
    run(aptRepo(b, root, '--channel', 'preprod', 'keygen'));
    run(aptRepo(b, root, '--channel', 'prod', 'init', '--codenames', 'bookworm', '--architectures', 'amd64', '--upstream', 'preprod'));
    run(aptRepo(b, root, '--channel', 'prod', 'keygen'));
    fs.mkdirSync(this.incoming, { recursive: true });
  }

  /** Copies (not links: ingest refuses a file with other names) debs into the drop folder. */
  drop(files: string[]): void {
    for (const d of files) fs.copyFileSync(d, path.join(this.incoming, path.basename(d)));
  }

  cmd(channel: string, ...args: string[]): Step {
    return aptRepo(this.b, this.root, '--channel', channel, ...args);
  }

  save(): void {
    Channels.copyTree(this.root, this.snap);
  }

  restore(): void {
    Channels.copyTree(this.snap, this.root);
  }

  /** `to` becomes `from`: pool files hard-linked (same inodes), state and generations copied. */
  private static copyTree(from: string, to: string): void {
    fs.rmSync(to, { recursive: true, force: true });
    execFileSync('cp', ['-al', from, to]);
    for (const d of Channels.COPIED) {
      fs.rmSync(path.join(to, d), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(from, d), path.join(to, d)]);
    }
  }

  dispose(): void {
    fs.rmSync(this.snap, { recursive: true, force: true });
  }
}

/** name and version of a pool file name `<name>_<version>_<arch>.deb`. */
const nameVersion = (deb: string) => path.basename(deb).split('_').slice(0, 2) as [string, string];

function benchChannels(n: number): void {
  const label = `channels-${n}`;
  const debs = debsIn(smallDataset(cacheRoot, n + 1000));
  warm(debs);
  const chans = builds.map((b) => new Channels(b, path.join(cacheRoot, 'roots', dirName(label + b.suffix))));
  const each = (what: string, step: (c: Channels) => Step, before?: (c: Channels, i: number) => void): Contender[] =>
    chans.map((c) => ({
      tool: c.b.tool,
      what: `${what}${c.b.suffix}`,
      before: before && ((i) => before(c, i)),
      run: () => timed(step(c)),
    }));
  const ingest = (c: Channels) => c.cmd('preprod', 'ingest', '--settle-ms', '0');

  for (const c of chans) c.drop(debs.slice(0, n));
  interleave(label, '', 1, each(`ingest ${n} into empty preprod`, ingest));
  interleave(
    label,
    '',
    1,
    each(`promote --all-pending (${n})`, (c) => c.cmd('prod', 'promote', '--all-pending')),
  );
  for (const c of chans) {
    c.drop(debs.slice(n));
    c.save();
  }
  interleave(
    label,
    '',
    REPEAT,
    each(`ingest ${debs.length - n} into preprod holding ${n}`, ingest, (c, i) => i > 0 && c.restore()),
  );

  // aptly: repo preprod holding all, repo prod holding n and published (set up once, untimed).
  const p = peers(label, keyFile(chans[0].root, 'prod'));
  const aptly = p.aptly;
  if (aptly) {
    process.stderr.write(`${label}: setting up aptly (preprod ${debs.length}, prod ${n} published)…\n`);
    const dir = path.join(cacheRoot, 'peers', label);
    const first = linkFolder(path.join(dir, 'first'), debs.slice(0, n));
    const rest = linkFolder(path.join(dir, 'rest'), debs.slice(n));
    aptly.reset();
    for (const s of [
      aptly.create('preprod'),
      aptly.create('prod'),
      aptly.add('preprod', first, rest),
      aptly.add('prod', first),
      aptly.publishRepo('prod'),
    ])
      run(s);
  }
  const pending = each(`pending (${debs.length} in preprod vs ${n} in prod)`, (c) => c.cmd('prod', '--json', 'pending'));
  if (aptly)
    pending.push({
      tool: 'aptly',
      what: 'aptly snapshot create x2 + snapshot diff',
      before: (i) => {
        if (i === 0) return;
        run(aptly.step('snapshot', 'drop', `pre-${i - 1}`));
        run(aptly.step('snapshot', 'drop', `prod-${i - 1}`));
      },
      run: (i) =>
        timedSteps([
          aptly.step('snapshot', 'create', `pre-${i}`, 'from', 'repo', 'preprod'),
          aptly.step('snapshot', 'create', `prod-${i}`, 'from', 'repo', 'prod'),
          aptly.step('snapshot', 'diff', `pre-${i}`, `prod-${i}`),
        ]),
    });
  interleave(label, `${label}: pending`, REPEAT, pending);
  for (const c of chans) c.save();

  const newest = nameVersion(debs[debs.length - 1])[0];
  const promote = each(
    `promote one into prod holding ${n}`,
    (c) => c.cmd('prod', 'promote', newest),
    (c, i) => i > 0 && c.restore(),
  );
  if (aptly)
    promote.push({
      tool: 'aptly',
      what: 'aptly repo copy one + publish update',
      run: (i) => {
        const [name, version] = nameVersion(debs[n + i]);
        return timedSteps([aptly.step('repo', 'copy', 'preprod', 'prod', `${name} (= ${version})`), aptly.publishUpdate()]);
      },
    });
  interleave(label, `${label}: promote one (republish + sign)`, REPEAT, promote);
  if (p.gpg) stopAgent(p.gpg);

  // Add one package the way CI does (ingest → served, signing included), a different one each run.
  const extraDebs = debsIn(generatedDataset(cacheRoot, REPEAT));
  interleave(
    label,
    `${label}: ingest one (→ served, signed)`,
    REPEAT,
    each(`ingest one into preprod holding ${debs.length}`, ingest, (c, i) => {
      c.restore();
      c.drop([extraDebs[i]]);
    }),
  );
  for (const c of chans) c.restore();
  // A different package each run, linked straight into prod's pool (as in the publish figures).
  interleave(
    label,
    '',
    REPEAT,
    each(
      `publish (add one) of prod holding ${n}`,
      // --rescan: the file was put into the pool by hand (a build without the flag always lists).
      (c) => c.cmd('prod', 'publish', ...rescanArgs(c.b)),
      (c, i) => {
        const extraDir = path.join(c.root, 'srv/apt/prod/pool/main/x');
        fs.mkdirSync(extraDir, { recursive: true });
        fs.linkSync(debs[n + i], path.join(extraDir, path.basename(debs[n + i])));
      },
    ),
  );
  for (const c of chans) c.dispose();
}

/** `['--rescan']` when build `b`'s publish has the flag (an older build always lists the pool). */
function rescanArgs(b: Build): string[] {
  const help = spawnSync(process.execPath, [b.bundle, 'publish', '--help'], { encoding: 'utf8' });
  return help.stdout.includes('--rescan') ? ['--rescan'] : [];
}

function benchStartup(): void {
  const contenders: Contender[] = [{ tool: 'node', what: 'node -e 0', run: () => timed({ cmd: [process.execPath, '-e', '0'] }) }];
  for (const b of builds)
    contenders.push({
      tool: b.tool,
      what: `apt-repo --help${b.suffix}`,
      run: () => timed({ cmd: [process.execPath, b.bundle, '--help'] }),
    });
  interleave('startup', '', REPEAT, contenders);
}

function main(): void {
  for (const b of builds) if (!fs.existsSync(b.bundle)) throw new Error(`${b.bundle} is missing: run npm run build`);
  fs.mkdirSync(cacheRoot, { recursive: true });
  setScratch(cacheRoot);
  const only = (arg('only', 'startup,small,big,real,gen') ?? '').split(',');
  if (only.includes('startup')) benchStartup();
  if (only.includes('small')) {
    const n = Number(arg('small', '3000'));
    benchPublish(`small-${n}`, debsIn(smallDataset(cacheRoot, n)));
  }
  if (only.includes('real')) {
    let dir = arg('real');
    if (!dir) {
      try {
        dir = realDataset(cacheRoot);
      } catch (e) {
        process.stderr.write(`real packages skipped: cannot fetch them (${(e as Error).message.split('\n')[0]})\n`);
      }
    }
    if (dir) benchPublish(`real-${debsIn(dir).length}`, debsIn(dir));
  }
  if (only.includes('big')) benchPublish('big', debsIn(bigDataset(cacheRoot, Number(arg('big', '20')), Number(arg('big-mib', '50')))));
  if (only.includes('gen'))
    for (const n of (arg('sizes', '10000,30000') ?? '').split(',').filter(Boolean).map(Number))
      benchPublish(`gen-${n}`, debsIn(generatedDataset(cacheRoot, n)));
  if (flag('huge')) benchPublish('gen-100000', debsIn(generatedDataset(cacheRoot, 100_000)));
  if (flag('channels')) benchChannels(Number(arg('large', '10000')));
  report(rows, { repeat: REPEAT, bundle: builds[0].bundle, compare: builds[1]?.bundle });
}

main();
