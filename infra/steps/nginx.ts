/**
 * Reloading nginx after a step changed what it serves (tls, vhost), per `services`.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';

/** The bash lines that reload nginx after `changedVar` was set to 1, per `cfg.services`. */
export function nginxReload(cfg: StackConfig, l: ChannelLayout, changedVar: string): string {
  if (cfg.services === 'systemd') {
    return [
      `if [ "$${changedVar}" = 1 ]; then`,
      '  nginx -t -q',
      '  systemctl reload-or-restart nginx',
      'fi',
      'if ! systemctl is-active --quiet nginx; then systemctl start nginx; mark_changed; fi',
    ].join('\n');
  }
  // Without systemd, the nginx to reload is the one whose configuration lives under the root (the
  // sandbox's own, never the host's /etc/nginx when root is not '/').
  const pid = shq(l.nginxPidFile);
  const conf = shq(l.nginxConf);
  return [
    `if [ "$${changedVar}" = 1 ] && [ -s ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then`,
    `  nginx -t -q -c ${conf}`,
    `  nginx -s reload -c ${conf}`,
    'fi',
  ].join('\n');
}
