/**
 * The program under pulumi.runtime.setMocks, evaluated many times (each evaluation loads Pulumi
 * afresh, about a second): the same inputs on a second evaluation, htpasswd salts kept in the
 * state like `pulumi up` keeps them, and which config keys reach the publish command's inputs. In
 * the e2e project for the time it takes; one evaluation per stack is index.test.ts.
 */
import {
  byName,
  evaluate,
  isSecret,
  nameOf,
  PASSWORDS,
  SALTS_TYPE,
  SSH_PRIVATE_KEY,
  stackConfig,
  unwrap,
  useStackFiles,
  withFreshSaltState,
  type Registered,
} from '../test/harness/stackProgram';

const files = useStackFiles();

describe('preprod stack, evaluated again', () => {
  let resources: Registered[];
  beforeAll(async () => {
    ({ resources } = await evaluate('preprod', stackConfig('preprod')));
  });

  it('gives identical inputs on a second evaluation', async () => {
    const again = await evaluate('preprod', stackConfig('preprod'));
    const view = (rs: Registered[]) => rs.map((r) => [r.type, r.name, r.deps, r.raw]);
    expect(view(again.resources)).toEqual(view(resources));
  });

  it('salts the htpasswd at random, once, in a secret kept in the state', async () => {
    const htpasswdOf = (rs: Registered[]) =>
      Buffer.from(String(unwrap(byName(rs).get('preprod-htpasswd')!.raw.stdin)).trim(), 'base64').toString();
    const saltsOf = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((l) => l.split('$')[2]);
    const salts = resources.find((r) => r.type === SALTS_TYPE)!;
    expect(salts.name).toBe('preprod-htpasswd-salts');
    expect(isSecret(salts.raw.credentials)).toBe(true);
    expect(salts.additionalSecretOutputs.sort()).toEqual(['credentials', 'salts']);
    expect(byName(resources).get('preprod-htpasswd')!.deps.map(nameOf)).toContain('preprod-htpasswd-salts');
    const first = htpasswdOf(resources);
    // The same state: the same text (a second `pulumi up` changes nothing).
    expect(htpasswdOf((await evaluate('preprod', stackConfig('preprod'))).resources)).toBe(first);
    // A changed password: a new salt for that user only.
    const changed = htpasswdOf(
      (
        await evaluate(
          'preprod',
          stackConfig('preprod', {
            clientCredentials: JSON.stringify([
              { username: 'web1', password: PASSWORDS[0] },
              { username: 'web2', password: 'a-new-password-for-web2' },
            ]),
          }),
        )
      ).resources,
    );
    expect(saltsOf(changed)[0]).toBe(saltsOf(first)[0]);
    expect(saltsOf(changed)[1]).not.toBe(saltsOf(first)[1]);
    // Another stack (a fresh state) with the same passwords: unrelated salts.
    const other = await withFreshSaltState(async () => htpasswdOf((await evaluate('preprod', stackConfig('preprod'))).resources));
    expect(saltsOf(other)[0]).not.toBe(saltsOf(first)[0]);
    expect(saltsOf(other)[1]).not.toBe(saltsOf(first)[1]);
  });
});

describe("a config change reaches the index: the publish command's own inputs", () => {
  const publishInputs = async (over: Record<string, string | undefined>) => {
    const { resources } = await evaluate('preprod', stackConfig('preprod', over));
    const r = byName(resources).get('preprod-publish')!.raw;
    return JSON.stringify({
      create: unwrap(r.create),
      stdin: r.stdin === undefined ? null : unwrap(r.stdin),
      triggers: unwrap(r.triggers),
    });
  };

  it('change with codenames, architectures, origin, label, description, routing and validUntilDays; not with allowedCidrs or credentials; never hold a secret', async () => {
    const base = await publishInputs({});
    expect(await publishInputs({})).toBe(base);
    for (const over of [
      { codenames: JSON.stringify(['bookworm', 'bullseye', 'buster', 'trixie']) },
      { codenames: JSON.stringify(['bookworm', 'bullseye']) },
      { architectures: JSON.stringify(['amd64', 'arm64']) },
      { origin: 'Example' },
      { label: 'Epiconcept preprod 2' },
      { description: 'Other words' },
      { routing: JSON.stringify([{ pattern: '\\+el(\\d+)$', codenames: ['bookworm'] }]) },
      { validUntilDays: '7' },
    ])
      expect([over, (await publishInputs(over)) !== base]).toEqual([over, true]);
    expect(await publishInputs({ allowedCidrs: JSON.stringify(['10.0.0.0/8']) })).toBe(base);
    expect(await publishInputs({ clientCredentials: JSON.stringify([{ username: 'web1', password: 'another-password-42' }]) })).toBe(base);
    for (const secret of [SSH_PRIVATE_KEY, 'mock-generated-private-material', ...PASSWORDS, files.tlsKeyText.split('\n')[1]])
      expect(base).not.toContain(secret);
  });
});
