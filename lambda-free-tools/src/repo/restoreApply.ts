/**
 * Applying a backup: the manifest (its schema, reading and checking a backup against it), the
 * restore record in the state folder, and the writing part of restore, which crash recovery also
 * runs to finish an interrupted restore (finishInterruptedRestore). Below repo/recover.ts in the
 * import graph: nothing here runs recovery; repo/backup.ts (`backup`, `restore`) does, first.
 */
import * as fs from 'fs';
import { promises as fsp, Stats } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { z as zod } from 'zod';
import { AptRepoError, UnsafePathError } from '../errors';
import { channelPaths, loadChannel } from './channel';
import { verifyChannel } from './verify';
import { appendHistory, changeRecord, historyFile } from './history';
import {
  checkRelPath,
  confine,
  durableCopy,
  errText,
  fsyncDir,
  mkdirWithMode,
  placeFile,
  SafeDir,
  sha256File,
  tempName,
  writeFileAtomic,
} from '../core/files';
import { removeDeadTempsBelow } from './staleTemps';
import { walkFiles } from './trash';
import type { ChannelConfig } from '../core/types';

/**
 * The manifest schema, built on first use: zod is loaded (`require`, the same CommonJS copy
 * repo/channel.ts loads, so the bundle holds one zod) only by the commands that read a manifest.
 */
export function buildManifestSchema(z: typeof zod) {
  const FileEntry = z.strictObject({
    path: z.string(),
    type: z.literal('file'),
    mode: z.number().int(),
    size: z.number().int(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  });
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
export function Manifest(): ReturnType<typeof buildManifestSchema> {
  manifestSchema ??= buildManifestSchema((require('zod') as { z: typeof zod }).z);
  return manifestSchema;
}
/** `manifest.json` of a backup: every file (mode, size, SHA256), folder (mode) and symlink (target), relative to the backup folder. */
export type BackupManifest = zod.infer<ReturnType<typeof buildManifestSchema>>;
export type ManifestEntry = BackupManifest['entries'][number];
/** True for the one symlink a backup holds: `web/dists` pointing at `.generations/<id>/dists`. */
export function isDistsLink(entryPath: string, target: string): boolean {
  return (entryPath === 'web/dists' || entryPath === 'dists') && /^\.generations\/[A-Za-z0-9][A-Za-z0-9._-]*\/dists$/.test(target);
}

/** Names in stateDir that belong to a running writer, not to the channel's state (the lock, its reclaim mutex and their temp names, core/files.ts tempName). */
export function isLockName(name: string): boolean {
  return name === 'lock' || name.startsWith('lock.') || name.startsWith('.lock.');
}

/** The restore record in stateDir (see restore()): never backed up, never restored. */
export const RESTORE_RECORD = 'restore.json';
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
  if (!r.success)
    throw new AptRepoError(`${file}: not a backup manifest: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
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
      throw new AptRepoError(
        `${file}: symlink entry ${JSON.stringify(e.path)} -> ${JSON.stringify(e.target)}: only web/dists -> .generations/<id>/dists is restored`,
      );
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
  /** The backup folder restored (the newest complete one when `--from` named a folder of backups). */
  from: string;
  generation?: string;
  files: number;
  problems: string[];
}

/** `<stateDir>/restore.json`: the restore under way (written before its first change, cleared at the end). */
export interface RestoreRecord {
  from: string;
  startedAt: string;
  pid: number;
}

export function readRestoreRecord(stateDir: string): RestoreRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(stateDir, RESTORE_RECORD), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AptRepoError(`${path.join(stateDir, RESTORE_RECORD)}: cannot read the record of an interrupted restore: ${errText(e)}`);
  }
  try {
    const r = JSON.parse(text) as RestoreRecord;
    if (typeof r.from === 'string' && path.isAbsolute(r.from)) return r;
  } catch {
    // written atomically: unreadable content means someone else wrote it
  }
  throw new AptRepoError(
    `${path.join(stateDir, RESTORE_RECORD)}: not a restore record; run apt-repo restore --from <backup> to restore again`,
  );
}

export function clearRestoreRecord(stateDir: string): void {
  const dir = SafeDir.openAbs(stateDir);
  try {
    dir.unlink(RESTORE_RECORD);
    dir.sync();
  } finally {
    dir.close();
  }
}

/**
 * Finishes the restore recorded in `<ch.stateDir>/restore.json` by an interrupted `restore`
 * (crash recovery calls it under the channel lock): the recorded backup is checked and restored
 * again (files already in place are kept) and the record cleared. One line on stderr through
 * `opts.say` (default: `apt-repo: recovering: …`). Resolves undefined when no restore was
 * interrupted. Throws AptRepoError when the recorded backup is missing or damaged (the message
 * says to restore another one: `restore` replaces an interrupted restore without --force).
 */
export async function finishInterruptedRestore(
  ch: ChannelConfig,
  opts: { say?: (line: string) => void } = {},
): Promise<RestoreResult | undefined> {
  const record = readRestoreRecord(ch.stateDir);
  if (!record) return undefined;
  const say = opts.say ?? ((l: string) => process.stderr.write(`apt-repo: recovering: ${l}\n`));
  say(`finishing the restore from ${record.from} interrupted since ${record.startedAt}`);
  let manifest: BackupManifest;
  try {
    manifest = await readManifest(record.from);
    const damaged = await checkBackup(record.from, manifest);
    if (damaged.length) throw new AptRepoError(damaged.join('; '));
  } catch (err) {
    throw new AptRepoError(
      `${path.join(ch.stateDir, RESTORE_RECORD)}: the interrupted restore from ${record.from} cannot be finished (${errText(err)}); run apt-repo restore --from <another backup>`,
    );
  }
  const target = { configDir: ch.configDir, webRoot: ch.webRoot, stateDir: ch.stateDir, lockTimeoutMs: ch.lockTimeoutMs };
  return applyRestore(ch.root, ch.name, record.from, manifest, target, say);
}

export function writeRestoreRecord(stateDir: string, from: string): void {
  mkdirWithMode(stateDir, 0o750);
  const record: RestoreRecord = { from, startedAt: new Date().toISOString(), pid: process.pid };
  writeFileAtomic(path.join(stateDir, RESTORE_RECORD), JSON.stringify(record) + '\n', 0o640);
}

/**
 * The writing part of restore (the caller holds the lock and has written the restore record).
 * First the temp files of dead writers anywhere below the three target folders are removed (one
 * line each through `say`): a killed restore leaves its temps (`.<name>.tmp-<pid>-restore`, and
 * copyInto's around them) at any depth, and the restore finishing it writes under other names.
 */
export async function applyRestore(
  root: string,
  channel: string,
  from: string,
  manifest: BackupManifest,
  target: { configDir: string; webRoot: string; stateDir: string },
  say: (line: string) => void,
): Promise<RestoreResult> {
  for (const base of [target.configDir, target.stateDir, target.webRoot]) {
    for (const p of removeDeadTempsBelow(base)) say(`removed stale temporary file ${p}`);
  }
  const byPrefix = (prefix: string) => manifest.entries.filter((e) => e.path === prefix || e.path.startsWith(prefix + '/'));
  let files = 0;
  const put = async (entries: ManifestEntry[], prefix: string, destRoot: string) => {
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
      const parentRel = segments.join('/');
      const parent = SafeDir.open(destRoot, parentRel, { create: 0o755 });
      try {
        // Written beside under a temp name (removed as a stale temp file if we are killed) and
        // renamed over: the old entry stays whole until the new one replaces it.
        const tmp = path.basename(tempName(name, 'restore'));
        if (parent.lstat(tmp)) parent.unlink(tmp);
        if (e.type === 'symlink') {
          // Only web/dists (readManifest checked it).
          fs.symlinkSync(e.target, parent.entry(tmp));
          parent.rename(tmp, parent, name);
          parent.sync();
          continue;
        }
        const old = parent.lstat(name);
        if (
          old?.isFile() &&
          old.size === e.size &&
          (old.mode & 0o7777) === (e.mode & 0o7777) &&
          (await sha256File({ base: destRoot, rel })) === e.sha256
        )
          continue;
        if (old?.isDirectory()) await fsp.rm(confine(destRoot, rel), { recursive: true, force: true });
        await placeFile({ base: from, rel: e.path }, { base: destRoot, rel: parentRel ? `${parentRel}/${tmp}` : tmp }, 'copy', {
          mode: e.mode & 0o777,
        });
        parent.rename(tmp, parent, name);
        parent.sync();
      } finally {
        parent.close();
      }
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

  const config = byPrefix('config');
  if (!fs.existsSync(target.configDir)) {
    // A new channel appears whole: its config is written beside and renamed into place, so no
    // command ever loads half a configuration.
    const staging = path.join(path.dirname(target.configDir), `.${path.basename(target.configDir)}.restore-tmp`);
    await fsp.rm(staging, { recursive: true, force: true });
    await put(config, 'config', staging);
    fs.renameSync(staging, target.configDir);
    fsyncDir(path.dirname(target.configDir));
  } else {
    // repo.yaml last: it names the other folders.
    await put(
      [...config.filter((e) => e.path !== 'config/repo.yaml'), ...config.filter((e) => e.path === 'config/repo.yaml')],
      'config',
      target.configDir,
    );
  }
  const ch = await loadChannel({ root, channel });
  if (path.resolve(ch.webRoot) !== path.resolve(target.webRoot) || path.resolve(ch.stateDir) !== path.resolve(target.stateDir)) {
    throw new AptRepoError(
      `${ch.configDir}: web root and state folder resolved to ${ch.webRoot} and ${ch.stateDir} after restoring the config, expected ${target.webRoot} and ${target.stateDir}`,
    );
  }
  // The live history is the channel's audit trail: kept across a restore (a channel restored from
  // nothing takes the backup's), and the restore itself is added to it at the end.
  const keepHistory = fs.existsSync(historyFile(ch));
  await put(
    byPrefix('state').filter(
      (e) =>
        e.path === 'state' ||
        !(
          isLockName(path.basename(e.path)) ||
          path.basename(e.path) === RESTORE_RECORD ||
          (keepHistory && e.path === 'state/history.jsonl')
        ),
    ),
    'state',
    ch.stateDir,
  );
  const web = byPrefix('web').filter((e) => e.path !== 'web');
  await fsp.mkdir(ch.webRoot, { recursive: true });
  // dists last: clients see the restored generation only once everything it names is in place.
  await put(
    web.filter((e) => e.path !== 'web/dists'),
    'web',
    ch.webRoot,
  );
  await put(
    web.filter((e) => e.path === 'web/dists'),
    'web',
    ch.webRoot,
  );
  const problems = await verifyChannel(ch);
  clearRestoreRecord(ch.stateDir);
  try {
    appendHistory(
      ch,
      changeRecord('restore', { detail: `from ${from}${manifest.generation ? ` (generation ${manifest.generation})` : ''}` }),
    );
  } catch (e) {
    say(`the restore is not in ${historyFile(ch)}: ${(e as Error).message}`);
  }
  // The catalogue is not in backups (derived data): rebuilt for the restored generation.
  try {
    const restored = await loadChannel({ root, channel });
    if (restored.catalogue) {
      const { writeCatalogueLocked } = await import('../catalogue/write');
      await writeCatalogueLocked(restored);
    }
  } catch (e) {
    say(`the catalogue was not rebuilt (the next writing command rebuilds it): ${errText(e)}`);
  }
  return { channel, from, generation: manifest.generation, files, problems };
}

/**
 * The configDir, webRoot and stateDir the restored channel will have: the backup's repo.yaml is
 * loaded in a scratch root, so absolute paths it sets are kept and defaults move under `root`; and
 * the lock timeout it sets.
 */
export async function resolveTargetPaths(
  root: string,
  channel: string,
  from: string,
): Promise<{ configDir: string; webRoot: string; stateDir: string; lockTimeoutMs: number }> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'apt-repo-restore-'));
  try {
    const cfg = channelPaths(scratch, channel).configDir;
    await fsp.mkdir(cfg, { recursive: true });
    for (const name of await fsp.readdir(path.join(from, 'config'))) {
      if (['repo.yaml', 'liste_dist', 'liste_arch'].includes(name))
        await durableCopy({ base: from, rel: `config/${name}` }, { base: cfg, rel: name });
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

/** How many entries that are not folders lie under `dir` (links included; walkNoFollow); 0 when it cannot be read. */
export async function countFiles(dir: string): Promise<number> {
  try {
    return walkFiles(dir).length;
  } catch {
    return 0;
  }
}
