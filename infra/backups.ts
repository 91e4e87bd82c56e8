/**
 * Nightly backups of a channel: the 'backup-units' plan step (a systemd service running
 * `apt-repo backup --to <backupDir>` and its timer), and the list of paths that hold everything
 * needed to restore the channel identically.
 */
import * as pulumi from '@pulumi/pulumi';
import { backupPaths, channelLayout, type BackupConfig } from './layout';
import { STEP_OWNERS } from './plan';
import { attachSteps, type Connection, type PlanSource, type StepCommands } from './remoteSteps';

/** Arguments of Backups. */
export interface BackupsArgs {
  /** Where the channel lives (what backupPaths reads). */
  config: BackupConfig;
  connection: Connection;
  plan: PlanSource;
  /**
   * Commands of the steps attached before (HostBase's and Channel's): 'indexer' for the backup
   * units, and every step for the expected state, which records what they installed.
   */
  after: StepCommands;
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
    attachSteps({
      parent: this,
      baseName: name,
      connection: args.connection,
      plan: args.plan,
      steps: STEP_OWNERS.backups,
      after: args.after,
    });
    this.paths = pulumi.output(backupPaths(args.config));
    this.backupDir = pulumi.output(channelLayout(args.config).backupDir);
    this.registerOutputs({ paths: this.paths, backupDir: this.backupDir });
  }
}
