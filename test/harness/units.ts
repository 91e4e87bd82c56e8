/**
 * Running rendered systemd units without a systemd PID 1, as the e2e tests of the backup unit and
 * of the signer's socket activation do: the stack config of a channel under a temp root, a unit's
 * `Key=value` lines, and the setpriv(1) words that run a command as the unit's User and Group
 * (no supplementary group, no capability, no new privileges) under its UMask.
 */
import { parseStackConfig, type RawConfig, type StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';

/**
 * The validated settings of `channel` with its root at `root` (a temp folder), served over plain
 * HTTP to 127.0.0.0/8, codenames bookworm and bullseye, amd64, this node as nodePath, then the raw
 * keys of `over` (serviceUser, signerUser, backupKeep…). Throws what parseStackConfig throws.
 */
export function localStackConfig(root: string, channel: string, over: RawConfig = {}): StackConfig {
  return parseStackConfig(
    {
      domain: 'example.org',
      sshHost: '127.0.0.1',
      sshHostKey: 'ssh-ed25519 AAAA',
      sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n',
      codenames: '["bookworm","bullseye"]',
      architectures: '["amd64"]',
      allowedCidrs: '["127.0.0.0/8"]',
      allowPlainHttp: 'true',
      root,
      nodePath: process.execPath,
      ...over,
    },
    channel,
  ).config;
}

/** The `Key=value` lines of a rendered unit (one value per key in these units; sections ignored). */
export function unitKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1], m[2]);
  }
  return keys;
}

/** The value of `name` in `unit`; throws when the unit has no such line. */
export function unitKey(unit: Map<string, string>, name: string): string {
  const v = unit.get(name);
  if (v === undefined) throw new Error(`the rendered unit has no ${name}=`);
  return v;
}

/**
 * The words that run `command` under `unit`'s UMask, then as its User and Group with setpriv: the
 * argv of /bin/sh, to give runProcess or spawn as ('/bin/sh', words). `outer` (e.g.
 * systemd-socket-activate and its options) runs under the umask, before setpriv.
 */
export function asUnitUser(unit: Map<string, string>, command: string[], outer: string[] = []): string[] {
  return [
    '-c',
    'umask "$1"; shift; exec "$@"',
    'sh',
    unitKey(unit, 'UMask'),
    ...outer,
    'setpriv',
    `--reuid=${unitKey(unit, 'User')}`,
    `--regid=${unitKey(unit, 'Group')}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
    ...command,
  ];
}
