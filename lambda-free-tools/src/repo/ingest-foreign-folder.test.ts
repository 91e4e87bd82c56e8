/**
 * An uploader may drop a folder named `*.deb` and make it writable by everyone (SFTP mkdir, then
 * chmod 0777). Renaming a folder to another parent only needs write access to the folder itself,
 * so the indexer could move it into `rejected/`, which uploaders must never be able to write
 * (contracts of issue 8): the uploader would then own a writable folder inside it. Such a folder
 * is refused and left where it was dropped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
const NOBODY = Number(execFileSync('id', ['-u', 'nobody']).toString());

beforeEach(async () => {
  root = mkTemp('ingest-foreign-folder');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
});
afterEach(() => rmTemp(root));

test('a folder named .deb owned by another user is rejected but never moved into rejected/', async () => {
  const folder = path.join(ch.incomingDir, 'ci/planted.deb');
  fs.mkdirSync(folder, { recursive: true });
  fs.chownSync(folder, NOBODY, NOBODY);
  fs.chmodSync(folder, 0o777);
  const r = await ingest(ch, { settleMs: 0 });
  expect(r.entries).toHaveLength(1);
  expect(r.entries[0]).toMatchObject({ status: 'rejected', file: 'ci/planted.deb' });
  expect(r.entries[0].reason).toMatch(/a folder of another user: never moved into .*rejected\); left in place/);
  expect(r.entries[0].movedTo).toBeUndefined();
  expect(fs.lstatSync(folder).isDirectory()).toBe(true);
  // Nothing in rejected/ belongs to the uploader's account or is writable by it.
  for (const n of fs.existsSync(ch.rejectedDir) ? fs.readdirSync(ch.rejectedDir) : []) {
    const st = fs.lstatSync(path.join(ch.rejectedDir, n));
    expect(st.uid === NOBODY || (st.mode & 0o002) !== 0).toBe(false);
  }
});

test('a folder named .deb of the indexer itself is still moved into rejected/ with its .reason', async () => {
  fs.mkdirSync(path.join(ch.incomingDir, 'ci/own.deb'), { recursive: true });
  const r = await ingest(ch, { settleMs: 0 });
  expect(r.entries[0].reason).toMatch(/not a regular file \(directory\)/);
  expect(fs.lstatSync(r.entries[0].movedTo!).isDirectory()).toBe(true);
  expect(fs.existsSync(`${r.entries[0].movedTo}.reason`)).toBe(true);
});
