/**
 * The bottom layer's value types, shared by deb/, index/, sign/, repo/ and cli/ (channel config,
 * digests, pool packages, generations, the Progress reporter the CLI implements): this file
 * imports only its neighbours in core/, so every layer can depend on it without pointing upward.
 * The on-disk layout follows the project's design: one web root per channel holding `pool/` and a
 * `dists` symlink into `.generations/<id>/dists`.
 */

import type { PackageFormat } from './format';
import type { Digests } from './digests';

export type { Digests } from './digests';

/** One row of the version-suffix routing table: a version matching `pattern` goes to `codenames`. */
export interface RoutingRule {
  /** A JavaScript regular expression source matched against the full version string. */
  pattern: string;
  /**
   * Codenames the package goes to. `$1`-style references to the pattern's groups are expanded
   * (so `\+deb(\d+)u\d+$` can map through `debianNumbers`), see repo/routing.ts.
   */
  codenames: string[];
}

/** A fully resolved channel: every path absolute, lists read from liste_dist/liste_arch. */
export interface ChannelConfig {
  /** Channel name, `[a-z0-9][a-z0-9-]*` (preprod, prod, …). */
  name: string;
  /** The --root prefix every default path is under ('/' in production). */
  root: string;
  /** <root>/etc/epiconcept/apt_repo/<name>: liste_dist, liste_arch, repo.yaml, signing-key.asc (0600). */
  configDir: string;
  /** <root>/srv/apt/<name>: the web root (pool/, dists symlink, .generations/, public keys). */
  webRoot: string;
  /** <root>/var/lib/apt-repo/<name>: index cache, lock, upload times. */
  stateDir: string;
  /** <root>/var/backups/apt-repo/<name>: where the nightly backup goes. */
  backupDir: string;
  /**
   * repo.yaml `metricsDir`: node_exporter's textfile collector folder, where every writing command
   * (and `apt-repo metrics --to`) leaves `apt_repo_<name>.prom` (repo/metrics.ts); unset: none.
   */
  metricsDir?: string;
  /**
   * repo.yaml `catalogue` (default true, as loadChannel reads it): every publish writes the web
   * catalogue (catalogue/write.ts) served at `<webRoot>/catalogue`; false or unset here: none.
   */
  catalogue?: boolean;
  /** <root>/srv/apt/incoming: drop zones, `<source>/[<codename>/]<file>.deb`. */
  incomingDir: string;
  /** <incomingDir>/rejected: refused uploads, each with `<file>.reason`. */
  rejectedDir: string;
  /** Codenames published (liste_dist), in file order. Never empty. */
  codenames: string[];
  /** Binary architectures published (liste_arch, without `all`). Never empty. */
  architectures: string[];
  /** Release fields; keep Origin, Label stable forever (apt asks users to confirm a change). */
  origin: string;
  label: string;
  description: string;
  /** The one component published. */
  component: string;
  /** Public key files in the web root: <keyName>-archive-keyring.asc and .gpg. */
  keyName: string;
  /**
   * repo.yaml `url`: where clients reach the channel (the Pulumi program writes its channel URL),
   * the default of `apt-repo client-setup --url`; unset: none.
   */
  url?: string;
  /** <configDir>/signing-key.asc, armored private key, mode 0600 (owned by the signer's account). */
  signingKeyFile: string;
  /**
   * repo.yaml `signerSocket`: the Unix socket of the signing service (sign/service.ts). When set,
   * publish signs through it and never opens signingKeyFile; unset: publish signs in-process.
   */
  signerSocket?: string;
  /** How many published generations to keep for rollback (>= 2). */
  generationsKeep: number;
  /** How many dated backups `backup --to <dir>` keeps in `<dir>` for this channel (>= 1, default 7). */
  backupKeep: number;
  /** Days after which Release's Valid-Until lies; undefined: no Valid-Until. */
  validUntilDays?: number;
  /** Version-suffix routing table, tried in order (defaults in repo/routing.ts). */
  routing: RoutingRule[];
  /** repo.yaml `retention`: what `gc --policy` keeps, per package-name pattern (repo/retention.ts); unset: off. */
  retention?: RetentionRule[];
  /** For a downstream channel (prod): the channel promote takes packages from (preprod). */
  upstream?: string;
  /** How long a writer waits for the channel lock before failing with LockError, in ms. */
  lockTimeoutMs: number;
  /**
   * The package format the channel holds (core/format.ts); unset: Debian. Not read from repo.yaml:
   * repo/format.ts `formatOf` decides, and unit tests set a test double here.
   */
  format?: PackageFormat;
}

/**
 * One retention rule (repo.yaml `retention`): for package names matching `pattern` (a JavaScript
 * regular expression), keep the newest `keep` versions and/or those uploaded less than
 * `maxAgeDays` days ago; at least one of the two is given.
 */
export interface RetentionRule {
  pattern: string;
  keep?: number;
  maxAgeDays?: number;
}

/** One `.deb` of a channel's pool, with what the index needs. JSON-serialisable (cache, --json). */
export interface PoolPackage {
  /** Path relative to the web root, '/'-separated: 'pool/main/h/hello/hello_2.10-3_amd64.deb'. */
  poolPath: string;
  name: string;
  version: string;
  architecture: string;
  /** Source package name (the Source field without its version, or the package name). */
  source: string;
  /** The control stanza's fields in file order, as [name, value] pairs (value as in the file, continuation lines included). */
  control: [string, string][];
  /** File size in bytes. */
  size: number;
  digests: Digests;
  /** Codenames this package is published under, after routing. */
  codenames: string[];
  /** When the file entered this channel (ms since epoch): upload time for pending/versions. */
  addedMs: number;
}

/**
 * One package a generation serves, as `pending` compares channels: recorded in
 * `.generations/<id>/served.json` by the writer of the generation, so pending reads two small
 * files instead of scanning two pools.
 */
export interface ServedRecord {
  poolPath: string;
  name: string;
  version: string;
  architecture: string;
  /** SHA256 of the pool file, hex. */
  sha256: string;
  /** When the file entered the channel, ms since epoch (PoolPackage.addedMs). */
  addedMs: number;
}

/** A published generation, as listed by `generations` and recorded in .generations/<id>/generation.json. */
export interface GenerationInfo {
  /** Sortable id, e.g. '20261121T051500Z-000001'. */
  id: string;
  /** ISO 8601 date of the publish. */
  date: string;
  /** Number of (package, version, architecture) entries per codename. */
  packages: Record<string, number>;
  /**
   * Per codename, per architecture of liste_arch: the index entries (`versions`, `all` packages
   * counted in every architecture, as the indexes list them) and the distinct package names
   * (`packages`). Absent on generations written before it was recorded.
   */
  counts?: Record<string, Record<string, { packages: number; versions: number }>>;
  /** Pool paths the generation's indexes reference (so gc never removes them while the generation is kept). */
  poolPaths: string[];
  /**
   * Set on a generation written by `rollback`: the id of the publish whose package set it serves
   * again (the original publish, also when the rollback went to another rollback generation). Its
   * indexes are that generation's Packages texts, re-signed with this generation's Date.
   */
  rolledBackFrom?: string;
  /**
   * The change that published this generation, as the channel's history records it
   * (repo/history.ts HistoryRecord, checked there when read back); absent on generations written
   * before the history existed.
   */
  change?: unknown;
  /** True for the generation `dists` points at. */
  current: boolean;
}

/**
 * A progress reporter for long work (ingest, promote, publish, backup …). The channel modules call
 * it; cli/context.ts `progressFor` implements it (a bar on stderr when it is a terminal, silent
 * otherwise), so repo/ never imports the CLI.
 */
export interface Progress {
  /** Starts a run of `total` steps named `label`. */
  start(total: number, label: string): void;
  /** Advances by `n` steps (default 1). */
  tick(n?: number): void;
  /** Ends the run (idempotent). */
  stop(): void;
}
