/**
 * The expected state of a channel's server files: what the Pulumi program installed, written by
 * its `expected-state` step (infra/expectedState.ts) as `<configDir>/expected-state.json` (0644
 * root) and exported as the stack output `expectedState`. `apt-repo doctor` compares the server
 * with it and names every difference (drift: a file edited by hand, a mode or owner changed, a
 * key replaced).
 *
 * The two programs talk through this typed JSON only, validated on read.
 */
import * as fs from 'fs';
import type { z as zod } from 'zod';
import { UsageError } from '../errors';
import { NAME_RE } from './channel';

/**
 * The manifest's schema (zod), built on first use: zod is loaded only by the commands that read a
 * manifest (doctor, status), not by every start of the indexer.
 */
function buildSchemas(z: typeof zod) {
  /** Hex SHA-256, lower case. */
  const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex SHA-256');
  /** An octal mode as `stat -c %a` would print it, padded to 4 digits ("0644", "2755", "3775"). */
  const mode = z.string().regex(/^[0-7]{4}$/, 'expected a 4-digit octal mode such as 0644');
  const account = z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, 'expected a user or group name');

  /**
   * One expected path (absolute, the stack's root included).
   * - `file`: a regular file; `sha256` of its content when the stack knows it (every non-secret file);
   *   for a secret file (`secret: true`: the private signing key, the htpasswd, the TLS key) the
   *   content digest is not in the manifest: the step that installed it recorded it in
   *   `<configDir>/secret-digests` (0600 root, lines `<sha256>  <path>`), which only root can read.
   *   `openpgpFingerprint` (40 upper-case hex) on the public key files: the key they hold.
   * - `dir`: a folder with its mode and owners.
   * - `symlink`: a link and where it points (the nginx sites-enabled link).
   */
  const entry = z.discriminatedUnion('type', [
    z.object({
      type: z.literal('file'),
      path: z.string().startsWith('/'),
      mode,
      owner: account,
      group: account,
      sha256: sha256.optional(),
      secret: z.boolean().optional(),
      openpgpFingerprint: z
        .string()
        .regex(/^[0-9A-F]{40}$/)
        .optional(),
      /** Which plan step installs it (what to re-apply). */
      step: z.string(),
    }),
    z.object({ type: z.literal('dir'), path: z.string().startsWith('/'), mode, owner: account, group: account, step: z.string() }),
    z.object({ type: z.literal('symlink'), path: z.string().startsWith('/'), target: z.string().startsWith('/'), step: z.string() }),
  ]);
  /** The whole manifest (format 1). `secretDigests`: where the secret steps record what they installed. */
  const state = z.object({
    format: z.literal(1),
    channel: z.string().regex(NAME_RE),
    root: z.string().startsWith('/'),
    secretDigests: z.string().startsWith('/'),
    entries: z.array(entry),
  });
  return { entry, state };
}

let schemas: ReturnType<typeof buildSchemas> | undefined;
/** The manifest's zod schema (format 1, see buildSchemas), built on first use. */
export function expectedStateSchema(): ReturnType<typeof buildSchemas>['state'] {
  schemas ??= buildSchemas((require('zod') as { z: typeof zod }).z);
  return schemas.state;
}
/** One expected path of a manifest (see buildSchemas). */
export type ExpectedEntry = zod.infer<ReturnType<typeof buildSchemas>['entry']>;
/** A whole manifest (format 1). */
export type ExpectedState = zod.infer<ReturnType<typeof buildSchemas>['state']>;

/** Name of the manifest file in a channel's configDir. */
export const EXPECTED_STATE_FILE = 'expected-state.json';
/** Name of the secret steps' digest record in a channel's configDir. */
export const SECRET_DIGESTS_FILE = 'secret-digests';
/** The most read of a manifest, wherever it comes from (a channel's manifest is a few KiB). */
export const MANIFEST_MAX_BYTES = 16 << 20;

/**
 * A manifest that cannot be used: not JSON, or not format 1 of expectedStateSchema(). A usage error
 * (exit 2): doctor cannot tell drift without a manifest, and exit 1 stays "differences found".
 * `source` names the file (or `-` for stdin), `reason` the JSON error or the first zod issue
 * (its path in the document and message).
 */
export class ExpectedStateError extends UsageError {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: not an expected-state manifest: ${reason}`);
  }
}

/**
 * Parses and validates a manifest's text (JSON, format 1).
 * @param source names the file in errors (a path, or 'stdin').
 * @throws ExpectedStateError for text that is not JSON or does not match expectedStateSchema().
 */
export function parseExpectedState(text: string, source: string): ExpectedState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ExpectedStateError(source, `not JSON (${(e as Error).message})`);
  }
  const r = expectedStateSchema().safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ExpectedStateError(source, `${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return r.data;
}

/**
 * Reads a manifest file (following a symbolic link: an operator names it) as bytes: a regular file
 * of at most MANIFEST_MAX_BYTES, read without blocking on a FIFO. Used by `apt-repo doctor` (the
 * channel's manifest or `--expected <file>`) and by `apt-ops doctor --expected <file>` (the local
 * one it sends), so both refuse the same files.
 * @param ifMissing the message for a file that does not exist (default: the file system's error).
 * @throws UsageError `<file>: not a file`, `<file>: a manifest larger than <N> bytes`, `ifMissing`,
 *         or `cannot read <file>: <the file system's message>`.
 */
export function readManifestFile(file: string, ifMissing?: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && ifMissing !== undefined) throw new UsageError(ifMissing);
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new UsageError(`${file}: not a file`);
    // Read until the end, not to the size fstat gave: the file may grow meanwhile.
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const chunk = Buffer.alloc(1 << 16);
      const got = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      n += got;
      if (n > MANIFEST_MAX_BYTES) throw new UsageError(`${file}: a manifest larger than ${MANIFEST_MAX_BYTES} bytes`);
      chunks.push(chunk.subarray(0, got));
    }
    return Buffer.concat(chunks, n);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Refuses a manifest of another channel: doctor must compare a channel with its own manifest.
 * @param source names the manifest in the message (a path, or 'stdin').
 * @param named how the expected channel is named to the user (default `channel <channel>`;
 *        apt-repo says `--channel <channel>`, the option it was given).
 * @throws UsageError (exit 2) `<source> is the expected state of channel '<state.channel>', not of <named>`.
 */
export function assertManifestChannel(state: ExpectedState, channel: string, source: string, named = `channel ${channel}`): void {
  if (state.channel !== channel) throw new UsageError(`${source} is the expected state of channel '${state.channel}', not of ${named}`);
}
