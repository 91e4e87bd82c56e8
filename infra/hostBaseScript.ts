/**
 * The host-wide part of the server: Debian packages, the accounts, the parent directories.
 * Shared by every channel's stack, so it only adds (never removes, never downgrades a mode chosen
 * by a package) and is never undone by destroying a stack.
 */
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { renderAccountsScript } from './accounts';
import { shq } from './shell';

/**
 * Debian packages the server needs: nginx, Debian 12's nodejs (18) for the indexer, xz-utils for
 * Packages.xz; certbot when it manages the certificate; sudo when the SSH user is not root or
 * apt-ops runs the indexer through sudo (remotePrefix) or operators are listed (their sudo rule).
 */
export function hostPackages(cfg: Pick<StackConfig, 'tls' | 'ssh' | 'remotePrefix' | 'operators'>): string[] {
  const sudo = cfg.ssh.user !== 'root' || /^\s*sudo\b/.test(cfg.remotePrefix) || cfg.operators.length > 0;
  return ['nginx', 'nodejs', 'xz-utils', ...(cfg.tls.mode === 'certbot' ? ['certbot'] : []), ...(sudo ? ['sudo'] : [])];
}

/**
 * Renders the body of the host base step (bash, run after SCRIPT_PRELUDE):
 * - installs the missing packages only (`dpkg-query` first, so a second run never calls apt-get);
 *   skipped when `cfg.installPackages` is false (a sandbox that already has the tools);
 * - creates the groups and users of infra/accounts.ts (indexer, signer, uploaders, operators);
 * - creates the parent directories under `cfg.root`; directories a package owns (/etc/nginx/…,
 *   /var/log/nginx) are created only when missing and never chmod-ed.
 */
export function renderHostBaseScript(cfg: StackConfig): string {
  const r = (...p: string[]) => shq(path.posix.join(cfg.root, ...p));
  const lines: string[] = ['# Host base: packages, system user, parent directories.'];
  if (cfg.installPackages) {
    lines.push(
      'missing=""',
      `for p in ${hostPackages(cfg).join(' ')}; do`,
      `  if ! dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing="$missing $p"; fi`,
      'done',
      'if [ -n "$missing" ]; then',
      '  export DEBIAN_FRONTEND=noninteractive',
      '  apt-get update -q >&2',
      '  apt-get install -y -q --no-install-recommends $missing >&2',
      '  mark_changed',
      'fi',
    );
  }
  lines.push('make_dir() { if [ ! -d "$1" ]; then mkdir -p "$1"; mark_changed; fi; }');
  lines.push(renderAccountsScript(cfg));
  for (const d of [
    'etc/nginx/sites-available',
    'etc/nginx/sites-enabled',
    'var/log/nginx',
    'etc/systemd/system',
    'etc/tmpfiles.d',
    'etc/ssh/sshd_config.d',
  ])
    lines.push(`make_dir ${r(d)}`);
  for (const d of [
    'etc/epiconcept',
    'etc/epiconcept/apt_repo',
    'srv/apt',
    'var/lib/apt-repo',
    'var/lib/apt-repo/staging',
    'var/backups/apt-repo',
    'opt/apt-repo',
    'etc/nginx/apt-repo',
    'var/www/acme',
    'var/log/apt-repo',
    'etc/ssh/apt-repo-keys',
    'run/apt-repo',
  ]) {
    lines.push(`ensure_dir ${r(d)} 0755 root root`);
  }
  return lines.join('\n') + '\n';
}
