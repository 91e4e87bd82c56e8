import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { ingest } from './ingest';
import { publish } from './publish';
import { readHistory } from './history';
import { KEY_SEEN_FILE, markKeySeen } from './keyWatch';
import { generateSigningKey, publicKeyFileNames } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
const savedEnv = { ...process.env };

/** Installs `key` as the channel's signing key the way the Pulumi program does: files, no keygen. */
function install(key: { privateArmored: string; publicArmored: string; publicBinary: Uint8Array }): void {
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  const names = publicKeyFileNames(ch.keyName);
  fs.writeFileSync(path.join(ch.webRoot, names.asc), key.publicArmored);
  fs.writeFileSync(path.join(ch.webRoot, names.gpg), key.publicBinary);
}

const keyLines = async () => (await readHistory(ch)).filter((r) => r.op === 'key' || r.op === 'keygen');

beforeAll(async () => {
  root = mkTemp('key-watch-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
});
afterAll(() => {
  process.env = { ...savedEnv };
  rmTemp(root);
});

test('a key installed without keygen is recorded by the next writer, once; a replaced key again, with who noticed it', async () => {
  const first = await generateSigningKey({ name: 'First', email: 'a@example.org', type: 'ed25519' });
  install(first);
  process.env.SUDO_USER = 'alice';
  buildDeb(path.join(ch.incomingDir, 'ci'), { name: 'app', version: '1' });
  await ingest(ch, { settleMs: 0 });
  const fpr1 = first.fingerprint.toUpperCase();
  expect(await keyLines()).toEqual([
    expect.objectContaining({ op: 'key', who: expect.objectContaining({ user: 'alice' }), detail: expect.stringContaining(`key ${fpr1}`) }),
  ]);
  expect((await keyLines())[0].detail).toMatch(/^signing key in use: /);
  // The same key: nothing more, whatever the writer.
  await publish(ch);
  expect(await keyLines()).toHaveLength(1);

  // Rotated the Pulumi way (new files), noticed by the next writer.
  const second = await generateSigningKey({ name: 'Second', email: 'b@example.org', type: 'ed25519' });
  install(second);
  process.env.SUDO_USER = 'bob';
  await publish(ch);
  const lines = await keyLines();
  expect(lines).toHaveLength(2);
  expect(lines[1]).toMatchObject({
    op: 'key',
    who: { user: 'bob' },
    detail: `the signing key changed (not by apt-repo keygen): now ${lines[1].detail!.split('now ')[1]}`,
  });
  expect(lines[1].detail).toContain(second.fingerprint.toUpperCase());
  expect(fs.readFileSync(path.join(ch.stateDir, KEY_SEEN_FILE), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
});

test('a key marked seen (what keygen does) is not recorded again', async () => {
  const third = await generateSigningKey({ name: 'Third', email: 'c@example.org', type: 'ed25519' });
  install(third);
  markKeySeen(ch, third.publicArmored);
  const before = (await keyLines()).length;
  await publish(ch);
  expect(await keyLines()).toHaveLength(before);
});

test('a planted link in place of the public key is not followed: nothing recorded, the writer goes on', async () => {
  const asc = path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc);
  const outside = path.join(root, 'outside.asc');
  fs.writeFileSync(outside, 'not a key');
  const kept = fs.readFileSync(asc, 'utf8');
  fs.rmSync(asc);
  fs.symlinkSync(outside, asc);
  const before = (await keyLines()).length;
  await publish(ch);
  expect(await keyLines()).toHaveLength(before);
  fs.rmSync(asc);
  fs.writeFileSync(asc, kept);
});
