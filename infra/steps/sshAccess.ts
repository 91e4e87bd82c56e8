/**
 * The 'ssh-access' step [dirs]: the uploaders' and operators' key files and the sshd drop-in.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { authorizedKeyFiles, renderSshdDropIn } from '../sshd';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';

/**
 * SSH access: one root-owned key file per account (0644 in a 0755 root folder), the key files of
 * accounts taken off the lists removed (revocation, see below), then the sshd
 * drop-in, checked alone with `sshd -t` (a throw-away host key) from a root-only copy before it
 * replaces the live file. With systemd the whole configuration is checked again (the previous
 * drop-in is put back when that fails), the Match blocks are proved to apply (`sshd -T` for the
 * first uploader: chroot and forced command), and sshd is reloaded; without it, the sshd whose pid
 * is in <root>/run/sshd.pid (a test's or a container's) gets SIGHUP.
 */
function sshAccessBody(cfg: StackConfig, l: ChannelLayout, b: StepFiles): string {
  const lines = ['sshd_changed=0'];
  for (const k of authorizedKeyFiles(cfg, l)) {
    lines.push(`install_file ${b.stage(`keys-${k.account}`, k.content, '0644', 'root')} ${shq(k.file)} 0644 root root`);
    b.expect(k.file, '0644', 'root', 'root', { content: k.content });
  }
  // Key files of accounts this stack does not list: an operator's may be another channel's (kept);
  // the channel that owns the drop folders revokes every other upload account's; another channel
  // keeps them. A file whose user is in neither group does nothing (no Match block), and goes.
  const listed = authorizedKeyFiles(cfg, l).map((k) => k.account);
  b.expect(l.sshdDropIn, '0644', 'root', 'root', { content: renderSshdDropIn(cfg, l) });
  const inGroup = (g: string) => `id -nG "$u" 2>/dev/null | tr ' ' '\\n' | grep -qx ${shq(g)}`;
  lines.push(
    `for f in ${shq(l.authorizedKeysDir)}/*; do`,
    '  [ -f "$f" ] || continue',
    '  u=$(basename "$f")',
    `  case " ${listed.join(' ')} " in *" $u "*) continue ;; esac`,
    `  if ${inGroup(cfg.operatorGroup)}; then continue; fi`,
    ...(cfg.upstream ? [`  if ${inGroup(cfg.uploadGroup)}; then continue; fi`] : []),
    '  rm -f "$f"; mark_changed',
    'done',
    `(umask 077; cat ${b.stage('sshd.conf', renderSshdDropIn(cfg, l), '0644', 'root')} > "$APT_REPO_TMP/sshd.conf")`,
    'mkdir -m 0700 "$APT_REPO_TMP/sshd-test"',
    `ssh-keygen -q -t ed25519 -N '' -f "$APT_REPO_TMP/sshd-test/host_key" >/dev/null`,
    `printf 'HostKey %s\\nInclude %s\\n' "$APT_REPO_TMP/sshd-test/host_key" "$APT_REPO_TMP/sshd.conf" > "$APT_REPO_TMP/sshd-test/sshd_config"`,
    // sshd -t refuses to run without its privilege separation folder.
    '[ -d /run/sshd ] || mkdir -m 0755 /run/sshd',
    'sshd -t -f "$APT_REPO_TMP/sshd-test/sshd_config"',
    `if [ -f ${shq(l.sshdDropIn)} ]; then cp -p ${shq(l.sshdDropIn)} "$APT_REPO_TMP/sshd.previous"; fi`,
    `install_file "$APT_REPO_TMP/sshd.conf" ${shq(l.sshdDropIn)} 0644 root root`,
    'sshd_changed=$FILE_CHANGED',
  );
  if (cfg.services === 'systemd') {
    const first = cfg.upstream ? undefined : cfg.uploaders[0];
    lines.push(
      'if [ "$sshd_changed" = 1 ]; then',
      '  if ! sshd -t; then',
      `    if [ -f "$APT_REPO_TMP/sshd.previous" ]; then mv -f "$APT_REPO_TMP/sshd.previous" ${shq(l.sshdDropIn)}; else rm -f ${shq(l.sshdDropIn)}; fi`,
      '    echo "apt-repo: sshd -t refused the configuration with the new drop-in; the previous one is back" >&2; exit 1',
      '  fi',
      ...(first
        ? [
            `  eff=$(sshd -T -C user=${shq(first.name)},host=localhost,addr=127.0.0.1)`,
            `  if ! printf '%s\\n' "$eff" | grep -qx ${shq(`chrootdirectory ${l.incomingDir}`)} || ! printf '%s\\n' "$eff" | grep -qx 'forcecommand internal-sftp -u 0022'; then`,
            `    echo "apt-repo: ${l.sshdDropIn} does not apply to ${first.name}: does /etc/ssh/sshd_config include sshd_config.d/*.conf before any Match block?" >&2; exit 1`,
            '  fi',
          ]
        : []),
      '  systemctl try-reload-or-restart ssh.service',
      'fi',
    );
  } else {
    const pid = shq(l.sshdPidFile);
    lines.push(`if [ "$sshd_changed" = 1 ] && [ -s ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then kill -HUP "$(cat ${pid})"; fi`);
  }
  return lines.join('\n');
}

/** Builds the 'ssh-access' step of `ctx` (pure). */
export function sshAccessStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l, expected: x } = ctx;
  const b = new StepFiles(l, 'ssh-access', x);
  return makeStep(cfg, 'ssh-access', ['dirs'], sshAccessBody(cfg, l, b), b.files);
}
