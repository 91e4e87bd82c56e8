/**
 * The package-format seam: what the channel logic (ingest, pending, promote, versions, publish,
 * rollback, gc, backup) needs to know about a kind of package file, and nothing else. Debian's
 * implementation is deb/format.ts; repo/format.ts `formatOf` is the one place that decides which
 * format a channel uses (Debian today). Like aptly's split between its `deb/` domain and the
 * publishing code, the channel modules only call this interface, so a second format (RPM) is a
 * new module beside deb/, not a copy of the repo logic. A format also owns the layout of the
 * signed indexes a generation serves (IndexLayout: for Debian the `dists` tree of Packages and
 * Release files), so publish, rollback, re-signing, freshness and verify name no index file
 * themselves. This file imports nothing but core/digests.ts (and openpgp's PublicKey type).
 */
import type { PublicKey } from 'openpgp';
import type { Digests } from './digests';

/** What identifies a package inside a channel: apt's (name, version, architecture), plus its source (pool folder). */
export interface PackageIdentity {
  name: string;
  version: string;
  architecture: string;
  /** The source package name (pool folder). */
  source: string;
}

/** What reading one package file gives: its control fields in file order, its size and digests. */
export interface PackageRead {
  /** The control data as [field, value] pairs in file order (values as in the file). */
  control: [string, string][];
  /** File size in bytes. */
  size: number;
  /** Digests of the whole file (at least SHA256). */
  digests: Digests;
}

/** What a format's index entry is rendered from: the package's control data and its pool file. */
export interface IndexEntrySource {
  control: [string, string][];
  /** Pool path relative to the web root, '/'-separated. */
  filename: string;
  size: number;
  digests: Digests;
}

/** What an index lists of a package: its identity and what its entry is rendered from. */
export interface IndexedPackage {
  name: string;
  version: string;
  architecture: string;
  /** Pool path: the entry's file name in the index, and the key of its cached entry. */
  poolPath: string;
  control: [string, string][];
  size: number;
  digests: Digests;
}

/** Where index entries rendered by an earlier publish are kept (repo/cache.ts PoolCache, loaded with the layout's entryKey). */
export interface StanzaCache {
  stanza(poolPath: string): string | undefined;
  setStanza(poolPath: string, stanza: string): void;
}

/**
 * Signs an index manifest's text (sign/sign.ts ReleaseSigner is one): a clear-signed copy
 * (`inRelease`, RFC 4880 §7) and an armored detached signature of the exact bytes (`releaseGpg`).
 */
export interface ManifestSigner {
  sign(text: string): Promise<{ inRelease: string; releaseGpg: string }>;
}

/** What the layout writes for one codename: the component's index text per architecture and the manifest's fields. */
export interface CodenameIndexes {
  codename: string;
  component: string;
  /** Binary architectures (without `all`), each published, empty when it has no package. */
  architectures: string[];
  /** Architecture → index text (IndexLayout.render); a missing architecture is published empty. */
  indexes: Map<string, string>;
  /** Origin, Label, Description; `date` the manifest's date, `validUntil` its expiry (none: never expires). */
  meta: { origin: string; label: string; description?: string; date: Date; validUntil?: Date };
}

/** What the channel expects a codename's indexes to hold: its component and architectures (liste_arch). */
export interface IndexShape {
  component: string;
  architectures: string[];
}

/** One package entry read back from a published index, for verify: where it is (file and entry), what it names. */
export interface ListedEntry {
  /** `<index file> entry <n> (<name> <version>)`, for messages. */
  where: string;
  /** The pool path the entry names (already checked to be one). */
  poolPath: string;
  size: number;
  digests: Partial<Digests>;
}

/** The signed manifest's dates of one codename (for freshness): absent fields undefined, unreadable ones 'unreadable'. */
export type ManifestDates =
  { file: string; found: false } | { file: string; found: true; date: Date | 'unreadable'; validUntil: Date | 'unreadable' | undefined };

/**
 * How a format lays out the signed indexes of one generation (`<generation>/dists`, which the web
 * root's `dists` link serves): the channel modules write, read back and check indexes only through
 * this. Debian's implementation is index/dists.ts (dists/<codename>/Release, InRelease,
 * Release.gpg, <component>/binary-<arch>/Packages{,.gz,.xz}, by-hash).
 */
export interface IndexLayout {
  /**
   * Identifies the entry renderer: cached entries stored under another key are never reused (a
   * new apt-repo must not serve text an older renderer wrote).
   */
  readonly entryKey: string;
  /**
   * The index text of every (codename, architecture): codename → architecture → text, for every
   * codename of `perCodename` and every architecture given (`all` packages in every architecture).
   * With `cache`, entries rendered by an earlier publish are reused and new ones stored.
   * @throws the format's VersionError for an entry with an invalid version.
   */
  render(perCodename: Map<string, IndexedPackage[]>, architectures: string[], cache?: StanzaCache): Map<string, Map<string, string>>;
  /**
   * Writes one codename's signed indexes under `distsDir` (a fresh generation's folder, flipped by
   * the caller), each file under a temp name then renamed, the signed manifest last. With
   * `previousDistsDir` (the generation served now), unchanged files are linked from it and its
   * manifest's date is exceeded (apt ignores a manifest older than the one it holds).
   * @throws ConfigError for a codename, component or architecture that is not a plain path segment;
   *   the signer's and the file system's errors unchanged.
   */
  write(distsDir: string, input: CodenameIndexes, signer: ManifestSigner, opts: { previousDistsDir?: string }): Promise<void>;
  /**
   * Reads back the index text of every architecture of `shape` for `codename` in `distsDir`,
   * each checked against its signed manifest (size and SHA256), so what is re-signed is exactly
   * what was served. Resolves to architecture → text.
   * @throws AptRepoError naming the file: no manifest for the codename, no index for an architecture
   *   or component, or an index that differs from its manifest.
   */
  read(distsDir: string, codename: string, shape: IndexShape): Promise<Map<string, string>>;
  /** The pool paths an index text names, in order. */
  poolPathsOf(text: string): string[];
  /** The date and expiry of `codename`'s signed manifest in `distsDir`. Throws the fs error for anything but a missing file. */
  manifestDates(distsDir: string, codename: string): ManifestDates;
  /**
   * Checks `codename`'s indexes in `distsDir` as a client would: manifest fields, signatures (with
   * `key`, the channel's public key; without, none are checked), every listed file's size, digests
   * and by-hash copy, compressed copies, entries' architectures and pool paths (`isPoolPath`).
   * Never throws for content: resolves to the problems (one line each, naming the file) and the
   * entries, whose pool files the caller checks.
   */
  verify(
    distsDir: string,
    codename: string,
    shape: IndexShape,
    opts: { isPoolPath: (p: string | undefined) => boolean; key?: PublicKey },
  ): Promise<{ problems: string[]; entries: ListedEntry[] }>;
}

/**
 * A package format. Every method is pure or reads only the file it is given; errors are the
 * format's typed errors (for Debian: DebError, VersionError from errors.ts) naming the file or the
 * value they concern, with a `reason` a rejected upload can quote.
 */
export interface PackageFormat {
  /** Short id, e.g. 'deb'. */
  readonly id: string;
  /** File name ending of a package file, e.g. '.deb': what ingest takes and the pool holds. */
  readonly extension: string;
  /** The rule a valid package name follows, quoted in messages (e.g. 'Debian Policy §5.6.1'). */
  readonly nameRule: string;
  /** The rule a valid version follows, quoted in messages (e.g. 'Debian Policy §5.6.12'). */
  readonly versionRule: string;
  /** Adjective for a version of this format in messages (e.g. 'Debian'). */
  readonly versionKind: string;
  /**
   * Reads one package file in a single pass: control data (validated: every field that can reach
   * a path is checked), size, MD5sum/SHA1/SHA256. With `opts.fd` that open descriptor is read and
   * `file` only names it in errors. Throws the format's error (with `reason`) for a bad file.
   */
  read(file: string, opts?: { fd?: number }): Promise<PackageRead>;
  /**
   * Reads many files (absolute paths), possibly in parallel; `onResult(i, r)` is called once per
   * file, in any order, with what `read` gives or the error it threw. `bytes` is their total size
   * (0 if unknown). Rejects only for a failure of the machinery itself or what onResult throws.
   */
  readMany(files: string[], opts: { bytes?: number; onResult: (i: number, r: PackageRead | Error) => void }): Promise<void>;
  /**
   * The identity of a package from its control data (which may come from a cache file, so it is
   * checked again as `read` checks it), or the reason it has none (a missing or invalid field).
   */
  identify(control: [string, string][]): PackageIdentity | string;
  /**
   * An identity identify gave earlier, read back from a file (the pool store): checked again as
   * identify checks the fields it comes from; the identity, or the reason it is not one.
   */
  checkIdentity(id: PackageIdentity): PackageIdentity | string;
  /**
   * The package name in `control`, unchecked (identify checks it): a cheap first filter for a
   * reader after one package (versions), undefined when there is none.
   */
  nameOf(control: readonly [string, string][]): string | undefined;
  /** True for a valid package name. */
  isValidName(name: string): boolean;
  /** True for a valid version. */
  isValidVersion(version: string): boolean;
  /** Orders two valid versions: negative, 0 or positive as a is older, equal or newer than b. */
  compareVersions(a: string, b: string): number;
  /**
   * The canonical text of a version for identity (two spellings the package manager treats as one
   * give the same text); the version itself when it is not valid.
   */
  versionKey(version: string): string;
  /**
   * What a package says of itself, for people (the web catalogue): a one-line `summary` and the
   * longer `text` (paragraphs separated by an empty line), both as plain text, never markup; empty
   * strings when the control data has none. Package data: the caller escapes it.
   */
  describe(control: readonly [string, string][]): { summary: string; text: string };
  /** The command a client runs to install exactly this version (Debian: `apt-get install name=version`). */
  installCommand(name: string, version: string): string;
  /**
   * The pool path of a package: `pool/<component>/…/[<codename>/]<file><extension>`, every part
   * checked (package data is hostile). Throws the format's error naming the invalid part. The
   * component and codename were checked as folder names by the caller.
   */
  poolPath(p: PackageIdentity, component: string, codename?: string): string;
  /** The layout of the signed indexes a generation of a channel of this format serves. */
  readonly indexes: IndexLayout;
}
