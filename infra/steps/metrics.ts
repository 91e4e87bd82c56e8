/**
 * Prometheus metrics of a channel (stack key metricsDir; lambda-free-tools/src/repo/metrics.ts
 * writes them): the metrics folder and the channel's file in it (lines of the 'dirs' step), and
 * the 'metrics-units' step [indexer, publish]: the timer that rewrites the file every few minutes
 * (infra/systemd.ts), or, without metricsDir, the removal of what an earlier configuration
 * installed.
 *
 * Who owns the folder. node_exporter's textfile collector reads one folder, so every channel of a
 * host (the preprod and prod stacks) points at the same one (/var/lib/prometheus/node-exporter,
 * where Debian's prometheus-node-exporter looks), and other collectors may write there as root.
 * Each channel's service user must replace its own `apt_repo_<channel>.prom` atomically (a temp
 * name and a rename in that folder), node_exporter (another user) must read it, and no stack may
 * undo what the other needs. So the folder is `root:<poolGroup> 1775`:
 * - group-writable by poolGroup, the group every channel's service user is in (and nobody else);
 * - sticky: a service user may only rename over or delete entries it owns, so preprod's indexer
 *   (which parses hostile uploads) can never replace prod's file, nor another collector's;
 * - world-readable and searchable: node_exporter reads the 0644 files;
 * - owned by root, so no service user may chmod it, and the same owner, group and mode in every
 *   stack (poolGroup is shared by design: promote's hard links need it), so two stacks never undo
 *   each other; no step is undone by `pulumi destroy` (remote steps have no delete), so destroying
 *   one stack leaves the folder to the other. A folder that existed before (made by a
 *   node_exporter package, say) is given that owner and mode; collectors run as root write on.
 * The sticky bit cannot stop a service user from creating a file under a name nobody owns yet: the
 * 'dirs' step therefore creates the channel's own file (empty, 0644, owned by its service user)
 * when it is missing, and replaces it when another user owns it (one that got there first), so
 * from then on only that channel's indexer can replace it. (Any member of poolGroup can still add
 * files of new names there, as any writer of a textfile folder can: node_exporter exports them.)
 */
import * as path from 'path';
import { metricsFile } from '../../lambda-free-tools/src/repo/metrics';
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ExpectedStateBuilder } from '../expectedState';
import { unitNames, type ChannelLayout } from '../layout';
import { shq } from '../shell';
import { renderSystemdUnits } from '../systemd';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';
import { unitsBody } from './units';

/** Mode of the shared metrics folder: sticky, group-writable, world-readable (see the module comment). */
export const METRICS_DIR_MODE = '1775';

/**
 * The 'dirs' step's lines for the metrics folder (none without metricsDir): the folder
 * (root:poolGroup METRICS_DIR_MODE, recorded in the expected state) and the channel's own file,
 * created empty for its service user when missing or owned by another user.
 */
export function metricsDirLines(cfg: StackConfig, x: ExpectedStateBuilder): string[] {
  if (!cfg.metricsDir) return [];
  const dir = cfg.metricsDir;
  const name = shq(path.posix.basename(metricsFile(dir, cfg.channel)));
  const u = shq(cfg.serviceUser);
  x.dir('dirs', dir, METRICS_DIR_MODE, 'root', cfg.poolGroup);
  return [
    `ensure_dir ${shq(dir)} ${METRICS_DIR_MODE} root ${shq(cfg.poolGroup)}`,
    // Checked from inside the folder (enter_dir), where the name cannot be swapped for a link.
    `enter_dir ${shq(dir)} 0`,
    `if [ -L ${name} ] || [ ! -f ${name} ] || [ "$(stat -c %U -- ${name})" != ${u} ]; then`,
    '  cd /',
    '  : > "$APT_REPO_TMP/empty.prom"',
    `  install_file "$APT_REPO_TMP/empty.prom" ${shq(metricsFile(dir, cfg.channel))} 0644 ${u} ${u}`,
    'fi',
    'cd /',
  ];
}

/**
 * The metrics units (metricsDir set): installed, the timer enabled, and the channel's file written
 * once now when it is still empty (a channel that had no metrics before: no publish runs for
 * metricsDir, which does not change the indexes), with systemd by starting the service, else as
 * the service user. Without metricsDir: the units and the file an earlier configuration left are
 * removed (the folder stays: other channels may use it), so no stale file looks fresh.
 */
function metricsUnitsBody(cfg: StackConfig, l: ChannelLayout, b: StepFiles, units: { name: string; content: string }[]): string {
  const names = unitNames(cfg).metrics;
  const systemd = cfg.services === 'systemd';
  const [timer, service] = [names.timer, names.service].map((n) => shq(path.posix.join(l.systemdDir, n)));
  const fileName = shq(path.posix.basename(metricsFile('/', cfg.channel)));
  // The folder the installed service writes to, from its own command line (`metrics --to <dir>`):
  // the channel's file there goes when the folder changes or metrics are turned off.
  const removeOldFile = (keep?: string) => [
    `old=$(sed -n 's/^ExecStart=.* metrics --to //p' ${service} 2>/dev/null || true)`,
    `if [ -n "$old" ]${keep ? ` && [ "$old" != ${shq(keep)} ]` : ''} && [ -d "$old" ]; then`,
    `  (enter_dir "$old" 0 && rm -f -- ${fileName}) || true`,
    '  mark_changed',
    'fi',
  ];
  if (cfg.metricsDir) {
    const file = shq(metricsFile(cfg.metricsDir, cfg.channel));
    const indexer = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel].map(shq).join(' ');
    return [
      ...removeOldFile(cfg.metricsDir),
      unitsBody(cfg, l, b, units, [names.timer]),
      `if [ ! -s ${file} ]; then`,
      systemd
        ? `  systemctl start ${shq(names.service)}`
        : `  runuser -u ${shq(cfg.serviceUser)} -- ${indexer} metrics --to ${shq(cfg.metricsDir)} >/dev/null`,
      'fi',
    ].join('\n');
  }
  return [
    '# metricsDir is not set: no metrics timer, and no metrics file of this channel left to look fresh.',
    `if [ -e ${timer} ] || [ -e ${service} ]; then`,
    ...removeOldFile().map((x) => `  ${x}`),
    ...(systemd ? [`  systemctl disable --now ${shq(names.timer)} >/dev/null 2>&1 || true`] : []),
    `  rm -f ${timer} ${service}`,
    ...(systemd ? ['  systemctl daemon-reload'] : []),
    '  mark_changed',
    'fi',
  ].join('\n');
}

/** Builds the 'metrics-units' step of `ctx` (pure). */
export function metricsUnitsStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l } = ctx;
  const names = Object.values(unitNames(cfg).metrics);
  const mine = renderSystemdUnits(cfg, l).filter((u) => names.includes(u.name));
  const b = new StepFiles(l, 'metrics-units', ctx.expected);
  return makeStep(cfg, 'metrics-units', ['indexer', 'publish'], metricsUnitsBody(cfg, l, b, mine), b.files);
}
