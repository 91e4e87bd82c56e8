/**
 * Writes a channel's web catalogue and serves it: every file of a new catalogue goes into a fresh
 * folder `<webRoot>/.catalogue/<generation id>-<stamp>/` (created, never reused, each file created
 * with O_EXCL|O_NOFOLLOW and fsynced), then `<webRoot>/catalogue` (a relative symlink) is renamed
 * over to it in one step, and the other folders are removed. The vhost serves `/catalogue/` from
 * that link, behind the same allowlist and credentials as `dists/`.
 *
 * The catalogue is derived data: the generation writer rebuilds it after every flip, and a crash
 * between the flip of `dists` and that of `catalogue` leaves the previous catalogue serving, marked
 * (catalogue.json) with the generation it describes. The next writer of the channel sees the
 * mismatch and rebuilds it (healCatalogue, called by recoverChannel). A failure to write it never
 * fails the publish that served the generation: it is reported as a warning.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { replaceSymlink, SafeDir } from '../core/files';
import { AptRepoError } from '../errors';
import { currentGeneration } from '../repo/generations';
import { PoolCache } from '../repo/cache';
import { timed, timedAsync } from '../core/timings';
import type { ChannelConfig, ServedRecord } from '../core/types';
import { gatherCatalogue } from './model';
import { MARKER_FILE, renderCatalogue, type CatalogueMarker } from './pages';

/** The link in the web root that the vhost serves as /catalogue/. */
export const CATALOGUE_LINK = 'catalogue';
/** The hidden folder of catalogue builds in the web root (dot names are never served). */
export const CATALOGUE_DIR = '.catalogue';

const BUILD_RE = /^[0-9]{8}T[0-9]{6}Z-[0-9]{6}-[0-9a-z]+$/;

/**
 * The marker of the catalogue `<webRoot>/catalogue` serves: which generation it describes and when
 * it was built; undefined when there is no catalogue or its link or marker is not one this module
 * wrote (a link elsewhere, a folder, a missing or malformed catalogue.json).
 */
export function servedCatalogue(ch: Pick<ChannelConfig, 'webRoot' | 'name'>): CatalogueMarker | undefined {
  let target: string;
  try {
    target = fs.readlinkSync(path.join(ch.webRoot, CATALOGUE_LINK));
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${CATALOGUE_DIR.replace('.', '\\.')}/([^/]+)$`).exec(target);
  if (!m || !BUILD_RE.test(m[1])) return undefined;
  try {
    const dir = SafeDir.open(ch.webRoot, `${CATALOGUE_DIR}/${m[1]}`);
    try {
      const { fd } = dir.openFile(MARKER_FILE);
      let text: string;
      try {
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
      const v = JSON.parse(text) as Partial<CatalogueMarker>;
      if (v.version !== 1 || v.channel !== ch.name || typeof v.generation !== 'string' || typeof v.builtAt !== 'string') return undefined;
      return { version: 1, channel: v.channel, generation: v.generation, builtAt: v.builtAt };
    } finally {
      dir.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Builds the catalogue of the generation `ch` serves and flips `<webRoot>/catalogue` to it; the
 * caller holds the channel lock. `opts.cache`: the pool store the caller already loaded (else it is
 * loaded); `opts.served`: what a generation serves, used when it is the served one (else its
 * served.json is read). Resolves to the generation it describes, undefined when nothing is published yet (no
 * catalogue then). Throws AptRepoError when `<webRoot>/catalogue` exists and is not a symlink (an
 * operator's folder is never replaced), and the file system's errors; a build cut short leaves only
 * a folder that is not served, removed by the next build.
 */
export async function writeCatalogueLocked(
  ch: ChannelConfig,
  opts: { cache?: PoolCache; now?: Date; served?: { generation: string; records: ServedRecord[] } } = {},
): Promise<string | undefined> {
  const id = await currentGeneration(ch);
  if (!id) return undefined;
  const now = opts.now ?? new Date();
  return timedAsync('catalogue', async () => {
    const link = path.join(ch.webRoot, CATALOGUE_LINK);
    const existing = fs.lstatSync(link, { throwIfNoEntry: false });
    if (existing && !existing.isSymbolicLink())
      throw new AptRepoError(
        `${link}: is not a symlink (publish serves the catalogue through a symlink to ${CATALOGUE_DIR}/<build>; move it away)`,
      );
    const cache = opts.cache ?? timed('catalogue: store load', () => PoolCache.forChannel(ch));
    const known = opts.served?.generation === id ? opts.served.records : undefined;
    const data = await timedAsync('catalogue: gather', () => gatherCatalogue(ch, id, (p) => cache.recorded(p), now, known));
    const files = timed('catalogue: render', () => renderCatalogue(data));

    // Never an existing folder's name: two builds in the same millisecond differ by their random part.
    const build = `${id}-${now.getTime().toString(36)}${randomBytes(3).toString('hex')}`;
    const root = SafeDir.open(ch.webRoot, CATALOGUE_DIR, { create: 0o755 });
    try {
      const dir = root.sub(build, { create: 0o755 });
      try {
        for (const [name, text] of files) if (name !== MARKER_FILE) dir.createFile(name, text, 0o644);
        // The marker last: a folder with a marker is complete.
        dir.createFile(MARKER_FILE, files.get(MARKER_FILE)!, 0o644);
        dir.sync();
      } finally {
        dir.close();
      }
      root.sync();
      replaceSymlink(`${CATALOGUE_DIR}/${build}`, link);
      for (const e of root.list()) if (e.name !== build) fs.rmSync(root.entry(e.name), { recursive: true, force: true });
    } finally {
      root.close();
    }
    for (const n of fs.readdirSync(ch.webRoot))
      if (n.startsWith(`.${CATALOGUE_LINK}.tmp-`)) fs.rmSync(path.join(ch.webRoot, n), { force: true });
    return id;
  });
}

/**
 * Rebuilds the catalogue when it does not describe the generation `ch` serves (a writer stopped
 * between the two flips, a restore, a rollback by an older apt-repo) and the channel has the
 * catalogue on; the caller holds the channel lock. Resolves to true when it rebuilt it.
 */
export async function healCatalogue(ch: ChannelConfig): Promise<boolean> {
  if (!ch.catalogue) return false;
  const id = await currentGeneration(ch);
  if (!id || servedCatalogue(ch)?.generation === id) return false;
  await writeCatalogueLocked(ch);
  return true;
}
