/**
 * Typed errors of apt-repo and apt-ops. Each names the file, key or package it concerns; they are
 * caught once, at the CLI edge, printed as one line, and mapped to an exit code.
 *
 * Exit codes (documented in README): 0 ok, 1 failure, 2 usage error, 3 lock held by another writer,
 * 4 nothing to do (only where a script needs to tell it apart).
 */
export class AptRepoError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A `.deb` file that cannot be read: not an ar archive, truncated, no control member, bad control fields. */
export class DebError extends AptRepoError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A Debian version string that does not follow Debian Policy §5.6.12. */
export class VersionError extends AptRepoError {
  constructor(
    readonly version: string,
    readonly reason: string,
  ) {
    super(`invalid version '${version}': ${reason}`);
  }
}

/** A configuration file or key with a wrong or missing value (`key` names it: a path, or path:key). */
export class ConfigError extends AptRepoError {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${key}: ${reason}`);
  }
}

/** Wrong command-line usage: unknown package, bad argument combination. */
export class UsageError extends AptRepoError {
  override readonly exitCode: number = 2;
}

/** Another writer holds the channel lock (`lockFile`) and waiting was not allowed or timed out. */
export class LockError extends AptRepoError {
  override readonly exitCode: number = 3;
  constructor(
    readonly lockFile: string,
    reason: string,
  ) {
    super(`${lockFile}: ${reason}`);
  }
}

/** The same package name, version and architecture already exists with different content. */
export class ConflictError extends AptRepoError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A repository whose pool, indexes and signatures do not agree; `problems` lists each one. */
export class VerifyError extends AptRepoError {
  constructor(
    readonly root: string,
    readonly problems: string[],
  ) {
    super(`${root}: ${problems.length} problem(s) found:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * A path that would leave its trusted base folder or pass through a link nobody trusted: an
 * absolute or `..` path, an empty or `.` segment, a control character, a symbolic link on the way,
 * or a folder that is not ours to write. `file` names the path, `reason` what is wrong with it.
 */
export class UnsafePathError extends AptRepoError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/**
 * `--channel` names no channel configured under `--root` (its folder
 * `<root>/etc/epiconcept/apt_repo/<channel>` is missing), or is not a channel name at all. A usage
 * error (exit 2): a typo must not look like a broken channel, and nothing is created. `known` lists
 * the channels that are configured under that root (empty when none is: usually a wrong `--root`).
 */
export class UnknownChannelError extends UsageError {
  constructor(
    readonly channel: string,
    readonly root: string,
    readonly known: string[],
    reason: string,
  ) {
    super(
      `unknown channel '${channel}' under --root ${root}: ${reason}; ` +
        (known.length
          ? `known channels: ${known.join(', ')}`
          : `no channel is configured there (is --root right? \`apt-repo --root ${root} --channel <name> init\` creates one)`),
    );
  }
}

/**
 * A command that writes a channel was run by another user than the owner of the channel's web
 * root: the files it created would belong to that user (root, often) and make the channel's own
 * account fail later (EPERM on link, EACCES on write). A usage error (exit 2), raised before
 * anything is touched; `owner` is the user to run as, `command` the same command line run as it.
 */
export class WrongUserError extends UsageError {
  /** `what`: what the command writes, 'the channel' or 'the mirror'. */
  constructor(
    readonly webRoot: string,
    readonly owner: string,
    readonly user: string,
    readonly command: string,
    readonly what = 'the channel',
  ) {
    super(
      `${webRoot} belongs to ${owner} and this command writes ${what}, but it runs as ${user}: ` +
        `files it created would belong to ${user} and break ${what}'s later runs. Run it as ${owner}: ${command}`,
    );
  }
}

/**
 * A mirror's file or download that cannot be taken: a URL that answers an error, a file whose
 * checksum or signature is not what the upstream publishes, an index that does not parse. `file`
 * names it (an upstream path or URL, or a local path); `retry` tells the downloader whether another
 * attempt may succeed (a 5xx answer, a broken connection) or not (a 404, a checksum mismatch).
 */
export class MirrorError extends AptRepoError {
  readonly retry: boolean;
  constructor(
    readonly file: string,
    readonly reason: string,
    opts: { retry?: boolean } = {},
  ) {
    super(`${file}: ${reason}`);
    this.retry = opts.retry ?? false;
  }
}
