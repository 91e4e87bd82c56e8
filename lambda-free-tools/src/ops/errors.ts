/**
 * Errors specific to apt-ops (the operator CLI). They extend the shared AptRepoError so the CLI edge
 * prints them as one line; the exit code 255 follows ssh(1), which exits 255 when the connection fails.
 */
import { AptRepoError } from '../errors';

/**
 * The SSH connection could not be made or was lost: refused, timed out, host key refused,
 * authentication failed, dropped mid-command. `target` is `user@host:port`.
 */
export class ConnectionError extends AptRepoError {
  override readonly exitCode: number = 255;
  constructor(
    readonly target: string,
    reason: string,
  ) {
    super(`${target}: ${reason}`);
  }
}
