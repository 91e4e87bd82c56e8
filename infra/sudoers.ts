/**
 * The operators' sudo rule (sudoers(5)): the channel's operators may run, without a password, this
 * channel's indexer and nothing else, as its serviceUser:
 *   `<operators> ALL = (<serviceUser>) NOPASSWD: <node> <indexerPath> --root <root> --channel <channel> *`
 * sudo logs each command with the operator's name (the audit trail). The rule names the operators
 * one by one, so an operator of one channel gets no rule on another.
 */
import type { StackConfig } from '../stacks/config';

/**
 * Renders the rule file; '' when the channel has no operators (the step then removes the file).
 * Throws Error when nodePath is not absolute (stacks/config.ts refuses that already when operators
 * are set). Paths and names were validated by stacks/config.ts: none holds a character sudoers
 * gives a meaning to (',', ':', '=', '\\', white space).
 */
export function renderSudoers(cfg: StackConfig): string {
  if (!cfg.operators.length) return '';
  if (!cfg.nodePath.startsWith('/')) throw new Error(`sudoers ${cfg.channel}: nodePath '${cfg.nodePath}' is not an absolute path`);
  const command = [cfg.nodePath, cfg.indexerPath, '--root', cfg.root, '--channel', cfg.channel, '*'].join(' ');
  return [
    `# Managed by the apt-repo Pulumi stack (channel ${cfg.channel}): local changes are overwritten.`,
    `# Operators run the ${cfg.channel} indexer as ${cfg.serviceUser}, nothing else; sudo logs every command.`,
    `${cfg.operators.map((o) => o.name).join(', ')} ALL = (${cfg.serviceUser}) NOPASSWD: ${command}`,
    '',
  ].join('\n');
}
