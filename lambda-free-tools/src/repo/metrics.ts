/**
 * A channel's facts as Prometheus metrics, in the text format node_exporter's textfile collector
 * reads (https://prometheus.io/docs/instrumenting/exposition_formats/): gauges labelled with the
 * channel, made with prom-client from the channel's status (repo/status.ts). Written to
 * `<metricsDir>/apt_repo_<channel>.prom` through a hidden temp name and a rename, so the collector
 * never reads half a file (it reads only `*.prom`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../core/files';
import type { ChannelStatus } from './status';

/** The metric names, each with its help text (all gauges; every one has the label `channel`). */
export const METRICS = {
  apt_repo_packages: 'Distinct package names the served index of a codename and architecture lists',
  apt_repo_versions: 'Entries (package, version, architecture) the served index of a codename and architecture lists',
  apt_repo_pending_packages: 'Packages the upstream channel serves that the downstream channel does not (what promote can take)',
  apt_repo_last_publish_timestamp_seconds: 'When the served generation was published (Unix time)',
  apt_repo_generation_age_seconds: 'Age of the served generation when the metrics were written',
  apt_repo_generations_kept: 'Published generations kept for rollback',
  apt_repo_last_ingest_timestamp_seconds: 'When the newest ingest the history records ran (Unix time)',
  apt_repo_last_ingest_accepted: 'Uploads the newest ingest accepted',
  apt_repo_last_ingest_rejected: 'Uploads the newest ingest rejected',
  apt_repo_rejected_uploads: 'Refused uploads kept in the rejected folder',
  apt_repo_last_backup_timestamp_seconds: 'When the newest complete backup was made (Unix time)',
  apt_repo_disk_bytes: 'Disk use by part (pool, generations, trash, backups), apparent bytes, each inode once per part',
  apt_repo_signing_key_expiry_timestamp_seconds: 'When the signing key expires (Unix time; absent when it never does)',
  apt_repo_release_valid_until_timestamp_seconds: "The served Releases' earliest Valid-Until (Unix time; absent without validUntilDays)",
  apt_repo_lock_held: '1 while a writer holds the channel lock',
  apt_repo_status_problems: 'Facts the status could not gather',
} as const;

const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/**
 * The Prometheus text of status `s` (see METRICS); `nowMs` dates the generation's age. A fact the
 * status lacks (no publish yet, no backup, no pair …) is left out rather than given a made-up value.
 */
export async function renderMetrics(s: ChannelStatus, nowMs = Date.now()): Promise<string> {
  const { Registry, Gauge } = await import('prom-client');
  const registry = new Registry();
  const gauges = new Map<keyof typeof METRICS, InstanceType<typeof Gauge>>();
  const gauge = (name: keyof typeof METRICS, labels: string[] = []) => {
    let g = gauges.get(name);
    if (!g) {
      g = new Gauge({ name, help: METRICS[name], labelNames: ['channel', ...labels], registers: [registry] });
      gauges.set(name, g);
    }
    return g;
  };
  const channel = s.channel;
  for (const [codename, per] of Object.entries(s.counts ?? {})) {
    for (const [architecture, c] of Object.entries(per)) {
      gauge('apt_repo_packages', ['codename', 'architecture']).set({ channel, codename, architecture }, c.packages);
      gauge('apt_repo_versions', ['codename', 'architecture']).set({ channel, codename, architecture }, c.versions);
    }
  }
  if (s.pending !== undefined) gauge('apt_repo_pending_packages').set({ channel }, s.pending);
  if (s.current) {
    gauge('apt_repo_last_publish_timestamp_seconds').set({ channel }, seconds(s.current.date));
    gauge('apt_repo_generation_age_seconds').set({ channel }, Math.max(0, Math.floor((nowMs - Date.parse(s.current.date)) / 1000)));
  }
  gauge('apt_repo_generations_kept').set({ channel }, s.generationsKept);
  if (s.lastIngest) {
    gauge('apt_repo_last_ingest_timestamp_seconds').set({ channel }, seconds(s.lastIngest.time));
    gauge('apt_repo_last_ingest_accepted').set({ channel }, s.lastIngest.accepted);
    gauge('apt_repo_last_ingest_rejected').set({ channel }, s.lastIngest.rejected);
  }
  gauge('apt_repo_rejected_uploads').set({ channel }, s.rejectedCount);
  if (s.lastBackup) gauge('apt_repo_last_backup_timestamp_seconds').set({ channel }, seconds(s.lastBackup.createdAt));
  for (const [part, bytes] of Object.entries(s.disk ?? {})) gauge('apt_repo_disk_bytes', ['part']).set({ channel, part }, bytes);
  if (s.signingKey?.expires) gauge('apt_repo_signing_key_expiry_timestamp_seconds').set({ channel }, seconds(s.signingKey.expires));
  if (s.validUntil) gauge('apt_repo_release_valid_until_timestamp_seconds').set({ channel }, seconds(s.validUntil.date));
  gauge('apt_repo_lock_held').set({ channel }, s.lock ? 1 : 0);
  gauge('apt_repo_status_problems').set({ channel }, s.problems.length);
  return registry.metrics();
}

/** `<dir>/apt_repo_<channel>.prom`. */
export function metricsFile(dir: string, channel: string): string {
  return path.join(dir, `apt_repo_${channel}.prom`);
}

/**
 * Writes the metrics of `s` to `<dir>/apt_repo_<channel>.prom` (mode 0644, through a temp name and
 * a rename: writeFileAtomic) and resolves to the file. Throws the file system's error (a missing
 * or unwritable folder).
 */
export async function writeMetrics(dir: string, s: ChannelStatus, nowMs = Date.now()): Promise<string> {
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const file = metricsFile(dir, s.channel);
  writeFileAtomic(file, await renderMetrics(s, nowMs), 0o644);
  return file;
}
