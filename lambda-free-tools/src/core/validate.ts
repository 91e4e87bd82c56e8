/**
 * Reading another program's JSON (apt-ops reading `apt-repo … --json`): validated with a zod
 * schema before use, and refused with one line naming the first field that does not match.
 */
import type { z } from 'zod';
import { AptRepoError } from '../errors';

/**
 * `data` as `schema` reads it (unknown keys dropped, as the schema says).
 * @param what the start of the error message, naming the command and the host, e.g. `the remote
 *        apt-repo status --json on repo.example is not a status report`.
 * @throws AptRepoError `<what>: <field path or (top level)>: <zod's message>`.
 */
export function parseReport<S extends z.ZodTypeAny>(schema: S, data: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new AptRepoError(`${what}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return r.data;
}
