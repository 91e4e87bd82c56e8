/**
 * The peers apt-repo is measured against, run on the same files: apt-ftparchive (plain and with its
 * cache db), dpkg-scanpackages -m, aptly and reprepro. aptly and reprepro sign with apt-repo's own
 * key, imported into a private GNUPGHOME under .cache/bench (never ~/.gnupg).
 */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Step } from './measure';

/** True when `/usr/bin/<name>` exists. */
export function installed(name: string): boolean {
  return fs.existsSync(path.join('/usr/bin', name));
}

/** A private gpg home holding one secret key. */
export interface Gnupg {
  home: string;
  fingerprint: string;
}

/**
 * Imports an armored OpenPGP private key (apt-repo's signing-key.asc) into a gpg home of its own
 * under `cacheRoot`, and signs once so that gpg-agent is running before any timed run.
 */
export function importKey(cacheRoot: string, keyFile: string): Gnupg {
  const armored = fs.readFileSync(keyFile);
  const home = path.join(cacheRoot, 'gnupg', crypto.createHash('sha256').update(armored).digest('hex').slice(0, 12));
  const env = { ...process.env, GNUPGHOME: home };
  if (!fs.existsSync(path.join(home, '.imported'))) {
    fs.rmSync(home, { recursive: true, force: true });
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    execFileSync('gpg', ['--batch', '--import', keyFile], { env, stdio: 'ignore' });
    fs.writeFileSync(path.join(home, '.imported'), '');
  }
  const listing = execFileSync('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env, encoding: 'utf8' });
  const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing)?.[1];
  if (!fingerprint) throw new Error(`${keyFile}: gpg found no secret key in it`);
  execFileSync('gpg', ['--batch', '--yes', '-u', fingerprint, '--clearsign', '-o', path.join(home, 'warm.asc')], {
    env,
    input: 'warm up gpg-agent\n',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  return { home, fingerprint };
}

/** Stops the gpg-agent that `importKey` started for this home. */
export function stopAgent(g: Gnupg): void {
  execFileSync('gpgconf', ['--homedir', g.home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
}

/** Hard links `debs` into a fresh folder (peers take a folder or a list of files). */
export function linkFolder(dir: string, debs: string[]): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const d of debs) fs.linkSync(d, path.join(dir, path.basename(d)));
  return dir;
}

/**
 * aptly with its own config file and root (gpg2 provider, the shared key), one local repo per name,
 * published as distribution bookworm, component main, architecture amd64 (Architecture: all
 * packages go into binary-amd64 too), Contents skipped (apt-repo writes none).
 */
export class Aptly {
  readonly config: string;
  constructor(
    readonly root: string,
    readonly gpg: Gnupg,
  ) {
    this.config = path.join(root, 'aptly.conf');
  }

  /** Removes the root and writes the config file. */
  reset(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
    fs.mkdirSync(this.root, { recursive: true });
    fs.writeFileSync(this.config, JSON.stringify({ rootDir: this.root, gpgProvider: 'gpg2', architectures: ['amd64'] }));
  }

  /** One aptly command as a step. */
  step(...args: string[]): Step {
    return { cmd: ['aptly', `-config=${this.config}`, ...args], env: { GNUPGHOME: this.gpg.home } };
  }

  create(repo: string): Step {
    return this.step('repo', 'create', '-distribution=bookworm', '-component=main', repo);
  }

  /** `aptly repo add` of files or folders. */
  add(repo: string, ...files: string[]): Step {
    return this.step('repo', 'add', repo, ...files);
  }

  publishRepo(repo: string): Step {
    return this.step('publish', 'repo', `-gpg-key=${this.gpg.fingerprint}`, '-architectures=amd64', '-skip-contents', repo);
  }

  publishUpdate(): Step {
    return this.step('publish', 'update', `-gpg-key=${this.gpg.fingerprint}`, '-skip-contents', 'bookworm');
  }
}

/** Files per `reprepro includedeb` call: the argument list of 100,000 paths is over the kernel's limit. */
const INCLUDE_CHUNK = 5000;

/**
 * reprepro on its own base folder: distribution bookworm, component main, architecture amd64,
 * `SignWith:` the shared key. reprepro 5.3 keeps one version per package name (no `Limit:` field
 * before 5.4): with 3 versions per name its indexes list a third of the packages.
 */
export class Reprepro {
  constructor(
    readonly base: string,
    readonly gpg: Gnupg,
  ) {}

  /** Removes the base folder and writes conf/distributions. */
  reset(): void {
    fs.rmSync(this.base, { recursive: true, force: true });
    fs.mkdirSync(path.join(this.base, 'conf'), { recursive: true });
    fs.writeFileSync(
      path.join(this.base, 'conf', 'distributions'),
      `Codename: bookworm\nArchitectures: amd64\nComponents: main\nSignWith: ${this.gpg.fingerprint}\n`,
    );
  }

  /**
   * `reprepro includedeb` of the files (given relative to their folder), INCLUDE_CHUNK files a call;
   * only the last call exports and signs the indexes, so the work is that of one call.
   */
  include(files: string[]): Step[] {
    const steps: Step[] = [];
    for (let i = 0; i < files.length; i += INCLUDE_CHUNK) {
      const chunk = files.slice(i, i + INCLUDE_CHUNK);
      const last = i + INCLUDE_CHUNK >= files.length;
      steps.push({
        cmd: [
          'reprepro',
          '-S',
          'misc',
          '-P',
          'optional',
          `--export=${last ? 'changed' : 'silent-never'}`,
          '-b',
          this.base,
          'includedeb',
          'bookworm',
        ].concat(chunk.map((f) => path.basename(f))),
        cwd: path.dirname(chunk[0]),
        env: { GNUPGHOME: this.gpg.home },
      });
    }
    return steps;
  }
}
