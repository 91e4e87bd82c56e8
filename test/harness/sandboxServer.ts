/**
 * The server side every replay test sets up the same way (test/replay, test/security): a sandbox
 * root that sshd can chroot uploaders below, a work folder, a private sshd that takes the plan's
 * drop-ins (`<root>/etc/ssh/sshd_config.d/*.conf`, SIGHUP through `<root>/run/sshd.pid`), a Replayer
 * connected to it as root, and the teardown in the one order that leaves nothing behind.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { StackConfig } from '../../stacks/config';
import type { SandboxNginx } from '../../scripts/local/nginx';
import { Replayer, type SshTarget } from '../../scripts/local/replayer';
import { makeSandboxRoot, removeSandboxSudoers, stopSandboxSigners, type SandboxStack } from '../../scripts/local/stack';
import { startSshd, type SshdServer } from '../../scripts/local/sshd';
import { mkTemp, rmTemp } from './cli';
import { shellQuote } from './replay';

/** A running sandbox server (startSandboxServer). */
export interface SandboxServer {
  /** The sandbox root (makeSandboxRoot: root-owned 0755 below /srv/apt-replay), with its `run/` folder. */
  root: string;
  /** A temp folder for the test's own files (keys, debs, state). */
  work: string;
  sshd: SshdServer;
  /** How the stacks reach the server: sshd's address, user, key and host key (a SandboxStackOptions `ssh`). */
  ssh: SshTarget;
  /** Connected as sshd's user (root in the test containers). */
  replayer: Replayer;
  /** Runs `command` on the server as root over the replayer's connection; resolves to stdout, throws on a non-zero exit (with stderr and stdout). */
  remote(command: string): Promise<string>;
  /** The command line that runs the indexer `config`'s stack deployed, as its service user (what the units do), with `args`. */
  indexerCommand(config: StackConfig, args: string[]): string;
  /**
   * Tears down (never rejects on a part already gone): `nginx` stopped, the signers and sudoers
   * rules of `stacks` removed, the replayer disposed, sshd stopped, root and work removed.
   */
  stop(opts?: { stacks?: Pick<SandboxStack, 'config'>[]; nginx?: SandboxNginx }): Promise<void>;
}

/**
 * Creates the sandbox root (`<rootPrefix>-XXXXXX`) and the work folder (`<workPrefix>-XXXXXX`),
 * starts sshd and connects the replayer. Must run as root (makeSandboxRoot). On a failure, what
 * was already made is removed and the error is rethrown.
 */
export async function startSandboxServer(rootPrefix: string, workPrefix: string): Promise<SandboxServer> {
  // sshd chroots upload accounts into <root>/srv/apt/incoming: every folder above must be root's alone (not /tmp).
  const root = makeSandboxRoot(rootPrefix);
  const work = mkTemp(workPrefix);
  let sshd: SshdServer | undefined;
  try {
    fs.mkdirSync(path.join(root, 'run'), { mode: 0o755 });
    // The plan's Match blocks (uploaders, operators) are included; sshd gets SIGHUP when they change.
    sshd = await startSshd({ include: path.join(root, 'etc/ssh/sshd_config.d/*.conf'), pidFile: path.join(root, 'run/sshd.pid') });
    const ssh: SshTarget = {
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      privateKey: sshd.privateKey,
      hostPublicKey: sshd.hostPublicKey,
    };
    const replayer = await Replayer.connect(ssh);
    const server = sshd;
    const remote = async (command: string): Promise<string> => {
      const r = await replayer.exec(command);
      if (r.code !== 0) throw new Error(`${command} exited with ${r.code}:\n${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    return {
      root,
      work,
      sshd: server,
      ssh,
      replayer,
      remote,
      indexerCommand: (c, args) =>
        ['runuser', '-u', c.serviceUser, '--', c.nodePath, c.indexerPath, '--root', c.root, '--channel', c.channel, ...args]
          .map(shellQuote)
          .join(' '),
      async stop(opts = {}) {
        await opts.nginx?.stop();
        if (opts.stacks) {
          await stopSandboxSigners(opts.stacks);
          removeSandboxSudoers(opts.stacks);
        }
        replayer.dispose();
        await server.stop();
        rmTemp(root);
        rmTemp(work);
      },
    };
  } catch (err) {
    await sshd?.stop();
    rmTemp(root);
    rmTemp(work);
    throw err;
  }
}
