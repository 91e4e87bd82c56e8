/**
 * SSH access of the upload accounts and the operators (sshd_config(5), sshd(8) AUTHORIZED_KEYS FILE
 * FORMAT): the channel's sshd drop-in `<root>/etc/ssh/sshd_config.d/apt-repo-<channel>.conf`
 * (Debian's sshd_config includes `sshd_config.d/*.conf` first, and a Match block ends with the file
 * that opens it) and the root-owned key files, one per account, that the drop-in names as
 * AuthorizedKeysFile (a user can change neither its keys nor their options).
 */
import * as path from 'path';
import type { SshAccount, StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from './layout';

const HEADER = (channel: string) => `# Managed by the apt-repo Pulumi stack (channel ${channel}): local changes are overwritten.\n`;

/** Options every key line of an account kind gets (sshd(8) "restrict": no forwarding, no PTY, no ~/.ssh/rc). */
export const KEY_OPTIONS = { uploader: 'restrict', operator: 'restrict,pty' } as const;

/** Forwarding and tunnelling off: the settings both Match blocks share. */
const NO_FORWARDING = [
  'AllowTcpForwarding no',
  'AllowStreamLocalForwarding no',
  'AllowAgentForwarding no',
  'X11Forwarding no',
  'PermitTunnel no',
  'GatewayPorts no',
  'PermitListen none',
  'PermitOpen none',
];

/**
 * Renders the drop-in:
 * - `Match Group <uploadGroup>` (channels without upstream, whose drop folders they are): keys from
 *   `<authorizedKeysDir>/%u`, chrooted into incomingDir (root-owned 0755, as sshd requires), SFTP
 *   only (`ForceCommand internal-sftp -u 0022`: no shell, no exec, no scp), no forwarding of any
 *   kind, no TTY, no password;
 * - `Match Group <operatorGroup>`: keys from the same folder, no forwarding, no password (a shell,
 *   and sudo limited by the sudoers rule of infra/sudoers.ts).
 * Paths were validated by the stack schema, settings/stackConfig.ts (no white space, no '%').
 */
export function renderSshdDropIn(cfg: StackConfig, layout: ChannelLayout): string {
  const keys = `AuthorizedKeysFile ${layout.authorizedKeysDir}/%u`;
  const block = (group: string, settings: string[]) => [`Match Group ${group}`, ...settings.map((x) => `    ${x}`)];
  const lines = [HEADER(cfg.channel).trimEnd()];
  if (!cfg.upstream) {
    lines.push(
      ...block(cfg.uploadGroup, [
        keys,
        `ChrootDirectory ${layout.incomingDir}`,
        'ForceCommand internal-sftp -u 0022',
        ...NO_FORWARDING,
        'PermitTTY no',
        'PermitUserRC no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
      ]),
    );
  }
  lines.push(...block(cfg.operatorGroup, [keys, ...NO_FORWARDING, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no']));
  // Back to the global context, whatever includes this file.
  lines.push('Match all', '');
  return lines.join('\n');
}

/**
 * Renders one account's key file: `<options> <key line>` per key, options from KEY_OPTIONS. The
 * text does not name the channel: an operator of both channels has one file that both stacks
 * write, identical when both list the same keys (else the last `pulumi up` wins).
 */
export function renderAuthorizedKeys(account: SshAccount, kind: keyof typeof KEY_OPTIONS): string {
  return (
    '# Managed by the apt-repo Pulumi stacks: local changes are overwritten.\n' +
    account.authorizedKeys.map((k) => `${KEY_OPTIONS[kind]} ${k.trim()}\n`).join('')
  );
}

/** The key files of `cfg`'s accounts: path → content (uploaders only on channels without upstream). */
export function authorizedKeyFiles(cfg: StackConfig, layout: ChannelLayout): { account: string; file: string; content: string }[] {
  const out = cfg.operators.map((o) => ({
    account: o.name,
    file: path.posix.join(layout.authorizedKeysDir, o.name),
    content: renderAuthorizedKeys(o, 'operator'),
  }));
  if (!cfg.upstream)
    for (const u of cfg.uploaders)
      out.push({ account: u.name, file: path.posix.join(layout.authorizedKeysDir, u.name), content: renderAuthorizedKeys(u, 'uploader') });
  return out;
}
