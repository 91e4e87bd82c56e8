import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import type { ChannelConfig, Progress } from '../core/types';
import { loadChannel } from '../repo/channel';

/**
 * Options every apt-repo command accepts (declared once on the root program).
 * - root: prefix under which every default path lives ('/' in production; a sandbox in tests).
 * - channel: the channel the command acts on (preprod, prod, …).
 * - json: print machine-readable JSON on stdout; turns progress bars off.
 */
export interface GlobalOptions {
  root: string;
  channel: string;
  json: boolean;
  debug: boolean;
}

/** What a command returns: `data` is printed as JSON with --json, `human` otherwise; `exitCode` defaults to 0. */
export interface CommandResult {
  data: unknown;
  human: string;
  exitCode?: number;
}

/** Reads the global options from any (sub)command. */
export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  return {
    root: String(o.root ?? '/'),
    channel: String(o.channel ?? 'preprod'),
    json: Boolean(o.json),
    debug: Boolean(o.debug),
  };
}

/** The channel loaded for each command run (see commandChannel). */
const loadedChannels = new WeakMap<Command, Promise<ChannelConfig>>();

/**
 * The channel `--channel` names under `--root`, loaded once per command run: the start-up checks
 * (apt-repo.ts, the owner of a writing command's web root) and the command's action get the same
 * ChannelConfig. Rejects as loadChannel does (UnknownChannelError, ConfigError), and again with the
 * same error when asked again.
 */
export function commandChannel(cmd: Command): Promise<ChannelConfig> {
  let loaded = loadedChannels.get(cmd);
  if (loaded === undefined) {
    const g = globals(cmd);
    loaded = loadChannel({ root: g.root, channel: g.channel });
    loadedChannels.set(cmd, loaded);
  }
  return loaded;
}

/**
 * Wraps a command implementation as a commander action: the implementation gets the positional
 * arguments, the command's own options merged with the global ones, and returns a CommandResult,
 * which is printed on stdout (JSON with --json). Errors propagate to the CLI edge in apt-repo.ts.
 */
export function action<O extends object>(
  impl: (args: string[], opts: O & GlobalOptions, cmd: Command) => Promise<CommandResult>,
): (...raw: unknown[]) => Promise<void> {
  return async (...raw: unknown[]) => {
    const cmd = raw[raw.length - 1] as Command;
    const args = (cmd.args ?? []).map(String);
    const opts = { ...(cmd.opts() as O), ...globals(cmd) };
    const result = await impl(args, opts, cmd);
    if (opts.json) process.stdout.write(JSON.stringify(result.data, null, 2) + '\n');
    else if (result.human) process.stdout.write(result.human.endsWith('\n') ? result.human : result.human + '\n');
    process.exitCode = result.exitCode ?? 0;
  };
}

/**
 * Creates the CLI's Progress (core/types.ts): a bar on stderr when stderr is a terminal and --json
 * is off, silent otherwise.
 */
export function progressFor(opts: { json: boolean }): Progress {
  if (opts.json || !process.stderr.isTTY) return { start() {}, tick() {}, stop() {} };
  const bar = new SingleBar(
    { stream: process.stderr, format: '{label} [{bar}] {value}/{total}', hideCursor: true },
    Presets.shades_classic,
  );
  let running = false;
  return {
    start(total, label) {
      bar.start(total, 0, { label });
      running = true;
    },
    tick(n = 1) {
      if (running) bar.increment(n);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

/** Renders rows as an aligned text table with a header line; cells are converted with String(). */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === null ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
