/**
 * The 'host-base' step (no dependency): packages, accounts and parent folders shared by every
 * channel of the host (infra/hostBaseScript.ts).
 */
import { renderHostBaseScript } from '../hostBaseScript';
import { makeStep, type PlanContext, type PlanStep } from './context';

/** Builds the 'host-base' step of `ctx` (pure). */
export function hostBaseStep(ctx: PlanContext): PlanStep {
  return makeStep(ctx.cfg, 'host-base', [], renderHostBaseScript(ctx.cfg));
}
