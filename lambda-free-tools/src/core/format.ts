/**
 * The package-format seam: what the channel logic (ingest, pending, promote, versions, publish,
 * rollback, gc, backup) needs to know about a kind of package file, and nothing else. Debian's
 * implementation is deb/format.ts; repo/format.ts `formatOf` is the one place that decides which
 * format a channel uses (Debian today). Like aptly's split between its `deb/` domain and the
 * publishing code, the channel modules only call this interface, so a second format (RPM) is a
 * new module beside deb/, not a copy of the repo logic. This file imports nothing but core/digests.ts.
 */
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
   * The pool path of a package: `pool/<component>/…/[<codename>/]<file><extension>`, every part
   * checked (package data is hostile). Throws the format's error naming the invalid part. The
   * component and codename were checked as folder names by the caller.
   */
  poolPath(p: PackageIdentity, component: string, codename?: string): string;
  /** The package's entry in its index (for Debian: the Packages stanza, without the blank line after it). */
  renderIndexEntry(e: IndexEntrySource): string;
}
