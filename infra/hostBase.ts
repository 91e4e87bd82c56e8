/**
 * The host-wide base of the repository server: packages, the service user, parent directories
 * (the 'host-base' plan step, infra/hostBaseScript.ts). Idempotent and shared by every channel's
 * stack; it has no delete command, so destroying a stack never undoes it.
 */
import * as pulumi from '@pulumi/pulumi';
import { STEP_OWNERS } from './plan';
import { attachSteps, type Connection, type PlanSource, type StepCommands } from './remoteSteps';

/** Arguments of HostBase. */
export interface HostBaseArgs {
  connection: Connection;
  plan: PlanSource;
  /** Resources to wait for first (the dev container). */
  dependsOn?: pulumi.Resource[];
}

/** Runs the host base step on the server. */
export class HostBase extends pulumi.ComponentResource {
  /** The remote command of the step (other steps depend on it). */
  readonly command: pulumi.Resource;
  /** The command by step name ('host-base'): what the channel's steps depend on. */
  readonly commands: StepCommands;

  /** Throws Error when the plan has no host-base step. */
  constructor(name: string, args: HostBaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:HostBase', name, {}, opts);
    const attached = attachSteps({
      parent: this,
      baseName: name,
      connection: args.connection,
      plan: args.plan,
      steps: STEP_OWNERS.hostBase,
      after: {},
      dependsOn: args.dependsOn,
    });
    const cmd = attached['host-base'];
    if (!cmd) throw new Error(`HostBase ${name}: the plan has no host-base step`);
    this.command = cmd;
    this.commands = attached;
    this.registerOutputs({});
  }
}
