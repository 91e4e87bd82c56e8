/**
 * The 'dirs' step [host-base]: the channel's folders with their modes and owners (the drop zones
 * only for a channel without upstream; the metrics folder with metricsDir), each recorded in the
 * expected state.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ExpectedStateBuilder } from '../expectedState';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { watchedDirs } from '../systemd';
import { makeStep, type PlanContext, type PlanStep } from './context';
import { metricsDirLines } from './metrics';

function dirsBody(cfg: StackConfig, l: ChannelLayout, x: ExpectedStateBuilder): string {
  const u = cfg.serviceUser;
  const d = (p: string, mode: string, owner: string, group: string) => {
    x.dir('dirs', p, mode, owner, group);
    return `ensure_dir ${shq(p)} ${mode} ${shq(owner)} ${shq(group)}`;
  };
  const lines = [
    `ssh_group=$(id -gn ${shq(cfg.ssh.user)})`,
    // Not secret (repo.yaml, liste_dist, liste_arch); the private key inside is the signer's, 0600.
    d(l.configDir, '0755', 'root', 'root'),
    d(l.webRoot, '0755', u, u),
    // setgid: pool files and folders get the shared pool group, so prod's indexer may hard-link
    // preprod's files (0664); the folders themselves are never group-writable.
    d(l.poolDir, '2755', u, cfg.poolGroup),
    // The pool group reads it too: prod's pending and promote read preprod's pool cache.
    d(l.stateDir, '0750', u, cfg.poolGroup),
    d(l.backupDir, '0750', u, u),
    // node_exporter's textfile folder, shared by the channels (infra/steps/metrics.ts says why so).
    ...metricsDirLines(cfg, x),
  ];
  if (!cfg.upstream) {
    const up = cfg.uploadGroup;
    lines.push(
      // The uploaders' chroot: sshd wants it and every parent root-owned and not group/other-writable.
      d(l.incomingDir, '0755', 'root', 'root'),
      // Uploaders read the reasons of their refused files, never write there.
      d(l.rejectedDir, '0755', u, u),
      // Drop folders: uploaders create files (setgid: group uploadGroup); sticky: only a file's
      // owner, or the indexer that owns the folder, may rename or delete it.
      ...watchedDirs(cfg, l).map((w) => d(w, '3775', u, up)),
    );
  }
  lines.push(
    d(l.indexerDir, '0755', 'root', 'root'),
    // Only the channel's indexer (its group) may connect to the signer.
    d(l.signerSocketDir, '0750', cfg.signerUser, u),
    // Owned by the SSH user's primary group, known on the server only: not in the expected state.
    `ensure_dir ${shq(l.stagingDir)} 0700 ${shq(cfg.ssh.user)} "$ssh_group"`,
    d(l.nginxTestDir, '0700', 'root', 'root'),
  );
  return lines.join('\n');
}

/** Builds the 'dirs' step of `ctx` (pure). */
export function dirsStep(ctx: PlanContext): PlanStep {
  return makeStep(ctx.cfg, 'dirs', ['host-base'], dirsBody(ctx.cfg, ctx.layout, ctx.expected));
}
