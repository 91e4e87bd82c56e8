/**
 * Versioned snapshots of an upstream repository (issue 14; DESIGN.md "Mirrors"):
 *
 * ```
 * <mirrorRoot>/<name>/
 *     <version>/                 a complete snapshot, never changed once made (.manifest.json inside)
 *     .partial-<version>/        a sync in progress, or one that was interrupted (the next sync resumes it)
 *     latest-stable -> <version> what the stations follow: a relative symlink, renamed over in one step
 * ```
 * A sync takes the version label (configured, or read from the upstream's latest-releases.yaml),
 * and when no snapshot has that label yet, builds it in `.partial-<version>/`:
 * - each package folder's APKINDEX.tar.gz is fetched (conditionally when the previous snapshot has
 *   it), its signature checked against the configured keys; every package it lists is hard-linked
 *   from the previous snapshot when that one has the same name, size and checksum (no request at
 *   all), else downloaded and checked against the index's size and `C:` checksum, and its data
 *   against the SHA-256 its (so checked) .PKGINFO names;
 * - each releases folder's latest-releases.yaml is fetched the same way, and every image it lists
 *   (and its `.sha256`) is hard-linked or downloaded and checked against the yaml's SHA-256;
 * - a file that fails its check is deleted, never kept, and the sync fails naming it and both sums;
 * then writes the manifest (every file's size and SHA-256), renames the folder to `<version>/`,
 * and renames `latest-stable` over to it; only then runs the post-sync hook. A failure or a kill
 * before the rename never moves the pointer; the next sync keeps every file of the partial folder
 * that still checks out. A kill between the rename and the flip is finished by the next sync
 * (`<stateDir>/pending-flip`). A snapshot label that exists already is not made again and the
 * pointer is not moved (so a rollback holds until the upstream publishes a new version).
 * Everything runs under the mirror's lock (`<stateDir>/lock`).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { replaceSymlink, SafeDir, sha256File, writeFileAtomic } from '../core/files';
import { MirrorError, UsageError } from '../errors';
import { withChannelLock } from '../repo/lock';
import type { Progress } from '../core/types';
import { byteOrder } from '../core/order';
import { VERSION_RE, type MirrorConfig } from './config';
import { fetchToFile, type Fetched } from './http';
import { apkFileName, readApkIndex, readChecksumFile, readLatestReleases, verifyApk } from './alpine';

/** The pointer the stations follow. */
export const POINTER = 'latest-stable';
const MANIFEST = '.manifest.json';
const PARTIAL = '.partial-';

/** One file of a snapshot, as its manifest records it. */
export interface ManifestFile {
  size: number;
  sha256: string;
  /** Last-Modified of the upstream's answer (indexes and yaml: the next sync asks If-Modified-Since). */
  lastModified?: string;
  /** The APKINDEX `C:` checksum of a package. */
  checksum?: string;
}

/** `<snapshot>/.manifest.json`. */
export interface Manifest {
  version: 1;
  label: string;
  upstream: string;
  /** ISO time the snapshot was completed. */
  syncedAt: string;
  /** Relative path ('/'-separated) → facts. */
  files: Record<string, ManifestFile>;
}

/** What sync did. */
export interface SyncResult {
  mirror: string;
  label: string;
  /** 'synced': a new snapshot, pointer flipped; 'current': that label exists already, nothing done; 'finished': a flip an interrupted sync had left. */
  outcome: 'synced' | 'current' | 'finished';
  downloaded: string[];
  linked: number;
  /** Files kept from the partial folder of an interrupted sync. */
  resumed: number;
  /** The post-sync hook's exit code, when it ran. */
  hook?: { command: string; code: number | null };
}

/** The manifest of snapshot `label` of `m`, undefined when it has none or it does not parse. */
export function readManifest(m: Pick<MirrorConfig, 'dir'>, label: string): Manifest | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(m.dir, label, MANIFEST), 'utf8')) as Manifest;
    return v && v.version === 1 && typeof v.files === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The label `latest-stable` points at, undefined when there is no pointer (or it is not ours). */
export function pointerTarget(m: Pick<MirrorConfig, 'dir'>): string | undefined {
  try {
    const t = fs.readlinkSync(path.join(m.dir, POINTER));
    return VERSION_RE.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** The complete snapshots of `m` (with a manifest), oldest first by completion time. */
export function snapshots(m: Pick<MirrorConfig, 'dir'>): Manifest[] {
  let names: string[];
  try {
    names = fs.readdirSync(m.dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => VERSION_RE.test(n) && n !== POINTER)
    .map((n) => readManifest(m, n))
    .filter((x): x is Manifest => !!x)
    .sort((a, b) => byteOrder(a.syncedAt, b.syncedAt) || byteOrder(a.label, b.label));
}

function flip(m: MirrorConfig, label: string): void {
  replaceSymlink(label, path.join(m.dir, POINTER));
}

function pendingFlipFile(m: MirrorConfig): string {
  return path.join(m.stateDir, 'pending-flip');
}

function runHook(m: MirrorConfig, label: string): SyncResult['hook'] {
  if (!m.postSync) return undefined;
  // Its output goes to stderr: stdout is the command's own result (--json).
  const r = spawnSync('/bin/sh', ['-c', m.postSync], {
    stdio: ['ignore', 2, 2],
    env: { ...process.env, MIRROR_NAME: m.name, MIRROR_VERSION: label, MIRROR_DIR: path.join(m.dir, label) },
  });
  return { command: m.postSync, code: r.status };
}

/** A SyncResult of `label` with nothing downloaded, linked or resumed yet. */
const emptyResult = (m: MirrorConfig, label: string, outcome: SyncResult['outcome']): SyncResult => ({
  mirror: m.name,
  label,
  outcome,
  downloaded: [],
  linked: 0,
  resumed: 0,
});

/**
 * The snapshot a sync starts from: the newest complete one, not the pointer's (a rollback may hold
 * an older one), since it is the most likely to be unchanged; the pointer's when none has a
 * manifest; undefined for a first sync.
 */
function previousSnapshot(m: MirrorConfig): { label: string; manifest?: Manifest } | undefined {
  const newest = snapshots(m).pop();
  if (newest) return { label: newest.label, manifest: newest };
  const target = pointerTarget(m);
  return target ? { label: target, manifest: readManifest(m, target) } : undefined;
}

/** Whether `rel` names a releases folder (`…/releases/<arch>`), else a package folder. */
const isReleases = (rel: string) => /(^|\/)releases\/[^/]+$/.test(rel);

/**
 * Syncs mirror `m` (see the module comment). `opts.now` dates the snapshot; `opts.progress` counts
 * the files of each folder. Throws MirrorError naming the file for a download that fails or a file
 * that does not check out (the partial folder stays, the pointer does not move), ConfigError for a
 * version label the upstream gives that is not a path segment, LockError.
 */
export async function syncMirror(m: MirrorConfig, opts: { now?: Date; progress?: Progress } = {}): Promise<SyncResult> {
  return withChannelLock(m, async () => {
    fs.mkdirSync(m.dir, { recursive: true, mode: 0o755 });
    // Temp files of a sync that was killed (under the lock, no other sync is running).
    for (const n of fs.readdirSync(m.dir)) if (/^\..+\.tmp-\d+$/.test(n)) fs.rmSync(path.join(m.dir, n), { force: true });
    // A sync killed between its rename and its flip: finish the flip first.
    let pending: string | undefined;
    try {
      pending = fs.readFileSync(pendingFlipFile(m), 'utf8').trim();
    } catch {
      pending = undefined;
    }
    if (pending && VERSION_RE.test(pending) && readManifest(m, pending)) {
      flip(m, pending);
      fs.rmSync(pendingFlipFile(m), { force: true });
      return { ...emptyResult(m, pending, 'finished'), hook: runHook(m, pending) };
    }
    const prev = previousSnapshot(m);
    const { label, prefetched } = m.version ? { label: m.version, prefetched: undefined } : await upstreamVersion(m, prev);
    try {
      if (readManifest(m, label)) return emptyResult(m, label, 'current');
      return await build(m, label, prev, { ...opts, prefetched });
    } finally {
      if (prefetched) fs.rmSync(prefetched.file, { force: true });
    }
  });
}

/** The upstream's versionFrom file, downloaded to learn the label, handed to build so it is not fetched twice. */
interface Prefetched {
  rel: string;
  file: string;
  fetched: Fetched;
}

/**
 * The version the upstream's `versionFrom` (latest-releases.yaml) names; all its images must agree.
 * Asked for with If-Modified-Since when the current snapshot has that file: unchanged (304), the
 * label is read from the snapshot's copy; otherwise the file downloaded is handed on (Prefetched).
 */
async function upstreamVersion(
  m: MirrorConfig,
  previous: ReturnType<typeof previousSnapshot>,
): Promise<{ label: string; prefetched?: Prefetched }> {
  const rel = m.versionFrom!;
  const prevFile = previous ? path.join(m.dir, previous.label, rel) : undefined;
  const known = previous?.manifest?.files[rel];
  const file = path.join(m.dir, `.${path.posix.basename(rel)}.tmp-${process.pid}`);
  fs.rmSync(file, { force: true });
  const fetched = await fetchToFile(new URL(rel, m.url).href, file, {
    ...(known?.lastModified && prevFile && fs.existsSync(prevFile) ? { ifModifiedSince: new Date(known.lastModified) } : {}),
  });
  const text = fs.readFileSync(fetched.status === 304 ? prevFile! : file, 'utf8');
  let label: string;
  try {
    const versions = [...new Set(readLatestReleases(rel, text).map((i) => i.version))];
    if (versions.length !== 1 || !VERSION_RE.test(versions[0]))
      throw new MirrorError(
        rel,
        `names ${versions.length === 0 ? 'no version' : `versions ${versions.join(', ')}`}: expected one version label`,
      );
    label = versions[0];
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw e;
  }
  return { label, ...(fetched.status === 200 ? { prefetched: { rel, file, fetched } } : {}) };
}

async function build(
  m: MirrorConfig,
  label: string,
  previous: ReturnType<typeof previousSnapshot>,
  opts: { now?: Date; progress?: Progress; prefetched?: Prefetched },
): Promise<SyncResult> {
  const out = emptyResult(m, label, 'synced');
  const prevLabel = previous?.label;
  const prev = previous?.manifest;
  const stagingName = `${PARTIAL}${label}`;
  const top = SafeDir.open(m.dir, '', {});
  const files: Record<string, ManifestFile> = {};
  try {
    const staging = top.sub(stagingName, { create: 0o755 });
    staging.close();
    const stagingDir = path.join(m.dir, stagingName);
    const progress = opts.progress;

    /** Takes `rel` into the staging folder: kept (already there and `ok`), linked from the previous snapshot, or downloaded. */
    const take = async (
      rel: string,
      check: (file: string, size: number, sha256: string) => Promise<ManifestFile>,
      reuse: (p: ManifestFile) => boolean,
      conditional = false,
    ): Promise<ManifestFile> => {
      const dir = SafeDir.open(stagingDir, path.posix.dirname(rel), { create: 0o755 });
      const name = path.posix.basename(rel);
      try {
        const here = dir.lstat(name);
        // Left by an interrupted sync: a listed file is kept when it still checks out (the index says
        // what it must be); an index or yaml (conditional) is always asked for again, so it goes.
        if (here?.isFile() && !conditional) {
          try {
            const f = await check(dir.entry(name), here.size, await sha256File(dir.entry(name)));
            out.resumed++;
            return f;
          } catch {
            /* not what the upstream lists now: fetched again */
          }
        }
        if (here) dir.unlink(name); // a link or anything else we did not make: never followed
        const pre = opts.prefetched;
        if (pre && pre.rel === rel && fs.existsSync(pre.file)) {
          // Downloaded already to learn the version label: checked and moved in, not fetched again.
          let f = await check(pre.file, pre.fetched.size, pre.fetched.sha256);
          if (pre.fetched.lastModified) f = { ...f, lastModified: pre.fetched.lastModified.toISOString() };
          fs.renameSync(pre.file, dir.entry(name));
          out.downloaded.push(rel);
          return f;
        }
        const p = prev?.files[rel];
        const prevFile = prevLabel ? path.join(m.dir, prevLabel, rel) : undefined;
        if (p && prevFile && !conditional && reuse(p) && fs.lstatSync(prevFile, { throwIfNoEntry: false })?.isFile()) {
          fs.linkSync(prevFile, dir.entry(name));
          out.linked++;
          return p;
        }
        const tmp = `.${name}.tmp-${process.pid}`;
        if (dir.lstat(tmp)) dir.unlink(tmp);
        const url = new URL(rel, m.url).href;
        const got = await fetchToFile(url, dir.entry(tmp), {
          ...(conditional && p?.lastModified && prevFile && fs.existsSync(prevFile) ? { ifModifiedSince: new Date(p.lastModified) } : {}),
        });
        if (got.status === 304) {
          fs.linkSync(prevFile!, dir.entry(name));
          out.linked++;
          return p!;
        }
        let f: ManifestFile;
        try {
          f = await check(dir.entry(tmp), got.size, got.sha256);
        } catch (e) {
          dir.unlink(tmp);
          throw e;
        }
        if (got.lastModified) f = { ...f, lastModified: got.lastModified.toISOString() };
        dir.rename(tmp, dir, name);
        out.downloaded.push(rel);
        return f;
      } finally {
        dir.close();
      }
    };

    for (const folder of m.paths) {
      if (isReleases(folder)) {
        const yamlRel = `${folder}/latest-releases.yaml`;
        files[yamlRel] = await take(
          yamlRel,
          async (_f, size, sha256) => ({ size, sha256 }),
          () => false,
          true,
        );
        const images = readLatestReleases(yamlRel, fs.readFileSync(path.join(stagingDir, yamlRel), 'utf8'));
        progress?.start(images.length, folder);
        for (const img of images) {
          const rel = `${folder}/${img.file}`;
          files[rel] = await take(
            rel,
            async (file, size, sha256) => {
              if (sha256 !== img.sha256) throw new MirrorError(rel, `SHA-256 ${sha256}, but ${yamlRel} publishes ${img.sha256}; not kept`);
              if (img.size !== undefined && size !== img.size)
                throw new MirrorError(rel, `${size} bytes, but ${yamlRel} says ${img.size}; not kept`);
              return { size, sha256 };
            },
            (p) => p.sha256 === img.sha256,
          );
          // The image's own checksum file, when the upstream has one, must agree with the yaml.
          const sumRel = `${rel}.sha256`;
          files[sumRel] = await take(
            sumRel,
            async (file, size, sha256) => {
              const sum = readChecksumFile(sumRel, fs.readFileSync(file, 'utf8'));
              if (sum.digest !== img.sha256 || sum.fileName !== img.file)
                throw new MirrorError(
                  sumRel,
                  `says ${sum.digest} ${sum.fileName}, but ${yamlRel} publishes ${img.sha256} ${img.file}; not kept`,
                );
              return { size, sha256 };
            },
            () => false,
            true,
          );
          progress?.tick();
        }
        progress?.stop();
        continue;
      }
      const indexRel = `${folder}/APKINDEX.tar.gz`;
      let entries: Awaited<ReturnType<typeof readApkIndex>>['entries'] = [];
      files[indexRel] = await take(
        indexRel,
        async (file, size, sha256) => {
          entries = (await readApkIndex(indexRel, fs.readFileSync(file), m.keys.size ? m.keys : undefined)).entries;
          return { size, sha256 };
        },
        () => false,
        true,
      );
      if (entries.length === 0)
        entries = (await readApkIndex(indexRel, fs.readFileSync(path.join(stagingDir, indexRel)), m.keys.size ? m.keys : undefined))
          .entries;
      progress?.start(entries.length, folder);
      for (const e of entries) {
        const rel = `${folder}/${apkFileName(e)}`;
        files[rel] = await take(
          rel,
          async (file, size, sha256) => {
            if (size !== e.size) throw new MirrorError(rel, `${size} bytes, but ${indexRel} lists ${e.size}; not kept`);
            // The C: checksum (control) and the data's SHA-256 its .PKGINFO names: every byte checked.
            try {
              return { size, sha256, checksum: await verifyApk(file, e.checksum) };
            } catch (err) {
              throw err instanceof MirrorError ? new MirrorError(rel, err.reason) : err;
            }
          },
          (p) => p.checksum === e.checksum && p.size === e.size,
        );
        progress?.tick();
      }
      progress?.stop();
    }

    // Files of an interrupted sync that the upstream no longer lists, and temp files, go.
    removeUnlisted(stagingDir, '', files);
    const manifest: Manifest = { version: 1, label, upstream: m.url, syncedAt: (opts.now ?? new Date()).toISOString(), files };
    writeFileAtomic(path.join(stagingDir, MANIFEST), JSON.stringify(manifest) + '\n', 0o644);
    fs.mkdirSync(m.stateDir, { recursive: true });
    // Recorded before the rename: a kill between the rename and the flip is finished by the next sync.
    writeFileAtomic(pendingFlipFile(m), `${label}\n`, 0o644);
    top.rename(stagingName, top, label);
    top.sync();
    flip(m, label);
    fs.rmSync(pendingFlipFile(m), { force: true });
  } finally {
    top.close();
  }
  out.hook = runHook(m, label);
  return out;
}

/** Removes from the partial folder what `listed` does not name (files of an older listing, temp files); never follows a link. */
function removeUnlisted(base: string, rel: string, listed: Record<string, ManifestFile>): void {
  const dir = SafeDir.open(base, rel, {});
  try {
    for (const e of dir.list()) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) removeUnlisted(base, r, listed);
      else if (!(r in listed)) dir.unlink(e.name);
    }
  } finally {
    dir.close();
  }
}

/** One snapshot as `mirror list` shows it. */
export interface SnapshotInfo {
  label: string;
  syncedAt: string;
  files: number;
  /** Sum of its files' sizes, bytes. */
  bytes: number;
  /** Bytes not shared (by inode) with the snapshot before it: what it costs on disk. */
  ownBytes: number;
  latestStable: boolean;
}

/** The snapshots of `m`, oldest first, with sizes and the pointer (see SnapshotInfo); and the partial folders. */
export function listSnapshots(m: MirrorConfig): { snapshots: SnapshotInfo[]; partial: string[]; latestStable?: string } {
  const target = pointerTarget(m);
  const all = snapshots(m);
  const out: SnapshotInfo[] = [];
  let before = new Set<number>();
  for (const s of all) {
    let bytes = 0;
    let own = 0;
    const inodes = new Set<number>();
    for (const [rel, f] of Object.entries(s.files)) {
      bytes += f.size;
      const st = fs.lstatSync(path.join(m.dir, s.label, rel), { throwIfNoEntry: false });
      if (st) {
        inodes.add(st.ino);
        if (!before.has(st.ino)) own += f.size;
      }
    }
    before = inodes;
    out.push({
      label: s.label,
      syncedAt: s.syncedAt,
      files: Object.keys(s.files).length,
      bytes,
      ownBytes: own,
      latestStable: s.label === target,
    });
  }
  let partial: string[] = [];
  try {
    partial = fs
      .readdirSync(m.dir)
      .filter((n) => n.startsWith(PARTIAL))
      .map((n) => n.slice(PARTIAL.length));
  } catch {
    partial = [];
  }
  return { snapshots: out, partial, ...(target ? { latestStable: target } : {}) };
}

/**
 * Points `latest-stable` at snapshot `to`, or at the newest snapshot older than the current target.
 * Throws UsageError for an unknown snapshot or when there is none older. Under the mirror's lock;
 * clears a pending flip (the operator's choice wins).
 */
export async function rollbackMirror(m: MirrorConfig, to?: string): Promise<{ from?: string; to: string }> {
  return withChannelLock(m, async () => {
    const all = snapshots(m).map((s) => s.label);
    const from = pointerTarget(m);
    let target = to;
    if (target !== undefined) {
      if (!all.includes(target)) throw new UsageError(`mirror ${m.name} has no snapshot '${target}' (it has: ${all.join(', ') || 'none'})`);
    } else {
      const i = from ? all.indexOf(from) : all.length;
      if (i <= 0) throw new UsageError(`mirror ${m.name}: no snapshot older than ${from ?? 'the pointer'} to roll back to`);
      target = all[i - 1];
    }
    fs.rmSync(pendingFlipFile(m), { force: true });
    flip(m, target);
    return { ...(from ? { from } : {}), to: target };
  });
}

/**
 * Removes the complete snapshots of `m` but the `keep` newest and the pointer's target (which is
 * always kept); a folder is renamed out of the label namespace first, then deleted. Resolves to
 * the labels removed. Under the mirror's lock.
 */
export async function gcMirror(m: MirrorConfig, keep: number): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep must be a whole number >= 1, not ${keep}`);
  return withChannelLock(m, async () => {
    const all = snapshots(m).map((s) => s.label);
    const target = pointerTarget(m);
    const kept = new Set(all.slice(-keep));
    if (target) kept.add(target);
    const removed: string[] = [];
    for (const label of all) {
      if (kept.has(label)) continue;
      const trash = path.join(m.dir, `.trash-${label}`);
      fs.renameSync(path.join(m.dir, label), trash);
      fs.rmSync(trash, { recursive: true, force: true });
      removed.push(label);
    }
    return removed;
  });
}
