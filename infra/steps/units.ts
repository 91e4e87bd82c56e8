/**
 * The systemd unit steps: 'ingest-units' [indexer] (channels without upstream), 'refresh-units'
 * [indexer, signer] (the re-signing timer with validUntilDays, its removal without) and
 * 'backup-units' [indexer] (the nightly backup and the catalogue's refresh timer); and unitsBody, which installs units (the signer's too) and, with
 * systemd, enables and starts them.
 */
import * as path from 'path';
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { renderSystemdUnits } from '../systemd';
import { unitNames } from '../layout';
import { makeStep, StepFiles, type PlanContext, type PlanStep, type StepName } from './context';

/**
 * Installs `units` under systemdDir (staged by `b`, recorded in the expected state) and, with
 * systemd, reloads, enables and starts `enable`, restarting them when a unit changed.
 */
export function unitsBody(
  cfg: StackConfig,
  l: ChannelLayout,
  b: StepFiles,
  units: { name: string; content: string }[],
  enable: string[],
): string {
  const lines = ['units_changed=0'];
  for (const u of units) {
    const staged = b.stage(u.name, u.content, '0644', 'root');
    b.expect(path.posix.join(l.systemdDir, u.name), '0644', 'root', 'root', { content: u.content });
    lines.push(
      `install_file ${staged} ${shq(path.posix.join(l.systemdDir, u.name))} 0644 root root`,
      'if [ "$FILE_CHANGED" = 1 ]; then units_changed=1; fi',
    );
  }
  if (cfg.services === 'systemd') {
    lines.push('if [ "$units_changed" = 1 ]; then systemctl daemon-reload; fi');
    for (const e of enable) {
      lines.push(
        `if ! systemctl is-enabled --quiet ${shq(e)}; then systemctl enable ${shq(e)}; mark_changed; fi`,
        `if ! systemctl is-active --quiet ${shq(e)}; then systemctl start ${shq(e)}; mark_changed; fi`,
      );
    }
    // A changed timer or path unit takes its new settings only once restarted.
    lines.push(`if [ "$units_changed" = 1 ]; then systemctl restart ${enable.map(shq).join(' ')}; fi`);
  } else {
    lines.push(`# services: none — units installed under ${cfg.root}, not enabled.`);
  }
  return lines.join('\n');
}

/**
 * The re-signing timer (validUntilDays set): its units installed and the timer enabled. Without
 * validUntilDays, the units a former configuration installed are stopped and removed.
 */
function refreshUnitsBody(cfg: StackConfig, l: ChannelLayout, b: StepFiles, units: { name: string; content: string }[]): string {
  const names = unitNames(cfg).refresh;
  if (cfg.validUntilDays) return unitsBody(cfg, l, b, units, [names.timer]);
  const files = [names.timer, names.service].map((n) => shq(path.posix.join(l.systemdDir, n)));
  return [
    '# validUntilDays is not set: the Releases never expire, no re-signing timer.',
    `if [ -e ${files[0]} ] || [ -e ${files[1]} ]; then`,
    ...(cfg.services === 'systemd' ? [`  systemctl disable --now ${shq(names.timer)} >/dev/null 2>&1 || true`] : []),
    `  rm -f ${files.join(' ')}`,
    ...(cfg.services === 'systemd' ? ['  systemctl daemon-reload'] : []),
    '  mark_changed',
    'fi',
  ].join('\n');
}

/**
 * The rendered units of `cfg`'s channel named in `names` (one kind: ingest, refresh or backup), in
 * the order infra/systemd.ts renders them, and the step's StepFiles.
 */
function unitsOf(
  ctx: PlanContext,
  step: StepName,
  names: Record<string, string>,
): { mine: { name: string; content: string }[]; b: StepFiles } {
  const mine = renderSystemdUnits(ctx.cfg, ctx.layout).filter((u) => Object.values(names).includes(u.name));
  return { mine, b: new StepFiles(ctx.layout, step, ctx.expected) };
}

/** Builds the 'ingest-units' step of `ctx`; undefined for a channel with an upstream (pure). */
export function ingestUnitsStep(ctx: PlanContext): PlanStep | undefined {
  const { cfg, layout: l } = ctx;
  const names = unitNames(cfg).ingest;
  if (!names) return undefined;
  const { mine, b } = unitsOf(ctx, 'ingest-units', names);
  return makeStep(cfg, 'ingest-units', ['indexer'], unitsBody(cfg, l, b, mine, [names.path, names.timer]), b.files);
}

/** Builds the 'refresh-units' step of `ctx` (pure). */
export function refreshUnitsStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l } = ctx;
  const { mine, b } = unitsOf(ctx, 'refresh-units', unitNames(cfg).refresh);
  return makeStep(cfg, 'refresh-units', ['indexer', 'signer'], refreshUnitsBody(cfg, l, b, mine), b.files);
}

/** Builds the 'backup-units' step of `ctx`: the nightly backup and the web catalogue's refresh (pure). */
export function backupUnitsStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l } = ctx;
  const { backup, catalogue } = unitNames(cfg);
  const names = { bs: backup.service, bt: backup.timer, cs: catalogue.service, ct: catalogue.timer };
  const { mine, b } = unitsOf(ctx, 'backup-units', names);
  return makeStep(cfg, 'backup-units', ['indexer'], unitsBody(cfg, l, b, mine, [backup.timer, catalogue.timer]), b.files);
}
