/**
 * The 'expected-state' step, last, after every other step: the manifest of what they installed
 * (`<configDir>/expected-state.json`) for `apt-repo doctor`.
 */
import { EXPECTED_STATE_FILE } from '../../lambda-free-tools/src/repo/expectedState';
import { shq } from '../shell';
import { makeStep, StepFiles, type PlanContext, type PlanStep, type StepName } from './context';

/**
 * Builds the 'expected-state' step of `ctx`, depending on every step in `before` (the plan's other
 * steps, whose builders recorded into ctx.expected). Pure.
 */
export function expectedStateStep(ctx: PlanContext, before: readonly PlanStep[]): PlanStep {
  const { cfg, layout: l, expected: x } = ctx;
  const steps = before;
  // Last: what every other step installed, for `apt-repo doctor` (its digest is in the text, so
  // it runs again whenever an installed file, mode or owner is meant to change).
  const b = new StepFiles(l, 'expected-state', x);
  const manifest = JSON.stringify(x.build(), null, 2) + '\n';
  const body = `install_file ${b.stage(EXPECTED_STATE_FILE, manifest, '0644', 'root')} ${shq(l.expectedStateFile)} 0644 root root`;
  return makeStep(
    cfg,
    'expected-state',
    steps.map((st) => st.name as StepName),
    body,
    b.files,
  );
}
