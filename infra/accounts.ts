/**
 * The accounts of one channel on the server (useradd(8), groupadd(8), usermod(8), gpasswd(1)):
 * - the shared groups poolGroup, operatorGroup, and uploadGroup (channels without upstream: the
 *   group of the drop folders);
 * - serviceUser (the channel's indexer, member of poolGroup) and signerUser (owns the private key):
 *   system users with their own group, no home, shell /usr/sbin/nologin;
 * - uploaders (channels without upstream): system users in uploadGroup, shell /usr/sbin/nologin,
 *   password field `*` (no password, and not the `!` of a locked account, which sshd refuses even
 *   for a key when it does not use PAM). An uploader taken off the list loses its key file (the
 *   ssh-access step), not its group: groups are host-wide, and several sandboxes share a test host;
 * - operators: users in operatorGroup with a shell and a home under `<root>/home`.
 * Idempotent: an account or membership is created only when missing; nothing is ever deleted.
 */
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelLayout } from './layout';
import { shq } from './shell';

/** Bash helpers of the accounts script (run after SCRIPT_PRELUDE). */
const HELPERS = `ensure_group() { if ! getent group "$1" >/dev/null; then groupadd --system "$1"; mark_changed; fi; }
ensure_member() { if ! id -nG "$1" | tr ' ' '\\n' | grep -qx "$2"; then usermod -a -G "$2" "$1"; mark_changed; fi; }`;

/**
 * Renders the bash lines that create the groups and users of `cfg` (see the module comment).
 * Every name was validated by the stack schema (lambda-free-tools/src/settings/stackConfig.ts ACCOUNT_RE), and is quoted anyway.
 */
export function renderAccountsScript(cfg: StackConfig): string {
  const q = shq;
  const layout = channelLayout(cfg);
  const home = shq(layout.serviceHome);
  const lines = ['# Accounts: groups, the indexer and signer users, uploaders, operators.', HELPERS];
  const upload = !cfg.upstream;
  for (const g of [cfg.poolGroup, cfg.operatorGroup, ...(upload ? [cfg.uploadGroup] : [])]) lines.push(`ensure_group ${q(g)}`);
  const system = (name: string, extra: string) => [
    `if ! getent passwd ${q(name)} >/dev/null; then`,
    `  useradd --system --user-group --no-create-home ${extra} ${q(name)}`,
    '  mark_changed',
    'fi',
  ];
  lines.push(
    ...system(cfg.serviceUser, `--home-dir ${home} --shell /usr/sbin/nologin`),
    `ensure_member ${q(cfg.serviceUser)} ${q(cfg.poolGroup)}`,
  );
  lines.push(...system(cfg.signerUser, `--home-dir ${home} --shell /usr/sbin/nologin`));
  if (upload) {
    for (const u of cfg.uploaders) {
      // Home '/' is the chroot's root once sshd has chrooted into incomingDir.
      lines.push(
        ...system(u.name, "--home-dir / --shell /usr/sbin/nologin --password '*'"),
        `ensure_member ${q(u.name)} ${q(cfg.uploadGroup)}`,
      );
    }
  }
  if (cfg.operators.length) lines.push(`make_dir ${shq(layout.operatorsHome)}`);
  for (const o of cfg.operators) {
    lines.push(
      `if ! getent passwd ${q(o.name)} >/dev/null; then`,
      `  useradd --user-group --create-home --home-dir ${shq(path.posix.join(layout.operatorsHome, o.name))} --shell /bin/bash --password '*' ${q(o.name)}`,
      '  mark_changed',
      'fi',
      `ensure_member ${q(o.name)} ${q(cfg.operatorGroup)}`,
    );
  }
  return lines.join('\n');
}
