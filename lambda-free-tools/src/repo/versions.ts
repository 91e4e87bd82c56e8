/**
 * versions: every version of one package in every channel configured under a root, newest first
 * (Debian order, as `dpkg --compare-versions`), so an operator sees what `apt-get install pkg=ver`
 * can reach in each channel and which version to roll back to. Read-only, no lock.
 */
import { UsageError } from '../errors';
import { compareVersions } from '../deb/version';
import { isValidPackageName } from '../deb/control';
import { listChannels, loadChannel } from './channel';
import { scanPool } from './pool';
import { channelsConfigRoot } from './channel';

/** Where one version lives in one channel. */
export interface VersionInChannel {
  architectures: string[];
  codenames: string[];
  /** Earliest time a file of this version entered the channel, ms since epoch. */
  addedMs: number;
  poolPaths: string[];
}

/** One version of the package across channels. */
export interface VersionRow {
  version: string;
  /** Channels holding it, sorted by name. */
  channels: string[];
  /** Union over channels. */
  architectures: string[];
  codenames: string[];
  byChannel: Record<string, VersionInChannel>;
}

/**
 * Lists the versions of package `name` found in the pools of every channel under `root`
 * (the folders of `<root>/etc/epiconcept/apt_repo/`), newest first.
 * Throws UsageError for an invalid name or a package no channel holds, ConfigError for a broken channel config.
 */
export async function packageVersions(root: string, name: string): Promise<VersionRow[]> {
  if (!isValidPackageName(name)) throw new UsageError(`'${name}' is not a valid package name (Debian Policy §5.6.1)`);
  const channels = listChannels(root);
  if (channels.length === 0) throw new UsageError(`no channel configured under ${channelsConfigRoot(root)}`);
  const rows = new Map<string, VersionRow>();
  for (const channel of channels) {
    const ch = await loadChannel({ root, channel });
    const { packages } = await scanPool(ch);
    for (const p of packages) {
      if (p.name !== name) continue;
      let row = rows.get(p.version);
      if (!row) rows.set(p.version, (row = { version: p.version, channels: [], architectures: [], codenames: [], byChannel: {} }));
      let inCh = row.byChannel[channel];
      if (!inCh) {
        inCh = row.byChannel[channel] = { architectures: [], codenames: [], addedMs: p.addedMs, poolPaths: [] };
        row.channels.push(channel);
      }
      addSorted(inCh.architectures, [p.architecture]);
      addSorted(inCh.codenames, p.codenames);
      inCh.poolPaths.push(p.poolPath);
      inCh.addedMs = Math.min(inCh.addedMs, p.addedMs);
      addSorted(row.architectures, [p.architecture]);
      addSorted(row.codenames, p.codenames);
    }
  }
  if (rows.size === 0) throw new UsageError(`package ${name} is in no channel under ${channelsConfigRoot(root)} (looked in: ${channels.join(', ')})`);
  return [...rows.values()].sort((a, b) => compareVersions(b.version, a.version));
}

function addSorted(into: string[], items: string[]): void {
  for (const i of items) if (!into.includes(i)) into.push(i);
  into.sort();
}
