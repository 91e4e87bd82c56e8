/**
 * The signing service of a channel (sign/service.ts), run as the account that owns the private
 * key, never as the indexer:
 * - `apt-repo --root R --channel C sign --stdio`: one request on stdin, its answer on stdout (systemd
 *   socket activation with Accept=yes, StandardInput=socket, StandardOutput=socket). Exit 0 when it
 *   signed, 1 when it refused (the reason is in the answer and on stderr).
 * - `apt-repo --root R --channel C sign-server [--socket PATH] [--pidfile FILE]`: a long-running
 *   server on a Unix socket (hosts without systemd). PATH defaults to repo.yaml signerSocket, else
 *   `<root>/run/apt-repo/sign-<channel>/sign.sock`. SIGTERM or SIGINT stops it cleanly (socket and
 *   pidfile removed, exit 0).
 * Both read the key from the channel's signingKeyFile once, at start, and nothing from the pool;
 * each signature or refusal is one line on stderr.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { globals } from '../context';
import { ConfigError, UsageError } from '../../errors';

/** Loads the channel and its key (the only files the service reads). */
async function loadService(root: string, channel: string) {
  const { loadChannel } = await import('../../repo/channel');
  const ch = await loadChannel({ root, channel });
  let armored: string;
  try {
    armored = fs.readFileSync(ch.signingKeyFile, 'utf8');
  } catch (e) {
    throw new ConfigError(ch.signingKeyFile, `cannot read the signing key: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { loadSigner } = await import('../../sign/sign');
  const signer = await loadSigner(armored, undefined, ch.signingKeyFile);
  return { ch, signer };
}

const logLine = (prefix: string) => (line: string) => void process.stderr.write(`${prefix}: ${line}\n`);

/** Registers `sign` and `sign-server` on the apt-repo program. */
export function register(program: Command): void {
  program
    .command('sign')
    .description('signing service, one request: read a Release on stdin, answer one JSON line on stdout (systemd Accept=yes)')
    .option('--stdio', 'request on stdin, answer on stdout (required)', false)
    .action(async (o: { stdio: boolean }, cmd: Command) => {
      if (!o.stdio) throw new UsageError('sign: --stdio is required (use sign-server for a Unix socket)');
      const g = globals(cmd);
      const { serveOne } = await import('../../sign/service');
      const { ch, signer } = await loadService(g.root, g.channel);
      const answer = await serveOne(process.stdin, process.stdout, ch, signer, logLine(`apt-repo sign ${ch.name}`));
      process.exitCode = answer.ok ? 0 : 1;
    });

  program
    .command('sign-server')
    .description('signing service on a Unix socket, until SIGTERM/SIGINT (hosts without systemd)')
    .option('--socket <path>', 'socket path (default: repo.yaml signerSocket, else <root>/run/apt-repo/sign-<channel>/sign.sock)')
    .option('--pidfile <file>', 'write the process id there once listening; removed on exit')
    .action(async (o: { socket?: string; pidfile?: string }, cmd: Command) => {
      const g = globals(cmd);
      const { startSignServer } = await import('../../sign/service');
      const { defaultSignerSocket } = await import('../../repo/channel');
      const { ch, signer } = await loadService(g.root, g.channel);
      const socketPath = path.resolve(o.socket ?? ch.signerSocket ?? defaultSignerSocket(g.root, ch.name));
      const log = logLine(`apt-repo sign-server ${ch.name}`);
      const server = await startSignServer({ socketPath, pidfile: o.pidfile && path.resolve(o.pidfile), ch, signer, log });
      await new Promise<void>((resolve) => {
        const stop = (sig: NodeJS.Signals) => {
          log(`${sig}: stopping`);
          process.removeListener('SIGTERM', stop);
          process.removeListener('SIGINT', stop);
          void server.close().then(resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      process.exitCode = 0;
    });
}
