/**
 * The 'sudoers' step [dirs]: the operators' sudo rule, checked with visudo before and after.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { renderSudoers } from '../sudoers';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';

/**
 * The operators' sudo rule (infra/sudoers.ts): copied to a root-only file, checked alone with
 * `visudo -cf`, then installed 0440 by rename (a name with a dot, which sudo's includedir skips,
 * until then), then the whole sudo configuration is checked with `visudo -c` (a rule can be valid
 * alone and clash with another file, e.g. an alias defined twice, which makes sudo ignore it): on
 * failure the previous rule (or none) is put back and the step fails naming the file.
 * Without operators, a rule left from an earlier run is removed.
 */
function sudoersBody(cfg: StackConfig, l: ChannelLayout, b: StepFiles): string {
  const rule = renderSudoers(cfg);
  const dest = shq(l.sudoersFile);
  if (rule) b.expect(l.sudoersFile, '0440', 'root', 'root', { content: rule });
  if (!rule) return `if [ -e ${dest} ]; then rm -f ${dest}; mark_changed; fi`;
  return [
    `(umask 077; cat ${b.stage('sudoers', rule, '0440', 'root')} > "$APT_REPO_TMP/sudoers")`,
    'visudo -cqf "$APT_REPO_TMP/sudoers"',
    `if [ -f ${dest} ] && [ ! -L ${dest} ]; then cat ${dest} > "$APT_REPO_TMP/sudoers.previous"; fi`,
    `install_file "$APT_REPO_TMP/sudoers" ${dest} 0440 root root`,
    'if ! visudo -cq >/dev/null 2>&1; then',
    `  if [ -f "$APT_REPO_TMP/sudoers.previous" ]; then install_file "$APT_REPO_TMP/sudoers.previous" ${dest} 0440 root root; else rm -f ${dest}; fi`,
    `  echo "apt-repo: the sudo configuration does not parse with "${dest}" (visudo -c below); the previous rule is back" >&2`,
    '  visudo -c >&2 || true',
    '  exit 1',
    'fi',
  ].join('\n');
}

/** Builds the 'sudoers' step of `ctx` (pure). */
export function sudoersStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l, expected: x } = ctx;
  const b = new StepFiles(l, 'sudoers', x);
  return makeStep(cfg, 'sudoers', ['dirs'], sudoersBody(cfg, l, b), b.files);
}
