/**
 * `apt-repo metrics [--to <dir>]`: the channel's facts (repo/status.ts) as Prometheus metrics
 * (repo/metrics.ts): printed, or written to `<dir>/apt_repo_<channel>.prom` for node_exporter's
 * textfile collector. With repo.yaml `metricsDir`, every writing command also leaves that file
 * there when it succeeds (cli/apt-repo.ts). Reads the channel only.
 */
import type { Command } from 'commander';
import { action, commandChannel } from '../context';
import type { ChannelConfig } from '../../core/types';

/** Writes the metrics of `ch` into `dir`; resolves to the file written. */
export async function writeChannelMetrics(ch: ChannelConfig, dir: string): Promise<string> {
  const { channelStatus } = await import('../../repo/status');
  const { writeMetrics } = await import('../../repo/metrics');
  return writeMetrics(dir, await channelStatus(ch.root, ch));
}

/** Registers `metrics` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('metrics')
    .description("the channel's facts as Prometheus metrics (node_exporter textfile format): printed, or written with --to")
    .option('--to <dir>', 'write <dir>/apt_repo_<channel>.prom (through a temp name and a rename) instead of printing')
    .action(
      action<{ to?: string }>(async (_args, o, cmd) => {
        const ch = await commandChannel(cmd);
        if (o.to) {
          const file = await writeChannelMetrics(ch, o.to);
          return { data: { file }, human: `wrote ${file}` };
        }
        const { channelStatus } = await import('../../repo/status');
        const { renderMetrics } = await import('../../repo/metrics');
        const text = await renderMetrics(await channelStatus(ch.root, ch));
        return { data: { metrics: text }, human: text };
      }),
    );
}
