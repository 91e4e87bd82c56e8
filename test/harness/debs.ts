/**
 * Test helpers that make real .deb files: built with `dpkg-deb` from a spec, or downloaded from the
 * Debian archive with `apt-get download` (cached across runs: realDebs.ts).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { pack } from 'tar-stream';

export { fetchRealDebs } from './realDebs';

/** What buildDeb puts in DEBIAN/control and in the package's files. */
export interface DebSpec {
  name: string;
  version: string;
  /** Default 'all'. */
  architecture?: string;
  /** dpkg-deb -Z: default 'xz' (dpkg-deb's own default). */
  compression?: 'gzip' | 'xz' | 'zstd' | 'none';
  depends?: string;
  /** More control fields, written after the standard ones, in object order. */
  extraFields?: Record<string, string>;
  /** Size of /usr/share/<name>/payload.bin, pseudo-random bytes (seeded by name and version). */
  payloadBytes?: number;
  /** Description field value, continuation lines included; default a one-line synopsis. */
  description?: string;
}

/**
 * Builds 40 packages par0..par39 (versions 1.<i>-1, compressions gzip, xz, zstd and none in turn,
 * payloads of 1,000 + 50·i bytes) in `dir`, plus `bad_1.0_all.deb` (not a deb) at index 17 of the
 * returned list of paths: a reader must give each result at its index, the bad one as an error.
 */
export function buildDebSet(dir: string): string[] {
  const compressions = ['gzip', 'xz', 'zstd', 'none'] as const;
  const files = Array.from({ length: 40 }, (_, i) =>
    buildDeb(dir, {
      name: `par${i}`,
      version: `1.${i}-1`,
      compression: compressions[i % 4],
      payloadBytes: 1000 + i * 50,
    }),
  );
  const bad = path.join(dir, 'bad_1.0_all.deb');
  fs.writeFileSync(bad, 'not a deb');
  files.splice(17, 0, bad);
  return files;
}

/**
 * Builds `<outDir>/<name>_<version without epoch>_<arch>.deb` with
 * `dpkg-deb --root-owner-group -Z<compression> --build`, SOURCE_DATE_EPOCH fixed so the same spec
 * gives the same bytes. The package holds /usr/share/doc/<name>/README and, with payloadBytes,
 * /usr/share/<name>/payload.bin. Returns the .deb's path; throws dpkg-deb's error (with its stderr)
 * when it refuses the control file.
 */
export function buildDeb(outDir: string, spec: DebSpec): string {
  const arch = spec.architecture ?? 'all';
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'build-deb-'));
  try {
    fs.mkdirSync(path.join(staging, 'DEBIAN'));
    const fields: [string, string][] = [
      ['Package', spec.name],
      ['Version', spec.version],
      ['Architecture', arch],
      ['Maintainer', 'Test Harness <harness@example.org>'],
    ];
    if (spec.depends) fields.push(['Depends', spec.depends]);
    fields.push(...Object.entries(spec.extraFields ?? {}));
    fields.push(['Description', spec.description ?? `test package ${spec.name}`]);
    fs.writeFileSync(path.join(staging, 'DEBIAN', 'control'), fields.map(([k, v]) => `${k}: ${v}\n`).join(''));
    const doc = path.join(staging, 'usr', 'share', 'doc', spec.name);
    fs.mkdirSync(doc, { recursive: true });
    fs.writeFileSync(path.join(doc, 'README'), `${spec.name} ${spec.version}\n`);
    if (spec.payloadBytes)
      writePayload(path.join(staging, 'usr', 'share', spec.name, 'payload.bin'), spec.payloadBytes, `${spec.name}_${spec.version}`);
    fs.mkdirSync(outDir, { recursive: true });
    const out = path.join(outDir, `${spec.name}_${spec.version.replace(/^[0-9]+:/, '')}_${arch}.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', `-Z${spec.compression ?? 'xz'}`, '--build', staging, out], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
    });
    return out;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Writes `bytes` pseudo-random bytes (xorshift32 seeded from `seed`) 1 MiB at a time. */
function writePayload(file: string, bytes: number, seed: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let x = 2166136261;
  for (const c of seed) x = Math.imul(x ^ c.charCodeAt(0), 16777619) >>> 0;
  x ||= 1;
  const fd = fs.openSync(file, 'w');
  try {
    const block = new Uint32Array(1 << 18);
    for (let left = bytes; left > 0; left -= block.byteLength) {
      for (let k = 0; k < block.length; k++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        block[k] = x >>> 0;
      }
      fs.writeSync(fd, Buffer.from(block.buffer, 0, Math.min(left, block.byteLength)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Assembles an ar archive in memory from `members` (for hand-made, often broken, .deb files):
 * 'gnu' names end with '/', 'bsd' names go in front of the data as `#1/<len>`, 'dpkg' names are
 * space padded as dpkg-deb writes them. Odd-sized members get the '\n' padding byte.
 */
export function arArchive(members: [string, Buffer | string][], style: 'dpkg' | 'gnu' | 'bsd' = 'dpkg'): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const [name, content] of members) {
    let data = Buffer.from(content);
    let field = style === 'gnu' ? `${name}/` : name;
    if (style === 'bsd') {
      field = `#1/${Buffer.byteLength(name)}`;
      data = Buffer.concat([Buffer.from(name), data]);
    }
    const header =
      field.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(data.length).padEnd(10) + '`\n';
    parts.push(Buffer.from(header, 'latin1'), data);
    if (data.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/**
 * A .deb whose control file is exactly `control` (raw bytes: NUL and newlines kept on purpose;
 * a string is written as UTF-8, a Buffer as it is, e.g. with Latin-1 bytes), built by hand since
 * dpkg-deb refuses such fields: `debian-binary`, `control.tar.gz` holding `./control`, and a
 * `data.tar.gz` of 1 KiB of zeros (not a valid tar: no test reads it).
 */
export async function rawControlDeb(control: string | Buffer): Promise<Buffer> {
  const p = pack();
  p.entry({ name: './control', mode: 0o644 }, typeof control === 'string' ? Buffer.from(control, 'utf8') : control);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return arArchive([
    ['debian-binary', '2.0\n'],
    ['control.tar.gz', zlib.gzipSync(Buffer.concat(chunks))],
    ['data.tar.gz', zlib.gzipSync(Buffer.alloc(1024))],
  ]);
}

/** `20261121T051500Z` for `ms`: the UTC stamp ingest puts before the names in rejected/. */
export function rejectedStamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}
