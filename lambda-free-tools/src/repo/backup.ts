/**
 * backup and restore of one channel.
 *
 * What an off-site backup must hold, per channel (this is exactly what `backup --to <dir>` copies;
 * everything else is rebuilt by the Pulumi stack or is disposable):
 *   - `/etc/epiconcept/apt_repo/<channel>/`   liste_dist, liste_arch, repo.yaml, signing-key.asc
 *                                             (the private signing key, 0600: keep the backup secret;
 *                                             left out when the signer user owns it, see backup())
 *   - `/srv/apt/<channel>/pool/`               every published .deb
 *   - `/srv/apt/<channel>/.generations/<id>/`  the kept generations, `dists`'s among them (signed
 *                                             indexes, by-hash), so clients see byte-identical files
 *                                             after a restore and rollback still works, and
 *                                             `/srv/apt/<channel>/dists` (symlink)
 *   - `/srv/apt/<channel>/<keyName>-archive-keyring.asc|.gpg`  the public key files
 *   - `/var/lib/apt-repo/<channel>/`           the pool store (cache.json, cache.log: upload times, index entries), the history (history.jsonl);
 *                                             minus `lock*` (the writers' lock) and restore.json
 * Not needed: `<stateDir>/trash` is included but optional,
 * `/srv/apt/incoming` (uploads not yet ingested), nginx config and htpasswd (from the stack).
 *
 * Dated backups (the nightly unit runs `apt-repo --channel <c> backup --to /var/backups/apt-repo/<c>`):
 * each run writes `<dir>/<UTC stamp>/` (`20261121T023000Z`, `-01`, `-02` … appended when that
 * second is taken, so two runs never share a name and names sort by time). The folder is written
 * under the hidden name `.<stamp>.<channel>.partial` and renamed to `<stamp>` only once complete
 * (manifest.json written and every folder fsynced), so a half backup is never listed nor restored
 * from; the next backup of the channel removes such leftovers. After the rename the oldest complete
 * backups of the channel beyond `backupKeep` (repo.yaml, default 7) are removed (renamed to
 * `.<stamp>.<channel>.deleting` first, so a half-removed one is never listed either).
 *
 * Backup layout: `config/` (configDir), `state/` (stateDir), `web/` (pool, .generations/<id>, dists
 * symlink, public keys), `manifest.json`. No file of a backup shares its inode with the live channel
 * (a pool file changed in place must not change the backup): a file under `web/` whose content,
 * size and mode equal a file of the previous complete backup of the channel is a hard link to that
 * file (like rsync --link-dest), every other file is a copy. So a night costs only what changed.
 * The previous backup's files are trusted by their manifest and size, not re-read: restore checks
 * a whole backup (checkBackup) before writing anything.
 *
 * Restore copies (never links) the backup's files into the channel, under the channel lock, after
 * recording `<stateDir>/restore.json` (the backup it restores); the record is cleared once `dists`
 * points at the restored generation. An interrupted restore is finished by the next restore (which
 * may then run without --force) and by finishInterruptedRestore, which crash recovery runs.
 */
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { AptRepoError, UnsafePathError, UsageError } from '../errors';
import { loadChannel, NAME_PATTERN } from './channel';
import { withChannelLock } from './lock';
import { scanPool } from './pool';
import { currentGeneration, generationDir, generationsDir } from './generations';
import { verifyChannel } from './verify';
import {
  confine,
  type Confined,
  errText,
  fsyncDir,
  mkdirWithMode,
  placeFile,
  SafeDir,
  sha256File,
  tempName,
  unlinkConfined,
} from '../core/files';
import { recoverChannel } from './recover';
import type { ChannelConfig, Progress } from '../core/types';
import { publicKeyFileNames } from '../sign/keys';
import { SECRET_DIGESTS_FILE } from './expectedState';
import { byteOrder } from '../core/order';
import { utcStamp } from '../core/stamp';
import {
  type BackupManifest,
  type ManifestEntry,
  isDistsLink,
  isLockName,
  RESTORE_RECORD,
  readManifest,
  checkBackup,
  type RestoreResult,
  readRestoreRecord,
  writeRestoreRecord,
  applyRestore,
  resolveTargetPaths,
  countFiles,
} from './restoreApply';

/** Result of backup(). */
export interface BackupResult {
  /** The complete backup folder: `<to>/<stamp>`. */
  dir: string;
  /** Its name, a UTC stamp (`20261121T023000Z`, maybe with `-01` …). */
  stamp: string;
  /** The previous complete backup of the channel that unchanged files were linked to. */
  previous?: string;
  generation?: string;
  files: number;
  bytes: number;
  /** Files hard-linked to the previous backup (no extra space). */
  linked: number;
  /** Bytes of the files written anew tonight (what this backup costs). */
  copiedBytes: number;
  /** Files left out: the private key when this user cannot read it (signer separation). */
  skipped: string[];
  /** Stamps of the older backups removed to keep `backupKeep`. */
  pruned: string[];
}

/** A complete backup's folder name: a UTC stamp, then `-NN` when that second was taken. */
export const BACKUP_STAMP_RE = /^\d{8}T\d{6}Z(-\d{2,})?$/;

const partialName = (stamp: string, channel: string) => `.${stamp}.${channel}.partial`;
const deletingName = (stamp: string, channel: string) => `.${stamp}.${channel}.deleting`;
/** partialName or deletingName of any channel: [1] the stamp, [2] the channel, [3] which. */
const LEFTOVER_RE = new RegExp(`^\\.(.+)\\.(${NAME_PATTERN})\\.(partial|deleting)$`);

/** One complete backup found by listBackups. */
export interface BackupListing {
  stamp: string;
  /** Absolute folder of the backup. */
  dir: string;
  channel: string;
  createdAt: string;
  generation?: string;
  files: number;
  bytes: number;
}

/**
 * The complete backups in `dir` (of `channel` only, when given), oldest first: folders named by
 * BACKUP_STAMP_RE (not symlinks) holding a valid manifest.json. Hidden folders (backups being
 * written or removed) and anything else are ignored. [] when `dir` does not exist.
 */
export async function listBackups(dir: string, channel?: string): Promise<BackupListing[]> {
  const root = path.resolve(dir);
  const names = await fsp
    .readdir(root, { withFileTypes: true })
    .catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  const out: BackupListing[] = [];
  for (const d of names) {
    if (!d.isDirectory() || !BACKUP_STAMP_RE.test(d.name)) continue;
    let m: BackupManifest;
    try {
      m = await readManifest(path.join(root, d.name));
    } catch {
      continue;
    }
    if (channel !== undefined && m.channel !== channel) continue;
    const files = m.entries.filter((e): e is Extract<ManifestEntry, { type: 'file' }> => e.type === 'file');
    out.push({
      stamp: d.name,
      dir: path.join(root, d.name),
      channel: m.channel,
      createdAt: m.createdAt,
      generation: m.generation,
      files: files.length,
      bytes: files.reduce((n, e) => n + e.size, 0),
    });
  }
  return out.sort((a, b) => byteOrder(a.stamp, b.stamp));
}

/**
 * Backs channel `ch` up into a new dated folder `<to>/<stamp>/` under the channel lock (after
 * crash recovery): configDir, stateDir (minus the lock and the restore record), pool, the kept
 * generations, the `dists` symlink, the public keys and manifest.json. Written as
 * `.<stamp>.<channel>.partial` and renamed once complete; then backups of the channel beyond
 * `ch.backupKeep` are removed, oldest first; leftovers of interrupted runs are removed first.
 * Files under `web/` equal to the previous backup's (SHA256, size, mode) are hard links to them,
 * the rest copies (see the file comment). A symbolic link anywhere in the copied trees other than
 * `dists` is refused (UnsafePathError): never followed nor copied. When the private key is not
 * readable by the running user (it belongs to the signer user), it is left out with one line
 * through `opts.warn` (default stderr) and listed in `skipped`. `opts.now` gives the stamp (tests).
 * Throws UsageError when `to` lies inside a folder being backed up, AptRepoError on a read or
 * write failure (the partial folder is then removed by the next run).
 */
export async function backup(
  ch: ChannelConfig,
  dir: string,
  opts: { warn?: (msg: string) => void; progress?: Progress; now?: () => Date } = {},
): Promise<BackupResult> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`apt-repo: ${m}\n`));
  const root = path.resolve(dir);
  for (const inside of [ch.configDir, ch.stateDir, ch.webRoot]) {
    const rel = path.relative(path.resolve(inside), root);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)))
      throw new UsageError(`backup --to ${root}: inside ${inside}, which is itself backed up`);
  }
  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    mkdirWithMode(root, 0o700);
    const top = SafeDir.openAbs(root);
    try {
      // Leftovers of this channel's interrupted runs: ours alone, as we hold the channel lock.
      for (const d of top.list()) {
        const m = LEFTOVER_RE.exec(d.name);
        if (!m || m[2] !== ch.name || !d.isDirectory()) continue;
        warn(`recovering: removing ${path.join(root, d.name)}, left by an interrupted backup`);
        await fsp.rm(path.join(root, d.name), { recursive: true, force: true });
      }
      const previous = (await listBackups(root, ch.name)).pop();
      const stamp = uniqueStamp(top, utcStamp((opts.now ?? (() => new Date()))()));
      const partial = partialName(stamp, ch.name);
      top.sub(partial, { create: 0o700 }).close();
      top.sync();
      const to = path.join(root, partial);
      const result = await writeBackup(ch, to, previous, warn);
      top.rename(partial, top, stamp);
      top.sync();
      const pruned: string[] = [];
      const mine = await listBackups(root, ch.name);
      for (const old of mine.slice(0, Math.max(0, mine.length - ch.backupKeep))) {
        top.rename(old.stamp, top, deletingName(old.stamp, ch.name));
        top.sync();
        await fsp.rm(path.join(root, deletingName(old.stamp, ch.name)), { recursive: true, force: true });
        pruned.push(old.stamp);
      }
      return { ...result, dir: path.join(root, stamp), stamp, previous: previous?.stamp, pruned };
    } finally {
      top.close();
    }
  });
}

/**
 * Hard-links `<prevDir>/<rel>` (a regular file of `size` bytes) to `dest`; false, with nothing left
 * at `dest`, when that is impossible (file gone or altered, a link on the way, EPERM, EXDEV).
 */
async function linkPrevious(prevDir: string, rel: string, size: number, dest: Confined): Promise<boolean> {
  try {
    const st = await fsp.lstat(confine(prevDir, rel));
    if (!st.isFile() || st.size !== size) return false;
    if ((await placeFile({ base: prevDir, rel }, dest, 'link')) === 'linked') return true;
    unlinkConfined(dest);
  } catch {
    // A damaged previous backup is not this backup's problem: the file is copied from the channel.
  }
  return false;
}

/** `stamp`, or `stamp-01`, `stamp-02` … : the first name that no entry of `top` uses yet. */
function uniqueStamp(top: SafeDir, stamp: string): string {
  const taken = new Set(top.list().map((d) => d.name));
  const used = (s: string) => taken.has(s) || [...taken].some((n) => n.startsWith(`.${s}.`));
  if (!used(stamp)) return stamp;
  for (let i = 1; ; i++) {
    const s = `${stamp}-${String(i).padStart(2, '0')}`;
    if (!used(s)) return s;
  }
}

/** Writes the backup's trees and manifest.json into the empty folder `to` (see backup()). */
async function writeBackup(
  ch: ChannelConfig,
  to: string,
  previous: BackupListing | undefined,
  warn: (msg: string) => void,
): Promise<Omit<BackupResult, 'stamp' | 'previous' | 'pruned'>> {
  const generation = await currentGeneration(ch);
  const entries: ManifestEntry[] = [];
  const result = { dir: to, generation, files: 0, bytes: 0, linked: 0, copiedBytes: 0, skipped: [] as string[] };
  const known = new Map<string, string>();
  for (const p of (await scanPool(ch)).packages) known.set(p.poolPath, p.digests.SHA256);
  // Files of the previous backup by content: `<sha256> <size> <mode>` → its path in that backup.
  const before = new Map<string, string>();
  if (previous) {
    for (const e of (await readManifest(previous.dir)).entries) {
      if (e.type === 'file' && e.path.startsWith('web/')) before.set(`${e.sha256} ${e.size} ${e.mode}`, e.path);
    }
  }

  const copyTree = async (
    srcRoot: string,
    rel: string,
    destRel: string,
    reuse: boolean,
    skip: (name: string) => boolean,
    shaOf?: (rel: string) => string | undefined,
  ) => {
    const src = rel ? confine(srcRoot, rel) : srcRoot;
    const st = await fsp.lstat(src).catch(() => undefined);
    if (!st) return;
    const dest = confine(to, destRel);
    if (st.isDirectory()) {
      await fsp.mkdir(dest, { recursive: true });
      entries.push({ path: destRel, type: 'dir', mode: st.mode & 0o7777 });
      for (const name of (await fsp.readdir(src)).sort()) {
        if (skip(name)) continue;
        await copyTree(srcRoot, rel ? `${rel}/${name}` : name, `${destRel}/${name}`, reuse, skip, shaOf);
      }
      await fsp.chmod(dest, st.mode & 0o7777);
      // The folder's entries survive a crash before the backup is renamed complete.
      fsyncDir(dest);
    } else if (st.isSymbolicLink()) {
      // confine() refuses links below the root; this is a backed-up folder that is itself a link
      // (the `dists` link is copied by copyDistsLink).
      throw new UnsafePathError(src, 'symbolic link (never followed nor backed up)');
    } else if (st.isFile()) {
      const mode = st.mode & 0o7777;
      const sha = reuse ? (shaOf?.(rel) ?? (await sha256File({ base: srcRoot, rel }))) : undefined;
      const same = sha !== undefined && previous ? before.get(`${sha} ${st.size} ${mode}`) : undefined;
      let sha256: string;
      if (same && (await linkPrevious(previous!.dir, same, st.size, { base: to, rel: destRel }))) {
        result.linked++;
        sha256 = sha!;
      } else {
        try {
          await placeFile({ base: srcRoot, rel }, { base: to, rel: destRel }, 'copy', { mode: st.mode & 0o777 });
        } catch (err) {
          // Signer separation: the private key belongs to the signer user; the indexer backs up the rest.
          if ((err as NodeJS.ErrnoException).code === 'EACCES' && path.resolve(src) === path.resolve(ch.signingKeyFile)) {
            warn(`${src}: not readable by this user (the signer's key): not backed up; it lives in the Pulumi stack's secrets`);
            result.skipped.push(src);
            return;
          }
          // The Pulumi program's root-only record of the secret files' digests (for `doctor` run as
          // root): the stack rewrites it, a backup has no use for it.
          if ((err as NodeJS.ErrnoException).code === 'EACCES' && path.resolve(src) === path.resolve(ch.configDir, SECRET_DIGESTS_FILE)) {
            result.skipped.push(src);
            return;
          }
          throw err;
        }
        // The manifest holds the SHA256 of the bytes the backup holds.
        sha256 = await sha256File({ base: to, rel: destRel });
        result.copiedBytes += st.size;
      }
      entries.push({ path: destRel, type: 'file', mode, size: st.size, sha256 });
      result.files++;
      result.bytes += st.size;
    }
  };
  const copyDistsLink = async () => {
    const target = await fsp.readlink(path.join(ch.webRoot, 'dists'));
    if (!isDistsLink('web/dists', target))
      throw new UnsafePathError(path.join(ch.webRoot, 'dists'), `points at ${JSON.stringify(target)}, not at .generations/<id>/dists`);
    await fsp.symlink(target, path.join(to, 'web/dists'));
    entries.push({ path: 'web/dists', type: 'symlink', target });
  };
  const none = () => false;
  const hidden = (n: string) => n.startsWith('.');
  try {
    await copyTree(ch.configDir, '', 'config', false, none);
    await copyTree(ch.stateDir, '', 'state', false, (n) => isLockName(n) || n === RESTORE_RECORD);
    await fsp.mkdir(path.join(to, 'web'), { recursive: true });
    await fsp.chmod(path.join(to, 'web'), 0o755);
    entries.push({ path: 'web', type: 'dir', mode: 0o755 });
    // Hidden names in the pool are temp files of a writer that crashed: not part of the channel.
    await copyTree(ch.webRoot, 'pool', 'web/pool', true, hidden, (rel) => known.get(rel));
    if (generation) {
      await fsp.mkdir(path.join(to, 'web/.generations'), { recursive: true });
      entries.push({ path: 'web/.generations', type: 'dir', mode: 0o755 });
      // Every kept generation, not only the served one: verify checks the pool against the kept
      // generations (a rollback leaves newer files in the pool that only an older one lists), and
      // rollback history survives a restore. Mostly links to the previous night's files.
      // Hidden names there are a writer's unfinished or half-removed generations.
      for (const id of (await fsp.readdir(generationsDir(ch))).filter((n) => !n.startsWith('.')).sort()) {
        await copyTree(ch.webRoot, path.relative(ch.webRoot, generationDir(ch, id)), `web/.generations/${id}`, true, none);
      }
      await copyDistsLink();
    }
    for (const name of Object.values(publicKeyFileNames(ch.keyName))) await copyTree(ch.webRoot, name, `web/${name}`, true, none);
    fsyncDir(path.join(to, 'web'));
    if (generation) fsyncDir(path.join(to, 'web/.generations'));
  } catch (err) {
    throw new AptRepoError(
      `backup of ${ch.name} into ${to} failed: ${errText(err)} (the folder is incomplete: no manifest.json; the next backup removes it)`,
    );
  }
  const manifest: BackupManifest = { format: 1, channel: ch.name, createdAt: new Date().toISOString(), generation, entries };
  const out = SafeDir.openAbs(to);
  try {
    const tmp = path.basename(tempName('manifest.json'));
    out.createFile(tmp, JSON.stringify(manifest, null, 1) + '\n', 0o600);
    out.rename(tmp, out, 'manifest.json');
    out.sync();
  } finally {
    out.close();
  }
  return result;
}

/**
 * The backup folder `from` names: the newest complete backup of `channel` in it when it holds
 * dated backups, else `from` itself when it holds manifest.json (a `<dir>/<stamp>`, or a backup
 * written into backupDir itself before dated folders: the dated ones made since are newer).
 * Throws AptRepoError when there is none (backups being written are never chosen).
 */
export async function resolveBackup(from: string, channel: string): Promise<string> {
  const dir = path.resolve(from);
  const newest = (await listBackups(dir, channel)).pop();
  if (newest) return newest.dir;
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  throw new AptRepoError(
    `${dir}: no manifest.json and no complete backup of channel ${channel} in it (folders named like 20261121T023000Z)`,
  );
}

/**
 * Restores the backup `dir` names (see resolveBackup) into channel `channel` under `root`: checks
 * the whole backup first (nothing is written if a file is missing or altered), then under the
 * channel lock runs crash recovery (when the channel exists), refuses when the channel's web root
 * already has pool files (unless `force`, or an interrupted restore left them: see below), records
 * `<stateDir>/restore.json`, writes configDir (a new configDir appears whole, by one rename),
 * stateDir, pool, the generation and the public keys (each file a copy written beside and renamed
 * over), flips `dists` to the backed-up generation and clears the record. Paths come from the
 * restored repo.yaml (defaults under `root`). Resolves with verifyChannel's problems (empty =
 * published files are back byte for byte).
 * An interrupted restore (the record is there) is replaced by this one without --force.
 * Throws UsageError for a channel name other than the backup's or a non-empty pool without force,
 * AptRepoError for a damaged or missing backup.
 */
export async function restore(
  root: string,
  channel: string,
  dir: string,
  opts: { force?: boolean; progress?: Progress } = {},
): Promise<RestoreResult> {
  const from = await resolveBackup(dir, channel);
  const manifest = await readManifest(from);
  if (manifest.channel !== channel)
    throw new UsageError(`${from} is a backup of channel ${manifest.channel}; run restore with --channel ${manifest.channel}`);
  const damaged = await checkBackup(from, manifest);
  if (damaged.length) throw new AptRepoError(`${from}: backup damaged, nothing restored:\n  ${damaged.join('\n  ')}`);
  const target = await resolveTargetPaths(root, channel, from);

  // The lock is taken before the config is written: a writer of the channel running meanwhile must
  // not see a config (signing key, liste_dist) from the backup and a pool from before it.
  return withChannelLock(target, async () => {
    const interrupted = readRestoreRecord(target.stateDir);
    if (interrupted) {
      // Replaced by this restore before recovery could try to finish it (its backup may be gone).
      writeRestoreRecord(target.stateDir, from);
    }
    const existing = fs.existsSync(path.join(target.configDir, 'liste_dist')) ? await loadChannel({ root, channel }) : undefined;
    if (existing) await recoverChannel(existing, { progress: opts.progress });
    if (interrupted && !readRestoreRecord(target.stateDir)) {
      // Recovery finished the restore recorded above, this one.
      const ch = await loadChannel({ root, channel });
      return { channel, from, generation: manifest.generation, files: 0, problems: await verifyChannel(ch) };
    }
    if (!interrupted) {
      const poolFiles = await countFiles(path.join(target.webRoot, 'pool'));
      if (poolFiles > 0 && !opts.force) {
        throw new UsageError(
          `${target.webRoot}/pool already holds ${poolFiles} file(s): restore into a channel without pool files, or add --force to overwrite`,
        );
      }
      writeRestoreRecord(target.stateDir, from);
    }
    return applyRestore(root, channel, from, manifest, target, (l) => process.stderr.write(`apt-repo: recovering: ${channel}: ${l}\n`));
  });
}
