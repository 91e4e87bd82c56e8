/**
 * The expected state of a channel's server files (lambda-free-tools/src/repo/expectedState.ts):
 * collected by buildPlan (infra/plan.ts) next to every file, folder and link a step installs, then
 * installed by the `expected-state` step and exported as the stack output `expectedState`, so that
 * `apt-repo doctor` can name every drift. Pure: no secret ever enters it (a secret file is listed
 * with its mode and owners only; its digest is recorded on the server by the step that installs it).
 */
import * as crypto from 'crypto';
import { expectedStateSchema, type ExpectedEntry, type ExpectedState } from '../lambda-free-tools/src/repo/expectedState';

/** What a step promises about one file: its content (text or Buffer), a known digest, or that it is secret. */
export type ExpectedContent = { content: string | Buffer } | { sha256: string } | { secret: true };

/** Collects the entries of one channel's manifest, in the order the plan installs them (last word wins per path). */
export class ExpectedStateBuilder {
  private readonly entries = new Map<string, ExpectedEntry>();

  constructor(
    private readonly channel: string,
    private readonly root: string,
    private readonly secretDigests: string,
  ) {}

  /** A regular file installed by `step` with `mode` ("0644"), owner and group; `fingerprint`: the OpenPGP key it holds. */
  file(step: string, path: string, mode: string, owner: string, group: string, what: ExpectedContent, fingerprint?: string): void {
    const digest =
      'content' in what ? crypto.createHash('sha256').update(what.content).digest('hex') : 'sha256' in what ? what.sha256 : undefined;
    this.entries.set(path, {
      type: 'file',
      path,
      mode: normaliseMode(mode),
      owner,
      group,
      step,
      ...(digest ? { sha256: digest } : {}),
      ...('secret' in what ? { secret: true } : {}),
      ...(fingerprint ? { openpgpFingerprint: fingerprint } : {}),
    });
  }

  /** A folder installed by `step`. */
  dir(step: string, path: string, mode: string, owner: string, group: string): void {
    this.entries.set(path, { type: 'dir', path, mode: normaliseMode(mode), owner, group, step });
  }

  /** A symbolic link to `target` made by `step`. */
  symlink(step: string, path: string, target: string): void {
    this.entries.set(path, { type: 'symlink', path, target, step });
  }

  /** Drops what a step promised about `path` (a file a later configuration removes). */
  forget(path: string): void {
    this.entries.delete(path);
  }

  /** The manifest, entries sorted by path; validated against the schema apt-repo reads (throws ZodError on a bad entry). */
  build(): ExpectedState {
    const entries = [...this.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return expectedStateSchema().parse({ format: 1, channel: this.channel, root: this.root, secretDigests: this.secretDigests, entries });
  }
}

/** "644" → "0644"; "2755" stays. Throws Error for anything but 3 or 4 octal digits. */
function normaliseMode(mode: string): string {
  if (!/^[0-7]{3,4}$/.test(mode)) throw new Error(`expected state: mode '${mode}' is not octal`);
  return mode.padStart(4, '0');
}

/**
 * The v4 fingerprint (40 upper-case hex digits) of the primary key of a binary (non-armored) OpenPGP
 * public key: SHA-1 over 0x99, the two-octet body length and the public-key packet body (RFC 4880
 * §12.2; RFC 9580 §5.5.4 for v4). Undefined when `binary` does not start with a v4 public-key
 * packet (tag 6), e.g. the placeholder keys the program builds its plan shape with.
 */
export function openpgpV4Fingerprint(binary: Buffer): string | undefined {
  if (binary.length < 2 || (binary[0] & 0x80) === 0) return undefined;
  let tag: number;
  let bodyStart: number;
  let length: number;
  if (binary[0] & 0x40) {
    // New format: tag in the low 6 bits; one-, two- or five-octet length (RFC 4880 §4.2.2).
    tag = binary[0] & 0x3f;
    const first = binary[1];
    if (first < 192) [length, bodyStart] = [first, 2];
    else if (first < 224) {
      if (binary.length < 3) return undefined;
      [length, bodyStart] = [((first - 192) << 8) + binary[2] + 192, 3];
    } else if (first === 255) {
      if (binary.length < 6) return undefined;
      [length, bodyStart] = [binary.readUInt32BE(2), 6];
    } else return undefined;
  } else {
    // Old format: tag in bits 5-2, length type in bits 1-0 (RFC 4880 §4.2.1).
    tag = (binary[0] >> 2) & 0x0f;
    const lengthType = binary[0] & 0x03;
    if (lengthType === 0) [length, bodyStart] = [binary[1], 2];
    else if (lengthType === 1) {
      if (binary.length < 3) return undefined;
      [length, bodyStart] = [binary.readUInt16BE(1), 3];
    } else if (lengthType === 2) {
      if (binary.length < 5) return undefined;
      [length, bodyStart] = [binary.readUInt32BE(1), 5];
    } else return undefined;
  }
  if (tag !== 6 || length > 0xffff || binary.length < bodyStart + length || binary[bodyStart] !== 4) return undefined;
  const header = Buffer.from([0x99, length >> 8, length & 0xff]);
  return crypto
    .createHash('sha1')
    .update(header)
    .update(binary.subarray(bodyStart, bodyStart + length))
    .digest('hex')
    .toUpperCase();
}
