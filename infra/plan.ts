/**
 * The plan: every remote step the Pulumi program performs on the server, as plain data, decided
 * by pure functions (the components in this folder only attach steps to remote.Command and
 * remote.CopyToRemote resources).
 *
 * How a step is applied (what the components do, and what a replay must do the same way):
 * 1. After every step named in `dependsOn` has succeeded, each entry of `files` is copied to its
 *    `remotePath` (a staging path under `<root>/var/lib/apt-repo/staging/<channel>/`, owned by the
 *    SSH user) as the SSH user, as-is: mode and owner are left to the server, nothing is deleted.
 *    A file with `localPath` is copied from that local file (the indexer bundle, too big for a
 *    string input); its `content` is empty — use `inlineLocalFiles` to fill it for a replay that
 *    uploads strings. The script names each staged file's SHA-256 in a comment, so a changed file
 *    changes the command text and the step runs again (a command never re-runs for a dependency).
 * 2. `script` is sent as the SSH exec command text (what remote.Command's `create` is): a single
 *    `bash -c '…'` (through `sudo -n` for a non-root SSH user), with `secretStdin` on its stdin.
 *    Secret contents (the signing key, the htpasswd, the TLS key) travel ONLY on stdin, one base64
 *    line per secret file, in the order the script reads them; `files` never holds a secret (so
 *    `secret` is always false: no copy resource and no staged file ever carries one), and no
 *    secret is ever part of `script` (the plan is built twice, with and without the secrets, and
 *    the scripts must be identical: see plan.test.ts).
 * 3. The script prints a line `CHANGED` when it changed anything on the server; a second run with
 *    the same inputs prints nothing and changes nothing (files are installed only when content,
 *    mode or owner differ, nginx is reloaded only when its config changed, the first publish only
 *    runs when nothing is published yet or the channel config / indexer / key changed).
 * `triggers` replace the resource when they change (the indexer's SHA-256).
 * A config change reaches the index: the `publish` step's text names indexInputsDigest (codenames,
 * architectures, Release fields, routing, validUntilDays, indexer, public key), so it runs again
 * (and its stamp makes it publish) whenever one of them changes; an unrelated key (allowedCidrs)
 * leaves it alone. With validUntilDays, the `refresh-units` step installs a timer that re-signs
 * (`apt-repo publish --if-expiring`) before a third of the validity remains.
 *
 * Every path honours the config's `root`: with a sandbox root (a temp directory) the scripts work
 * as root on Debian 12 without touching the host's own files, except for two host-wide actions
 * that the config controls explicitly:
 * - `installPackages` (default true): apt-get install of the missing packages;
 * - the accounts (infra/accounts.ts: users and groups exist host-wide, whatever the root) and the
 *   operators' sudo rule, which sudo only reads in /etc/sudoers.d (a sandbox root's rule has a name
 *   of its own there: infra/layout.ts sudoersFile);
 * - `services` ('systemd' by default when root is '/', else 'none'): with 'systemd', units are
 *   enabled and started (`systemctl daemon-reload`, `enable --now`), the signer is a socket unit,
 *   nginx is checked with `nginx -t` and reloaded and sshd with `sshd -t` and reloaded; with
 *   'none', unit files are only installed under the root, the signer runs as `sign-server` started
 *   by the step (pid file under <root>/run), nginx is reloaded only when a master runs with
 *   `<root>/run/nginx.pid` and sshd only when one runs with `<root>/run/sshd.pid` (a container's,
 *   or a test's that includes `<root>/etc/ssh/sshd_config.d/*.conf`).
 * In every mode the vhost is first checked alone with `nginx -t` against a minimal nginx.conf
 * (renderNginxTestConf), and the sshd drop-in alone with `sshd -t`, before it replaces the live file.
 * Accounts (stacks/config.ts): `publish` runs as the channel's serviceUser (runuser) and signs
 * through the signer's socket; the private key is signerUser's alone. A sandbox root's parent
 * folders must be traversable by those users, and, for the uploaders' chroot into incomingDir,
 * root-owned and writable by root only (not under /tmp: test/harness/replay.ts makeSandboxRoot).
 * test/harness/replay.ts builds such a plan for a sandbox (no packages, no systemd, bundle inlined)
 * for the replay test and the local stack.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { renderHostBaseScript } from './hostBaseScript';
import { backupPaths, channelLayout, type ChannelLayout } from './layout';
import { renderListes, renderRepoYaml } from './repoFiles';
import { shq, wrapScript } from './shell';
import { authorizedKeyFiles, renderSshdDropIn } from './sshd';
import { renderSudoers } from './sudoers';
import { renderSignerUnits, renderSystemdUnits, unitNames, watchedDirs } from './systemd';
import { renderAcmeBootstrapVhost, renderNginxTestConf, renderVhost } from './vhost';
import { ExpectedStateBuilder, openpgpV4Fingerprint, type ExpectedContent } from './expectedState';
import { EXPECTED_STATE_FILE } from '../lambda-free-tools/src/repo/expectedState';

/** A file a step needs on the server before its script runs (copied to a staging path). */
export interface PlanFile {
  remotePath: string;
  content: string;
  /** Mode and owner the script installs the file's final copy with (informational for staging). */
  mode: string;
  owner: string;
  /** Always false: secrets travel on stdin (see the module comment). */
  secret: boolean;
  /** When set, the file is copied from this local path and `content` is ''. */
  localPath?: string;
}

/** One remote step. */
export interface PlanStep {
  name: string;
  dependsOn: string[];
  files: PlanFile[];
  /** The command text: `bash -c '<set -eu, idempotent body>'`; never holds a secret. */
  script: string;
  /** Base64 lines of the secret files, read by the script in order; undefined when none. */
  secretStdin?: string;
  triggers: string[];
}

/** What the steps carry besides the config: keys, credentials file, bundle, certificate. */
export interface PlanMaterial {
  /** Armored OpenPGP private key (secret). */
  signingKeyArmored: string;
  publicKeyArmored: string;
  /** The binary (non-armored) public key, base64. */
  publicKeyBinaryBase64: string;
  /** htpasswd file text (secret); '' when there are no client credentials. */
  htpasswd: string;
  /** Local path of dist/apt-repo.cjs and its SHA-256 (hex). */
  bundlePath: string;
  bundleSha256: string;
  /** PEM certificate chain and key (secret) when tls.mode is 'files'. */
  tlsCert?: string;
  tlsKey?: string;
}

/** Names of the steps, in the order the plan lists them. */
export const STEP_NAMES = ['host-base', 'dirs', 'pre-update-backup', 'config', 'signing-key', 'htpasswd', 'tls', 'indexer', 'signer', 'publish', 'vhost', 'ssh-access', 'sudoers', 'ingest-units', 'refresh-units', 'backup-units', 'expected-state'] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** Which component attaches which step (infra/hostBase.ts, infra/channel.ts, infra/backups.ts). */
export const STEP_OWNERS: Record<'hostBase' | 'channel' | 'backups', StepName[]> = {
  hostBase: ['host-base'],
  channel: ['dirs', 'pre-update-backup', 'config', 'signing-key', 'htpasswd', 'tls', 'indexer', 'signer', 'publish', 'vhost', 'ssh-access', 'sudoers', 'ingest-units', 'refresh-units'],
  backups: ['backup-units', 'expected-state'],
};

const b64line = (s: string | Buffer) => Buffer.from(s).toString('base64') + '\n';

class StepBuilder {
  readonly files: PlanFile[] = [];
  constructor(private readonly layout: ChannelLayout, private readonly step: string, private readonly expected: ExpectedStateBuilder) {}

  /** Records that this step installs `dest` so (expected state, infra/expectedState.ts). */
  expect(dest: string, mode: string, owner: string, group: string, what: ExpectedContent, fingerprint?: string): void {
    this.expected.file(this.step, dest, mode, owner, group, what, fingerprint);
  }

  /** Stages `content` and returns the shell-quoted staging path. */
  stage(fileName: string, content: string, mode: string, owner: string, localPath?: string): string {
    const remotePath = path.posix.join(this.layout.stagingDir, `${this.step}.${fileName}`);
    this.files.push({ remotePath, content, mode, owner, secret: false, ...(localPath ? { localPath } : {}) });
    return shq(remotePath);
  }
}

function step(cfg: StackConfig, name: StepName, dependsOn: StepName[], body: string, files: PlanFile[] = [], secretStdin?: string, triggers: string[] = []): PlanStep {
  // A remote.Command runs again only when its own inputs change, never when a copy it depends on
  // does: naming each staged file's digest in the script makes a new vhost, unit or certificate
  // re-run the step that installs it. (The bundle, copied from localPath, has its digest checked
  // and as a trigger already.)
  const digests = files.filter((f) => !f.localPath).map((f) => `# staged ${path.posix.basename(f.remotePath)} sha256 ${crypto.createHash('sha256').update(f.content).digest('hex')}\n`);
  // `reapply` (stack config): a new value replaces every command once, a forced re-apply after drift.
  const allTriggers = cfg.reapply ? [...triggers, `reapply ${cfg.reapply}`] : triggers;
  return { name, dependsOn, files, script: wrapScript(`# apt-repo step '${name}' (channel ${cfg.channel})\n${digests.join('')}${body}`, cfg.ssh.user), ...(secretStdin !== undefined ? { secretStdin } : {}), triggers: allTriggers };
}

function dirsBody(cfg: StackConfig, l: ChannelLayout, x: ExpectedStateBuilder): string {
  const u = cfg.serviceUser;
  const d = (p: string, mode: string, owner: string, group: string) => {
    x.dir('dirs', p, mode, owner, group);
    return `ensure_dir ${shq(p)} ${mode} ${shq(owner)} ${shq(group)}`;
  };
  const lines = [
    `ssh_group=$(id -gn ${shq(cfg.ssh.user)})`,
    // Not secret (repo.yaml, liste_dist, liste_arch); the private key inside is the signer's, 0600.
    d(l.configDir, '0755', 'root', 'root'),
    d(l.webRoot, '0755', u, u),
    // setgid: pool files and folders get the shared pool group, so prod's indexer may hard-link
    // preprod's files (0664); the folders themselves are never group-writable.
    d(l.poolDir, '2755', u, cfg.poolGroup),
    // The pool group reads it too: prod's pending and promote read preprod's pool cache.
    d(l.stateDir, '0750', u, cfg.poolGroup),
    d(l.backupDir, '0750', u, u),
  ];
  if (!cfg.upstream) {
    const up = cfg.uploadGroup;
    lines.push(
      // The uploaders' chroot: sshd wants it and every parent root-owned and not group/other-writable.
      d(l.incomingDir, '0755', 'root', 'root'),
      // Uploaders read the reasons of their refused files, never write there.
      d(l.rejectedDir, '0755', u, u),
      // Drop folders: uploaders create files (setgid: group uploadGroup); sticky: only a file's
      // owner, or the indexer that owns the folder, may rename or delete it.
      ...watchedDirs(cfg, l).map((w) => d(w, '3775', u, up)),
    );
  }
  lines.push(
    d(l.indexerDir, '0755', 'root', 'root'),
    // Only the channel's indexer (its group) may connect to the signer.
    d(l.signerSocketDir, '0750', cfg.signerUser, u),
    // Owned by the SSH user's primary group, known on the server only: not in the expected state.
    `ensure_dir ${shq(l.stagingDir)} 0700 ${shq(cfg.ssh.user)} "$ssh_group"`,
    d(l.nginxTestDir, '0700', 'root', 'root'),
  );
  return lines.join('\n');
}

/** The bash lines that reload nginx after `changedVar` was set to 1, per `cfg.services`. */
function nginxReload(cfg: StackConfig, l: ChannelLayout, changedVar: string): string {
  if (cfg.services === 'systemd') {
    return [
      `if [ "$${changedVar}" = 1 ]; then`,
      '  nginx -t -q',
      '  systemctl reload-or-restart nginx',
      'fi',
      'if ! systemctl is-active --quiet nginx; then systemctl start nginx; mark_changed; fi',
    ].join('\n');
  }
  // Without systemd, the nginx to reload is the one whose configuration lives under the root (the
  // sandbox's own, never the host's /etc/nginx when root is not '/').
  const pid = shq(l.nginxPidFile);
  const conf = shq(l.nginxConf);
  return [`if [ "$${changedVar}" = 1 ] && [ -s ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then`, `  nginx -t -q -c ${conf}`, `  nginx -s reload -c ${conf}`, 'fi'].join('\n');
}

function unitsBody(cfg: StackConfig, l: ChannelLayout, b: StepBuilder, units: { name: string; content: string }[], enable: string[]): string {
  const lines = ['units_changed=0'];
  for (const u of units) {
    const staged = b.stage(u.name, u.content, '0644', 'root');
    b.expect(path.posix.join(l.systemdDir, u.name), '0644', 'root', 'root', { content: u.content });
    lines.push(`install_file ${staged} ${shq(path.posix.join(l.systemdDir, u.name))} 0644 root root`, 'if [ "$FILE_CHANGED" = 1 ]; then units_changed=1; fi');
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

/** The files whose change must reach the signer and the publish: channel config, indexer, key. */
function signerInputs(l: ChannelLayout): string {
  return [l.repoYamlFile, l.listeDistFile, l.listeArchFile, l.indexerPath, l.signingKeyFile].map(shq).join(' ');
}

/**
 * The signer with systemd: the socket unit and its template service, the tmpfiles.d entry (applied
 * at once: /run/apt-repo/sign-<channel> must exist before the socket starts), the socket enabled
 * and started, restarted when a unit changed. Each request starts the indexer afresh, so a new
 * bundle needs no restart.
 */
function signerUnitsBody(cfg: StackConfig, l: ChannelLayout, b: StepBuilder, units: { name: string; content: string }[], tmpfiles: string): string {
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
  const server = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel, 'sign-server', '--socket', l.signerSocket, '--pidfile', l.signerPidFile].map(shq).join(' ');
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

/**
 * SSH access: one root-owned key file per account (0644 in a 0755 root folder), the key files of
 * accounts taken off the lists removed (revocation, see below), then the sshd
 * drop-in, checked alone with `sshd -t` (a throw-away host key) from a root-only copy before it
 * replaces the live file. With systemd the whole configuration is checked again (the previous
 * drop-in is put back when that fails), the Match blocks are proved to apply (`sshd -T` for the
 * first uploader: chroot and forced command), and sshd is reloaded; without it, the sshd whose pid
 * is in <root>/run/sshd.pid (a test's or a container's) gets SIGHUP.
 */
function sshAccessBody(cfg: StackConfig, l: ChannelLayout, b: StepBuilder): string {
  const lines = ['sshd_changed=0'];
  for (const k of authorizedKeyFiles(cfg, l)) {
    lines.push(`install_file ${b.stage(`keys-${k.account}`, k.content, '0644', 'root')} ${shq(k.file)} 0644 root root`);
    b.expect(k.file, '0644', 'root', 'root', { content: k.content });
  }
  // Key files of accounts this stack does not list: an operator's may be another channel's (kept);
  // the channel that owns the drop folders revokes every other upload account's; another channel
  // keeps them. A file whose user is in neither group does nothing (no Match block), and goes.
  const listed = authorizedKeyFiles(cfg, l).map((k) => k.account);
  b.expect(l.sshdDropIn, '0644', 'root', 'root', { content: renderSshdDropIn(cfg, l) });
  const inGroup = (g: string) => `id -nG "$u" 2>/dev/null | tr ' ' '\\n' | grep -qx ${shq(g)}`;
  lines.push(
    `for f in ${shq(l.authorizedKeysDir)}/*; do`,
    '  [ -f "$f" ] || continue',
    '  u=$(basename "$f")',
    `  case " ${listed.join(' ')} " in *" $u "*) continue ;; esac`,
    `  if ${inGroup(cfg.operatorGroup)}; then continue; fi`,
    ...(cfg.upstream ? [`  if ${inGroup(cfg.uploadGroup)}; then continue; fi`] : []),
    '  rm -f "$f"; mark_changed',
    'done',
    `(umask 077; cat ${b.stage('sshd.conf', renderSshdDropIn(cfg, l), '0644', 'root')} > "$APT_REPO_TMP/sshd.conf")`,
    'mkdir -m 0700 "$APT_REPO_TMP/sshd-test"',
    `ssh-keygen -q -t ed25519 -N '' -f "$APT_REPO_TMP/sshd-test/host_key" >/dev/null`,
    `printf 'HostKey %s\\nInclude %s\\n' "$APT_REPO_TMP/sshd-test/host_key" "$APT_REPO_TMP/sshd.conf" > "$APT_REPO_TMP/sshd-test/sshd_config"`,
    // sshd -t refuses to run without its privilege separation folder.
    '[ -d /run/sshd ] || mkdir -m 0755 /run/sshd',
    'sshd -t -f "$APT_REPO_TMP/sshd-test/sshd_config"',
    `if [ -f ${shq(l.sshdDropIn)} ]; then cp -p ${shq(l.sshdDropIn)} "$APT_REPO_TMP/sshd.previous"; fi`,
    `install_file "$APT_REPO_TMP/sshd.conf" ${shq(l.sshdDropIn)} 0644 root root`,
    'sshd_changed=$FILE_CHANGED',
  );
  if (cfg.services === 'systemd') {
    const first = cfg.upstream ? undefined : cfg.uploaders[0];
    lines.push(
      'if [ "$sshd_changed" = 1 ]; then',
      '  if ! sshd -t; then',
      `    if [ -f "$APT_REPO_TMP/sshd.previous" ]; then mv -f "$APT_REPO_TMP/sshd.previous" ${shq(l.sshdDropIn)}; else rm -f ${shq(l.sshdDropIn)}; fi`,
      '    echo "apt-repo: sshd -t refused the configuration with the new drop-in; the previous one is back" >&2; exit 1',
      '  fi',
      ...(first
        ? [
            `  eff=$(sshd -T -C user=${shq(first.name)},host=localhost,addr=127.0.0.1)`,
            `  if ! printf '%s\\n' "$eff" | grep -qx ${shq(`chrootdirectory ${l.incomingDir}`)} || ! printf '%s\\n' "$eff" | grep -qx 'forcecommand internal-sftp -u 0022'; then`,
            `    echo "apt-repo: ${l.sshdDropIn} does not apply to ${first.name}: does /etc/ssh/sshd_config include sshd_config.d/*.conf before any Match block?" >&2; exit 1`,
            '  fi',
          ]
        : []),
      '  systemctl try-reload-or-restart ssh.service',
      'fi',
    );
  } else {
    const pid = shq(l.sshdPidFile);
    lines.push(`if [ "$sshd_changed" = 1 ] && [ -s ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then kill -HUP "$(cat ${pid})"; fi`);
  }
  return lines.join('\n');
}

/**
 * The operators' sudo rule (infra/sudoers.ts): copied to a root-only file, checked alone with
 * `visudo -cf`, then installed 0440 by rename (a name with a dot, which sudo's includedir skips,
 * until then), then the whole sudo configuration is checked with `visudo -c` (a rule can be valid
 * alone and clash with another file, e.g. an alias defined twice, which makes sudo ignore it): on
 * failure the previous rule (or none) is put back and the step fails naming the file.
 * Without operators, a rule left from an earlier run is removed.
 */
function sudoersBody(cfg: StackConfig, l: ChannelLayout, b: StepBuilder): string {
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

/**
 * repo.yaml keys that never change what `publish` writes under dists/: where the public key files
 * are named (keyName: the signing-key step writes them), state, backup and drop folders, the
 * signer's socket, how many generations are kept, the upstream promote reads, lock and backup
 * settings. Every other key (those added later too) counts as index-affecting: a key nobody
 * classified costs at most one needless publish, never a stale index.
 */
export const NON_INDEX_REPO_KEYS: readonly string[] = ['keyName', 'stateDir', 'backupDir', 'incomingDir', 'signerSocket', 'generationsKeep', 'upstream', 'lockTimeoutSeconds', 'backupKeep'];

/**
 * Everything that changes the indexes `publish` writes, as the server will read it: liste_dist and
 * liste_arch (codenames, architectures, in file order), the index-affecting keys of the rendered
 * repo.yaml (origin, label, description, component, routing, validUntilDays, webRoot …: every key
 * but NON_INDEX_REPO_KEYS), the indexer bundle's SHA-256 and the SHA-256 of the binary public key
 * (a new key must re-sign). Nothing secret: the private key, credentials and TLS key are not read.
 */
export function indexInputs(cfg: StackConfig, material: Pick<PlanMaterial, 'bundleSha256' | 'publicKeyBinaryBase64'>): Record<string, unknown> {
  const repoYaml = parseYaml(renderRepoYaml(cfg, channelLayout(cfg))) as Record<string, unknown>;
  const kept = Object.fromEntries(Object.entries(repoYaml).filter(([k]) => !NON_INDEX_REPO_KEYS.includes(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    codenames: cfg.codenames,
    architectures: cfg.architectures,
    repoYaml: kept,
    indexerSha256: material.bundleSha256,
    publicKeySha256: crypto.createHash('sha256').update(Buffer.from(material.publicKeyBinaryBase64, 'base64')).digest('hex'),
  };
}

/**
 * SHA-256 (hex) of indexInputs: the `publish` and `signer` steps name it in their command text, so
 * that under Pulumi's rule (a command runs again only when its own inputs change) a change of any
 * of them runs the publish again, and restarts a sign-server that checks Releases against the old
 * origin, label and codenames. Deterministic: same config and material, same digest.
 */
export function indexInputsDigest(cfg: StackConfig, material: Pick<PlanMaterial, 'bundleSha256' | 'publicKeyBinaryBase64'>): string {
  return crypto.createHash('sha256').update(JSON.stringify(indexInputs(cfg, material))).digest('hex');
}

/**
 * The re-signing timer (validUntilDays set): its units installed and the timer enabled. Without
 * validUntilDays, the units a former configuration installed are stopped and removed.
 */
function refreshUnitsBody(cfg: StackConfig, l: ChannelLayout, b: StepBuilder, units: { name: string; content: string }[]): string {
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
 * Shell lines that record the SHA-256 of the secret file `dest` just installed in `record`
 * (`<configDir>/secret-digests`, 0600 root, one `<sha256>  <path>` line per secret file), for
 * `apt-repo doctor` run as root: the manifest never holds a digest of a secret.
 */
function recordSecretDigest(record: string, dest: string): string {
  return [
    `d=$(sha256sum < ${shq(dest)} | cut -d' ' -f1)`,
    `if ! grep -qxF -- "$d  "${shq(dest)} ${shq(record)} 2>/dev/null; then`,
    `  { awk -v p=${shq(dest)} '{ l = $0; sub(/^[0-9a-f]+  /, "", l); if (l != p) print }' ${shq(record)} 2>/dev/null || true; printf '%s  %s\\n' "$d" ${shq(dest)}; } > "$APT_REPO_TMP/secret-digests"`,
    `  install_file "$APT_REPO_TMP/secret-digests" ${shq(record)} 0600 root root`,
    'fi',
  ].join('\n');
}

/**
 * Before an update reaches the channel (a new indexer bundle, an index-affecting config change, a
 * new key: what indexInputsDigest covers, named in the text so the step runs exactly then), a dated
 * backup made by the indexer now installed, as the service user, into the channel's backup folder
 * (`apt-repo backup --to`, the nightly backup's command): the organisation's procedure "back up,
 * update, restart". Nothing to back up before the first publish. A stamp in the state folder makes
 * a re-run with the same inputs a no-op.
 */
function preUpdateBackupBody(cfg: StackConfig, l: ChannelLayout, indexDigest: string): string {
  const u = shq(cfg.serviceUser);
  const stamp = shq(l.backupStamp);
  const indexer = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel].map(shq).join(' ');
  return [
    `# index inputs sha256 ${indexDigest}`,
    `if [ "$(cat ${stamp} 2>/dev/null || true)" != ${shq(indexDigest)} ]; then`,
    `  if [ -e ${shq(l.distsLink)} ] && [ -f ${shq(l.indexerPath)} ]; then`,
    `    echo ${shq(`apt-repo: backing up channel ${cfg.channel} into ${l.backupDir} before the update`)} >&2`,
    `    runuser -u ${u} -- ${indexer} backup --to ${shq(l.backupDir)} >&2`,
    '  fi',
    `  printf '%s\\n' ${shq(indexDigest)} | runuser -u ${u} -- tee ${stamp} >/dev/null`,
    '  mark_changed',
    'fi',
  ].join('\n');
}

/**
 * Builds the plan of `cfg`'s channel from the stack config and `material`.
 * Steps (dependsOn in brackets): host-base; dirs [host-base]; config [dirs]; signing-key [dirs];
 * htpasswd [dirs] (only with client credentials); tls [dirs] (tls.mode files; certbot: [dirs, htpasswd?]); indexer
 * [dirs]; signer [config, signing-key, indexer]; publish [config, signing-key, indexer, signer];
 * vhost [signing-key, publish, htpasswd?, tls?]; ssh-access [dirs]; sudoers [dirs];
 * ingest-units [indexer] (channels without upstream); refresh-units [indexer, signer] (the
 * re-signing timer with validUntilDays, its removal without); backup-units [indexer].
 * `publish` and `signer` name indexInputsDigest in their command text.
 * Pure: same inputs, same plan (no time, no randomness). Throws Error when tls.mode is 'files'
 * and material lacks tlsCert/tlsKey.
 */
export function buildPlan(cfg: StackConfig, material: PlanMaterial): PlanStep[] {
  const l = channelLayout(cfg);
  const u = shq(cfg.serviceUser);
  const steps: PlanStep[] = [];
  const indexDigest = indexInputsDigest(cfg, material);
  const secretDigests = l.secretDigestsFile;
  const x = new ExpectedStateBuilder(cfg.channel, cfg.root, secretDigests);
  const keyFingerprint = openpgpV4Fingerprint(Buffer.from(material.publicKeyBinaryBase64, 'base64'));

  steps.push(step(cfg, 'host-base', [], renderHostBaseScript(cfg)));
  steps.push(step(cfg, 'dirs', ['host-base'], dirsBody(cfg, l, x)));
  steps.push(step(cfg, 'pre-update-backup', ['dirs'], preUpdateBackupBody(cfg, l, indexDigest)));

  {
    const b = new StepBuilder(l, 'config', x);
    const { listeDist, listeArch } = renderListes(cfg.codenames, cfg.architectures);
    const body = [
      `install_file ${b.stage('liste_dist', listeDist, '0644', 'root')} ${shq(l.listeDistFile)} 0644 root root`,
      `install_file ${b.stage('liste_arch', listeArch, '0644', 'root')} ${shq(l.listeArchFile)} 0644 root root`,
      `install_file ${b.stage('repo.yaml', renderRepoYaml(cfg, l), '0644', 'root')} ${shq(l.repoYamlFile)} 0644 root root`,
    ].join('\n');
    b.expect(l.listeDistFile, '0644', 'root', 'root', { content: listeDist });
    b.expect(l.listeArchFile, '0644', 'root', 'root', { content: listeArch });
    b.expect(l.repoYamlFile, '0644', 'root', 'root', { content: renderRepoYaml(cfg, l) });
    steps.push(step(cfg, 'config', ['dirs', 'pre-update-backup'], body, b.files));
  }

  {
    const b = new StepBuilder(l, 'signing-key', x);
    const asc = b.stage('public.asc', material.publicKeyArmored, '0644', cfg.serviceUser);
    const gpgB64 = b.stage('public.gpg.b64', material.publicKeyBinaryBase64 + '\n', '0644', cfg.serviceUser);
    const body = [
      '# stdin: the armored private key, base64 on one line.',
      'read_secret "$APT_REPO_TMP/signing-key.asc"',
      // The signer's alone: the indexer (serviceUser), which parses uploads, cannot read it.
      `install_file "$APT_REPO_TMP/signing-key.asc" ${shq(l.signingKeyFile)} 0600 ${shq(cfg.signerUser)} ${shq(cfg.signerUser)}`,
      recordSecretDigest(secretDigests, l.signingKeyFile),
      `install_file ${asc} ${shq(l.publicKeyAsc)} 0644 ${u} ${u}`,
      `base64 -d ${gpgB64} > "$APT_REPO_TMP/public.gpg"`,
      `install_file "$APT_REPO_TMP/public.gpg" ${shq(l.publicKeyGpg)} 0644 ${u} ${u}`,
    ].join('\n');
    b.expect(l.signingKeyFile, '0600', cfg.signerUser, cfg.signerUser, { secret: true });
    b.expect(l.publicKeyAsc, '0644', cfg.serviceUser, cfg.serviceUser, { content: material.publicKeyArmored }, keyFingerprint);
    b.expect(l.publicKeyGpg, '0644', cfg.serviceUser, cfg.serviceUser, { content: Buffer.from(material.publicKeyBinaryBase64, 'base64') }, keyFingerprint);
    steps.push(step(cfg, 'signing-key', ['dirs', 'pre-update-backup'], body, b.files, b64line(material.signingKeyArmored)));
  }

  const vhostDeps: StepName[] = ['signing-key', 'publish'];
  if (cfg.usernames.length > 0) {
    const body = [
      '# stdin: the htpasswd file, base64 on one line.',
      'read_secret "$APT_REPO_TMP/htpasswd"',
      `install_file "$APT_REPO_TMP/htpasswd" ${shq(l.htpasswdFile)} 0640 root www-data`,
      recordSecretDigest(secretDigests, l.htpasswdFile),
    ].join('\n');
    x.file('htpasswd', l.htpasswdFile, '0640', 'root', 'www-data', { secret: true });
    steps.push(step(cfg, 'htpasswd', ['dirs'], body, [], b64line(material.htpasswd)));
    vhostDeps.push('htpasswd');
  }

  if (cfg.tls.mode === 'files') {
    if (!material.tlsCert || !material.tlsKey) throw new Error(`plan ${cfg.channel}: tls.mode is files but the certificate or key content is missing`);
    const b = new StepBuilder(l, 'tls', x);
    const body = [
      `install_file ${b.stage('cert.pem', material.tlsCert, '0644', 'root')} ${shq(l.tlsCertFile)} 0644 root root`,
      'tls_changed=$FILE_CHANGED',
      '# stdin: the PEM private key, base64 on one line.',
      'read_secret "$APT_REPO_TMP/tls.key"',
      `install_file "$APT_REPO_TMP/tls.key" ${shq(l.tlsKeyFile)} 0600 root root`,
      'if [ "$FILE_CHANGED" = 1 ]; then tls_changed=1; fi',
      recordSecretDigest(secretDigests, l.tlsKeyFile),
      '# nginx reads certificates at (re)load only; before the vhost exists there is nothing to reload.',
      `if [ ! -e ${shq(l.vhostLink)} ]; then tls_changed=0; fi`,
      nginxReload(cfg, l, 'tls_changed'),
    ].join('\n');
    b.expect(l.tlsCertFile, '0644', 'root', 'root', { content: material.tlsCert });
    b.expect(l.tlsKeyFile, '0600', 'root', 'root', { secret: true });
    steps.push(step(cfg, 'tls', ['dirs'], body, b.files, b64line(material.tlsKey)));
    vhostDeps.push('tls');
  } else if (cfg.tls.mode === 'certbot') {
    const b = new StepBuilder(l, 'tls', x);
    // Before the first certificate exists the full vhost cannot load: serve only the challenge
    // (never the repository over plain HTTP, which would take basic auth in clear).
    const bootstrap = renderAcmeBootstrapVhost({
      channel: cfg.channel, serverName: cfg.serverName, acmeRoot: l.acmeRoot, httpPort: cfg.httpPort, logDir: l.logDir,
      ...(cfg.listenAddress ? { listenAddress: cfg.listenAddress } : {}),
    });
    const body = [
      `if [ ! -s ${shq(l.tlsCertFile)} ]; then`,
      `  install_file ${b.stage('bootstrap.conf', bootstrap, '0644', 'root')} ${shq(l.vhostFile)} 0644 root root`,
      `  ln -sfn ${shq(l.vhostFile)} ${shq(l.vhostLink)}`,
      '  nginx -t -q',
      '  systemctl reload-or-restart nginx',
      `  certbot certonly --webroot -w ${shq(l.acmeRoot)} -d ${shq(cfg.serverName)} --email ${shq(cfg.tls.email)} --agree-tos --non-interactive --no-eff-email --deploy-hook 'systemctl reload nginx' >&2`,
      '  mark_changed',
      'fi',
    ].join('\n');
    steps.push(step(cfg, 'tls', cfg.usernames.length ? ['dirs', 'htpasswd'] : ['dirs'], body, b.files));
    vhostDeps.push('tls');
  }

  {
    const b = new StepBuilder(l, 'indexer', x);
    const staged = b.stage('apt-repo.cjs', '', '0644', 'root', material.bundlePath);
    const body = [
      `echo ${shq(`${material.bundleSha256}  ${l.stagingDir}/indexer.apt-repo.cjs`)} | sha256sum -c --quiet -`,
      `install_file ${staged} ${shq(l.indexerPath)} 0644 root root`,
    ].join('\n');
    b.expect(l.indexerPath, '0644', 'root', 'root', { sha256: material.bundleSha256 });
    steps.push(step(cfg, 'indexer', ['dirs', 'pre-update-backup'], body, b.files, undefined, [material.bundleSha256]));
  }

  {
    const b = new StepBuilder(l, 'signer', x);
    const { units, tmpfiles } = renderSignerUnits(cfg, l);
    const body = [
      // The sign-server (services none) checks each Release against the origin, label and
      // codenames it loaded at start: it must start again when they change.
      `# index inputs sha256 ${indexDigest}`,
      cfg.services === 'systemd' ? signerUnitsBody(cfg, l, b, units, tmpfiles) : signerServerBody(cfg, l),
    ].join('\n');
    steps.push(step(cfg, 'signer', ['config', 'signing-key', 'indexer'], body, b.files, undefined, [material.bundleSha256]));
  }

  {
    const stamp = shq(l.publishStamp);
    const inputs = signerInputs(l);
    const indexer = [cfg.nodePath, l.indexerPath, '--root', cfg.root, '--channel', cfg.channel].map(shq).join(' ');
    const body = [
      '# Publish once, and again when the channel config, the indexer or the key changed.',
      // Under Pulumi's rule this step runs again only when its own text changes: the digest of
      // everything that shapes the indexes (indexInputsDigest) makes it change with them.
      `# index inputs sha256 ${indexDigest}`,
      `want=$(cat ${inputs} | sha256sum | cut -d' ' -f1)`,
      `if [ ! -e ${shq(l.distsLink)} ] || [ "$(cat ${stamp} 2>/dev/null || true)" != "$want" ]; then`,
      `  runuser -u ${u} -- ${indexer} publish >&2`,
      // Written as the service user: the state folder is its own, and a link it put there must
      // not make root write (or chown) another file.
      `  printf '%s\\n' "$want" | runuser -u ${u} -- tee ${stamp} >/dev/null`,
      '  mark_changed',
      'fi',
    ].join('\n');
    steps.push(step(cfg, 'publish', ['config', 'signing-key', 'indexer', 'signer'], body));
  }

  {
    const b = new StepBuilder(l, 'vhost', x);
    const vhost = renderVhost({
      channel: cfg.channel,
      serverName: cfg.serverName,
      webRoot: l.webRoot,
      keyName: cfg.keyName,
      allowedCidrs: cfg.allowedCidrs,
      ...(cfg.usernames.length ? { htpasswdFile: l.htpasswdFile } : {}),
      ...(cfg.tls.mode !== 'none' ? { tls: { certificate: l.tlsCertFile, key: l.tlsKeyFile } } : {}),
      ...(cfg.tls.mode === 'certbot' ? { acmeRoot: l.acmeRoot } : {}),
      allowPlainHttp: cfg.allowPlainHttp,
      httpPort: cfg.httpPort,
      httpsPort: cfg.httpsPort,
      ...(cfg.listenAddress ? { listenAddress: cfg.listenAddress } : {}),
      logDir: l.logDir,
    });
    const staged = b.stage('site.conf', vhost, '0644', 'root');
    const testDir = l.nginxTestDir;
    const testConf = b.stage('nginx-test.conf', renderNginxTestConf(path.posix.join(l.stagingDir, 'vhost.site.conf'), testDir), '0644', 'root');
    const body = [
      '# Check the new vhost alone before it replaces the live one.',
      `nginx -t -q -c ${testConf} -p ${shq(testDir + '/')} -e ${shq(testDir + '/error.log')}`,
      `install_file ${staged} ${shq(l.vhostFile)} 0644 root root`,
      'vhost_changed=$FILE_CHANGED',
      `if [ "$(readlink ${shq(l.vhostLink)} || true)" != ${shq(l.vhostFile)} ]; then`,
      `  ln -sfn ${shq(l.vhostFile)} ${shq(l.vhostLink)}`,
      '  vhost_changed=1',
      '  mark_changed',
      'fi',
      nginxReload(cfg, l, 'vhost_changed'),
    ].join('\n');
    b.expect(l.vhostFile, '0644', 'root', 'root', { content: vhost });
    x.symlink('vhost', l.vhostLink, l.vhostFile);
    steps.push(step(cfg, 'vhost', vhostDeps, body, b.files));
  }

  {
    const b = new StepBuilder(l, 'ssh-access', x);
    steps.push(step(cfg, 'ssh-access', ['dirs'], sshAccessBody(cfg, l, b), b.files));
  }
  {
    const b = new StepBuilder(l, 'sudoers', x);
    steps.push(step(cfg, 'sudoers', ['dirs'], sudoersBody(cfg, l, b), b.files));
  }

  const units = renderSystemdUnits(cfg, l);
  const names = unitNames(cfg);
  if (names.ingest) {
    const b = new StepBuilder(l, 'ingest-units', x);
    const mine = units.filter((u) => Object.values(names.ingest!).includes(u.name));
    steps.push(step(cfg, 'ingest-units', ['indexer'], unitsBody(cfg, l, b, mine, [names.ingest.path, names.ingest.timer]), b.files));
  }
  {
    const b = new StepBuilder(l, 'refresh-units', x);
    const mine = units.filter((u) => Object.values(names.refresh).includes(u.name));
    steps.push(step(cfg, 'refresh-units', ['indexer', 'signer'], refreshUnitsBody(cfg, l, b, mine), b.files));
  }
  {
    const b = new StepBuilder(l, 'backup-units', x);
    const mine = units.filter((u) => Object.values(names.backup).includes(u.name));
    steps.push(step(cfg, 'backup-units', ['indexer'], unitsBody(cfg, l, b, mine, [names.backup.timer]), b.files));
  }
  {
    // Last: what every other step installed, for `apt-repo doctor` (its digest is in the text, so
    // it runs again whenever an installed file, mode or owner is meant to change).
    const b = new StepBuilder(l, 'expected-state', x);
    const manifest = JSON.stringify(x.build(), null, 2) + '\n';
    const body = `install_file ${b.stage(EXPECTED_STATE_FILE, manifest, '0644', 'root')} ${shq(l.expectedStateFile)} 0644 root root`;
    steps.push(step(cfg, 'expected-state', steps.map((st) => st.name as StepName), body, b.files));
  }
  return steps;
}

/** Material with every secret replaced by a fixed placeholder (and the public parts kept): building the plan with it gives the scripts and files, never a secret. */
export function withoutSecrets(m: PlanMaterial): PlanMaterial {
  return {
    ...m,
    signingKeyArmored: '(secret)',
    htpasswd: '(secret)',
    ...(m.tlsKey !== undefined ? { tlsKey: '(secret)' } : {}),
  };
}

/** SHA-256 (hex) of a local file (the bundle: a few MB, read at once). Throws the fs error when it is missing. */
export function fileSha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Copies of `steps` where every file with `localPath` has its `content` read from it (UTF-8), for a replay that uploads strings. */
export function inlineLocalFiles(steps: PlanStep[]): PlanStep[] {
  return steps.map((s) => ({ ...s, files: s.files.map((f) => (f.localPath ? { ...f, content: fs.readFileSync(f.localPath, 'utf8') } : f)) }));
}

/** The paths that hold everything needed to restore the channel identically: settings/layout.ts, re-exported. */
export { backupPaths };
