/**
 * System accounts the tests run the indexer or the signer as (the tests run as root, like CI).
 * Accounts are never deleted: other tests and the replay may use the same names, and deleting a
 * user on a shared host is not a test's business (useradd(8)).
 */
import { execFileSync, spawnSync } from 'child_process';

/** Creates the system user `name` with its own group when missing: no home, no login shell. Throws when useradd fails (not root). */
export function ensureSystemUser(name: string): void {
  if (spawnSync('id', ['-u', name]).status === 0) return;
  execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' });
}
