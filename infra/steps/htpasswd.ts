/**
 * The 'htpasswd' step [dirs], only with client credentials: the basic-auth file (from stdin),
 * readable by nginx's group.
 */
import { shq } from '../shell';
import { b64line, makeStep, type PlanContext, type PlanStep } from './context';
import { recordSecretDigest } from './secretDigests';

/** Builds the 'htpasswd' step of `ctx`; undefined when the stack has no client credentials (pure). */
export function htpasswdStep(ctx: PlanContext): PlanStep | undefined {
  const { cfg, material, layout: l, expected: x } = ctx;
  const secretDigests = l.secretDigestsFile;
  if (cfg.usernames.length === 0) return undefined;
  const body = [
    '# stdin: the htpasswd file, base64 on one line.',
    'read_secret "$APT_REPO_TMP/htpasswd"',
    `install_file "$APT_REPO_TMP/htpasswd" ${shq(l.htpasswdFile)} 0640 root www-data`,
    recordSecretDigest(secretDigests, l.htpasswdFile),
  ].join('\n');
  x.file('htpasswd', l.htpasswdFile, '0640', 'root', 'www-data', { secret: true });
  return makeStep(cfg, 'htpasswd', ['dirs'], body, [], b64line(material.htpasswd));
}
