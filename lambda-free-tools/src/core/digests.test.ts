import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { digestFile, digestsOf } from './digests';

describe('digestsOf / digestFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'digests-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([0, 1, 3 * 65536 + 17])('agree with coreutils md5sum/sha1sum/sha256sum/sha512sum on %i bytes', async (size) => {
    const file = join(dir, `f${size}`);
    const data = randomBytes(size);
    writeFileSync(file, data);
    const tool = (cmd: string) => execFileSync(cmd, [file], { encoding: 'utf8' }).split(' ')[0];
    const expected = { MD5sum: tool('md5sum'), SHA1: tool('sha1sum'), SHA256: tool('sha256sum'), SHA512: tool('sha512sum') };
    expect(digestsOf(data)).toEqual(expected);
    expect(await digestFile(file)).toEqual({ size, digests: expected });
  });

  it('rejects with the fs error for a missing file', async () => {
    await expect(digestFile(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
