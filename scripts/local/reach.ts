/**
 * Whether other users can reach a sandbox folder: the service user (aptrepo), the signer and nginx's
 * workers (www-data) reach it the way they reach / on a server, so every parent must be searchable.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The first existing parent of `root` that others cannot search (no o+x), or undefined when all can. */
export function unreachableParent(root: string): string | undefined {
  for (let d = path.dirname(root); ; d = path.dirname(d)) {
    if (fs.existsSync(d) && (fs.statSync(d).mode & 0o001) === 0) return d;
    if (d === path.dirname(d)) return undefined;
  }
}
