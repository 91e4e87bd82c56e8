/**
 * The Dockerfile of the repository server image: Debian 12 with systemd as PID 1 and sshd (root
 * login by key only), nothing else. The plan's host-base step installs nginx, nodejs … from
 * Debian's archive exactly as on a real server, and `services: systemd` enables the units.
 *
 * ONE image for two users, so what a developer tries on a laptop is what CI tested:
 * - the `dev` stack (infra/devServer.ts) builds it FROM debian:bookworm (pulled from Docker's
 *   registry) or FROM a local base image, and publishes sshd's port 22 on 127.0.0.1;
 * - the systemd-host test (test/harness/container.ts) builds it FROM the debootstrapped base
 *   (scripts/debian-base-image.sh: the registry is unreachable in CI) and runs it on the host
 *   network, so sshd listens on a free port of its own (and on 127.0.0.1 only).
 * The container needs the options systemd needs in a container (SYS_ADMIN, SYS_PTRACE, seccomp unconfined,
 * tmpfs /run and /run/lock, /sys/fs/cgroup read-only, `/sbin/init`): DEV_CONTAINER_RUN below.
 *
 * The SSH host key: sshd uses one key only, HOST_KEY_PATH. When a key was put there before the
 * container first started (the dev stack's pinned key, a docker.Container upload; the test's
 * `docker cp`), the boot unit apt-repo-host-key.service makes it root's, 0600, and derives its
 * public half; otherwise it generates one. Either way before ssh.service starts.
 *
 * Nginx's default site (Debian's postinst links it on a first install when
 * /etc/nginx/sites-enabled/default does not exist) would listen on port 80 of the host network:
 * the image holds an empty regular file at that path, so the link is never made.
 */

/** Where sshd reads its only host key in the image (the dev stack uploads its pinned key here). */
export const HOST_KEY_PATH = '/etc/ssh/apt-repo-host-key/ssh_host_ed25519_key';

/**
 * What `docker run` needs so systemd 252 boots in the container and runs the plan's hardened units
 * as on a real host (measured on a hybrid cgroup v1 host; `--privileged` is not needed, and fails
 * where the machine's bounding set lacks CAP_SYS_RESOURCE). SYS_PTRACE: without it, a unit with
 * both PrivateUsers=yes and ProtectProc=invisible (the signer) fails at spawn with "Failed to set
 * up user namespacing" (217/USER) — systemd's helper cannot see its parent under hidepid; a real
 * host's root has the capability.
 */
export const DEV_CONTAINER_RUN = {
  capAdd: ['SYS_ADMIN', 'SYS_PTRACE'],
  securityOpts: ['seccomp=unconfined'],
  tmpfs: ['/run', '/run/lock'],
  /** Bind mount host path → container path, read-only. */
  readOnlyBinds: [['/sys/fs/cgroup', '/sys/fs/cgroup']] as [string, string][],
  command: ['/sbin/init'],
  stopSignal: 'SIGRTMIN+3',
} as const;

/** Options of renderDevDockerfile. */
export interface DevDockerfileOptions {
  /** The public half of the stack's sshPrivateKey, one OpenSSH line (public: it is in the image). */
  authorizedKey: string;
  /** The image to build FROM (default 'debian:bookworm'; CI: the debootstrapped 'apt-repo-base:bookworm'). */
  baseImage?: string;
  /** The port sshd listens on inside the container (default 22). */
  sshPort?: number;
  /** The address sshd listens on (default: every address; CI's host network: '127.0.0.1'). */
  sshListenAddress?: string;
}

const KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-\S+) [A-Za-z0-9+/]+={0,2}( [^\n'\\]*)?$/;
const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;
const ADDRESS_RE = /^[0-9A-Fa-f.:]+$/;

/** The boot unit that fixes (or makes) the host key before sshd starts. */
function hostKeyUnit(): string {
  return [
    '[Unit]',
    'Description=SSH host key of the apt-repo server image (pinned when one was put in place)',
    'Before=ssh.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    'ExecStart=/usr/local/sbin/apt-repo-host-key',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    'RequiredBy=ssh.service',
    '',
  ].join('\n');
}

/** The script of that unit: an uploaded key may arrive with any mode; sshd refuses one others can read. */
function hostKeyScript(): string {
  return [
    '#!/bin/sh',
    'set -eu',
    `key=${HOST_KEY_PATH}`,
    'if [ -s "$key" ]; then',
    '  chown root:root "$key"',
    '  chmod 0600 "$key"',
    'else',
    '  rm -f "$key" "$key.pub"',
    '  ssh-keygen -q -t ed25519 -N "" -f "$key"',
    'fi',
    'ssh-keygen -y -f "$key" > "$key.pub"',
    '',
  ].join('\n');
}

/** `printf '%s\n' 'line' …` writing `text` to `dest` in one RUN (lines single-quoted; none may hold a quote). */
function writeFile(text: string, dest: string): string {
  const lines = text.replace(/\n$/, '').split('\n');
  for (const l of lines) if (l.includes("'")) throw new Error(`dev Dockerfile: a line of ${dest} holds a single quote`);
  return `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')} > ${dest}`;
}

/**
 * Renders the Dockerfile (see the module comment). Deterministic: the same options give the same
 * text. Throws Error naming the option when `authorizedKey` is not a single OpenSSH public key
 * line, `baseImage` is not an image reference, `sshPort` is not a TCP port, or `sshListenAddress`
 * is not an IP address.
 */
export function renderDevDockerfile(o: DevDockerfileOptions | string): string {
  const opts: DevDockerfileOptions = typeof o === 'string' ? { authorizedKey: o } : o;
  const key = opts.authorizedKey.trim();
  if (!KEY_RE.test(key)) throw new Error('dev Dockerfile: authorizedKey must be one OpenSSH public key line');
  const base = opts.baseImage ?? 'debian:bookworm';
  if (!IMAGE_RE.test(base)) throw new Error(`dev Dockerfile: baseImage '${base}' is not an image reference`);
  const port = opts.sshPort ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`dev Dockerfile: sshPort ${port} is not a TCP port`);
  if (opts.sshListenAddress !== undefined && !ADDRESS_RE.test(opts.sshListenAddress)) {
    throw new Error(`dev Dockerfile: sshListenAddress '${opts.sshListenAddress}' is not an IP address`);
  }
  // Read first (sshd_config includes sshd_config.d/*.conf at its top; the first value of a keyword
  // wins), so the plan's own drop-ins cannot reopen password or root-password logins.
  const sshd = [
    '# apt-repo server image: root by key only, one pinned host key.',
    `Port ${port}`,
    ...(opts.sshListenAddress ? [`ListenAddress ${opts.sshListenAddress}`] : []),
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `HostKey ${HOST_KEY_PATH}`,
  ].join('\n');
  return `# Rendered by the apt-repo Pulumi program (infra/devDockerfile.ts): the dev stack's server and CI's systemd host.
FROM ${base}
ENV container=docker
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \\
 && rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub \\
 && mkdir -p -m 0700 /root/.ssh ${HOST_KEY_PATH.replace(/\/[^/]+$/, '')} \\
 && mkdir -p /etc/nginx/sites-enabled \\
 && printf '# Empty on purpose: no default nginx site in the apt-repo server image.\\n' > /etc/nginx/sites-enabled/default \\
 && ${writeFile(hostKeyScript(), '/usr/local/sbin/apt-repo-host-key')} \\
 && chmod 0755 /usr/local/sbin/apt-repo-host-key \\
 && ${writeFile(hostKeyUnit(), '/etc/systemd/system/apt-repo-host-key.service')} \\
 && systemctl enable apt-repo-host-key.service ssh.service \\
 && systemctl mask getty@tty1.service console-getty.service systemd-logind.service
# The per-use settings last, so a different port or key reuses the cached layer above.
RUN ${writeFile(sshd, '/etc/ssh/sshd_config.d/00-apt-repo-image.conf')} \\
 && printf '%s\\n' '${key}' > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
EXPOSE ${port} 80 443
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
`;
}
