/**
 * The channel's configuration files that apt-repo reads (lambda-free-tools/src/repo/channel.ts
 * loadChannel): liste_dist and liste_arch (one item per line, '#' comments) and repo.yaml.
 */
import { stringify } from 'yaml';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from './layout';
import { stackChannelUrl } from './clientFiles';

const HEADER = '# Managed by the apt-repo Pulumi stack: edit the stack config, not this file.\n';

/** Renders liste_dist (codenames) and liste_arch (architectures), in config order. */
export function renderListes(codenames: string[], architectures: string[]): { listeDist: string; listeArch: string } {
  return {
    listeDist: `${HEADER}${codenames.join('\n')}\n`,
    listeArch: `${HEADER}${architectures.join('\n')}\n`,
  };
}

/**
 * Renders repo.yaml with the Release fields and the explicit paths of `layout` (absolute, so the
 * indexer uses them as given whatever its --root). Keys follow repo/channel.ts's schema.
 */
export function renderRepoYaml(cfg: StackConfig, layout: ChannelLayout): string {
  const doc: Record<string, unknown> = {
    origin: cfg.origin,
    label: cfg.label,
    description: cfg.description,
    component: 'main',
    keyName: cfg.keyName,
    // Where clients reach the channel: `apt-repo client-setup` puts it into the script it prints.
    url: stackChannelUrl(cfg),
    webRoot: layout.webRoot,
    stateDir: layout.stateDir,
    backupDir: layout.backupDir,
    incomingDir: layout.incomingDir,
    generationsKeep: cfg.generationsKeep,
    backupKeep: cfg.backupKeep,
    // publish asks the signer (another user) over this socket: the indexer never reads the key.
    signerSocket: layout.signerSocket,
  };
  if (cfg.validUntilDays) doc.validUntilDays = cfg.validUntilDays;
  if (cfg.routing) doc.routing = cfg.routing;
  if (cfg.upstream) doc.upstream = cfg.upstream;
  // Every writing command ends by writing the channel's metrics file there (node_exporter's textfile folder).
  if (cfg.metricsDir) doc.metricsDir = cfg.metricsDir;
  return HEADER + stringify(doc);
}
