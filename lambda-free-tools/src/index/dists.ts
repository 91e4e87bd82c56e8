/**
 * The Debian index layout behind core/format.ts IndexLayout: a generation's `dists` tree, one
 * folder per codename with Release, InRelease and Release.gpg, and
 * `<component>/binary-<arch>/Packages{,.gz,.xz}` with their by-hash copies. Written by
 * index/dist.ts writeDistribution, read back for rollback and re-signing, dated for freshness and
 * checked for verify as apt would (apt's acquire-item.cc, apt-secure(8)).
 * Layout and Release contents: https://wiki.debian.org/DebianRepository/Format.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { spawnSync } from 'child_process';
import type * as openpgp from 'openpgp';
import { AptRepoError } from '../errors';
import { compareDigests, DIGEST_NAMES, digestFile, digestsOf, type Digests } from '../core/digests';
import type { IndexLayout, IndexShape, ListedEntry, ManifestDates } from '../core/format';
import { parseStanzas, getField } from '../deb/control';
import { writeDistribution } from './dist';
import { renderPackagesIndexes, renderPackagesStanza } from './packages';
import { parseReleaseDate, parseReleaseFiles, releaseHeader, type IndexFileEntry } from './release';

/**
 * Identifies the stanza renderer, so that stanzas cached by another version of apt-repo are never
 * reused: a digest of renderPackagesStanza's source and of its output for a sample exercising
 * field order, name canonicalisation, continuation lines and unknown fields.
 */
const STANZA_KEY: string = createHash('sha256')
  .update(renderPackagesStanza.toString())
  .update(
    renderPackagesStanza({
      control: [
        ['package', 'sample'],
        ['Version', '1:2.0-1'],
        ['Architecture', 'all'],
        ['Description', 'one\n line\n .\n more  '],
        ['X-Custom-field', 'v'],
        ['depends', 'a, b'],
        ['Installed-Size', '3'],
        ['Section', 'misc'],
        ['Priority', 'optional'],
        ['Size', '9'],
        ['Multi-Arch', 'foreign'],
        ['Homepage', 'https://example.org'],
        ['Maintainer', 'M <m@example.org>'],
        ['Empty', ' '],
      ],
      filename: 'pool/main/s/sample/sample_2.0-1_all.deb',
      size: 1,
      digests: { MD5sum: '0'.repeat(32), SHA1: '1'.repeat(40), SHA256: '2'.repeat(64) },
    }),
  )
  .digest('hex')
  .slice(0, 16);

/**
 * Gives the new codename's Release files a later mtime than the previous generation's InRelease
 * when the clock has not moved past it, so an If-Modified-Since client (apt) never sees the new
 * Release as not modified (two publishes in one second, or a rollback right after a publish).
 * Only the new generation's own files (fresh inodes) are touched.
 */
async function laterReleaseTimes(distDir: string, previousDistDir: string | undefined): Promise<void> {
  if (!previousDistDir) return;
  const prev = await fs.promises.stat(path.join(previousDistDir, 'InRelease')).catch(() => undefined);
  if (!prev) return;
  const earliest = Math.floor(prev.mtimeMs / 1000) + 1;
  for (const name of ['Release', 'InRelease', 'Release.gpg']) {
    const file = path.join(distDir, name);
    if (Math.floor((await fs.promises.stat(file)).mtimeMs / 1000) < earliest) await fs.promises.utimes(file, earliest, earliest);
  }
}

/** Release header fields by lower-case name (deb822 field names are case-insensitive). */
function headerFields(text: string): Map<string, string> {
  return new Map([...releaseHeader(text)].map(([k, v]) => [k.toLowerCase(), v]));
}

/** Decompresses an index file (`.gz` with zlib, `.xz` with the system xz) for comparison with Packages. */
function decompress(file: string): Buffer {
  if (file.endsWith('.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  const r = spawnSync('xz', ['-dc', file], { maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`xz -dc failed: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

/** InRelease against Release, signed by `key`: a problem line, or undefined. */
async function verifyInRelease(file: string, release: string, key: openpgp.PublicKey): Promise<string | undefined> {
  try {
    const text = fs.readFileSync(file, 'utf8');
    // apt refuses any data after the signature block (apt's OpenMaybeClearSignedFile).
    if (!/-----END PGP SIGNATURE-----\r?\n?$/.test(text)) return `${file}: text after -----END PGP SIGNATURE----- (apt refuses it)`;
    const { readCleartextMessage, verify } = await import('openpgp');
    const message = await readCleartextMessage({ cleartextMessage: text });
    const r = await verify({ message, verificationKeys: key, expectSigned: true });
    const signed = String(r.data);
    if (signed !== release && signed + '\n' !== release) return `${file}: signed text differs from Release`;
  } catch (e) {
    return `${file}: signature does not verify with the channel's public key: ${(e as Error).message}`;
  }
  return undefined;
}

/** Release.gpg, a detached signature of the Release bytes by `key`: a problem line, or undefined. */
async function verifyReleaseGpg(file: string, release: Buffer, key: openpgp.PublicKey): Promise<string | undefined> {
  try {
    const { createMessage, readSignature, verify } = await import('openpgp');
    const signature = await readSignature({ armoredSignature: fs.readFileSync(file, 'utf8') });
    const message = await createMessage({ binary: release });
    await verify({ message, signature, verificationKeys: key, expectSigned: true });
  } catch (e) {
    return `${file}: detached signature does not verify with the channel's public key: ${(e as Error).message}`;
  }
  return undefined;
}

/** The Filename fields of a Packages text, in order (Debian Policy §5.3: one per stanza). */
function filenamesOf(packages: string): string[] {
  return [...packages.matchAll(/^Filename: (.+)$/gm)].map((m) => m[1]);
}

async function read(distsDir: string, codename: string, shape: IndexShape): Promise<Map<string, string>> {
  const releaseFile = path.join(distsDir, codename, 'Release');
  let release: string;
  try {
    release = await fs.promises.readFile(releaseFile, 'utf8');
  } catch (e) {
    throw new AptRepoError(
      `${releaseFile}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${codename} in that generation (liste_dist changed since); roll back to a later one, or publish` : (e as Error).message}`,
    );
  }
  const listed = new Map(parseReleaseFiles(release).map((e) => [e.path, e]));
  const byArch = new Map<string, string>();
  for (const arch of shape.architectures) {
    const rel = `${shape.component}/binary-${arch}/Packages`;
    const entry = listed.get(rel);
    const file = path.join(distsDir, codename, rel);
    if (!entry)
      throw new AptRepoError(
        `${releaseFile} lists no ${rel} (liste_arch or the component changed since); roll back to a later one, or publish`,
      );
    const bytes = await fs.promises.readFile(file);
    if (bytes.length !== entry.size || digestsOf(bytes).SHA256 !== entry.digests.SHA256) {
      throw new AptRepoError(`${file} differs from what its Release lists (size or SHA256); the generation is damaged`);
    }
    byArch.set(arch, bytes.toString('utf8'));
  }
  return byArch;
}

function manifestDates(distsDir: string, codename: string): ManifestDates {
  const file = path.join(distsDir, codename, 'Release');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return { file, found: false };
  }
  const fields = releaseHeader(text);
  const validUntilText = fields.get('Valid-Until');
  return {
    file,
    found: true,
    date: parseReleaseDate(fields.get('Date') ?? '') ?? 'unreadable',
    validUntil: validUntilText === undefined ? undefined : (parseReleaseDate(validUntilText) ?? 'unreadable'),
  };
}

/** The Release of `codename` against what the channel publishes: fields, signatures, listed files and their by-hash copies. */
async function verifyRelease(
  dir: string,
  codename: string,
  shape: IndexShape,
  key: openpgp.PublicKey | undefined,
  problems: string[],
): Promise<IndexFileEntry[] | undefined> {
  const releaseFile = path.join(dir, 'Release');
  let releaseBuf: Buffer;
  try {
    releaseBuf = fs.readFileSync(releaseFile);
  } catch {
    problems.push(`${releaseFile}: missing (codename ${codename} of liste_dist not published)`);
    return undefined;
  }
  const release = releaseBuf.toString('utf8');
  const fields = headerFields(release);
  if (fields.get('codename') !== codename)
    problems.push(`${releaseFile}: Codename is '${fields.get('codename') ?? ''}', expected '${codename}'`);
  const archs = (fields.get('architectures') ?? '').split(/\s+/);
  for (const a of shape.architectures) if (!archs.includes(a)) problems.push(`${releaseFile}: Architectures does not list ${a}`);
  const validUntil = fields.get('valid-until');
  if (validUntil && !(Date.parse(validUntil.replace(/ UTC$/, ' GMT')) > Date.now()))
    problems.push(`${releaseFile}: Valid-Until ${validUntil} has passed`);
  if (key) {
    const inRelease = path.join(dir, 'InRelease');
    const releaseGpg = path.join(dir, 'Release.gpg');
    if (!fs.existsSync(inRelease)) problems.push(`${inRelease}: missing`);
    else {
      const p = await verifyInRelease(inRelease, release, key);
      if (p) problems.push(p);
    }
    if (!fs.existsSync(releaseGpg)) problems.push(`${releaseGpg}: missing`);
    else {
      const p = await verifyReleaseGpg(releaseGpg, releaseBuf, key);
      if (p) problems.push(p);
    }
  }

  const listed = parseReleaseFiles(release);
  if (!listed.some((f) => f.digests.SHA256)) problems.push(`${releaseFile}: lists no SHA256 checksums`);
  for (const f of listed) {
    const file = path.join(dir, f.path);
    let actual: { size: number; digests: Digests };
    try {
      actual = await digestFile(file);
    } catch {
      problems.push(`${file}: listed in ${releaseFile} but missing`);
      continue;
    }
    problems.push(...compareDigests(file, f.digests, f.size, actual));
    // apt fetches by-hash/<strongest hash Release lists>/<digest>: SHA512 when listed, else SHA256.
    for (const h of ['SHA256', 'SHA512'] as const) {
      const digest = f.digests[h];
      if (!digest) continue;
      const byHash = path.join(path.dirname(file), 'by-hash', h, digest);
      const st = fs.statSync(byHash, { throwIfNoEntry: false });
      if (!st) problems.push(`${byHash}: missing (by-hash copy of ${f.path})`);
      else if (st.ino !== fs.statSync(file).ino && (await digestFile(byHash)).digests[h] !== digest) {
        problems.push(`${byHash}: content differs from its name`);
      }
    }
  }
  return listed;
}

async function verify(
  distsDir: string,
  codename: string,
  shape: IndexShape,
  opts: { isPoolPath: (p: string | undefined) => boolean; key?: openpgp.PublicKey },
): Promise<{ problems: string[]; entries: ListedEntry[] }> {
  const problems: string[] = [];
  const entries: ListedEntry[] = [];
  const dir = path.join(distsDir, codename);
  const listed = await verifyRelease(dir, codename, shape, opts.key, problems);
  if (!listed) return { problems, entries };
  const byPath = new Set(listed.map((f) => f.path));
  const releaseFile = path.join(dir, 'Release');
  for (const arch of shape.architectures) {
    const rel = `${shape.component}/binary-${arch}/Packages`;
    const packagesFile = path.join(dir, rel);
    if (!byPath.has(rel)) problems.push(`${releaseFile}: does not list ${rel}`);
    let text: string;
    try {
      text = fs.readFileSync(packagesFile, 'utf8');
    } catch {
      problems.push(`${packagesFile}: missing`);
      continue;
    }
    for (const ext of ['.gz', '.xz']) {
      const c = packagesFile + ext;
      if (!fs.existsSync(c)) continue;
      try {
        if (decompress(c).toString('utf8') !== text) problems.push(`${c}: does not decompress to ${packagesFile}`);
      } catch (e) {
        problems.push(`${c}: cannot decompress: ${(e as Error).message}`);
      }
    }
    let stanzas;
    try {
      stanzas = parseStanzas(text, packagesFile);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    stanzas.forEach((s, i) => {
      const where = `${packagesFile} entry ${i + 1} (${getField(s, 'Package') ?? '?'} ${getField(s, 'Version') ?? '?'})`;
      const filename = getField(s, 'Filename');
      const size = Number(getField(s, 'Size'));
      const a = getField(s, 'Architecture');
      if (a !== arch && a !== 'all') problems.push(`${where}: Architecture ${a ?? '(none)'} in binary-${arch}`);
      if (!opts.isPoolPath(filename) || !Number.isInteger(size)) {
        problems.push(`${where}: bad Filename or Size`);
        return;
      }
      const digests: Partial<Digests> = {};
      for (const n of DIGEST_NAMES) {
        const v = getField(s, n);
        if (v) digests[n] = v;
      }
      if (!digests.SHA256) problems.push(`${where}: no SHA256`);
      entries.push({ where, poolPath: filename!, size, digests });
    });
  }
  return { problems, entries };
}

/** Debian's index layout (see core/format.ts IndexLayout and this module's comment). */
export const debianDists: IndexLayout = {
  entryKey: STANZA_KEY,
  render: (perCodename, architectures, cache) => renderPackagesIndexes(perCodename, architectures, { cache }),
  async write(distsDir, input, signer, opts) {
    const previous = opts.previousDistsDir && fs.existsSync(opts.previousDistsDir) ? opts.previousDistsDir : undefined;
    await writeDistribution(
      distsDir,
      {
        codename: input.codename,
        suite: input.codename,
        component: input.component,
        architectures: input.architectures,
        packages: input.indexes,
        meta: input.meta,
      },
      signer,
      { previousDistsDir: previous },
    );
    await laterReleaseTimes(path.join(distsDir, input.codename), previous && path.join(previous, input.codename));
  },
  read,
  poolPathsOf: filenamesOf,
  manifestDates,
  verify,
};
