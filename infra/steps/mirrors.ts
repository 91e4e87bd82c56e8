/**
 * The 'mirrors' step [indexer, vhost]: the stack's versioned mirrors (infra/mirrors.ts renders their
 * files), or, without `mirrors`, the removal of what this stack installed for them before.
 *
 * With mirrors:
 * - refused when mirrors.yaml or the mirrors' vhost was written by another stack (their first line
 *   names the channel: one stack of a host owns the mirrors);
 * - the mirror user (a system user of its own, not in the pool group: the sync parses what an
 *   upstream serves and must reach nothing of the channels), mirrorRoot (root, 0755), each mirror's
 *   folder (the mirror user's, 0755: nginx reads it) and state folder (0750);
 * - mirrors.yaml and each mirror's trusted keys (root, 0644), a key no longer listed removed;
 * - the units of each mirror, its timer enabled; the units and key folder of a mirror taken off
 *   the list are removed (its snapshots stay: `apt-repo mirror gc`, or rm, are the operator's);
 * - the vhost, checked alone with `nginx -t`, then installed, linked and nginx reloaded;
 * - with systemd, a mirror that has no snapshot yet gets its first sync started (not waited for).
 * Without mirrors, what this stack's mirrors step installed (its channel on their first line) is
 * removed: units, vhost and link, mirrors.yaml and the keys; the user and the snapshots stay.
 */
import * as path from 'path';
import { mirrorPaths } from '../../lambda-free-tools/src/mirror/config';
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import {
  managedBy,
  mirrorKeyPath,
  mirrorsLayout,
  mirrorUnitNames,
  renderMirrorsYaml,
  renderMirrorUnits,
  renderMirrorVhost,
  type MirrorKeys,
  type MirrorsStack,
} from '../mirrors';
import { shq } from '../shell';
import { renderNginxTestConf } from '../vhost';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';
import { nginxReload } from './nginx';
import { unitsBody } from './units';

/** `true` when the first line of `file` is `header` (bash test; a missing file is not). */
const ownedBy = (file: string, header: string) => `[ "$(head -n 1 -- ${shq(file)} 2>/dev/null)" = ${shq(header)} ]`;

/**
 * Lines that remove the units `apt-repo-mirror-*` under systemdDir that this stack installed
 * (first line `header`) and that are not in `keep` (unit file names).
 */
function removeStaleUnits(cfg: StackConfig, l: ChannelLayout, header: string, keep: string[]): string[] {
  const systemd = cfg.services === 'systemd';
  return [
    'mirror_units_removed=0',
    `for f in ${shq(l.systemdDir)}/apt-repo-mirror-*.timer ${shq(l.systemdDir)}/apt-repo-mirror-*.service; do`,
    '  [ -f "$f" ] && [ ! -L "$f" ] || continue',
    '  n=${f##*/}',
    `  case ${shq(` ${keep.join(' ')} `)} in *" $n "*) continue ;; esac`,
    `  [ "$(head -n 1 -- "$f")" = ${shq(header)} ] || continue`,
    ...(systemd ? ['  case $n in *.timer) systemctl disable --now -- "$n" >/dev/null 2>&1 || true ;; esac'] : []),
    '  rm -f -- "$f"',
    '  mirror_units_removed=1',
    '  mark_changed',
    'done',
    ...(systemd ? ['if [ "$mirror_units_removed" = 1 ]; then systemctl daemon-reload; fi'] : []),
  ];
}

function withMirrors(ctx: PlanContext, cfg: MirrorsStack, b: StepFiles, keys: MirrorKeys): string {
  const { layout: l, expected: x } = ctx;
  const ml = mirrorsLayout(cfg.root);
  const header = managedBy(cfg.channel);
  const m = cfg.mirrors;
  const user = shq(m.user);
  const d = (p: string, mode: string, owner: string) => {
    x.dir('mirrors', p, mode, owner, owner);
    return `ensure_dir ${shq(p)} ${mode} ${shq(owner)} ${shq(owner)}`;
  };
  const lines: string[] = [];
  for (const f of [ml.configFile, ml.vhostFile]) {
    lines.push(
      `if [ -e ${shq(f)} ] && ! ${ownedBy(f, header)}; then`,
      `  apt_repo_refuse ${shq(`${f} was not written by this stack (channel ${cfg.channel}): the mirrors of a host belong to one stack; its first line says which (remove mirrors from that stack first)`)}`,
      'fi',
    );
  }
  lines.push(
    '# The mirror user: its own group, no shell, not in the pool group.',
    `if ! getent passwd ${user} >/dev/null; then`,
    `  useradd --system --user-group --no-create-home --home-dir ${shq(l.serviceHome)} --shell /usr/sbin/nologin ${user}`,
    '  mark_changed',
    'fi',
    d(m.mirrorRoot, '0755', 'root'),
    d(path.posix.dirname(ml.configFile), '0755', 'root'),
    d(ml.keysRoot, '0755', 'root'),
  );
  const names = m.mirrors.map((x) => x.name);
  for (const mirror of m.mirrors) {
    const p = mirrorPaths(cfg.root, m.mirrorRoot, mirror.name);
    const keyDir = path.posix.dirname(mirrorKeyPath(cfg.root, mirror.name, 'k'));
    lines.push(d(p.dir, '0755', m.user), d(p.stateDir, '0750', m.user), d(keyDir, '0755', 'root'));
    const mine = keys[mirror.name] ?? [];
    if (mine.length !== mirror.keys.length) throw new Error(`mirror ${mirror.name}: the plan material lacks its keys (readMirrorKeys)`);
    for (const k of mine) {
      const dest = mirrorKeyPath(cfg.root, mirror.name, k.fileName);
      lines.push(`install_file ${b.stage(`key.${mirror.name}.${k.fileName}`, k.content, '0644', 'root')} ${shq(dest)} 0644 root root`);
      b.expect(dest, '0644', 'root', 'root', { content: k.content });
    }
    // A key taken off the list is no longer trusted: removed.
    const keep = mine.map((k) => `! -name ${shq(k.fileName)}`).join(' ');
    lines.push(
      `if [ -n "$(find ${shq(keyDir)} -mindepth 1 -maxdepth 1 ${keep} -print -quit)" ]; then`,
      `  find ${shq(keyDir)} -mindepth 1 -maxdepth 1 ${keep} -exec rm -rf -- {} +`,
      '  mark_changed',
      'fi',
    );
  }
  lines.push(
    '# The key folders of mirrors taken off the list.',
    `for k in ${shq(ml.keysRoot)}/*; do`,
    '  [ -e "$k" ] || [ -L "$k" ] || continue',
    `  case ${shq(` ${names.join(' ')} `)} in *" \${k##*/} "*) continue ;; esac`,
    '  rm -rf -- "$k"',
    '  mark_changed',
    'done',
  );
  const yaml = renderMirrorsYaml(cfg);
  lines.push(`install_file ${b.stage('mirrors.yaml', yaml, '0644', 'root')} ${shq(ml.configFile)} 0644 root root`);
  b.expect(ml.configFile, '0644', 'root', 'root', { content: yaml });

  const units = renderMirrorUnits(cfg);
  lines.push(
    ...removeStaleUnits(
      cfg,
      l,
      header,
      units.map((u) => u.name),
    ),
  );
  lines.push(
    unitsBody(
      cfg,
      l,
      b,
      units,
      names.map((n) => mirrorUnitNames(n).timer),
    ),
  );

  const vhost = renderMirrorVhost(cfg, l.logDir);
  const staged = b.stage('site.conf', vhost, '0644', 'root');
  const testDir = l.nginxTestDir;
  const testConf = b.stage(
    'nginx-test.conf',
    renderNginxTestConf(path.posix.join(l.stagingDir, 'mirrors.site.conf'), testDir),
    '0644',
    'root',
  );
  lines.push(
    '# Check the new vhost alone before it replaces the live one.',
    `nginx -t -q -c ${testConf} -p ${shq(testDir + '/')} -e ${shq(testDir + '/error.log')}`,
    `install_file ${staged} ${shq(ml.vhostFile)} 0644 root root`,
    'mirrors_vhost_changed=$FILE_CHANGED',
    `if [ "$(readlink ${shq(ml.vhostLink)} || true)" != ${shq(ml.vhostFile)} ]; then`,
    `  ln -sfn ${shq(ml.vhostFile)} ${shq(ml.vhostLink)}`,
    '  mirrors_vhost_changed=1',
    '  mark_changed',
    'fi',
    nginxReload(cfg, l, 'mirrors_vhost_changed'),
  );
  b.expect(ml.vhostFile, '0644', 'root', 'root', { content: vhost });
  x.symlink('mirrors', ml.vhostLink, ml.vhostFile);

  if (cfg.services === 'systemd') {
    for (const mirror of m.mirrors) {
      const link = shq(path.posix.join(mirrorPaths(cfg.root, m.mirrorRoot, mirror.name).dir, 'latest-stable'));
      const service = shq(mirrorUnitNames(mirror.name).service);
      // A oneshot service that runs is 'activating', not 'active': only an idle (or failed) one is started.
      lines.push(
        `# No snapshot yet: the first sync starts now (it may take long; the step does not wait).`,
        `case $(systemctl show -p ActiveState --value -- ${service}) in inactive | failed) sync_idle=1 ;; *) sync_idle=0 ;; esac`,
        `if [ ! -L ${link} ] && [ "$sync_idle" = 1 ]; then systemctl start --no-block ${service}; mark_changed; fi`,
      );
    }
  }
  return lines.join('\n');
}

function withoutMirrors(cfg: StackConfig, l: ChannelLayout): string {
  const ml = mirrorsLayout(cfg.root);
  const header = managedBy(cfg.channel);
  return [
    '# No mirrors in this stack: what its mirrors step installed before goes (snapshots and the user stay).',
    ...removeStaleUnits(cfg, l, header, []),
    'mirrors_vhost_changed=0',
    `if ${ownedBy(ml.vhostFile, header)}; then`,
    `  rm -f -- ${shq(ml.vhostLink)} ${shq(ml.vhostFile)}`,
    '  mirrors_vhost_changed=1',
    '  mark_changed',
    'fi',
    nginxReload(cfg, l, 'mirrors_vhost_changed'),
    `if ${ownedBy(ml.configFile, header)}; then`,
    `  rm -rf -- ${shq(ml.configFile)} ${shq(ml.keysRoot)}`,
    '  mark_changed',
    'fi',
  ].join('\n');
}

/** Builds the 'mirrors' step of `ctx` (pure). Throws Error when a mirror names keys the material lacks. */
export function mirrorsStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l } = ctx;
  const b = new StepFiles(l, 'mirrors', ctx.expected);
  const body = cfg.mirrors ? withMirrors(ctx, cfg as MirrorsStack, b, ctx.material.mirrorKeys ?? {}) : withoutMirrors(cfg, l);
  return makeStep(cfg, 'mirrors', ['indexer', 'vhost'], body, b.files);
}
