/**
 * Signing-key changes in the history, whichever way the key changed: `apt-repo keygen` records its
 * own change, but a stack's key is installed by `pulumi up` (from a Pulumi secret), and a key can be
 * replaced by hand. Every writer of the channel looks first (recoverChannel) at the channel's public
 * key (`<webRoot>/<keyName>-archive-keyring.asc`, what clients install) and compares its SHA256 with
 * the one last seen (`<stateDir>/signing-key.seen`); a different key adds a `key` line to the
 * history (its fingerprint and algorithm, and whether it replaced a known key), then the new digest
 * is recorded. A writer killed between the two writes the line again: a repeated line, never a
 * missing one. Reading the key costs one small file and a digest; openpgp parses it only when it
 * changed.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { errText, writeFileAtomic } from '../core/files';
import { publicKeyFacts, publicKeyFileNames } from '../sign/keys';
import { appendHistory, changeRecord } from './history';
import type { ChannelConfig } from '../core/types';

/** The file, in the state folder, holding the SHA256 (hex) of the public key last seen. */
export const KEY_SEEN_FILE = 'signing-key.seen';

/** At most this many bytes of the armored public key are read (an RSA-4096 key is about 3 KiB). */
const MAX_KEY_BYTES = 256 * 1024;

/** The armored public key file of `ch`, or undefined when missing, not a regular file, or too big. Never follows a link. */
function readPublicKey(ch: Pick<ChannelConfig, 'webRoot' | 'keyName'>): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_KEY_BYTES) return undefined;
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Records `armored` as the key last seen (keygen calls it after recording its own change). */
export function markKeySeen(ch: Pick<ChannelConfig, 'stateDir'>, armored: string): void {
  fs.mkdirSync(ch.stateDir, { recursive: true });
  writeFileAtomic(path.join(ch.stateDir, KEY_SEEN_FILE), `${sha256(armored)}\n`, 0o644);
}

/**
 * Adds a `key` line to the history when the channel's public key is not the one last seen (see the
 * module comment); resolves to that line's detail, undefined when the key is the same or missing.
 * The caller holds the channel lock. Throws the file system's errors writing the history or the
 * digest.
 */
export async function noticeKeyChange(ch: Pick<ChannelConfig, 'webRoot' | 'keyName' | 'stateDir'>): Promise<string | undefined> {
  const armored = readPublicKey(ch);
  if (armored === undefined) return undefined;
  let seen: string | undefined;
  try {
    seen = fs.readFileSync(path.join(ch.stateDir, KEY_SEEN_FILE), 'utf8').trim();
  } catch {
    seen = undefined;
  }
  if (seen === sha256(armored)) return undefined;
  let what: string;
  try {
    const f = await publicKeyFacts(armored);
    what = `${f.algorithm} key ${f.fingerprint}${f.expires ? ` (expires ${f.expires})` : ''}`;
  } catch (e) {
    what = `a key openpgp cannot read (${errText(e)})`;
  }
  const detail = seen ? `the signing key changed (not by apt-repo keygen): now ${what}` : `signing key in use: ${what}`;
  appendHistory(ch, changeRecord('key', { detail }));
  markKeySeen(ch, armored);
  return detail;
}
