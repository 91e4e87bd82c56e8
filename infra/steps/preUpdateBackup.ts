/**
 * The 'pre-update-backup' step [dirs]: a dated backup by the installed indexer before an update
 * of what the indexes are made from.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { makeStep, type PlanContext, type PlanStep } from './context';

/**
 * Before an update reaches the channel (a new indexer bundle, an index-affecting config change, a
 * new key: what indexInputsDigest covers, named in the text so the step runs exactly then), a dated
 * backup made by the indexer now installed, as the service user, into the channel's backup folder
 * (`apt-repo backup --to`, the nightly backup's command): the organisation's procedure "back up,
 * update, restart". Nothing to back up before the first publish. A stamp in the state folder makes
 * a re-run with the same inputs a no-op.
 */
function preUpdateBackupBody(cfg: StackConfig, l: ChannelLayout, indexDigest: string): string {
  const u = shq(cfg.serviceUser);
  const stamp = shq(l.backupStamp);
  const indexer = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel].map(shq).join(' ');
  return [
    `# index inputs sha256 ${indexDigest}`,
    `if [ "$(cat ${stamp} 2>/dev/null || true)" != ${shq(indexDigest)} ]; then`,
    `  if [ -e ${shq(l.distsLink)} ] && [ -f ${shq(l.indexerPath)} ]; then`,
    `    echo ${shq(`apt-repo: backing up channel ${cfg.channel} into ${l.backupDir} before the update`)} >&2`,
    `    runuser -u ${u} -- ${indexer} backup --to ${shq(l.backupDir)} >&2`,
    '  fi',
    `  printf '%s\\n' ${shq(indexDigest)} | runuser -u ${u} -- tee ${stamp} >/dev/null`,
    '  mark_changed',
    'fi',
  ].join('\n');
}

/** Builds the 'pre-update-backup' step of `ctx` (pure). */
export function preUpdateBackupStep(ctx: PlanContext): PlanStep {
  return makeStep(ctx.cfg, 'pre-update-backup', ['dirs'], preUpdateBackupBody(ctx.cfg, ctx.layout, ctx.indexDigest));
}
