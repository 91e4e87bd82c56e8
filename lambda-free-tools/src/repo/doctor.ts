/**
 * doctor: compares a channel's server files with the expected-state manifest the Pulumi program
 * installed (repo/expectedState.ts) and names every difference (drift): a file missing or of
 * another type, a mode, owner or group changed, a symbolic link pointing elsewhere, content that
 * is not what the step installed, a public key replaced, a secret file edited.
 *
 * Read-only: it takes no lock and writes nothing. Nothing is followed: every entry is lstat'ed and
 * files are opened with O_NOFOLLOW|O_NONBLOCK (a FIFO planted under an expected name never blocks
 * it). What the current user cannot read is listed under `notChecked` with the reason, never
 * reported as a difference: the channel's service user (apt-ops doctor through sudo) sees every
 * mode, owner and public file, and root sees the secret files too.
 */
import { sha256Fd } from '../core/files';
import * as fs from 'fs';
import * as openpgp from 'openpgp';
import { OPENPGP_CONFIG } from '../sign/keys';
import type { ExpectedEntry, ExpectedState } from './expectedState';
import { byteOrder } from '../core/order';
import { GROUP_FILE, idName, idNames, PASSWD_FILE } from '../core/accounts';

/** What a difference is about, in the order they are reported for one path. */
export const DIFFERENCE_FIELDS = [
  'missing',
  'type',
  'mode',
  'owner',
  'group',
  'target',
  'sha256',
  'openpgpFingerprint',
  'content',
] as const;
export type DifferenceField = (typeof DIFFERENCE_FIELDS)[number];

/**
 * One difference between the manifest and the server. `expected`/`found` are display strings: a
 * type (`file`, `dir`, `symlink`, `missing`, `fifo` …), a 4-digit octal mode, an account name
 * (`uid <n>` when the host has no name for the id), a link target, a hex SHA-256, a fingerprint.
 * A secret file's digests are never shown (`content`: recorded digest vs other content).
 * `step` is the plan step that installs the path (what to re-apply).
 */
export interface Difference {
  path: string;
  field: DifferenceField;
  expected: string;
  found: string;
  step: string;
}

/** An aspect of a path that could not be checked by the current user, and why. */
export interface NotChecked {
  path: string;
  reason: string;
}

/** What checkExpectedState returns (also `apt-repo doctor --json`). */
export interface DoctorReport {
  channel: string;
  /** How many manifest entries were looked at (every entry; see notChecked for what was not read). */
  checked: number;
  /** Every difference, by path, then in DIFFERENCE_FIELDS order. */
  differences: Difference[];
  /** What could not be checked, by path. */
  notChecked: NotChecked[];
}

/** Options of checkExpectedState (the defaults are the host's files and the process's user). */
export interface CheckOptions {
  /** passwd(5) file naming user ids (default /etc/passwd: accounts are host-wide, never under --root). */
  passwdFile?: string;
  /** group(5) file naming group ids (default /etc/group). */
  groupFile?: string;
  /** Effective user id, for messages only (default process.geteuid()). */
  euid?: number;
}

/** The reason given for a secret file's content when the file or its digest record cannot be read. */
export const SECRET_NOT_CHECKED = 'content of a secret file: run as root to check';

/** The most read of a public key file (a key with many signatures stays well under this). */
const KEY_MAX_BYTES = 1 << 20;
/** The most read of the secret digests record. */
const DIGESTS_MAX_BYTES = 1 << 20;

/** The type of an lstat result, in the manifest's words (`file`, `dir`, `symlink`) or another kind. */
export function entryType(st: fs.Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char device';
  if (st.isBlockDevice()) return 'block device';
  return 'unknown';
}

/** A mode's permission bits (setuid, setgid and sticky included) as `stat -c %a` prints them, padded to 4 digits. */
export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** True for the errors that mean "not allowed to read" rather than "not there". */
function isDenied(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

/**
 * Opens `file` for reading without following a link or blocking on a FIFO, and checks it is still
 * the regular file `st` (same device and inode: not replaced since the lstat).
 * @throws the fs error, or Error('replaced while being checked').
 */
async function openSame(file: string, st: fs.Stats): Promise<fs.promises.FileHandle> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  const now = await fh.stat();
  if (!now.isFile() || now.dev !== st.dev || now.ino !== st.ino) {
    await fh.close();
    throw new Error('replaced while being checked');
  }
  return fh;
}

/** Up to `max` bytes of an open file. */
async function readUpTo(fh: fs.promises.FileHandle, max: number): Promise<Buffer> {
  const buf = Buffer.alloc(max);
  let n = 0;
  while (n < max) {
    const { bytesRead } = await fh.read(buf, n, max - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return buf.subarray(0, n);
}

/**
 * The fingerprints (40 upper-case hex) of the OpenPGP keys in `data`: armored when it starts with
 * an armor header or the file name ends in `.asc`, binary packets otherwise (apt picks the format
 * by extension the same way).
 * @throws Error with openpgp.js's message when the data holds no readable key.
 */
export async function keyFingerprints(data: Buffer, file: string): Promise<string[]> {
  const armored = file.endsWith('.asc') || data.subarray(0, 64).toString('latin1').trimStart().startsWith('-----BEGIN PGP');
  const keys = armored
    ? await openpgp.readKeys({ armoredKeys: data.toString('utf8'), config: OPENPGP_CONFIG })
    : await openpgp.readKeys({ binaryKeys: new Uint8Array(data), config: OPENPGP_CONFIG });
  return keys.map((k) => k.getFingerprint().toUpperCase());
}

/**
 * Parses the secret steps' digest record: lines `<sha256>  <path>` (sha256sum(1) output); other
 * lines are ignored; a path recorded twice keeps its last line (the latest install).
 */
export function parseSecretDigests(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](\/.*)$/.exec(line);
    if (m) out.set(m[2], m[1]);
  }
  return out;
}

/** The secret digest record, read once: its digests, or why it could not be read. */
type DigestRecord = { digests: Map<string, string> } | { error: unknown };

async function readDigestRecord(file: string): Promise<DigestRecord> {
  try {
    const st = await fs.promises.lstat(file);
    if (!st.isFile()) return { error: new Error(`${file} is a ${entryType(st)}, not a file`) };
    const fh = await openSame(file, st);
    try {
      return { digests: parseSecretDigests((await readUpTo(fh, DIGESTS_MAX_BYTES)).toString('utf8')) };
    } finally {
      await fh.close();
    }
  } catch (e) {
    return { error: e };
  }
}

/**
 * Compares the server with `state` and lists every difference and what could not be checked.
 * For each entry (sorted by path): lstat (never follows a link): missing, or another type; a file
 * or folder's mode (4 digits, setgid and sticky bits included), owner and group (names from the
 * host's passwd and group files); a link's target; a file's `sha256` (streamed), the
 * `openpgpFingerprint` of the key it holds; a `secret` file's content against its line in
 * `state.secretDigests` (both readable only by root: otherwise notChecked SECRET_NOT_CHECKED).
 * Content the current user cannot read is notChecked, not a difference.
 * Never throws for a file it cannot read; throws only for a programming error.
 */
export async function checkExpectedState(state: ExpectedState, opts: CheckOptions = {}): Promise<DoctorReport> {
  const users = idNames(opts.passwdFile ?? PASSWD_FILE);
  const groups = idNames(opts.groupFile ?? GROUP_FILE);
  const euid = opts.euid ?? (typeof process.geteuid === 'function' ? process.geteuid() : undefined);
  const me = euid === undefined ? 'this user' : idName(users, euid, 'uid');
  const differences: Difference[] = [];
  const notChecked: NotChecked[] = [];
  let record: Promise<DigestRecord> | undefined;
  const digestRecord = () => (record ??= readDigestRecord(state.secretDigests));

  const entries = [...state.entries].sort((a, b) => byteOrder(a.path, b.path) || byteOrder(a.type, b.type));
  for (const e of entries) {
    const diff = (field: DifferenceField, expected: string, found: string) =>
      differences.push({ path: e.path, field, expected, found, step: e.step });
    const skip = (reason: string) => notChecked.push({ path: e.path, reason });
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(e.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') diff('missing', e.type, 'missing');
      else if (isDenied(err)) skip(`cannot look at it as ${me} (${code}): run as root to check`);
      else skip(`cannot look at it: ${(err as Error).message}`);
      continue;
    }
    const type = entryType(st);
    if (type !== e.type) {
      diff('type', e.type, type === 'symlink' ? `symlink to ${await fs.promises.readlink(e.path).catch(() => '?')}` : type);
      continue;
    }
    if (e.type === 'symlink') {
      let target: string;
      try {
        target = await fs.promises.readlink(e.path);
      } catch (err) {
        skip(`cannot read the link: ${(err as Error).message}`); // replaced since the lstat
        continue;
      }
      if (target !== e.target) diff('target', e.target, target);
      continue;
    }
    const mode = modeString(st.mode);
    if (mode !== e.mode) diff('mode', e.mode, mode);
    const owner = idName(users, st.uid, 'uid');
    if (owner !== e.owner) diff('owner', e.owner, owner);
    const group = idName(groups, st.gid, 'gid');
    if (group !== e.group) diff('group', e.group, group);
    if (e.type === 'file') await checkContent(e, st, { diff, skip, me, digestRecord, digestsFile: state.secretDigests });
  }
  return { channel: state.channel, checked: entries.length, differences, notChecked };
}

/** The content checks of one file entry (sha256, fingerprint, secret digest); see checkExpectedState. */
async function checkContent(
  e: Extract<ExpectedEntry, { type: 'file' }>,
  st: fs.Stats,
  ctx: {
    diff: (field: DifferenceField, expected: string, found: string) => void;
    skip: (reason: string) => void;
    me: string;
    digestRecord: () => Promise<DigestRecord>;
    digestsFile: string;
  },
): Promise<void> {
  if (e.sha256 === undefined && e.openpgpFingerprint === undefined && !e.secret) return;
  let fh: fs.promises.FileHandle;
  try {
    fh = await openSame(e.path, st);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (e.secret) ctx.skip(SECRET_NOT_CHECKED);
    else if (isDenied(err)) ctx.skip(`content not readable by ${ctx.me} (${code}): run as root to check`);
    else ctx.skip(`cannot read its content: ${(err as Error).message}`);
    return;
  }
  try {
    let digest: string | undefined;
    if (e.sha256 !== undefined || e.secret) digest = sha256Fd(fh.fd);
    if (e.sha256 !== undefined && digest !== e.sha256) ctx.diff('sha256', e.sha256, digest!);
    if (e.openpgpFingerprint !== undefined) {
      let found: string;
      try {
        found = (await keyFingerprints(await readUpTo(fh, KEY_MAX_BYTES), e.path)).join(', ');
      } catch (err) {
        found = `no OpenPGP public key (${(err as Error).message.split('\n')[0]})`;
      }
      if (found !== e.openpgpFingerprint) ctx.diff('openpgpFingerprint', e.openpgpFingerprint, found);
    }
    if (e.secret) {
      const rec = await ctx.digestRecord();
      if ('error' in rec) {
        const code = (rec.error as NodeJS.ErrnoException)?.code;
        if (isDenied(rec.error)) ctx.skip(SECRET_NOT_CHECKED);
        else if (code === 'ENOENT')
          ctx.skip(`content of a secret file: its digest record ${ctx.digestsFile} is missing (re-apply the step that installs it)`);
        else ctx.skip(`content of a secret file: cannot read ${ctx.digestsFile}: ${(rec.error as Error).message}`);
      } else {
        const recorded = rec.digests.get(e.path);
        if (recorded === undefined) ctx.skip(`content of a secret file: no line for it in ${ctx.digestsFile} (re-apply step ${e.step})`);
        // The digests of a secret file are not shown: the report may be logged.
        else if (recorded !== digest) ctx.diff('content', `as recorded in ${ctx.digestsFile}`, 'other content');
      }
    }
  } finally {
    await fh.close();
  }
}

/** The plan steps to re-apply for `differences`, sorted, each once. */
export function stepsToReapply(differences: readonly Difference[]): string[] {
  return [...new Set(differences.map((d) => d.step))].sort();
}
