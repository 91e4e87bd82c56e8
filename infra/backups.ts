/**
 * Nightly backups of a channel: the 'backup-units' plan step (a systemd service running
 * `apt-repo backup --to <backupDir>` and its timer), and the list of paths that hold everything
 * needed to restore the channel identically.
 */
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { channelLayout } from './layout';
import { backupPaths, STEP_OWNERS } from './plan';
import { attachSteps, type Connection, type PlanSource } from './remoteSteps';

/** Arguments of Backups. */
export interface BackupsArgs {
  config: StackConfig;
  connection: Connection;
  plan: PlanSource;
  /** Commands attached so far, by step name ('indexer' must be there). */
  done: Map<string, pulumi.Resource>;
}

/** Installs the backup units and exposes what to back up. */
export class Backups extends pulumi.ComponentResource {
  /** Absolute server paths to back up (config dir with the signing key, web root, state, drop zones). */
  readonly paths: pulumi.Output<string[]>;
  /** Where the nightly backup is written on the server. */
  readonly backupDir: pulumi.Output<string>;

  /** Throws Error when the indexer step is not attached yet. */
  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('apt-repo:index:Backups', name, {}, opts);
    attachSteps({ parent: this, baseName: name, connection: args.connection, plan: args.plan, steps: STEP_OWNERS.backups, done: args.done });
    this.paths = pulumi.output(backupPaths(args.config));
    this.backupDir = pulumi.output(channelLayout(args.config).backupDir);
    this.registerOutputs({ paths: this.paths, backupDir: this.backupDir });
  }
}
