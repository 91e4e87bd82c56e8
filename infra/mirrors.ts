/**
 * Versioned mirrors of upstream repositories (lambda-free-tools/src/mirror/) on the server, from the
 * stack's `mirrors` (lambda-free-tools/src/settings/stackConfig.ts MirrorsConfig): the pure renderers
 * of what the 'mirrors' step (infra/steps/mirrors.ts) installs.
 * - `<root>/etc/epiconcept/apt_repo/mirrors.yaml`, what `apt-repo mirror` reads, and each mirror's
 *   trusted APKINDEX keys under `mirror-keys/<name>/` beside it (root-owned, 0644: public keys);
 * - per mirror, a hardened oneshot service running `apt-repo mirror sync <name>` as the mirror user
 *   (it needs the network, unlike every channel unit) and a timer on `schedule`;
 * - one plain-HTTP nginx vhost serving mirrorRoot read-only with directory listings, without
 *   credentials (the kiosk stations' installer can send neither a password nor check a
 *   certificate), the allowlist applied.
 * The mirrors belong to one stack of a host: every file carries a first line naming its channel
 * (managedBy), and the step refuses to overwrite a mirrors.yaml or vhost another stack wrote.
 */
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { mirrorPaths, mirrorsFile } from '../lambda-free-tools/src/mirror/config';
import type { MirrorsConfig, StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { NETWORK_HARDENING, type UnitFile } from './systemd';

/** A stack config that has mirrors. */
export type MirrorsStack = StackConfig & { mirrors: MirrorsConfig };

/** The trusted keys of each mirror (by mirror name): the file name they are installed under and their PEM text. */
export type MirrorKeys = Record<string, { fileName: string; content: string }[]>;

/** Where the mirrors' files go on the server (every path under the stack's root). */
export interface MirrorsLayout {
  /** `<root>/etc/epiconcept/apt_repo/mirrors.yaml` (lambda-free-tools/src/mirror/config.ts mirrorsFile). */
  configFile: string;
  /** `<root>/etc/epiconcept/apt_repo/mirror-keys`: one folder per mirror. */
  keysRoot: string;
  /** `<root>/etc/nginx/sites-available/apt-mirrors.conf` and its sites-enabled link. */
  vhostFile: string;
  vhostLink: string;
}

/** The mirrors' server paths under `root` (pure). */
export function mirrorsLayout(root: string): MirrorsLayout {
  const configFile = mirrorsFile(root);
  return {
    configFile,
    keysRoot: path.posix.join(path.posix.dirname(configFile), 'mirror-keys'),
    vhostFile: path.posix.join(root, 'etc/nginx/sites-available/apt-mirrors.conf'),
    vhostLink: path.posix.join(root, 'etc/nginx/sites-enabled/apt-mirrors.conf'),
  };
}

/** The first line of every file the mirrors step writes: it names the stack's channel, which owns them. */
export function managedBy(channel: string): string {
  return `# Managed by the apt-repo Pulumi stack (channel ${channel}): mirrors; local changes are overwritten.`;
}

/** The units of mirror `name`: `apt-repo-mirror-<name>.service` and `.timer`. */
export function mirrorUnitNames(name: string): { service: string; timer: string } {
  return { service: `apt-repo-mirror-${name}.service`, timer: `apt-repo-mirror-${name}.timer` };
}

/** Server path of a trusted key of mirror `name`. */
export function mirrorKeyPath(root: string, name: string, fileName: string): string {
  return path.posix.join(mirrorsLayout(root).keysRoot, name, fileName);
}

/**
 * mirrors.yaml for the stack's mirrors (the format of lambda-free-tools/src/mirror/config.ts): the
 * mirrorRoot, and per mirror its settings with `keys` as the server paths the step installs them at.
 */
export function renderMirrorsYaml(cfg: MirrorsStack): string {
  const doc = {
    mirrorRoot: cfg.mirrors.mirrorRoot,
    mirrors: Object.fromEntries(
      cfg.mirrors.mirrors.map((m) => [
        m.name,
        {
          url: m.url,
          paths: m.paths,
          ...(m.version !== undefined ? { version: m.version } : {}),
          ...(m.versionFrom !== undefined ? { versionFrom: m.versionFrom } : {}),
          ...(m.keys.length ? { keys: m.keys.map((k) => mirrorKeyPath(cfg.root, m.name, path.posix.basename(k))) } : {}),
          ...(m.postSync !== undefined ? { postSync: m.postSync } : {}),
          ...(m.keep !== undefined ? { keep: m.keep } : {}),
        },
      ]),
    ),
  };
  // Versions are strings: the yaml library quotes one that would read back as a number (3.10).
  return `${managedBy(cfg.channel)}\n${stringify(doc)}`;
}

/**
 * The Environment= lines that send a sync through the stack's proxy (lambda-free-tools/src/mirror/http.ts
 * proxyFor reads them as curl does); '' without a proxy. The values were validated (no white space,
 * quote, %, $ or backslash: nothing systemd would interpret).
 */
function proxyEnvironment(m: MirrorsConfig): string {
  if (!m.proxy) return '';
  const vars = [`http_proxy=${m.proxy}`, `https_proxy=${m.proxy}`, ...(m.noProxy?.length ? [`no_proxy=${m.noProxy.join(',')}`] : [])];
  return `Environment=${vars.join(' ')}\n`;
}

/**
 * The service and timer of each mirror (systemd.service(5), systemd.timer(7)). The service is a
 * oneshot `mirror sync <name>` as the mirror user, after the network is up, writing only the
 * mirror's folder and its state folder, in the sandbox of every unit but with IPv4/IPv6 allowed
 * (NETWORK_HARDENING); a first sync may be long (TimeoutStartSec 6 h). The post-sync hook runs in
 * the same sandbox, as the same user. With `proxy`, the service's environment names it. The timer fires on `schedule` (spread by 15 minutes;
 * Persistent=yes: a run missed while the host was off happens at boot).
 */
export function renderMirrorUnits(cfg: MirrorsStack): UnitFile[] {
  const units: UnitFile[] = [];
  const header = `${managedBy(cfg.channel)}\n`;
  for (const m of cfg.mirrors.mirrors) {
    const names = mirrorUnitNames(m.name);
    const p = mirrorPaths(cfg.root, cfg.mirrors.mirrorRoot, m.name);
    const exec = [cfg.nodePath, cfg.indexerPath, '--root', cfg.root, 'mirror', 'sync', m.name].join(' ');
    units.push(
      {
        name: names.service,
        content: `${header}[Unit]
Description=Sync mirror ${m.name}: a new snapshot when the upstream has one (apt-repo mirror sync)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=${cfg.mirrors.user}
Group=${cfg.mirrors.user}
UMask=0022
${proxyEnvironment(cfg.mirrors)}ExecStart=${exec}
TimeoutStartSec=6h
${NETWORK_HARDENING}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
ReadWritePaths=${p.dir} ${p.stateDir}
`,
      },
      {
        name: names.timer,
        content: `${header}[Unit]
Description=Scheduled sync of mirror ${m.name}

[Timer]
OnCalendar=${cfg.mirrors.schedule}
RandomizedDelaySec=15min
Persistent=yes
Unit=${names.service}

[Install]
WantedBy=timers.target
`,
      },
    );
  }
  return units;
}

function listen(port: number, address: string | undefined): string[] {
  if (address) return [`listen ${address.includes(':') ? `[${address}]` : address}:${port};`];
  return [`listen ${port};`, `listen [::]:${port};`];
}

/**
 * The mirrors' vhost (nginx 1.22: ngx_http_core_module, ngx_http_access_module,
 * ngx_http_autoindex_module): one plain-HTTP server block on the stack's HTTP port (and listen
 * address) named `mirrors.serverName`, rooted at mirrorRoot, with directory listings, GET and HEAD
 * only, the allowlist, no credentials. Dot names (an interrupted sync's `.partial-<version>`, a
 * snapshot's `.manifest.json`) are never served. `latest-stable` is a link the mirror user flips
 * towards its own snapshot: served because link and target have one owner (`disable_symlinks
 * if_not_owner`), and never cached (`open_file_cache off`, whatever nginx.conf says), so a client
 * sees the flip at once.
 */
export function renderMirrorVhost(cfg: MirrorsStack, logDir: string): string {
  const m = cfg.mirrors;
  const lines = [
    ...listen(cfg.httpPort, cfg.listenAddress),
    `server_name ${m.serverName};`,
    `access_log ${logDir}/apt-mirrors.access.log;`,
    `error_log ${logDir}/apt-mirrors.error.log;`,
    'server_tokens off;',
    '# A symbolic link is served only when it and its target have the same owner (the latest-stable flip).',
    'disable_symlinks if_not_owner from=$document_root;',
    '# A flip of latest-stable is seen by the next request.',
    'open_file_cache off;',
    '',
    `root ${m.mirrorRoot};`,
    'autoindex on;',
    ...m.allowedCidrs.map((c) => `allow ${c};`),
    'deny all;',
    '',
    '# Interrupted syncs (.partial-<version>) and manifests are never served.',
    'location ~ /\\. {',
    '    deny all;',
    '}',
    'location / {',
    '    limit_except GET {',
    '        deny all;',
    '    }',
    '}',
  ];
  return `${managedBy(cfg.channel)}\n${['server {', ...lines.map((l) => (l ? `    ${l}` : '')), '}'].join('\n')}\n`;
}

/** The mirrors' URL clients use: `http://<serverName>[:<httpPort>]/`. */
export function mirrorsUrl(cfg: MirrorsStack): string {
  return `http://${cfg.mirrors.serverName}${cfg.httpPort === 80 ? '' : `:${cfg.httpPort}`}/`;
}

/** What a key file must hold: a PEM public key (what abuild-sign's keys are). */
const PEM_PUBLIC_KEY = /-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----/;

/**
 * Reads the trusted keys the stack's mirrors name (files on the machine running `pulumi up`;
 * relative paths from `baseDir`, the project folder). Returns `{}` without mirrors. Throws
 * ConfigError naming `apt-repo:mirrors.mirrors.<name>.keys.<i>` when a file cannot be read or holds
 * no PEM public key.
 */
export function readMirrorKeys(cfg: StackConfig, baseDir: string): MirrorKeys {
  const out: MirrorKeys = {};
  for (const m of cfg.mirrors?.mirrors ?? []) {
    out[m.name] = m.keys.map((k, i) => {
      const key = `apt-repo:mirrors.mirrors.${m.name}.keys.${i}`;
      const abs = path.resolve(baseDir, k);
      let content: string;
      try {
        content = fs.readFileSync(abs, 'utf8');
      } catch (e) {
        throw new ConfigError(key, `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (!PEM_PUBLIC_KEY.test(content)) throw new ConfigError(key, `${abs} is not a PEM public key (-----BEGIN PUBLIC KEY-----)`);
      return { fileName: path.posix.basename(k), content };
    });
  }
  return out;
}
