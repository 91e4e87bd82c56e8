/**
 * The 'tls' step [dirs] (after htpasswd too for certbot with credentials): with tls.mode files,
 * the certificate and the key (from stdin), nginx reloaded when they changed; with certbot, the
 * first certificate requested behind a challenge-only vhost; none with tls.mode none.
 */
import { shq } from '../shell';
import { renderAcmeBootstrapVhost } from '../vhost';
import { b64line, makeStep, StepFiles, type PlanContext, type PlanStep } from './context';
import { nginxReload } from './nginx';
import { recordSecretDigest } from './secretDigests';

/**
 * Builds the 'tls' step of `ctx`; undefined with tls.mode none (pure). Throws Error when tls.mode
 * is files and the material lacks tlsCert or tlsKey.
 */
export function tlsStep(ctx: PlanContext): PlanStep | undefined {
  const { cfg, material, layout: l, expected: x } = ctx;
  const secretDigests = l.secretDigestsFile;
  if (cfg.tls.mode === 'files') {
    if (!material.tlsCert || !material.tlsKey)
      throw new Error(`plan ${cfg.channel}: tls.mode is files but the certificate or key content is missing`);
    const b = new StepFiles(l, 'tls', x);
    const body = [
      `install_file ${b.stage('cert.pem', material.tlsCert, '0644', 'root')} ${shq(l.tlsCertFile)} 0644 root root`,
      'tls_changed=$FILE_CHANGED',
      '# stdin: the PEM private key, base64 on one line.',
      'read_secret "$APT_REPO_TMP/tls.key"',
      `install_file "$APT_REPO_TMP/tls.key" ${shq(l.tlsKeyFile)} 0600 root root`,
      'if [ "$FILE_CHANGED" = 1 ]; then tls_changed=1; fi',
      recordSecretDigest(secretDigests, l.tlsKeyFile),
      '# nginx reads certificates at (re)load only; before the vhost exists there is nothing to reload.',
      `if [ ! -e ${shq(l.vhostLink)} ]; then tls_changed=0; fi`,
      nginxReload(cfg, l, 'tls_changed'),
    ].join('\n');
    b.expect(l.tlsCertFile, '0644', 'root', 'root', { content: material.tlsCert });
    b.expect(l.tlsKeyFile, '0600', 'root', 'root', { secret: true });
    return makeStep(cfg, 'tls', ['dirs'], body, b.files, b64line(material.tlsKey));
  } else if (cfg.tls.mode === 'certbot') {
    const b = new StepFiles(l, 'tls', x);
    // Before the first certificate exists the full vhost cannot load: serve only the challenge
    // (never the repository over plain HTTP, which would take basic auth in clear).
    const bootstrap = renderAcmeBootstrapVhost({
      channel: cfg.channel,
      serverName: cfg.serverName,
      acmeRoot: l.acmeRoot,
      httpPort: cfg.httpPort,
      logDir: l.logDir,
      ...(cfg.listenAddress ? { listenAddress: cfg.listenAddress } : {}),
    });
    const body = [
      `if [ ! -s ${shq(l.tlsCertFile)} ]; then`,
      `  install_file ${b.stage('bootstrap.conf', bootstrap, '0644', 'root')} ${shq(l.vhostFile)} 0644 root root`,
      `  ln -sfn ${shq(l.vhostFile)} ${shq(l.vhostLink)}`,
      '  nginx -t -q',
      '  systemctl reload-or-restart nginx',
      `  certbot certonly --webroot -w ${shq(l.acmeRoot)} -d ${shq(cfg.serverName)} --email ${shq(cfg.tls.email)} --agree-tos --non-interactive --no-eff-email --deploy-hook 'systemctl reload nginx' >&2`,
      '  mark_changed',
      'fi',
    ].join('\n');
    return makeStep(cfg, 'tls', cfg.usernames.length ? ['dirs', 'htpasswd'] : ['dirs'], body, b.files);
  }
  return undefined;
}
