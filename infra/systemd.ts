/**
 * systemd units of a channel (systemd.unit(5), systemd.service(5), systemd.exec(5),
 * systemd.socket(5), systemd.path(5), systemd.timer(5), tmpfiles.d(5)):
 * - ingest when files land in the drop zones (upstream-less channels only, as packages enter prod
 *   by promotion), a nightly backup, with validUntilDays an hourly re-signing check, and with
 *   metricsDir a Prometheus textfile every few minutes, all as the channel's serviceUser;
 * - the signer: a socket unit on `<root>/run/apt-repo/sign-<channel>/sign.sock` (Accept=yes) whose
 *   template service runs `apt-repo sign --stdio` as signerUser, one instance per request, and a
 *   tmpfiles.d entry that recreates the socket folder at boot (/run is a tmpfs).
 * Every service is sandboxed (HARDENING below): `systemd-analyze security` rates each at most 3.0
 * ("OK"; infra/systemd.test.ts checks the rendered files offline).
 *
 * Left out on purpose: MemoryDenyWriteExecute= (V8's JIT, hence node, needs writable and executable
 * memory: the units would die at start-up), PrivateUsers= for the indexer units (the hard links
 * promote makes rely on the pool group, which a user namespace leaves unmapped), and syscall deny
 * lists beyond @system-service (a denied call node makes at start-up cannot be found before the
 * unit fails on the server; the allow list already excludes @mount, @module, @reboot, @swap …).
 */
import * as path from 'path';
import { unitNames } from '../lambda-free-tools/src/settings/layout';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from './layout';

/** One unit file: its name (e.g. apt-repo-backup-prod.timer) and text. */
export interface UnitFile {
  name: string;
  content: string;
}

const HEADER = '# Managed by the apt-repo Pulumi stack: local changes are overwritten.\n';

/**
 * The sandbox of every service (systemd.exec(5)). Paths a unit writes are opened with
 * ReadWritePaths= per unit; everything else is read-only (ProtectSystem=strict), no network but
 * Unix sockets, no capability, no device, no other process visible.
 */
// RestrictSUIDSGID= is not in this shared list: the indexer makes pool and generation folders
// with their parent's setgid bit (lambda-free-tools/src/repo/files.ts keeps the pool group that
// way), an fchmod the filter refuses with EPERM (measured: every ingest under systemd failed).
// The signer, which creates nothing, has it (renderSignerUnits).
const HARDENING = `NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateNetwork=yes
PrivateIPC=yes
PrivateMounts=yes
IPAddressDeny=any
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
KeyringMode=private
RemoveIPC=yes
SystemCallFilter=@system-service
SystemCallArchitectures=native
SystemCallErrorNumber=EPERM
`;

/**
 * The sandbox of a service that must reach the network (a mirror's sync: infra/mirrors.ts): HARDENING
 * without PrivateNetwork= and IPAddressDeny=; the unit adds RestrictAddressFamilies= AF_INET and AF_INET6.
 */
export const NETWORK_HARDENING = HARDENING.replace('PrivateNetwork=yes\n', '').replace('IPAddressDeny=any\n', '');

function execLine(cfg: StackConfig, args: string[]): string {
  // systemd splits ExecStart on white space and honours double quotes; every word here is a path
  // or a plain word validated by the config schema.
  return [cfg.nodePath, cfg.indexerPath, '--root', cfg.root, '--channel', cfg.channel, ...args].join(' ');
}

/**
 * Seconds the ingest service waits before it looks at the drop zones: longer than ingest's
 * settle delay (2 s), which skips a file changed more recently. The path unit starts the service
 * the moment an upload creates or closes a file; without the wait that run always finds the file
 * too fresh, skips it, and the events of the upload's end arrive while it runs and are merged
 * into it (a start job on an active unit), so the file waited for the timer (measured: 110 s).
 */
const INGEST_SETTLE_WAIT_S = 3;

/**
 * An indexer service: oneshot, as serviceUser, writing only `writes`; Unix sockets only (the signer).
 * `preStart`: ExecStartPre= lines; `extra`: more [Service] lines. A writing command also writes its
 * metrics file after its work when metricsDir is set (lambda-free-tools/src/cli/apt-repo.ts): the
 * metrics folder is writable then, prefixed with '-' (ignored when missing: a folder removed by
 * hand costs a warning of the command, never the command itself).
 */
function indexerService(
  cfg: StackConfig,
  description: string,
  args: string[],
  writes: string[],
  preStart: string[] = [],
  extra: string[] = [],
): string {
  const all = [...writes, ...(cfg.metricsDir && !writes.includes(cfg.metricsDir) ? [`-${cfg.metricsDir}`] : [])];
  return `${HEADER}[Unit]
Description=${description}
After=local-fs.target

[Service]
Type=oneshot
User=${cfg.serviceUser}
Group=${cfg.serviceUser}
UMask=0022
${extra.map((l) => `${l}\n`).join('')}${preStart.map((l) => `ExecStartPre=${l}\n`).join('')}ExecStart=${execLine(cfg, args)}
${HARDENING}RestrictAddressFamilies=AF_UNIX
ReadWritePaths=${all.join(' ')}
`;
}

/**
 * Minutes between two runs of the metrics timer: ages (generation, last backup) and counts of what
 * no writing command sees (refused uploads waiting, the lock) stay this fresh between commands.
 */
export const METRICS_INTERVAL_MIN = 5;

/** Minutes between two rebuilds of the web catalogue by its timer (every publish rebuilds it too). */
export const CATALOGUE_INTERVAL_MIN = 10;

/**
 * Renders the ingest units (unless the channel has an upstream): a path unit watching the drop
 * zones (inotify sees one directory level, so each `<incoming>/<source>` and its codename folders
 * are listed; the service first waits INGEST_SETTLE_WAIT_S), and a timer every minute that catches
 * what inotify missed (a folder created later, an upload that ended while a run was active). Renders the backup service and its timer (`cfg.backupSchedule`, Persistent=yes so a
 * missed night runs at boot). The ingest service writes the web root, the state folder and the
 * drop zones; the backup service the backup and state folders (the channel lock).
 * With `cfg.validUntilDays`: the re-signing units, an hourly timer (Persistent=yes) whose service
 * runs `publish --if-expiring`, which publishes a new generation (fresh Date and Valid-Until) once
 * a served Release has less than a third of validUntilDays left. Hourly: even at validUntilDays 1
 * a third (8 h) is many runs away, so a missed run or two never lets a Release expire.
 * With `cfg.metricsDir`: the metrics units, a timer every METRICS_INTERVAL_MIN minutes
 * (Persistent=yes) whose service runs `metrics --to <metricsDir>`, writing that folder only; and
 * every other service may write the folder too (indexerService), as its command ends by writing
 * the channel's metrics file there.
 * Always: the web catalogue's units, a timer every CATALOGUE_INTERVAL_MIN minutes whose service
 * runs `catalogue` (installed by the backup-units step).
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
      {
        name: names.ingest.service,
        content: indexerService(
          cfg,
          `Ingest uploaded packages into APT channel ${cfg.channel}`,
          ['ingest'],
          [layout.webRoot, layout.stateDir, layout.incomingDir],
          [`/bin/sleep ${INGEST_SETTLE_WAIT_S}`],
        ),
      },
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
OnUnitInactiveSec=1min
Unit=${names.ingest.service}

[Install]
WantedBy=timers.target
`,
      },
    );
  }
  if (cfg.validUntilDays) {
    // Recovery (run by every writer first) may finish an interrupted ingest: the drop zones too.
    const writes = [layout.webRoot, layout.stateDir, ...(cfg.upstream ? [] : [layout.incomingDir])];
    units.push(
      {
        name: names.refresh.service,
        content: indexerService(
          cfg,
          `Re-sign the Releases of APT channel ${cfg.channel} before they expire`,
          ['publish', '--if-expiring'],
          writes,
        ),
      },
      {
        name: names.refresh.timer,
        content: `${HEADER}[Unit]
Description=Hourly Valid-Until check of APT channel ${cfg.channel} (validUntilDays ${cfg.validUntilDays})

[Timer]
OnCalendar=hourly
RandomizedDelaySec=10min
Persistent=yes
Unit=${names.refresh.service}

[Install]
WantedBy=timers.target
`,
      },
    );
  }
  if (cfg.metricsDir) {
    // Reads the channel only (status takes no lock) and writes its one file: the metrics folder alone.
    units.push(
      {
        name: names.metrics.service,
        content: indexerService(
          cfg,
          `Write the Prometheus metrics of APT channel ${cfg.channel} for node_exporter`,
          ['metrics', '--to', cfg.metricsDir],
          [cfg.metricsDir],
          [],
          // Walks the pool and the backups for their size: never in the way of the channel's work.
          // It creates one plain 0644 file, never a set-group-ID folder (see HARDENING).
          ['Nice=10', 'IOSchedulingClass=idle', 'RestrictSUIDSGID=yes'],
        ),
      },
      {
        name: names.metrics.timer,
        content: `${HEADER}[Unit]
Description=Prometheus metrics of APT channel ${cfg.channel} every ${METRICS_INTERVAL_MIN} minutes

[Timer]
OnCalendar=*:0/${METRICS_INTERVAL_MIN}
Persistent=yes
Unit=${names.metrics.service}

[Install]
WantedBy=timers.target
`,
      },
    );
  }
  // The catalogue shows what changes outside the channel's own publishes (on prod what preprod
  // holds; the upload or promotion dates of the other side): rebuilt every CATALOGUE_INTERVAL_MIN
  // minutes. It runs crash recovery first (the lock), like every writer: the same folders as ingest.
  units.push(
    {
      name: names.catalogue.service,
      content: indexerService(
        cfg,
        `Rebuild the web catalogue of APT channel ${cfg.channel}`,
        ['catalogue'],
        [layout.webRoot, layout.stateDir, ...(cfg.upstream ? [] : [layout.incomingDir])],
        [],
        ['Nice=10', 'IOSchedulingClass=idle'],
      ),
    },
    {
      name: names.catalogue.timer,
      content: `${HEADER}[Unit]
Description=Web catalogue of APT channel ${cfg.channel} every ${CATALOGUE_INTERVAL_MIN} minutes

[Timer]
OnCalendar=*:0/${CATALOGUE_INTERVAL_MIN}
RandomizedDelaySec=1min
Unit=${names.catalogue.service}

[Install]
WantedBy=timers.target
`,
    },
  );
  units.push(
    // backup runs crash recovery first, which may finish an interrupted writer (publish into the
    // web root, an ingest's drop zones) or restore: the same folders as ingest, plus the backups.
    {
      name: names.backup.service,
      content: indexerService(
        cfg,
        `Back up APT channel ${cfg.channel}`,
        ['backup', '--to', layout.backupDir],
        [layout.backupDir, layout.webRoot, layout.stateDir, ...(cfg.upstream ? [] : [layout.incomingDir])],
      ),
    },
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

/**
 * Renders the signer's units: the socket (only serviceUser's group may connect: the folder is
 * 0750 signerUser:serviceUser and the socket 0660), one service instance per connection
 * (Accept=yes) with the connection as stdin and stdout, reading the key as signerUser with no
 * network at all (PrivateNetwork, RestrictAddressFamilies=none: the socket is inherited, never
 * opened), writing nothing (no ReadWritePaths); and the tmpfiles.d(5) lines for the folders under
 * /run. A new indexer bundle takes effect at the next request, with no restart.
 */
export function renderSignerUnits(cfg: StackConfig, layout: ChannelLayout): { units: UnitFile[]; tmpfiles: string } {
  const names = unitNames(cfg).signer;
  const socket = `${HEADER}[Unit]
Description=Signer of APT channel ${cfg.channel} (requests from ${cfg.serviceUser} only)

[Socket]
ListenStream=${layout.signerSocket}
Accept=yes
SocketUser=${cfg.signerUser}
SocketGroup=${cfg.serviceUser}
SocketMode=0660
DirectoryMode=0750
MaxConnections=16
RemoveOnStop=yes

[Install]
WantedBy=sockets.target
`;
  const service = `${HEADER}[Unit]
Description=Sign one Release of APT channel ${cfg.channel}
CollectMode=inactive-or-failed

[Service]
User=${cfg.signerUser}
Group=${cfg.signerUser}
UMask=0077
StandardInput=socket
StandardOutput=socket
StandardError=journal
RuntimeMaxSec=60
ExecStart=${execLine(cfg, ['sign', '--stdio'])}
${HARDENING}RestrictSUIDSGID=yes
RestrictAddressFamilies=none
PrivateUsers=yes
`;
  const tmpfiles = `${HEADER}d ${path.posix.dirname(layout.signerSocketDir)} 0755 root root -
d ${layout.signerSocketDir} 0750 ${cfg.signerUser} ${cfg.serviceUser} -
`;
  return {
    units: [
      { name: names.socket, content: socket },
      { name: names.service, content: service },
    ],
    tmpfiles,
  };
}

/** The directories the path unit watches must exist before it starts: returned for the dirs step. */
export function watchedDirs(cfg: StackConfig, layout: ChannelLayout): string[] {
  if (cfg.upstream) return [];
  return cfg.ingestSources.flatMap((s) => [
    path.posix.join(layout.incomingDir, s),
    ...cfg.codenames.map((c) => path.posix.join(layout.incomingDir, s, c)),
  ]);
}
