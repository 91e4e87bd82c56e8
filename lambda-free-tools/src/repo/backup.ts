/**
 * backup and restore of one channel.
 *
 * What an off-site backup must hold, per channel (this is exactly what `backup --to <dir>` copies;
 * everything else is rebuilt by the Pulumi stack or is disposable):
 *   - `/etc/epiconcept/apt_repo/<channel>/`   liste_dist, liste_arch, repo.yaml, signing-key.asc
 *                                             (the private signing key, 0600: keep the backup secret)
 *   - `/srv/apt/<channel>/pool/`               every published .deb (prod's are hard links to
 *                                             preprod's: a backup tool that keeps hard links stores
 *                                             them once)
 *   - `/srv/apt/<channel>/.generations/<id>/`  the generation `dists` points at (signed indexes,
 *                                             by-hash), so clients see byte-identical files after
 *                                             a restore, and `/srv/apt/<channel>/dists` (symlink)
 *   - `/srv/apt/<channel>/<keyName>-archive-keyring.asc|.gpg`  the public key files
 *   - `/var/lib/apt-repo/<channel>/`           upload times (added.json) and the index cache;
 *                                             minus `lock*` (the writers' lock)
 * Not needed: older generations (rollback history), `<stateDir>/trash` is included but optional,
 * `/srv/apt/incoming` (uploads not yet ingested), nginx config and htpasswd (from the stack).
 * The nightly job runs `apt-repo --channel <c> backup --to /var/backups/apt-repo/<c>/<date>` and
 * ships that folder off site; `manifest.json` (written last) lists every file with its SHA256.
 *
 * Backup layout: `config/` (configDir), `state/` (stateDir), `web/` (pool, .generations/<id>, dists
 * symlink, public keys), `manifest.json`. Pool and generation files are hard links when the backup
 * is on the same filesystem (they are never rewritten in place), copies otherwise; config and state
 * files are always copied.
 */
import * as fs from 'fs';
import { promises as fsp, Stats } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { z as zod } from 'zod';
import { AptRepoError, UnsafePathError, UsageError } from '../errors';
import { channelPaths, loadChannel } from './channel';
import { withChannelLock } from './lock';
import { scanPool } from './pool';
import { currentGeneration, generationDir } from './generations';
import { verifyChannel } from './verify';
import { checkRelPath, confine, durableCopy, errText, placeFile, SafeDir, sha256File } from './files';
import type { ChannelConfig } from './types';

/**
 * The manifest schema, built on first use: zod is loaded (`require`, the same CommonJS copy
 * repo/channel.ts loads, so the bundle holds one zod) only by the commands that read a manifest.
 */
function buildManifestSchema(z: typeof zod) {
  const FileEntry = z.strictObject({ path: z.string(), type: z.literal('file'), mode: z.number().int(), size: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
  const DirEntry = z.strictObject({ path: z.string(), type: z.literal('dir'), mode: z.number().int() });
  const LinkEntry = z.strictObject({ path: z.string(), type: z.literal('symlink'), target: z.string() });
  const Entry = z.discriminatedUnion('type', [FileEntry, DirEntry, LinkEntry]);
  return z.strictObject({
    format: z.literal(1),
    channel: z.string(),
    createdAt: z.string(),
    generation: z.string().optional(),
    entries: z.array(Entry),
  });
}
let manifestSchema: ReturnType<typeof buildManifestSchema> | undefined;
function Manifest(): ReturnType<typeof buildManifestSchema> {
  manifestSchema ??= buildManifestSchema((require('zod') as { z: typeof zod }).z);
  return manifestSchema;
}
/** `manifest.json` of a backup: every file (mode, size, SHA256), folder (mode) and symlink (target), relative to the backup folder. */
export type BackupManifest = zod.infer<ReturnType<typeof buildManifestSchema>>;
type ManifestEntry = BackupManifest['entries'][number];

/** Result of backup(). */
export interface BackupResult {
  dir: string;
  generation?: string;
  files: number;
  bytes: number;
  /** Files stored as hard links (no extra space). */
  linked: number;
  /** Files left out: the private key when this user cannot read it (signer separation). */
  skipped: string[];
}

/** True for the one symlink a backup holds: `web/dists` pointing at `.generations/<id>/dists`. */
function isDistsLink(entryPath: string, target: string): boolean {
  return (entryPath === 'web/dists' || entryPath === 'dists') && /^\.generations\/[A-Za-z0-9][A-Za-z0-9._-]*\/dists$/.test(target);
}

/** Names in stateDir that belong to a running writer, not to the channel's state. */
function isLockName(name: string): boolean {
  return name === 'lock' || name.startsWith('lock.');
}

/**
 * Backs channel `ch` up into `dir` (absent or empty) under the channel lock: configDir, stateDir
 * (minus the lock), pool, the current generation, the `dists` symlink, the public keys and
 * manifest.json (written last; a folder without it is an interrupted backup). A symbolic link
 * anywhere in these trees other than `dists` is refused (UnsafePathError): never followed nor
 * copied. When the private key is not readable by the running user (it belongs to the signer
 * user), it is left out with one line through `opts.warn` (default stderr) and listed in `skipped`.
 * Throws UsageError when `dir` is not empty or lies inside a folder being backed up, AptRepoError
 * on a read or write failure.
 */
export async function backup(ch: ChannelConfig, dir: string, opts: { warn?: (msg: string) => void } = {}): Promise<BackupResult> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`apt-repo: ${m}\n`));
  const to = path.resolve(dir);
  for (const inside of [ch.configDir, ch.stateDir, ch.webRoot]) {
    const rel = path.relative(path.resolve(inside), to);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) throw new UsageError(`backup --to ${to}: inside ${inside}, which is itself backed up`);
  }
  const existing = await fsp.readdir(to).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  if (existing.length) throw new UsageError(`backup --to ${to}: not empty (give a new folder)`);
  await fsp.mkdir(to, { recursive: true, mode: 0o700 });
  return withChannelLock(ch, async () => {
    const generation = await currentGeneration(ch);
    const entries: ManifestEntry[] = [];
    const result: BackupResult = { dir: to, generation, files: 0, bytes: 0, linked: 0, skipped: [] };
    const known = new Map<string, string>();
    for (const p of (await scanPool(ch)).packages) known.set(p.poolPath, p.digests.SHA256);

    const copyTree = async (srcRoot: string, rel: string, destRel: string, how: 'link' | 'copy', skip: (name: string) => boolean, shaOf?: (rel: string) => string | undefined) => {
      const src = rel ? confine(srcRoot, rel) : srcRoot;
      const st = await fsp.lstat(src).catch(() => undefined);
      if (!st) return;
      const dest = confine(to, destRel);
      if (st.isDirectory()) {
        await fsp.mkdir(dest, { recursive: true });
        entries.push({ path: destRel, type: 'dir', mode: st.mode & 0o7777 });
        for (const name of (await fsp.readdir(src)).sort()) {
          if (skip(name)) continue;
          await copyTree(srcRoot, rel ? `${rel}/${name}` : name, `${destRel}/${name}`, how, skip, shaOf);
        }
        await fsp.chmod(dest, st.mode & 0o7777);
      } else if (st.isSymbolicLink()) {
        // confine() refuses links below the root; this is a backed-up folder that is itself a link
        // (the `dists` link is copied by copyDistsLink).
        throw new UnsafePathError(src, 'symbolic link (never followed nor backed up)');
      } else if (st.isFile()) {
        let done;
        try {
          done = await placeFile({ base: srcRoot, rel }, { base: to, rel: destRel }, how, { mode: st.mode & 0o777 });
        } catch (err) {
          // Signer separation: the private key belongs to the signer user; the indexer backs up the rest.
          if ((err as NodeJS.ErrnoException).code === 'EACCES' && path.resolve(src) === path.resolve(ch.signingKeyFile)) {
            warn(`${src}: not readable by this user (the signer's key): not backed up; it lives in the Pulumi stack's secrets`);
            result.skipped.push(src);
            return;
          }
          throw err;
        }
        if (done === 'linked') result.linked++;
        const sha256 = shaOf?.(rel) ?? (await sha256File({ base: to, rel: destRel }));
        entries.push({ path: destRel, type: 'file', mode: st.mode & 0o7777, size: st.size, sha256 });
        result.files++;
        result.bytes += st.size;
      }
    };
    const copyDistsLink = async () => {
      const target = await fsp.readlink(path.join(ch.webRoot, 'dists'));
      if (!isDistsLink('web/dists', target)) throw new UnsafePathError(path.join(ch.webRoot, 'dists'), `points at ${JSON.stringify(target)}, not at .generations/<id>/dists`);
      await fsp.symlink(target, path.join(to, 'web/dists'));
      entries.push({ path: 'web/dists', type: 'symlink', target });
    };
    const none = () => false;
    const hidden = (n: string) => n.startsWith('.');
    try {
      await copyTree(ch.configDir, '', 'config', 'copy', none);
      await copyTree(ch.stateDir, '', 'state', 'copy', isLockName);
      await fsp.mkdir(path.join(to, 'web'), { recursive: true });
      await fsp.chmod(path.join(to, 'web'), 0o755);
      entries.push({ path: 'web', type: 'dir', mode: 0o755 });
      // Hidden names in the pool are temp files of a writer that crashed: not part of the channel.
      await copyTree(ch.webRoot, 'pool', 'web/pool', 'link', hidden, (rel) => known.get(rel));
      if (generation) {
        await fsp.mkdir(path.join(to, 'web/.generations'), { recursive: true });
        entries.push({ path: 'web/.generations', type: 'dir', mode: 0o755 });
        await copyTree(ch.webRoot, path.relative(ch.webRoot, generationDir(ch, generation)), `web/.generations/${generation}`, 'link', none);
        await copyDistsLink();
      }
      for (const ext of ['asc', 'gpg']) await copyTree(ch.webRoot, `${ch.keyName}-archive-keyring.${ext}`, `web/${ch.keyName}-archive-keyring.${ext}`, 'copy', none);
    } catch (err) {
      throw new AptRepoError(`backup of ${ch.name} into ${to} failed: ${errText(err)} (the folder is incomplete: no manifest.json)`);
    }
    const manifest: BackupManifest = { format: 1, channel: ch.name, createdAt: new Date().toISOString(), generation, entries };
    const out = SafeDir.openAbs(to);
    try {
      out.createFile('.manifest.json.tmp', JSON.stringify(manifest, null, 1) + '\n', 0o600);
      out.rename('.manifest.json.tmp', out, 'manifest.json');
      out.sync();
    } finally {
      out.close();
    }
    return result;
  });
}

/** Reads and validates `<dir>/manifest.json`; AptRepoError when missing or malformed. */
export async function readManifest(dir: string): Promise<BackupManifest> {
  const file = path.join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw new AptRepoError(`${file}: cannot read the backup manifest (${errText(err)}); an interrupted backup has none`);
  }
  const r = Manifest().safeParse(raw);
  if (!r.success) throw new AptRepoError(`${file}: not a backup manifest: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
  for (const e of r.data.entries) {
    try {
      checkRelPath(e.path);
    } catch (err) {
      throw new AptRepoError(`${file}: entry path ${JSON.stringify(e.path)}: ${(err as UnsafePathError).reason}`);
    }
    if (!/^(config|state|web)(\/|$)/.test(e.path)) {
      throw new AptRepoError(`${file}: entry path '${e.path}' is outside config/, state/ or web/`);
    }
    if (e.type === 'symlink' && !isDistsLink(e.path, e.target)) {
      throw new AptRepoError(`${file}: symlink entry ${JSON.stringify(e.path)} -> ${JSON.stringify(e.target)}: only web/dists -> .generations/<id>/dists is restored`);
    }
  }
  return r.data;
}

/**
 * Checks every manifest entry against the backup folder (type; size and SHA256 of files).
 * Resolves to the problems found (empty = intact).
 */
export async function checkBackup(dir: string, manifest: BackupManifest): Promise<string[]> {
  const problems: string[] = [];
  for (const e of manifest.entries) {
    const p = path.join(dir, e.path);
    let st: Stats | undefined;
    try {
      // Every component below the backup folder is lstat'ed: a link on the way is a problem.
      const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
      if (parent) confine(dir, parent);
      st = await fsp.lstat(p).catch(() => undefined);
    } catch (err) {
      problems.push(`${p}: ${(err as Error).message}`);
      continue;
    }
    if (!st) {
      problems.push(`${p}: missing`);
    } else if (e.type === 'dir' ? !st.isDirectory() : e.type === 'symlink' ? !st.isSymbolicLink() : !st.isFile()) {
      problems.push(`${p}: not a ${e.type}`);
    } else if (e.type === 'file' && (st.size !== e.size || (await sha256File({ base: dir, rel: e.path })) !== e.sha256)) {
      problems.push(`${p}: content differs from the manifest (size or SHA256)`);
    } else if (e.type === 'symlink' && (await fsp.readlink(p)) !== e.target) {
      problems.push(`${p}: symlink target differs from the manifest`);
    }
  }
  return problems;
}

/** Result of restore(): what was written and verify's findings on the restored channel. */
export interface RestoreResult {
  channel: string;
  generation?: string;
  files: number;
  problems: string[];
}

/**
 * Restores the backup in `dir` into channel `channel` under `root`: checks the whole backup first
 * (nothing is written if a file is missing or altered), refuses when the channel's web root already
 * has pool files (unless `force`: then backup files replace differing ones), then under the lock
 * writes configDir, stateDir, pool, the generation, the public keys, and flips `dists` to the
 * backed-up generation. Paths come from the restored repo.yaml (defaults under `root`). Resolves with
 * verifyChannel's problems (empty = published files are back byte for byte).
 * Throws UsageError for a channel name other than the backup's or a non-empty pool without force,
 * AptRepoError for a damaged backup.
 */
export async function restore(root: string, channel: string, dir: string, opts: { force?: boolean } = {}): Promise<RestoreResult> {
  const from = path.resolve(dir);
  const manifest = await readManifest(from);
  if (manifest.channel !== channel) throw new UsageError(`${from} is a backup of channel ${manifest.channel}; run restore with --channel ${manifest.channel}`);
  const damaged = await checkBackup(from, manifest);
  if (damaged.length) throw new AptRepoError(`${from}: backup damaged, nothing restored:\n  ${damaged.join('\n  ')}`);

  const target = await resolveTargetPaths(root, channel, from);
  const byPrefix = (prefix: string) => manifest.entries.filter((e) => e.path === prefix || e.path.startsWith(prefix + '/'));
  let files = 0;
  const put = async (entries: ManifestEntry[], prefix: string, destRoot: string, how: 'link' | 'copy') => {
    const dirs: { rel: string; mode: number }[] = [];
    fs.mkdirSync(destRoot, { recursive: true });
    for (const e of entries) {
      const rel = e.path === prefix ? '' : e.path.slice(prefix.length + 1);
      if (e.type === 'dir') {
        // Every folder below destRoot is opened without following links (created when missing).
        SafeDir.open(destRoot, rel, { create: 0o755 }).close();
        dirs.push({ rel, mode: e.mode });
        continue;
      }
      const segments = checkRelPath(rel);
      const name = segments.pop()!;
      const parent = SafeDir.open(destRoot, segments.join('/'), { create: 0o755 });
      try {
        if (e.type === 'symlink') {
          // Only web/dists (readManifest checked it): a new link beside it, renamed over.
          const tmp = `.${name}.restore-tmp-${process.pid}`;
          if (parent.lstat(tmp)) parent.unlink(tmp);
          fs.symlinkSync(e.target, parent.entry(tmp));
          parent.rename(tmp, parent, name);
          continue;
        }
        const old = parent.lstat(name);
        if (old) {
          if (old.isFile() && old.size === e.size && (await sha256File({ base: destRoot, rel })) === e.sha256) continue;
          if (old.isDirectory()) await fsp.rm(confine(destRoot, rel), { recursive: true, force: true });
          else parent.unlink(name);
        }
      } finally {
        parent.close();
      }
      await placeFile({ base: from, rel: e.path }, { base: destRoot, rel }, how, { mode: e.mode & 0o777 });
      files++;
    }
    // Folder modes last: a 0500 folder must not stop us writing into it.
    for (const d of dirs.reverse()) {
      const dir = SafeDir.open(destRoot, d.rel);
      try {
        fs.fchmodSync(dir.fd, d.mode);
      } finally {
        dir.close();
      }
    }
  };

  // The lock is taken before the config is written: a writer of the channel running meanwhile must
  // not see a config (signing key, liste_dist) from the backup and a pool from before it.
  return withChannelLock(target, async () => {
    const poolFiles = await countFiles(path.join(target.webRoot, 'pool'));
    if (poolFiles > 0 && !opts.force) {
      throw new UsageError(`${target.webRoot}/pool already holds ${poolFiles} file(s): restore into a channel without pool files, or add --force to overwrite`);
    }
    await put(byPrefix('config'), 'config', target.configDir, 'copy');
    const ch = await loadChannel({ root, channel });
    if (path.resolve(ch.webRoot) !== path.resolve(target.webRoot) || path.resolve(ch.stateDir) !== path.resolve(target.stateDir)) {
      throw new AptRepoError(`${ch.configDir}: web root and state folder resolved to ${ch.webRoot} and ${ch.stateDir} after restoring the config, expected ${target.webRoot} and ${target.stateDir}`);
    }
    await put(byPrefix('state').filter((e) => !isLockName(path.basename(e.path)) || e.path === 'state'), 'state', ch.stateDir, 'copy');
    const web = byPrefix('web').filter((e) => e.path !== 'web');
    await fsp.mkdir(ch.webRoot, { recursive: true });
    await put(web.filter((e) => e.path.startsWith('web/pool') || e.path.startsWith('web/.generations')), 'web', ch.webRoot, 'link');
    await put(web.filter((e) => !(e.path.startsWith('web/pool') || e.path.startsWith('web/.generations'))), 'web', ch.webRoot, 'copy');
    const problems = await verifyChannel(ch);
    return { channel, generation: manifest.generation, files, problems };
  });
}

/**
 * The configDir, webRoot and stateDir the restored channel will have: the backup's repo.yaml is
 * loaded in a scratch root, so absolute paths it sets are kept and defaults move under `root`; and
 * the lock timeout it sets.
 */
async function resolveTargetPaths(root: string, channel: string, from: string): Promise<{ configDir: string; webRoot: string; stateDir: string; lockTimeoutMs: number }> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'apt-repo-restore-'));
  try {
    const cfg = channelPaths(scratch, channel).configDir;
    await fsp.mkdir(cfg, { recursive: true });
    for (const name of await fsp.readdir(path.join(from, 'config'))) {
      if (['repo.yaml', 'liste_dist', 'liste_arch'].includes(name)) await durableCopy({ base: from, rel: `config/${name}` }, { base: cfg, rel: name });
    }
    const scratchCh = await loadChannel({ root: scratch, channel });
    const real = channelPaths(root, channel);
    const scratchDefaults = channelPaths(scratch, channel);
    return {
      configDir: real.configDir,
      webRoot: scratchCh.webRoot === scratchDefaults.webRoot ? real.webRoot : scratchCh.webRoot,
      stateDir: scratchCh.stateDir === scratchDefaults.stateDir ? real.stateDir : scratchCh.stateDir,
      lockTimeoutMs: scratchCh.lockTimeoutMs,
    };
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.isDirectory()) await walk(path.join(d, e.name));
      else n++;
    }
  };
  await walk(dir);
  return n;
}
