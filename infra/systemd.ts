/**
 * systemd units of a channel (systemd.unit(5), systemd.service(5), systemd.path(5),
 * systemd.timer(5)): ingest when files land in the drop zones (upstream-less channels only, as
 * packages enter prod by promotion), and a nightly backup.
 */
import * as path from 'path';
import type { StackConfig } from '../stacks/config';
import type { ChannelLayout } from './layout';

/** One unit file: its name (e.g. apt-repo-backup-prod.timer) and text. */
export interface UnitFile {
  name: string;
  content: string;
}

const HEADER = '# Managed by the apt-repo Pulumi stack: local changes are overwritten.\n';

function execLine(cfg: StackConfig, args: string[]): string {
  // systemd splits ExecStart on white space and honours double quotes; every word here is a path
  // or a plain word validated by the config schema.
  return [cfg.nodePath, cfg.indexerPath, '--root', cfg.root, '--channel', cfg.channel, ...args].join(' ');
}

function service(cfg: StackConfig, description: string, args: string[]): string {
  return `${HEADER}[Unit]
Description=${description}
After=local-fs.target

[Service]
Type=oneshot
User=${cfg.serviceUser}
Group=${cfg.serviceUser}
UMask=0022
ExecStart=${execLine(cfg, args)}
`;
}

/** Names of the units of `cfg`'s channel: the ones to enable are the .path and .timer units. */
export function unitNames(cfg: StackConfig): { ingest?: { service: string; path: string; timer: string }; backup: { service: string; timer: string } } {
  const b = `apt-repo-backup-${cfg.channel}`;
  const i = `apt-repo-ingest-${cfg.channel}`;
  return {
    ...(cfg.upstream ? {} : { ingest: { service: `${i}.service`, path: `${i}.path`, timer: `${i}.timer` } }),
    backup: { service: `${b}.service`, timer: `${b}.timer` },
  };
}

/**
 * Renders the ingest units (unless the channel has an upstream): a path unit watching the drop
 * zones (inotify sees one directory level, so each `<incoming>/<source>` and its codename folders
 * are listed), and a timer every 5 minutes that catches what inotify missed (a folder created
 * later). Renders the backup service and its timer (`cfg.backupSchedule`, Persistent=yes so a
 * missed night runs at boot).
 */
export function renderSystemdUnits(cfg: StackConfig, layout: ChannelLayout): UnitFile[] {
  const names = unitNames(cfg);
  const units: UnitFile[] = [];
  if (names.ingest) {
    const watched = [layout.incomingDir];
    for (const s of cfg.ingestSources) {
      watched.push(path.posix.join(layout.incomingDir, s));
      for (const c of cfg.codenames) watched.push(path.posix.join(layout.incomingDir, s, c));
    }
    units.push(
      { name: names.ingest.service, content: service(cfg, `Ingest uploaded packages into APT channel ${cfg.channel}`, ['ingest']) },
      {
        name: names.ingest.path,
        content: `${HEADER}[Unit]
Description=Watch the APT drop zones for channel ${cfg.channel}

[Path]
${watched.map((w) => `PathChanged=${w}`).join('\n')}
Unit=${names.ingest.service}

[Install]
WantedBy=paths.target
`,
      },
      {
        name: names.ingest.timer,
        content: `${HEADER}[Unit]
Description=Periodic ingest for APT channel ${cfg.channel}

[Timer]
OnBootSec=2min
OnUnitInactiveSec=5min
Unit=${names.ingest.service}

[Install]
WantedBy=timers.target
`,
      },
    );
  }
  units.push(
    { name: names.backup.service, content: service(cfg, `Back up APT channel ${cfg.channel}`, ['backup', '--to', layout.backupDir]) },
    {
      name: names.backup.timer,
      content: `${HEADER}[Unit]
Description=Nightly backup of APT channel ${cfg.channel}

[Timer]
OnCalendar=${cfg.backupSchedule}
Persistent=yes
RandomizedDelaySec=15min
Unit=${names.backup.service}

[Install]
WantedBy=timers.target
`,
    },
  );
  return units;
}

/** The directories the path unit watches must exist before it starts: returned for the dirs step. */
export function watchedDirs(cfg: StackConfig, layout: ChannelLayout): string[] {
  if (cfg.upstream) return [];
  return cfg.ingestSources.flatMap((s) => [path.posix.join(layout.incomingDir, s), ...cfg.codenames.map((c) => path.posix.join(layout.incomingDir, s, c))]);
}
