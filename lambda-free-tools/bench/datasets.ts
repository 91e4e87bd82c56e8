/**
 * The bench's datasets, generated or fetched once into .cache/bench/<name> (a `.complete` marker
 * says the folder is whole) and reused by every later run.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { arArchive, buildDeb, fetchRealDebs } from '../../test/harness/debs';
import { walkNoFollow } from '../src/core/files';

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

/** Generates (once) a folder of debs under `cacheRoot`; `make(dir, i)` builds the i-th into dir. */
export function dataset(cacheRoot: string, name: string, count: number, make: (dir: string, i: number) => void): string {
  const dir = path.join(cacheRoot, name);
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  process.stderr.write(`generating dataset ${name} (${count} packages)…\n`);
  const start = Date.now();
  for (let i = 0; i < count; i++) make(dir, i);
  fs.writeFileSync(done, '');
  process.stderr.write(`  generated in ${((Date.now() - start) / 1000).toFixed(1)} s\n`);
  return dir;
}

const compressions = ['gzip', 'xz', 'zstd'] as const;

/** N synthetic packages built with dpkg-deb: N/3 names x 3 versions, control.tar in gzip/xz/zstd in turn. */
export function smallDataset(cacheRoot: string, n: number): string {
  return dataset(cacheRoot, `small-${n}`, n, (dir, i) => {
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

/** N packages of ~`mib` MiB of incompressible payload each. */
export function bigDataset(cacheRoot: string, n: number, mib: number): string {
  return dataset(cacheRoot, `big-${n}x${mib}`, n, (dir, i) => {
    buildDeb(dir, { name: `bench-big-${i}`, version: '1.0-1', architecture: 'amd64', compression: 'xz', payloadBytes: mib * 1024 * 1024 });
  });
}

/** The real packages: fetched once into .cache/debs, hard-linked into .cache/bench/real-<n>. */
export function realDataset(cacheRoot: string): string {
  const dir = path.join(cacheRoot, `real-${REAL_NAMES.length}`);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;
  process.stderr.write(`fetching ${REAL_NAMES.length} real packages with apt-get download…\n`);
  const files = fetchRealDebs(REAL_NAMES);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // apt-get download writes an epoch as `<n>%3a`; a pool file is named as dpkg-name names it, without the epoch.
  for (const f of files) fs.linkSync(f, path.join(dir, path.basename(f).replace(/_\d+%3a/, '_')));
  fs.writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

/** One ustar header block for a regular file or a directory (owner root, mtime fixed). */
function tarHeader(name: string, size: number, dir: boolean): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number, len: number) => h.write(text.slice(0, len), at, len, 'latin1');
  const octal = (v: number, len: number) => v.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(`${octal(dir ? 0o755 : 0o644, 8)}\0`, 100, 8);
  put(`${octal(0, 8)}\0`, 108, 8);
  put(`${octal(0, 8)}\0`, 116, 8);
  put(`${octal(size, 12)}\0`, 124, 12);
  put(`${octal(1700000000, 12)}\0`, 136, 12);
  put('        ', 148, 8);
  put(dir ? '5' : '0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** A gzip-compressed tar of `entries` (a name ending in '/' is a directory). */
function tarGz(entries: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of entries) {
    const data = Buffer.from(content);
    parts.push(tarHeader(name, data.length, name.endsWith('/')), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(parts), { level: 1 });
}

/**
 * Writes a tiny valid .deb straight as bytes (no dpkg-deb: 100,000 of them take seconds, not an hour):
 * debian-binary, control.tar.gz holding ./control, data.tar.gz holding /usr/share/doc/<name>/README.
 */
export function writeTinyDeb(dir: string, name: string, version: string, architecture: string): string {
  const control =
    `Package: ${name}\nVersion: ${version}\nArchitecture: ${architecture}\nMaintainer: Bench <bench@example.org>\n` +
    `Installed-Size: 1\nDepends: libc6 (>= 2.36)\nSection: misc\nPriority: optional\n` +
    `Description: generated package ${name}\n tiny payload, written directly by the bench.\n`;
  const doc = `./usr/share/doc/${name}/`;
  const data = tarGz([
    ['./', ''],
    ['./usr/', ''],
    ['./usr/share/', ''],
    ['./usr/share/doc/', ''],
    [doc, ''],
    [`${doc}README`, `${name} ${version}\n`],
  ]);
  const deb = arArchive([
    ['debian-binary', '2.0\n'],
    [
      'control.tar.gz',
      tarGz([
        ['./', ''],
        ['./control', control],
      ]),
    ],
    ['data.tar.gz', data],
  ]);
  const out = path.join(dir, `${name}_${version}_${architecture}.deb`);
  fs.writeFileSync(out, deb);
  return out;
}

/** N generated packages (writeTinyDeb): N/3 names x 3 versions, amd64 and all in turn. */
export function generatedDataset(cacheRoot: string, n: number): string {
  return dataset(cacheRoot, `gen-${n}`, n, (dir, i) => {
    const nameIdx = Math.floor(i / 3);
    writeTinyDeb(dir, `bench-gen-${nameIdx}`, `1.${i % 3}-1`, nameIdx % 2 ? 'amd64' : 'all');
  });
}

/** The .deb files under dir, sorted. */
export function debsIn(dir: string): string[] {
  return walkNoFollow(dir)
    .filter((r) => r.endsWith('.deb'))
    .map((r) => path.join(dir, r))
    .sort();
}

/** Reads every file once so that the timed runs find the page cache warm. */
export function warm(files: string[]): void {
  const buf = Buffer.alloc(1 << 20);
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    fs.closeSync(fd);
  }
}
