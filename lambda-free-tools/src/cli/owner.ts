/**
 * Who may run a command that writes a channel: the owner of the channel's web root
 * (`aptrepo-<channel>` on a server, see infra/plan.ts). Files a writer creates (pool files,
 * generations, the cache, backups) belong to the user it runs as; run as root, they would make
 * every later run of the channel's own account fail (link(2) of a root-owned pool file is EPERM
 * under fs.protected_hardlinks, a root-owned generation cannot be pruned). So a writer run by
 * anyone else refuses before it touches anything, naming the user to run as.
 */
import * as fs from 'fs';
import * as path from 'path';
import { WrongUserError } from '../errors';
import { shellJoin } from '../shellQuote';
import { idName, idNames, PASSWD_FILE } from '../core/accounts';

/**
 * The command line `argv` (process.argv form) run as `owner`: `runuser -u <owner> -- …` when the
 * caller is root, else `sudo -u <owner> …` (runuser needs root). The program is the running node
 * and the script's absolute path, so the line works from any folder; each word is shell-quoted.
 */
function runAsCommand(owner: string, argv: string[], callerUid: number): string {
  const words = [process.execPath, path.resolve(argv[1] ?? 'apt-repo'), ...argv.slice(2)];
  return callerUid === 0 ? shellJoin(['runuser', '-u', owner, '--', ...words]) : shellJoin(['sudo', '-u', owner, ...words]);
}

/**
 * Refuses to go on when the process's effective user is not the owner of `webRoot`: throws
 * WrongUserError (exit 2) naming the owner and the same command line run as it. Passes when
 * `webRoot` does not exist (a channel being created or restored: nobody owns it yet) or when the
 * platform has no user ids. Names come from the host's passwd(5) (core/accounts.ts; `uid <n>` for an
 * id without a name). `what` names what the command writes in the message ('the channel', or
 * 'the mirror' for a mirror's folder, where the same holds: a root-owned snapshot cannot be
 * hard-linked nor removed by the mirror's own account). `euid` and `passwdFile` are for tests.
 */
export function assertChannelOwner(
  webRoot: string,
  argv: string[],
  opts: { euid?: number; passwdFile?: string; what?: string } = {},
): void {
  const euid = opts.euid ?? (typeof process.geteuid === 'function' ? process.geteuid() : undefined);
  if (euid === undefined) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(webRoot);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (st.uid === euid) return;
  const users = idNames(opts.passwdFile ?? PASSWD_FILE);
  const owner = idName(users, st.uid, 'uid');
  const me = idName(users, euid, 'uid');
  throw new WrongUserError(
    webRoot,
    owner,
    me,
    owner.startsWith('uid ')
      ? `the owner has no name in /etc/passwd: give the web root to the channel's account, or run as uid ${st.uid}`
      : runAsCommand(owner, argv, euid),
    opts.what,
  );
}
