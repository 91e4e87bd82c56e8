/**
 * The `dev` stack's repository server: a local Docker container (infra/devDockerfile.ts) built and
 * run with @pulumi/docker, its SSH, HTTP and HTTPS ports published on 127.0.0.1 only.
 */
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as fs from 'fs';
import * as path from 'path';
import type { StackConfig } from '../stacks/config';
import { renderDevDockerfile } from './devDockerfile';

/** Arguments of DevServer. */
export interface DevServerArgs {
  devContainer: NonNullable<StackConfig['devContainer']>;
  /** Ports nginx listens on inside the container (the stack's httpPort/httpsPort). */
  httpPort: number;
  httpsPort: number;
  /** Build context directory; default: <project>/.cache/dev-server-<name> (private, 0700). */
  buildDir?: string;
}

/** A Debian 12 container with sshd, for the dev stack. */
export class DevServer extends pulumi.ComponentResource {
  readonly container: docker.Container;
  /** Where the SSH port is published: 127.0.0.1:<sshPort>. */
  readonly sshHost: pulumi.Output<string>;
  readonly sshPort: pulumi.Output<number>;

  /**
   * Writes the rendered Dockerfile into the build directory (the docker provider builds from a
   * path), then declares the image and the container. Throws Error for a bad authorizedKey.
   */
  constructor(name: string, args: DevServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:DevServer', name, {}, opts);
    const dockerfile = renderDevDockerfile(args.devContainer.authorizedKey);
    // Not a fixed name in the shared /tmp: another local user could create it first and own the
    // build context (swap the Dockerfile, add an authorized key to the image).
    const buildDir = args.buildDir ?? path.resolve(__dirname, '..', '.cache', `dev-server-${name}`);
    fs.mkdirSync(buildDir, { recursive: true, mode: 0o700 });
    const file = path.join(buildDir, 'Dockerfile');
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== dockerfile) fs.writeFileSync(file, dockerfile);
    const image = new docker.Image(
      `${name}-image`,
      { imageName: args.devContainer.imageName, build: { context: buildDir, dockerfile: file }, skipPush: true },
      { parent: this },
    );
    const d = args.devContainer;
    this.container = new docker.Container(
      `${name}-container`,
      {
        image: image.repoDigest,
        name: `${name}-apt-repo`,
        restart: 'unless-stopped',
        ports: [
          { internal: 22, external: d.sshPort, ip: '127.0.0.1' },
          { internal: args.httpPort, external: d.httpPort, ip: '127.0.0.1' },
          { internal: args.httpsPort, external: d.httpsPort, ip: '127.0.0.1' },
        ],
      },
      { parent: this },
    );
    this.sshHost = pulumi.output('127.0.0.1');
    this.sshPort = pulumi.output(d.sshPort);
    this.registerOutputs({ sshHost: this.sshHost, sshPort: this.sshPort });
  }
}
