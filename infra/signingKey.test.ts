/**
 * SigningKey under pulumi.runtime.setMocks: a recorded fingerprint (apt-repo:signingKeyFingerprint)
 * lets the recorded key through and stops any other, whether provided or kept in the state.
 */
// Pulumi's closure serializer needs Node's own require cache, which jest replaces: a dynamic
// provider would never finish serializing here (signingKeyProvider.test.ts checks the real one).
jest.mock('@pulumi/pulumi/runtime/closure/serializeClosure', () => ({
  serializeFunction: async () => ({ text: 'exports.handler = () => ({});', exportName: 'handler', containsSecrets: false }),
}));
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as pulumi from '@pulumi/pulumi';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { generateSigningKey } from '../lambda-free-tools/src/sign/keys';
import { normaliseFingerprint } from '../lambda-free-tools/src/settings/stackConfig';
import { SigningKey, checkFingerprint } from './signingKey';

const STATE_FINGERPRINT = 'A'.repeat(40);
const OTHER = 'B'.repeat(40);
const created: Record<string, unknown>[] = [];

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({ type: args.type, ...args.inputs });
        // The kept key of the state: what the dynamic resource reads back.
        return {
          id: STATE_FINGERPRINT,
          state: {
            ...args.inputs,
            privateArmored: 'private',
            publicArmored: 'public',
            publicBinaryBase64: 'YmluYXJ5',
            fingerprint: STATE_FINGERPRINT,
          },
        };
      },
      call: (args) => args.inputs,
    },
    'apt-repo',
    'preprod',
    false,
  );
});

/** The value of an output, or its error. */
const settle = <T>(o: pulumi.Output<T>): Promise<T> => (o as unknown as { promise(): Promise<T> }).promise();

describe('checkFingerprint', () => {
  it('passes the recorded key (any case, gpg spacing) and an unset record, refuses another naming the key', () => {
    expect(checkFingerprint(STATE_FINGERPRINT, undefined, 'x')).toBe(STATE_FINGERPRINT);
    expect(checkFingerprint(STATE_FINGERPRINT, 'aaaa aaaa aaaa aaaa aaaa  aaaa aaaa aaaa aaaa aaaa', 'x')).toBe(STATE_FINGERPRINT);
    expect(() => checkFingerprint(OTHER, STATE_FINGERPRINT, 'apt-repo:signingKey')).toThrow(ConfigError);
    expect(() => checkFingerprint(OTHER, STATE_FINGERPRINT, 'apt-repo:signingKey')).toThrow(
      /^apt-repo:signingKeyFingerprint: is A{40} but the key from apt-repo:signingKey is B{40}/,
    );
    expect(normaliseFingerprint(' ab cd ')).toBe('ABCD');
  });
});

describe('SigningKey with a recorded fingerprint', () => {
  it('refuses a malformed record, naming the key', () => {
    expect(() => new SigningKey('bad', { name: 'n', email: 'a@b', expectedFingerprint: 'not-hex' })).toThrow(
      /^apt-repo:signingKeyFingerprint: expected the 40 hex digits/,
    );
  });

  it('passes the recorded fingerprint to the generated key (so create refuses to make another) and lets the kept key through', async () => {
    const key = new SigningKey('kept', { name: 'n', email: 'a@b', expectedFingerprint: STATE_FINGERPRINT.toLowerCase() });
    expect(await settle(key.fingerprint)).toBe(STATE_FINGERPRINT);
    expect(await settle(key.publicArmored)).toBe('public');
    expect(await settle(key.privateArmored)).toBe('private');
    expect(created.find((r) => r.name === 'n')).toMatchObject({ expectedFingerprint: STATE_FINGERPRINT });
  });

  it('without a record, generates as before (no expectedFingerprint input)', async () => {
    const key = new SigningKey('fresh', { name: 'n3', email: 'a@b' });
    expect(await settle(key.fingerprint)).toBe(STATE_FINGERPRINT);
    expect(created.find((r) => r.name === 'n3')).not.toHaveProperty('expectedFingerprint');
  });

  it('checks a provided key against the record', async () => {
    const provided = await generateSigningKey({ name: 'Provided', email: 'apt@example.org', type: 'ed25519' });
    const ok = new SigningKey('provided-ok', {
      name: 'n',
      email: 'a@b',
      provided: provided.privateArmored,
      expectedFingerprint: provided.fingerprint,
    });
    expect(await settle(ok.fingerprint)).toBe(provided.fingerprint);
    expect(await settle(ok.privateArmored)).toBe(provided.privateArmored);
  });
});

/**
 * A mismatch rejects the key's outputs, and under `pulumi up` the program fails on that rejection.
 * It runs outside jest (whose sandbox cannot catch a rejection nobody awaits): a Node process with
 * the same mocks must exit non-zero with the message, after no step got the key.
 */
describe('SigningKey with another key than the recorded one', () => {
  const projectRoot = path.resolve(__dirname, '..');
  const run = (construct: string) => {
    const code = `
      const pulumi = require('@pulumi/pulumi');
      const { generateSigningKey } = require(${JSON.stringify(path.join(projectRoot, 'lambda-free-tools/src/sign/keys.ts'))});
      const { SigningKey } = require(${JSON.stringify(path.join(projectRoot, 'infra/signingKey.ts'))});
      pulumi.runtime.setMocks({
        newResource: (a) => ({ id: 'x', state: { ...a.inputs, privateArmored: 'private', publicArmored: 'public', publicBinaryBase64: 'YmluYXJ5', fingerprint: ${JSON.stringify(STATE_FINGERPRINT)} } }),
        call: (a) => a.inputs,
      }, 'apt-repo', 'preprod', false).then(async () => {
        ${construct}
        key.publicArmored.apply((k) => process.stdout.write('installed ' + k));
      });`;
    return spawnSync(process.execPath, ['--no-warnings', '-r', 'ts-node/register/transpile-only', '-e', code], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 110000,
    });
  };

  it('fails the program when the state holds a key of another fingerprint', () => {
    const r = run(`const key = new SigningKey('changed', { name: 'n', email: 'a@b', expectedFingerprint: ${JSON.stringify(OTHER)} });`);
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('installed');
    expect(r.stderr).toMatch(/apt-repo:signingKeyFingerprint: is B{40} but the key from the stack state is A{40}/);
  });

  it('fails the program when apt-repo:signingKey is another key', () => {
    const r = run(`const provided = await generateSigningKey({ name: 'P', email: 'p@example.org', type: 'ed25519' });
        const key = new SigningKey('provided', { name: 'n', email: 'a@b', provided: provided.privateArmored, expectedFingerprint: ${JSON.stringify(OTHER)} });`);
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('installed');
    expect(r.stderr).toMatch(/apt-repo:signingKeyFingerprint: is B{40} but the key from apt-repo:signingKey is [0-9A-F]{40}/);
  });

  it('lets the program run when the record matches (the same script, control)', () => {
    const r = run(
      `const key = new SigningKey('kept', { name: 'n', email: 'a@b', expectedFingerprint: ${JSON.stringify(STATE_FINGERPRINT)} });`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('installed public');
    expect(r.status).toBe(0);
  });
});
