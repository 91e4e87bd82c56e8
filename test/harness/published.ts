/**
 * What a client of a published channel would see, checked from the file system: used by the
 * publish tests (lambda-free-tools/src/cli/commands/publish.test.ts) and the publish kill test.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { channelPaths, loadChannel } from '../../lambda-free-tools/src/repo/channel';
import { currentGeneration, generationDir, readGenerationInfo } from '../../lambda-free-tools/src/repo/generations';
import { verifyChannel } from '../../lambda-free-tools/src/repo/verify';

/**
 * Asserts (jest `expect`) that channel `channel` under `root` serves a complete generation: `dists`
 * resolves to the current generation's dists, which has its generation.json; every codename's
 * InRelease and Release.gpg verify with gpgv against the channel's binary public key
 * (`<webRoot>/epiconcept-<channel>-archive-keyring.gpg`); and verify (in-process verifyChannel:
 * Release hashes, signatures, pool files) reports exactly `unpublished`, the pool files the test put
 * in place that no publish has served yet (issue 9: verify rightly names them).
 * Resolves to the served generation id; gpgv's error is thrown when a signature does not verify.
 */
export async function expectServingValid(
  root: string,
  codenames: string[],
  unpublished: string[] = [],
  channel = 'preprod',
): Promise<string> {
  const webRoot = channelPaths(root, channel).webRoot;
  const keyring = path.join(webRoot, `epiconcept-${channel}-archive-keyring.gpg`);
  const ch = await loadChannel({ root, channel });
  const id = await currentGeneration(ch);
  expect(id).toBeDefined();
  expect(readGenerationInfo(ch, id!)).toBeDefined();
  expect(fs.realpathSync(path.join(webRoot, 'dists'))).toBe(path.join(generationDir(ch, id!), 'dists'));
  for (const c of codenames) {
    const d = path.join(webRoot, 'dists', c);
    execFileSync('gpgv', ['--keyring', keyring, path.join(d, 'InRelease')], { stdio: 'pipe' });
    execFileSync('gpgv', ['--keyring', keyring, path.join(d, 'Release.gpg'), path.join(d, 'Release')], { stdio: 'pipe' });
  }
  const expected = unpublished.map(
    (f) =>
      `${f}: in the pool but served by no kept generation (\`apt-repo --channel ${channel} publish\` serves it, \`remove\` withdraws it)`,
  );
  expect(await verifyChannel(ch)).toEqual(expected);
  return id!;
}
