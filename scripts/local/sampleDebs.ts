/**
 * The sample packages of `npm run local` (scripts/local-stack.ts), built on this machine with
 * `dpkg-deb --build` instead of fetched from Debian's archive, so the playground needs no mirror and
 * apt can find them nowhere else (no name exists in Debian):
 * - epi-hello 1.0-1, 1.1-1 and 2.0-1 (this machine's architecture): `pkg=<older>`, upgrade and
 *   rollback; 2.0-1 is not ingested by the local stack, it is the one to try `apt-ops upload` with;
 * - epi-php-tools 1.0-1+deb12u1: release-specific, routed to bookworm only by the default routing table;
 * - epi-docs 1.0-1, Architecture: all: served in every binary-<arch>.
 * Each installs /usr/bin/<name>, a shell script that prints its name and version.
 *
 * The bytes are deterministic (fixed modes and mtimes, root ownership, SOURCE_DATE_EPOCH, xz), and a
 * package already built is never rebuilt: the pool refuses the same name, version and architecture
 * with other content, so a re-run (or a dpkg-deb upgrade) must never offer it different bytes.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** One sample package. */
export interface SampleSpec {
  name: string;
  version: string;
  /** 'host' (this machine's architecture) or 'all'. */
  arch: 'host' | 'all';
  /** Dropped and ingested into preprod by the local stack; false: left for `apt-ops upload`. */
  ingest: boolean;
  /** What the package shows in the playground (printed with the list). */
  purpose: string;
}

/** The sample set, in the order it is printed and ingested. */
export const SAMPLE_SPECS: readonly SampleSpec[] = [
  { name: 'epi-hello', version: '1.0-1', arch: 'host', ingest: true, purpose: 'older version: install epi-hello=1.0-1' },
  { name: 'epi-hello', version: '1.1-1', arch: 'host', ingest: true, purpose: 'newest ingested version' },
  { name: 'epi-hello', version: '2.0-1', arch: 'host', ingest: false, purpose: 'for apt-ops upload (see below)' },
  { name: 'epi-php-tools', version: '1.0-1+deb12u1', arch: 'host', ingest: true, purpose: 'release-specific: bookworm only' },
  { name: 'epi-docs', version: '1.0-1', arch: 'all', ingest: true, purpose: 'Architecture: all, in every binary-<arch>' },
];

/** A built sample: its spec, its resolved architecture and the .deb's absolute path. */
export interface SampleDeb extends SampleSpec {
  architecture: string;
  file: string;
}

/** 2023-11-14T22:13:20Z: the mtime of every file and the SOURCE_DATE_EPOCH of every build. */
export const SAMPLE_EPOCH = 1700000000;

/** The .deb file name dpkg-deb gives a package: `<name>_<version without epoch>_<arch>.deb`. */
export function debFileName(name: string, version: string, architecture: string): string {
  return `${name}_${version.replace(/^[0-9]+:/, '')}_${architecture}.deb`;
}

/** The control file of a sample (Debian Policy 5.3 fields; nothing that depends on the build). */
export function renderSampleControl(s: SampleSpec, architecture: string): string {
  return [
    `Package: ${s.name}`,
    `Version: ${s.version}`,
    `Architecture: ${architecture}`,
    'Maintainer: Epiconcept local stack <apt-local@epiconcept.fr>',
    'Section: misc',
    'Priority: optional',
    `Description: sample package of the local stack (${s.name} ${s.version})`,
    ` Built by npm run local (scripts/local/sampleDebs.ts). ${s.purpose}.`,
    ` Installs /usr/bin/${s.name}, which prints "${s.name} ${s.version}".`,
    '',
  ].join('\n');
}

/** Builds one sample into `file` with dpkg-deb (deterministic bytes); throws dpkg-deb's error. */
function buildOne(s: SampleSpec, architecture: string, file: string): void {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'local-stack-deb-'));
  try {
    const put = (rel: string, content: string, mode: number) => {
      const p = path.join(staging, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
      fs.chmodSync(p, mode);
    };
    put('DEBIAN/control', renderSampleControl(s, architecture), 0o644);
    put(`usr/bin/${s.name}`, `#!/bin/sh\necho '${s.name} ${s.version}'\n`, 0o755);
    put(`usr/share/doc/${s.name}/README`, `${s.name} ${s.version}: a sample package of the Epiconcept APT local stack.\n`, 0o644);
    // Every folder 0755 and every entry the same mtime, whatever the umask and the clock.
    const walk = (p: string) => {
      if (fs.lstatSync(p).isDirectory()) {
        fs.chmodSync(p, 0o755);
        for (const n of fs.readdirSync(p)) walk(path.join(p, n));
      }
      fs.utimesSync(p, SAMPLE_EPOCH, SAMPLE_EPOCH);
    };
    walk(staging);
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', staging, tmp], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SOURCE_DATE_EPOCH: String(SAMPLE_EPOCH) },
    });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Builds the samples of SAMPLE_SPECS missing from `outDir` (created 0755), for `hostArch` (e.g.
 * 'amd64'), and returns all of them in SAMPLE_SPECS order with absolute paths. A file already in
 * `outDir` is kept as it is (see the header). Throws dpkg-deb's error when a build fails.
 */
export function buildSampleDebs(outDir: string, hostArch: string): SampleDeb[] {
  const dir = path.resolve(outDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return SAMPLE_SPECS.map((s) => {
    const architecture = s.arch === 'all' ? 'all' : hostArch;
    const file = path.join(dir, debFileName(s.name, s.version, architecture));
    if (!fs.existsSync(file)) buildOne(s, architecture, file);
    return { ...s, architecture, file };
  });
}
