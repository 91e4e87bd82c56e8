/**
 * The 'vhost' step [signing-key, publish, htpasswd and tls when present]: the nginx site, checked
 * alone with `nginx -t`, installed, enabled by its link, and nginx reloaded when it changed.
 */
import * as path from 'path';
import { shq } from '../shell';
import { renderNginxTestConf, renderVhost } from '../vhost';
import { makeStep, StepFiles, type PlanContext, type PlanStep, type StepName } from './context';
import { nginxReload } from './nginx';

/** Builds the 'vhost' step of `ctx` (pure). */
export function vhostStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l, expected: x } = ctx;
  // The htpasswd and tls steps exist exactly when the vhost reads their files.
  const vhostDeps: StepName[] = [
    'signing-key',
    'publish',
    ...(cfg.usernames.length > 0 ? (['htpasswd'] as const) : []),
    ...(cfg.tls.mode !== 'none' ? (['tls'] as const) : []),
  ];
  const b = new StepFiles(l, 'vhost', x);
  const vhost = renderVhost({
    channel: cfg.channel,
    serverName: cfg.serverName,
    webRoot: l.webRoot,
    keyName: cfg.keyName,
    allowedCidrs: cfg.allowedCidrs,
    ...(cfg.usernames.length ? { htpasswdFile: l.htpasswdFile } : {}),
    ...(cfg.tls.mode !== 'none' ? { tls: { certificate: l.tlsCertFile, key: l.tlsKeyFile } } : {}),
    ...(cfg.tls.mode === 'certbot' ? { acmeRoot: l.acmeRoot } : {}),
    allowPlainHttp: cfg.allowPlainHttp,
    httpPort: cfg.httpPort,
    httpsPort: cfg.httpsPort,
    ...(cfg.listenAddress ? { listenAddress: cfg.listenAddress } : {}),
    logDir: l.logDir,
  });
  const staged = b.stage('site.conf', vhost, '0644', 'root');
  const testDir = l.nginxTestDir;
  const testConf = b.stage(
    'nginx-test.conf',
    renderNginxTestConf(path.posix.join(l.stagingDir, 'vhost.site.conf'), testDir),
    '0644',
    'root',
  );
  const body = [
    '# Check the new vhost alone before it replaces the live one.',
    `nginx -t -q -c ${testConf} -p ${shq(testDir + '/')} -e ${shq(testDir + '/error.log')}`,
    `install_file ${staged} ${shq(l.vhostFile)} 0644 root root`,
    'vhost_changed=$FILE_CHANGED',
    `if [ "$(readlink ${shq(l.vhostLink)} || true)" != ${shq(l.vhostFile)} ]; then`,
    `  ln -sfn ${shq(l.vhostFile)} ${shq(l.vhostLink)}`,
    '  vhost_changed=1',
    '  mark_changed',
    'fi',
    nginxReload(cfg, l, 'vhost_changed'),
  ].join('\n');
  b.expect(l.vhostFile, '0644', 'root', 'root', { content: vhost });
  x.symlink('vhost', l.vhostLink, l.vhostFile);
  return makeStep(cfg, 'vhost', vhostDeps, body, b.files);
}
