/**
 * versions: every version of one package in every channel configured under a root, newest first
 * (the format's order; Debian: as `dpkg --compare-versions`), so an operator sees what `apt-get install pkg=ver`
 * can reach in each channel and which version to roll back to. Read-only, no lock.
 */
import { UsageError } from '../errors';
import { listChannels, loadChannel } from './channel';
import { readPool } from './pool';
import { channelsConfigRoot } from './channel';
import { formatOf } from './format';
import type { ChannelConfig } from '../core/types';

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
  const format = formatOf();
  if (!format.isValidName(name)) throw new UsageError(`'${name}' is not a valid package name (${format.nameRule})`);
  const channels = listChannels(root);
  if (channels.length === 0) throw new UsageError(`no channel configured under ${channelsConfigRoot(root)}`);
  const loaded: ChannelConfig[] = [];
  for (const channel of channels) loaded.push(await loadChannel({ root, channel }));
  const rows = await versionsIn(loaded, name);
  if (rows.length === 0)
    throw new UsageError(`package ${name} is in no channel under ${channelsConfigRoot(root)} (looked in: ${channels.join(', ')})`);
  return rows;
}

/**
 * The versions of package `name` in the pools of `channels` (loaded configs, in the order given),
 * newest first by the first channel's format; empty when none holds it. Read-only: each pool is
 * taken from its channel's store when that is the pool served now (readPool).
 */
export async function versionsIn(channels: ChannelConfig[], name: string): Promise<VersionRow[]> {
  const rows = new Map<string, VersionRow>();
  for (const ch of channels) {
    const channel = ch.name;
    // From the store, only the entries of this package are built (a listing gives them all).
    const { packages } = await readPool(ch, { onlyName: name });
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
  const { compareVersions } = formatOf(channels[0]);
  return [...rows.values()].sort((a, b) => compareVersions(b.version, a.version));
}

function addSorted(into: string[], items: string[]): void {
  for (const i of items) if (!into.includes(i)) into.push(i);
  into.sort();
}
