/**
 * The 'signer' step [config, signing-key, indexer]: the signing service, a socket unit with
 * systemd, a `sign-server` process without; restarted when what it checks Releases against changed.
 */
import type { StackConfig } from '../../lambda-free-tools/src/settings/stackConfig';
import type { ChannelLayout } from '../layout';
import { shq } from '../shell';
import { renderSignerUnits } from '../systemd';
import { unitNames } from '../layout';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';
import { unitsBody } from './units';

/** The files whose change must reach the signer and the publish: channel config, indexer, key. */
export function signerInputs(l: ChannelLayout): string {
  return [l.repoYamlFile, l.listeDistFile, l.listeArchFile, l.indexerPath, l.signingKeyFile].map(shq).join(' ');
}

/**
 * The signer with systemd: the socket unit and its template service, the tmpfiles.d entry (applied
 * at once: /run/apt-repo/sign-<channel> must exist before the socket starts), the socket enabled
 * and started, restarted when a unit changed. Each request starts the indexer afresh, so a new
 * bundle needs no restart.
 */
function signerUnitsBody(
  cfg: StackConfig,
  l: ChannelLayout,
  b: StepFiles,
  units: { name: string; content: string }[],
  tmpfiles: string,
): string {
  b.expect(l.tmpfilesFile, '0644', 'root', 'root', { content: tmpfiles });
  return [
    `install_file ${b.stage('tmpfiles.conf', tmpfiles, '0644', 'root')} ${shq(l.tmpfilesFile)} 0644 root root`,
    `systemd-tmpfiles --create ${shq(l.tmpfilesFile)}`,
    unitsBody(cfg, l, b, units, [unitNames(cfg).signer.socket]),
  ].join('\n');
}

/**
 * The signer without systemd (a sandbox, a container): `apt-repo sign-server` started as signerUser
 * in its own session (setpriv, no capability, the environment reset), logging to a root-owned file,
 * when it is not running or when what it was started from (channel config, indexer, key: recorded
 * in a root-owned stamp) changed; the old one is stopped first. The pid file is the signer's own:
 * a pid is only trusted when /proc says that process belongs to signerUser.
 */
function signerServerBody(cfg: StackConfig, l: ChannelLayout): string {
  const s = shq(cfg.signerUser);
  const pid = shq(l.signerPidFile);
  const sock = shq(l.signerSocket);
  const server = [
    cfg.nodePath,
    l.indexerPath,
    '--root',
    cfg.root,
    '--channel',
    cfg.channel,
    'sign-server',
    '--socket',
    l.signerSocket,
    '--pidfile',
    l.signerPidFile,
  ]
    .map(shq)
    .join(' ');
  return [
    `want=$(cat ${signerInputs(l)} | sha256sum | cut -d' ' -f1)`,
    'signer_pid() {',
    `  p=$(head -c 16 ${pid} 2>/dev/null | tr -cd 0-9 || true)`,
    `  if [ -n "$p" ] && [ "$p" -gt 1 ] && [ "$(stat -c %U "/proc/$p" 2>/dev/null || true)" = ${s} ]; then echo "$p"; fi`,
    '}',
    'running=$(signer_pid)',
    `if [ -z "$running" ] || [ ! -S ${sock} ] || [ "$(cat ${shq(l.signerStamp)} 2>/dev/null || true)" != "$want" ]; then`,
    '  if [ -n "$running" ]; then',
    '    kill "$running" 2>/dev/null || true',
    '    for _ in $(seq 50); do [ -d "/proc/$running" ] || break; sleep 0.1; done',
    '  fi',
    `  rm -f ${sock} ${pid}`,
    `  setsid env -i PATH=/usr/local/bin:/usr/bin:/bin setpriv --reuid=${s} --regid=${s} --init-groups --inh-caps=-all ${server} </dev/null >>${shq(l.signerLog)} 2>&1 &`,
    `  for _ in $(seq 100); do [ -S ${sock} ] && [ -n "$(signer_pid)" ] && break; sleep 0.1; done`,
    `  if [ ! -S ${sock} ] || [ -z "$(signer_pid)" ]; then echo "apt-repo: the signer did not start; its log ${l.signerLog} ends with:" >&2; tail -n 20 ${shq(l.signerLog)} >&2; exit 1; fi`,
    `  printf '%s\\n' "$want" > ${shq(l.signerStamp)}`,
    '  mark_changed',
    'fi',
  ].join('\n');
}

/** Builds the 'signer' step of `ctx` (pure). */
export function signerStep(ctx: PlanContext): PlanStep {
  const { cfg, material, layout: l, expected: x, indexDigest } = ctx;
  const b = new StepFiles(l, 'signer', x);
  const { units, tmpfiles } = renderSignerUnits(cfg, l);
  const body = [
    // The sign-server (services none) checks each Release against the origin, label and
    // codenames it loaded at start: it must start again when they change.
    `# index inputs sha256 ${indexDigest}`,
    cfg.services === 'systemd' ? signerUnitsBody(cfg, l, b, units, tmpfiles) : signerServerBody(cfg, l),
  ].join('\n');
  return makeStep(cfg, 'signer', ['config', 'signing-key', 'indexer'], body, b.files, undefined, [material.bundleSha256]);
}
