/**
 * Test harness: a Debian 12 server with systemd as PID 1, in a Docker container, reachable over SSH
 * on 127.0.0.1 — the real target host of test/replay/systemd-host.e2e.test.ts.
 *
 * The image is the dev stack's (infra/devDockerfile.ts renderDevDockerfile), built FROM the base
 * image scripts/debian-base-image.sh makes with debootstrap (Docker's registry is unreachable in
 * CI). Both are cached by tag: the base by its fixed tag, the server image by a tag derived from
 * the Dockerfile's SHA-256. The container runs on the host network (dockerd runs with
 * `--bridge=none`, scripts/dockerd.sh), so its sshd listens on a free port of 127.0.0.1 and the
 * plan's nginx on the stack's ports; it runs with the options systemd needs (DEV_CONTAINER_RUN).
 * The SSH host key is made here and copied in before the first start (as the dev stack's upload
 * does), so the connection pins it.
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DEV_CONTAINER_RUN, HOST_KEY_PATH, renderDevDockerfile } from '../../infra/devDockerfile';
import { findFreePort } from './nginx';
import { mkTemp, rmTemp } from './cli';

const projectRoot = path.resolve(__dirname, '..', '..');
/** The debootstrapped base image (scripts/debian-base-image.sh's default tag). */
export const BASE_IMAGE = 'apt-repo-base:bookworm';

/** The result of a command run to completion. */
export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` synchronously (no shell), `input` on stdin; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): CmdResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Like run, but throws an Error with the command and its stderr tail when it exits non-zero. */
export function mustRun(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}:\n${(r.stderr + r.stdout).slice(-4000)}`);
  return r.stdout;
}

/** Whether a Docker daemon answers; `reason` says why not. */
export function dockerReachable(): { ok: boolean; reason: string } {
  const r = run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 });
  return r.code === 0
    ? { ok: true, reason: `docker ${r.stdout.trim()}` }
    : { ok: false, reason: (r.stderr || r.stdout).trim().split('\n').slice(-1)[0] || `docker info exited with ${r.code}` };
}

/**
 * Decides whether the systemd-host tests run. Tries `docker info`, and when it fails and this
 * process is root, `bash scripts/dockerd.sh` once. In CI (`CI` set) an unreachable daemon is a
 * failure: throws Error with the reason (CI must start dockerd, .ci/run does). Elsewhere returns
 * { run: false, reason } so the caller skips with a printed reason.
 */
export function requireDocker(): { run: boolean; reason: string } {
  let d = dockerReachable();
  if (!d.ok && process.getuid?.() === 0 && fs.existsSync('/usr/sbin/dockerd')) {
    const s = run('bash', [path.join(projectRoot, 'scripts/dockerd.sh')], { timeoutMs: 120_000 });
    d = dockerReachable();
    if (!d.ok) d = { ok: false, reason: `${d.reason}; scripts/dockerd.sh: ${s.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
  if (d.ok) return { run: true, reason: d.reason };
  if (process.env.CI)
    throw new Error(
      `CI is set but Docker is unreachable (${d.reason}): the systemd host test cannot be skipped in CI; run scripts/dockerd.sh first`,
    );
  return { run: false, reason: `Docker is unreachable (${d.reason}); install docker.io and run scripts/dockerd.sh as root` };
}

/** Whether an image with `tag` exists locally. */
export function imageExists(tag: string): boolean {
  return run('docker', ['image', 'inspect', tag], { timeoutMs: 30_000 }).code === 0;
}

/** Builds the debootstrapped base image unless it exists (scripts/debian-base-image.sh). Throws with the script's output tail on failure. */
export function ensureBaseImage(tag = BASE_IMAGE): void {
  if (imageExists(tag)) return;
  mustRun('bash', [path.join(projectRoot, 'scripts/debian-base-image.sh'), tag], { timeoutMs: 900_000 });
}

/** Options of startSystemdHost. */
export interface SystemdHostOptions {
  /** Public key line authorised for root (the pair of the key the replay connects with). */
  authorizedKey: string;
  /** Prefix of the container name (a random suffix is added). */
  namePrefix?: string;
  /** How long to wait for systemd and sshd (default 120 s). */
  bootTimeoutMs?: number;
}

/** A running systemd container. */
export interface SystemdHost {
  name: string;
  image: string;
  sshHost: string;
  sshPort: number;
  /** The pinned host key's public line ('ssh-ed25519 AAAA…'). */
  hostPublicKey: string;
  /** `systemctl is-system-running` after boot ('running' or 'degraded'). */
  bootState: string;
  /** Seconds spent building images (0 when both were cached) and booting. */
  timings: { baseImageS: number; serverImageS: number; bootS: number };
  /** `docker exec <name> <args…>` (no shell), `input` on stdin; never throws on a non-zero exit. */
  exec(args: string[], input?: string): CmdResult;
  /** `docker exec <name> bash -c <script>`; throws Error with stderr when it exits non-zero. */
  sh(script: string, input?: string): string;
  /** Removes the container (docker rm -f; kept when APT_REPO_KEEP_CONTAINER=1); never throws. */
  remove(): void;
}

/**
 * Builds (or reuses) the base and server images, creates the container with the systemd options on
 * the host network, copies a fresh SSH host key in, starts it, and waits until systemd reports
 * `running` or `degraded` (its failed units printed) and sshd accepts TCP connections. The caller
 * must call `remove()` (afterAll) — on a boot failure this function removes the container itself
 * and throws Error with the boot state, failed units and the journal's tail.
 */
export async function startSystemdHost(o: SystemdHostOptions): Promise<SystemdHost> {
  const t0 = Date.now();
  ensureBaseImage();
  const t1 = Date.now();
  const sshPort = await findFreePort();
  // The port is part of the image (sshd's drop-in); the tag follows the Dockerfile, so two runs
  // with different ports build two small layers on the cached base rather than one image each time.
  const dockerfile = renderDevDockerfile({ authorizedKey: o.authorizedKey, baseImage: BASE_IMAGE, sshPort, sshListenAddress: '127.0.0.1' });
  const image = `apt-repo-server-test:${crypto.createHash('sha256').update(dockerfile).digest('hex').slice(0, 16)}`;
  if (!imageExists(image)) {
    const ctx = mkTemp('server-image');
    try {
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
      // The legacy builder's RUN steps need a network: with --bridge=none only the host's exists.
      mustRun('docker', ['build', '--network', 'host', '-q', '-t', image, ctx], { timeoutMs: 900_000 });
    } finally {
      rmTemp(ctx);
    }
  }
  const t2 = Date.now();

  const name = `${o.namePrefix ?? 'apt-repo-systemd'}-${crypto.randomBytes(4).toString('hex')}`;
  const keyDir = mkTemp('host-key');
  let hostPublicKey: string;
  try {
    mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(keyDir, 'key')]);
    hostPublicKey = fs.readFileSync(path.join(keyDir, 'key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const r = DEV_CONTAINER_RUN;
    mustRun('docker', [
      'create',
      '--name',
      name,
      '--network',
      'host',
      ...r.capAdd.flatMap((c) => ['--cap-add', c]),
      ...r.securityOpts.flatMap((s) => ['--security-opt', s]),
      ...r.tmpfs.flatMap((t) => ['--tmpfs', t]),
      ...r.readOnlyBinds.flatMap(([h, c]) => ['-v', `${h}:${c}:ro`]),
      '--stop-signal',
      r.stopSignal,
      image,
      ...r.command,
    ]);
    mustRun('docker', ['cp', path.join(keyDir, 'key'), `${name}:${HOST_KEY_PATH}`]);
  } catch (err) {
    run('docker', ['rm', '-f', name]);
    throw err;
  } finally {
    rmTemp(keyDir);
  }

  const exec = (args: string[], input?: string) =>
    run('docker', ['exec', ...(input !== undefined ? ['-i'] : []), name, ...args], { input });
  const host: SystemdHost = {
    name,
    image,
    sshHost: '127.0.0.1',
    sshPort,
    hostPublicKey,
    bootState: '',
    timings: { baseImageS: (t1 - t0) / 1000, serverImageS: (t2 - t1) / 1000, bootS: 0 },
    exec,
    sh(script, input) {
      const res = exec(['bash', '-c', script], input);
      if (res.code !== 0) throw new Error(`in ${name}: ${script}\nexited with ${res.code}:\n${(res.stderr + res.stdout).slice(-4000)}`);
      return res.stdout;
    },
    remove: () => {
      // For a post-mortem: APT_REPO_KEEP_CONTAINER=1 leaves it running (remove it with docker rm -f).
      if (process.env.APT_REPO_KEEP_CONTAINER === '1')
        console.log(`kept container ${name} (APT_REPO_KEEP_CONTAINER=1): docker exec -it ${name} bash`);
      else run('docker', ['rm', '-f', name], { timeoutMs: 60_000 });
    },
  };
  try {
    mustRun('docker', ['start', name]);
    const deadline = Date.now() + (o.bootTimeoutMs ?? 120_000);
    let state = '';
    for (;;) {
      // `--wait` would block forever on a unit stuck in activation; poll instead.
      state = exec(['systemctl', 'is-system-running']).stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      if (Date.now() > deadline) throw new Error(`systemd did not finish booting (state '${state}')`);
      await new Promise((res) => setTimeout(res, 250));
    }
    if (state === 'degraded')
      console.log(`systemd host ${name} is degraded; failed units:\n${exec(['systemctl', '--failed', '--no-legend']).stdout}`);
    host.bootState = state;
    while (exec(['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${sshPort}`]).code !== 0) {
      if (Date.now() > deadline) throw new Error(`sshd does not listen on 127.0.0.1:${sshPort}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  } catch (err) {
    const journal = exec(['journalctl', '-b', '--no-pager', '-n', '60']).stdout;
    const failed = exec(['systemctl', '--failed', '--no-legend']).stdout;
    host.remove();
    throw new Error(`${(err as Error).message}\nfailed units:\n${failed}\njournal:\n${journal}`);
  }
  host.timings.bootS = (Date.now() - t2) / 1000;
  return host;
}
