/**
 * The operators' sudo rule (sudoers(5)): the channel's operators may run, without a password, this
 * channel's indexer as its serviceUser, and only the subcommands of daily operation
 * (OPERATOR_COMMANDS). Every rule spells out the indexer's fixed words:
 *   `<node> <indexerPath> --root <root> --channel <channel> [--json] <subcommand> [*]`
 * sudo logs each command with the operator's name (the audit trail). The rule names the operators
 * one by one, so an operator of one channel gets no rule on another.
 *
 * Why an allowlist: `import <dir>`, `restore --from <dir>`, `keygen`, `init` or `backup --to <dir>`
 * run as prod's indexer would let an operator publish files that never went through preprod, or
 * write where the indexer can; those stay with root (`pulumi up`, or `runuser` on the server).
 */
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelLayout } from './layout';

/**
 * Subcommands an operator may run, and whether they take arguments. A sudoers command with
 * arguments must match them exactly (wildcards aside), so a subcommand listed without arguments
 * can only be run bare, or with exactly one of its `forms` (fixed argument lists, no wildcard).
 * `doctor` reads the server's own manifest, or one on stdin (`--expected -`, what
 * `apt-ops doctor --expected <file>` sends); never a file an operator names on the server.
 */
const OPERATOR_COMMANDS: readonly { name: string; args: boolean; forms?: readonly string[] }[] = [
  { name: 'status', args: false },
  { name: 'doctor', args: false, forms: ['--expected -'] },
  { name: 'verify', args: false },
  { name: 'generations', args: false },
  { name: 'history', args: true },
  { name: 'client-setup', args: true },
  { name: 'catalogue', args: false },
  { name: 'pending', args: false },
  { name: 'versions', args: true },
  { name: 'promote', args: true },
  { name: 'remove', args: true },
  { name: 'gc', args: false, forms: ['--policy', '--policy --dry-run'] },
  { name: 'rollback', args: true },
  { name: 'publish', args: true },
  { name: 'ingest', args: true },
];

/**
 * Renders the rule file; '' when the channel has no operators (the step then removes the file).
 * The commands are grouped in a Cmnd_Alias named after the rule's file (`APT_REPO_PROD`,
 * `APT_REPO_PROD_<hash>` for a sandbox root).
 * Each subcommand gets its bare form, its fixed forms, and, when it takes arguments, a `*` form;
 * each with and without `--json` before it (apt-ops puts it there). `--root` and `--channel` cannot be given a
 * second time (apt-repo refuses that, exit 2), so the `*` cannot re-point the indexer.
 * Throws Error when nodePath is not absolute (the stack schema, settings/stackConfig.ts, refuses that already when operators
 * are set). Paths and names were validated by that schema: none holds a character sudoers
 * gives a meaning to (',', ':', '=', '\\', white space).
 */
export function renderSudoers(cfg: StackConfig): string {
  if (!cfg.operators.length) return '';
  if (!cfg.nodePath.startsWith('/')) throw new Error(`sudoers ${cfg.channel}: nodePath '${cfg.nodePath}' is not an absolute path`);
  const base = [cfg.nodePath, cfg.indexerPath, '--root', cfg.root, '--channel', cfg.channel].join(' ');
  // Aliases share one namespace across every file of /etc/sudoers.d: name it after this rule's own
  // file (which holds a hash of the root for a sandbox), so two rules never define the same alias.
  const alias = path.posix
    .basename(channelLayout(cfg).sudoersFile)
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_');
  const commands: string[] = [];
  for (const c of OPERATOR_COMMANDS) {
    for (const json of ['', '--json ']) {
      commands.push(`${base} ${json}${c.name}`);
      for (const f of c.forms ?? []) commands.push(`${base} ${json}${c.name} ${f}`);
      if (c.args) commands.push(`${base} ${json}${c.name} *`);
    }
  }
  const operators = cfg.operators.map((o) => o.name).join(', ');
  return [
    `# Managed by the apt-repo Pulumi stack (channel ${cfg.channel}): local changes are overwritten.`,
    `# Operators run the ${cfg.channel} indexer as ${cfg.serviceUser}, for these subcommands only; sudo logs every command.`,
    `Cmnd_Alias ${alias} = \\`,
    commands.map((c) => `    ${c}`).join(', \\\n'),
    `${operators} ALL = (${cfg.serviceUser}) NOPASSWD: ${alias}`,
    ...mirrorRule(cfg, alias, operators),
    '',
  ].join('\n');
}

/**
 * With the stack's mirrors (infra/mirrors.ts): the operators may also run `mirror list|sync|rollback|gc
 * <name>` as the mirror user (a rollback is what a bad upstream release calls for), through the same
 * indexer without `--channel` (mirrors are not channels). `--root` cannot be given twice, so the `*`
 * cannot re-point it; the hook a sync runs is mirrors.yaml's (root's), never an operator's.
 */
function mirrorRule(cfg: StackConfig, alias: string, operators: string): string[] {
  if (!cfg.mirrors) return [];
  const base = [cfg.nodePath, cfg.indexerPath, '--root', cfg.root].join(' ');
  const commands = ['list', 'sync', 'rollback', 'gc'].flatMap((c) => ['', '--json '].map((json) => `${base} ${json}mirror ${c} *`));
  return [
    `# And the mirrors' commands as ${cfg.mirrors.user}.`,
    `Cmnd_Alias ${alias}_MIRRORS = \\`,
    commands.map((c) => `    ${c}`).join(', \\\n'),
    `${operators} ALL = (${cfg.mirrors.user}) NOPASSWD: ${alias}_MIRRORS`,
  ];
}
