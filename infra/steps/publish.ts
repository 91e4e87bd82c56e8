/**
 * The 'publish' step [config, signing-key, indexer, signer]: the first publish, and a new one
 * whenever the channel config, the indexer or the key changed (a stamp of their digest).
 */
import { shq } from '../shell';
import { makeStep, type PlanContext, type PlanStep } from './context';
import { signerInputs } from './signer';

/** Builds the 'publish' step of `ctx` (pure). */
export function publishStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l, indexDigest } = ctx;
  const u = shq(cfg.serviceUser);
  const stamp = shq(l.publishStamp);
  const inputs = signerInputs(l);
  const indexer = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel].map(shq).join(' ');
  const body = [
    '# Publish once, and again when the channel config, the indexer or the key changed.',
    // Under Pulumi's rule this step runs again only when its own text changes: the digest of
    // everything that shapes the indexes (indexInputsDigest) makes it change with them.
    `# index inputs sha256 ${indexDigest}`,
    `want=$(cat ${inputs} | sha256sum | cut -d' ' -f1)`,
    `if [ ! -e ${shq(l.distsLink)} ] || [ "$(cat ${stamp} 2>/dev/null || true)" != "$want" ]; then`,
    `  runuser -u ${u} -- ${indexer} publish >&2`,
    // Written as the service user: the state folder is its own, and a link it put there must
    // not make root write (or chown) another file.
    `  printf '%s\\n' "$want" | runuser -u ${u} -- tee ${stamp} >/dev/null`,
    '  mark_changed',
    'fi',
  ].join('\n');
  return makeStep(cfg, 'publish', ['config', 'signing-key', 'indexer', 'signer'], body);
}
