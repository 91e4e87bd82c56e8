import { promises as fs } from 'fs';
import { join } from 'path';
import { AptRepoError, ConfigError } from '../errors';
import { encodeControlText } from '../deb/control';
import type { Digests } from '../core/types';
import type { ReleaseSigner } from '../sign/sign';
import { compressChunked, isIndexChunkList, type ChunkedIndex, type IndexChunk, type PreviousChunks } from './chunks';
import { digestsOf } from '../core/digests';
import { replaceFile, replaceWithLink } from '../core/files';
import { IndexFileEntry, parseReleaseFiles, ReleaseMeta, renderRelease } from './release';
import { byteOrder } from '../core/order';

/** What writeDistribution publishes for one codename: one component, Packages text per architecture. */
export interface DistributionInput {
  codename: string;
  suite: string;
  component: string;
  /** Binary architectures (without `all`); each gets a binary-<arch> folder, an empty Packages when it has no package. */
  architectures: string[];
  /** Architecture → Packages text (renderPackagesIndex); a missing architecture is published empty. */
  packages: Map<string, string>;
  meta: Omit<ReleaseMeta, 'suite' | 'codename' | 'architectures' | 'components'>;
}

/** The three index files of a binary-<arch> folder, in the order Release lists them. */
const INDEX_NAMES = ['Packages', 'Packages.gz', 'Packages.xz'] as const;
type IndexName = (typeof INDEX_NAMES)[number];
interface FileInfo {
  size: number;
  digests: Digests;
}
/**
 * One version of a binary-<arch> folder's indexes: the three files' sizes and digests, and (the
 * current version only) where each chunk of Packages lies in Packages.gz and Packages.xz, so that
 * the next publish copies the chunks that did not change (chunks.ts).
 */
type IndexVersion = Record<IndexName, FileInfo> & { chunks?: IndexChunk[] };

/**
 * By-hash bookkeeping, kept in `<distsDir>/<codename>/.by-hash.json` (not an index; not in Release):
 * for each binary-<arch> folder, the index versions whose files are in its by-hash/SHA256 folder,
 * oldest first, the current one last. The file names alone (a digest) do not tell which index a
 * file is or how old it is; this does, so the oldest versions can be dropped and an older
 * Packages content seen again can reuse its compressed files.
 */
interface ByHashState {
  version: 1;
  indexes: Record<string, IndexVersion[]>;
}
const STATE_FILE = '.by-hash.json';

/**
 * by-hash folders written. apt fetches `by-hash/<strongest hash Release lists>/<digest>` (apt's
 * acquire-item.cc picks the best of the expected hashes), which is SHA512 when Release has a
 * SHA512 block; SHA256 is what the Debian archive serves and what verify and clients of a
 * SHA256-only Release use. MD5Sum and SHA1 are never the strongest, so never fetched by hash.
 */
const BY_HASH = ['SHA256', 'SHA512'] as const;

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
async function mkdirp(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return undefined;
  }
}

/** Digest lengths in hex digits; digests become file names, so anything else is refused. */
const HEX_LENGTHS: Record<keyof Digests, number> = { MD5sum: 32, SHA1: 40, SHA256: 64, SHA512: 128 };

/** True for a file record with a size and all four digests well-formed (as .by-hash.json and Release reuse need). */
const hasAllDigests = (f: FileInfo | undefined): f is FileInfo =>
  !!f &&
  Number.isInteger(f.size) &&
  f.size >= 0 &&
  !!f.digests &&
  (Object.keys(HEX_LENGTHS) as (keyof Digests)[]).every((k) => new RegExp(`^[0-9a-f]{${HEX_LENGTHS[k]}}$`).test(f.digests[k] ?? ''));

/**
 * The previous generation's index versions per binary-<arch> folder: its .by-hash.json, completed
 * with what its Release lists as current (so a distribution written by another tool still has its
 * current files carried over and reused). Unreadable or missing files give an empty state.
 */
async function loadPrevious(prevDistDir: string | undefined): Promise<Map<string, IndexVersion[]>> {
  const versions = new Map<string, IndexVersion[]>();
  if (!prevDistDir) return versions;
  try {
    const state = JSON.parse(await fs.readFile(join(prevDistDir, STATE_FILE), 'utf8')) as ByHashState;
    if (state?.version === 1 && state.indexes && typeof state.indexes === 'object') {
      for (const [dir, list] of Object.entries(state.indexes)) {
        if (Array.isArray(list))
          versions.set(
            dir,
            list
              .filter((v) => INDEX_NAMES.every((n) => hasAllDigests(v?.[n])))
              // A chunk list that does not check is dropped: its index is compressed afresh.
              .map((v) => (v.chunks === undefined || isIndexChunkList(v.chunks) ? v : { ...v, chunks: undefined })),
          );
      }
    }
  } catch {
    // No state (first publish, or a distribution written by another tool): the Release alone tells the current files.
  }
  let release: string;
  try {
    release = await fs.readFile(join(prevDistDir, 'Release'), 'utf8');
  } catch {
    return versions;
  }
  const listed = new Map(parseReleaseFiles(release).map((e) => [e.path, e]));
  for (const [path, entry] of listed) {
    if (!path.endsWith('/Packages')) continue;
    const dir = path.slice(0, -'/Packages'.length);
    const current: Partial<IndexVersion> = {};
    for (const name of INDEX_NAMES) {
      const e = listed.get(`${dir}/${name}`);
      if (hasAllDigests(e)) current[name] = { size: e.size, digests: e.digests };
    }
    if (!INDEX_NAMES.every((n) => current[n])) continue;
    const known = versions.get(dir) ?? [];
    const list = known.filter((v) => v.Packages.digests.SHA256 !== entry.digests.SHA256);
    // The chunk list of these very files (the same three digests), if the bookkeeping has one.
    const same = known.find((v) => INDEX_NAMES.every((n) => v[n].digests.SHA256 === current[n]!.digests.SHA256));
    versions.set(dir, [...list, { ...(current as IndexVersion), chunks: same?.chunks }]);
  }
  return versions;
}

/** Per-call cache: identical Packages texts (common when most packages are Architecture: all) are compressed once. */
type CompressCache = Map<string, Promise<ChunkedIndex>>;

/**
 * The chunks of `v` (the previous generation's current version of a folder) and its .gz and .xz
 * files from `byHashDir`, when it has a chunk list and both files are there with their recorded
 * sizes; else undefined (everything is compressed).
 */
async function previousChunks(byHashDir: string | undefined, v: IndexVersion | undefined): Promise<PreviousChunks | undefined> {
  if (!byHashDir || !v?.chunks) return undefined;
  try {
    const [gz, xz] = await Promise.all(
      ['Packages.gz', 'Packages.xz'].map((n) => fs.readFile(join(byHashDir, v[n as IndexName].digests.SHA256))),
    );
    if (gz.length !== v['Packages.gz'].size || xz.length !== v['Packages.xz'].size) return undefined;
    return { chunks: v.chunks, gz, xz };
  } catch {
    return undefined;
  }
}

/**
 * Writes one `<component>/binary-<arch>/` folder: Packages, Packages.gz, Packages.xz and
 * by-hash/{SHA256,SHA512}/<digest> links for them and for up to `keep` older versions carried over from the
 * previous generation. Reuses the previous generation's files (hard links, same inode) when the
 * Packages content is one it already has, instead of hashing and compressing again; otherwise
 * compresses by chunks (compressChunked), copying the chunks the previous current version had.
 * Returns the version now current and the list recorded in .by-hash.json.
 */
async function writeIndexFolder(
  distDir: string,
  indexDir: string,
  text: string,
  prevDistDir: string | undefined,
  prevVersions: IndexVersion[],
  keep: number,
  cache: CompressCache,
): Promise<IndexVersion[]> {
  const folder = join(distDir, indexDir);
  await Promise.all(BY_HASH.map((h) => mkdirp(join(folder, 'by-hash', h))));
  const prevByHash = prevDistDir ? join(prevDistDir, indexDir, 'by-hash', 'SHA256') : undefined;
  // The control bytes as the .deb holds them (a Latin-1 byte stays one byte, as in dpkg-scanpackages).
  const raw = encodeControlText(text);

  // An old version's files are usable when every one is in the previous by-hash folder with its size.
  const usable = async (v: IndexVersion): Promise<boolean> => {
    if (!prevByHash) return false;
    for (const name of INDEX_NAMES) {
      if ((await sizeOf(join(prevByHash, v[name].digests.SHA256))) !== v[name].size) return false;
    }
    return true;
  };

  // Fast path: the newest previous version with the same size and bytes (one read and a compare
  // costs less than four digests of the text).
  let current: IndexVersion | undefined;
  let reused = false;
  const latest = prevVersions[prevVersions.length - 1];
  if (prevByHash && latest && latest.Packages.size === raw.length) {
    try {
      const old = await fs.readFile(join(prevByHash, latest.Packages.digests.SHA256));
      if (old.equals(raw) && (await usable(latest))) {
        current = latest;
        reused = true;
      }
    } catch {
      // not there: hash and compress below
    }
  }
  if (!current) {
    const packages: FileInfo = { size: raw.length, digests: digestsOf(raw) };
    const match = prevVersions.find((v) => v.Packages.digests.SHA256 === packages.digests.SHA256);
    if (match && (await usable(match))) {
      current = match;
      reused = true;
    } else {
      let compressed = cache.get(packages.digests.SHA256);
      if (!compressed) {
        compressed = previousChunks(prevByHash, latest).then((prev) => compressChunked(raw, prev));
        cache.set(packages.digests.SHA256, compressed);
      }
      const { gz, xz, chunks } = await compressed;
      current = {
        Packages: packages,
        'Packages.gz': { size: gz.length, digests: digestsOf(gz) },
        'Packages.xz': { size: xz.length, digests: digestsOf(xz) },
        chunks,
      };
      const data: Record<IndexName, Buffer> = { Packages: raw, 'Packages.gz': gz, 'Packages.xz': xz };
      await Promise.all(INDEX_NAMES.map((name) => replaceFile(join(folder, name), data[name])));
    }
  }
  const cur = current;
  if (reused) {
    await Promise.all(INDEX_NAMES.map((name) => replaceWithLink(join(prevByHash!, cur[name].digests.SHA256), join(folder, name))));
  }
  await Promise.all(
    INDEX_NAMES.flatMap((name) =>
      BY_HASH.map((h) => replaceWithLink(join(folder, name), join(folder, 'by-hash', h, cur[name].digests[h]!))),
    ),
  );

  // Carry over the newest `keep` older versions still present in the previous by-hash folder.
  const older: IndexVersion[] = [];
  for (const v of [...prevVersions].reverse()) {
    if (older.length >= keep) break;
    if (v.Packages.digests.SHA256 === cur.Packages.digests.SHA256) continue;
    if (!(await usable(v))) continue;
    // Only the current version's chunks are ever copied from.
    older.unshift({ ...v, chunks: undefined });
  }
  await Promise.all(
    older.flatMap((v) =>
      INDEX_NAMES.flatMap((name) =>
        BY_HASH.map((h) => replaceWithLink(join(prevByHash!, v[name].digests.SHA256), join(folder, 'by-hash', h, v[name].digests[h]!))),
      ),
    ),
  );
  const kept = [...older, cur];

  // Only matters when rewriting a folder in place: drop by-hash files no kept version names.
  for (const h of BY_HASH) {
    const wanted = new Set(kept.flatMap((v) => INDEX_NAMES.map((n) => v[n].digests[h])));
    const dir = join(folder, 'by-hash', h);
    for (const f of await fs.readdir(dir)) {
      if (!wanted.has(f)) await fs.rm(join(dir, f), { force: true });
    }
  }
  return kept;
}

/**
 * Writes the whole `<distsDir>/<codename>/` of one distribution (Debian wiki
 * "DebianRepository/Format"): `<component>/binary-<arch>/{Packages,Packages.gz,Packages.xz}` for
 * every architecture (an empty Packages when it has no package), `by-hash/SHA256/<sha256>` and
 * `by-hash/SHA512/<sha512>` hard links beside them (apt's Acquire-By-Hash, see BY_HASH), Release listing the three index files of every folder (paths relative
 * to dists/<codename>/, with size, MD5Sum, SHA1, SHA256, SHA512), InRelease and Release.gpg
 * (from `signer`), and `.by-hash.json` (by-hash bookkeeping, see ByHashState).
 *
 * Every file is written under a temp name and renamed, index files and by-hash links before the
 * Release files that reference them, so no reader ever sees a partial file. The caller writes into
 * a fresh generation folder and flips the `dists` symlink itself.
 *
 * With `previousDistsDir` (the current generation's dists folder): an index whose Packages
 * content the previous generation has (current or kept in by-hash) is hard-linked from it instead
 * of hashed and recompressed; and up to `byHashKeep` (default 3) older versions of each index are
 * carried over into by-hash, so a client holding an older Release still finds its files.
 *
 * @returns the index files listed in Release, sorted by path.
 * @throws ConfigError naming liste_dist, liste_arch or repo.yaml's component for a codename, component or
 *   architecture that is not a plain path segment,
 *   an empty or repeated architecture list, a bad byHashKeep; AptRepoError for Packages text given
 *   for an architecture not in the list; the signer's and the file system's errors unchanged.
 */
export async function writeDistribution(
  distsDir: string,
  input: DistributionInput,
  signer: ReleaseSigner,
  opts: { previousDistsDir?: string; byHashKeep?: number } = {},
): Promise<IndexFileEntry[]> {
  const { codename, component, architectures } = input;
  if (!SEGMENT.test(codename)) throw new ConfigError('liste_dist', `'${codename}' is not a valid codename`);
  if (!SEGMENT.test(component)) throw new ConfigError('repo.yaml component', `'${component}' is not a valid component`);
  if (architectures.length === 0) throw new ConfigError('liste_arch', `no architecture to publish for ${codename}`);
  for (const arch of architectures) {
    if (!SEGMENT.test(arch)) throw new ConfigError('liste_arch', `'${arch}' is not a valid architecture`);
  }
  if (new Set(architectures).size !== architectures.length)
    throw new ConfigError('liste_arch', `repeated architecture in ${architectures.join(' ')}`);
  for (const arch of input.packages.keys()) {
    if (!architectures.includes(arch))
      throw new AptRepoError(`${codename}: Packages given for architecture '${arch}', which is not published`);
  }
  const keep = opts.byHashKeep ?? 3;
  if (!Number.isInteger(keep) || keep < 0) throw new ConfigError('byHashKeep', `must be an integer >= 0, got ${keep}`);

  const distDir = join(distsDir, codename);
  await mkdirp(distDir);
  const prevDistDir = opts.previousDistsDir ? join(opts.previousDistsDir, codename) : undefined;
  const previous = await loadPrevious(prevDistDir);

  const cache: CompressCache = new Map();
  const state: ByHashState = { version: 1, indexes: {} };
  const entries: IndexFileEntry[] = [];
  const folders = await Promise.all(
    architectures.map(async (arch) => {
      const indexDir = `${component}/binary-${arch}`;
      const kept = await writeIndexFolder(
        distDir,
        indexDir,
        input.packages.get(arch) ?? '',
        prevDistDir,
        previous.get(indexDir) ?? [],
        keep,
        cache,
      );
      return { indexDir, kept };
    }),
  );
  for (const { indexDir, kept } of folders) {
    state.indexes[indexDir] = kept;
    const current = kept[kept.length - 1];
    for (const name of INDEX_NAMES) entries.push({ path: `${indexDir}/${name}`, size: current[name].size, digests: current[name].digests });
  }
  entries.sort((a, b) => byteOrder(a.path, b.path));

  const release = renderRelease({ ...input.meta, suite: input.suite, codename, architectures, components: [component] }, entries);
  const { inRelease, releaseGpg } = await signer.sign(release);
  await replaceFile(join(distDir, STATE_FILE), JSON.stringify(state) + '\n');
  await replaceFile(join(distDir, 'Release'), release);
  await replaceFile(join(distDir, 'Release.gpg'), releaseGpg);
  await replaceFile(join(distDir, 'InRelease'), inRelease);
  return entries;
}
