/**
 * The `dev` stack's repository server: a local Docker container built and run with @pulumi/docker
 * from the same image CI's systemd-host test runs (infra/devDockerfile.ts: Debian 12, systemd as PID
 * 1, sshd), its SSH, HTTP and HTTPS ports published on 127.0.0.1 only.
 *
 * The container runs with what systemd needs (DEV_CONTAINER_RUN: SYS_ADMIN and SYS_PTRACE,
 * seccomp unconfined, tmpfs /run and /run/lock, /sys/fs/cgroup read-only, /sbin/init, SIGRTMIN+3
 * to stop), measured on a cgroup v1 (hybrid) host. Its SSH host key is generated once by a
 * DevHostKey resource (infra/devHostKey.ts) and uploaded before the first start (mode 0600; the
 * image's boot unit fixes owner and mode again), so `hostPublicKey` can be pinned in the stack's
 * SSH connection.
 */
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as fs from 'fs';
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { DEV_CONTAINER_RUN, HOST_KEY_PATH, renderDevDockerfile } from './devDockerfile';
import { DevHostKey } from './devHostKey';

/** Arguments of DevServer. */
export interface DevServerArgs {
  devContainer: NonNullable<StackConfig['devContainer']>;
  /** Ports nginx listens on inside the container (the stack's httpPort/httpsPort). */
  httpPort: number;
  httpsPort: number;
  /** Build context directory; default: <project>/.cache/dev-server-<name> (private, 0700). */
  buildDir?: string;
}

/** sshd's port inside the container (the image's default); Docker publishes it on devContainer.sshPort. */
export const DEV_SSH_PORT_INSIDE = 22;

/**
 * The container's arguments besides image, name and uploads: what systemd needs, and the ports
 * published on 127.0.0.1 (devContainer.* outside, the stack's ports inside). Pure: the mocks test
 * reads it through the registered inputs.
 */
export function devContainerRunArgs(
  args: Pick<DevServerArgs, 'devContainer' | 'httpPort' | 'httpsPort'>,
): Pick<docker.ContainerArgs, 'capabilities' | 'securityOpts' | 'tmpfs' | 'volumes' | 'command' | 'stopSignal' | 'ports'> {
  const d = args.devContainer;
  const r = DEV_CONTAINER_RUN;
  return {
    capabilities: { adds: [...r.capAdd] },
    securityOpts: [...r.securityOpts],
    tmpfs: Object.fromEntries(r.tmpfs.map((t) => [t, ''])),
    volumes: r.readOnlyBinds.map(([hostPath, containerPath]) => ({ hostPath, containerPath, readOnly: true })),
    command: [...r.command],
    stopSignal: r.stopSignal,
    ports: [
      { internal: DEV_SSH_PORT_INSIDE, external: d.sshPort, ip: '127.0.0.1' },
      { internal: args.httpPort, external: d.httpPort, ip: '127.0.0.1' },
      { internal: args.httpsPort, external: d.httpsPort, ip: '127.0.0.1' },
    ],
  };
}

/** A Debian 12 container with systemd and sshd, for the dev stack. */
export class DevServer extends pulumi.ComponentResource {
  readonly container: docker.Container;
  /** Where the SSH port is published: 127.0.0.1:<sshPort>. */
  readonly sshHost: pulumi.Output<string>;
  readonly sshPort: pulumi.Output<number>;
  /** The container's SSH host key, 'ssh-ed25519 AAAA…': the stack's connection pins it (`hostKey`). */
  readonly hostPublicKey: pulumi.Output<string>;

  /**
   * Writes the rendered Dockerfile into the build directory (the docker provider builds from a
   * path), then declares the host key, the image and the container. Throws Error for a bad
   * authorizedKey or baseImage (renderDevDockerfile).
   */
  constructor(name: string, args: DevServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:DevServer', name, {}, opts);
    const d = args.devContainer;
    const dockerfile = renderDevDockerfile({ authorizedKey: d.authorizedKey, baseImage: d.baseImage, sshPort: DEV_SSH_PORT_INSIDE });
    // Not a fixed name in the shared /tmp: another local user could create it first and own the
    // build context (swap the Dockerfile, add an authorized key to the image).
    const buildDir = args.buildDir ?? path.resolve(__dirname, '..', '.cache', `dev-server-${name}`);
    fs.mkdirSync(buildDir, { recursive: true, mode: 0o700 });
    const file = path.join(buildDir, 'Dockerfile');
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== dockerfile) fs.writeFileSync(file, dockerfile);
    const hostKey = new DevHostKey(`${name}-host-key`, { comment: `${name}-apt-repo` }, { parent: this });
    const image = new docker.Image(
      `${name}-image`,
      { imageName: d.imageName, build: { context: buildDir, dockerfile: file }, skipPush: true },
      { parent: this },
    );
    this.container = new docker.Container(
      `${name}-container`,
      {
        image: image.repoDigest,
        name: `${name}-apt-repo`,
        restart: 'unless-stopped',
        ...devContainerRunArgs(args),
        // Copied in before the first start; the image's apt-repo-host-key.service makes it 0600 root's again.
        uploads: [{ file: HOST_KEY_PATH, content: pulumi.secret(hostKey.privateKey), permissions: '0600' }],
      },
      { parent: this },
    );
    this.sshHost = pulumi.output('127.0.0.1');
    this.sshPort = pulumi.output(d.sshPort);
    this.hostPublicKey = hostKey.publicKey;
    this.registerOutputs({ sshHost: this.sshHost, sshPort: this.sshPort, hostPublicKey: this.hostPublicKey });
  }
}
