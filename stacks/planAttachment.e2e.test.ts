/**
 * Every step of the plan is attached to exactly one resource whose inputs carry everything its
 * script reads. The program (stacks/index.ts) is evaluated under pulumi.runtime.setMocks for the
 * preprod and prod stacks, with TLS files and without TLS, and compared with infra/plan.ts
 * buildPlan of the same config and material:
 * - one remote.Command per step, named as test/harness/pulumiState.ts names it, whose `create` is
 *   the step's script, whose `stdin` is present exactly when the step reads secrets, and whose
 *   `triggers` are the step's; no other command;
 * - one remote.CopyToRemote per staged file, with the step's remotePath and content (the bundle as a
 *   FileAsset of its local path), that the step's command depends on;
 * - under @pulumi/command a command runs again only when its OWN inputs change, so: every staging
 *   path a step's script (or one of its staged files) names is one of that step's own files (a
 *   script reading another step's staged file would not re-run when that file changes), and every
 *   staged file's SHA-256 is named in the script (the bundle's in triggers).
 * In the e2e project for the time it takes: four evaluations, each loading Pulumi afresh (about 5 s).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildPlan, withoutSecrets, type PlanMaterial, type PlanStep } from '../infra/plan';
import { channelLayout } from '../infra/layout';
import { resourceNames } from '../test/harness/pulumiState';
import { parseStackConfig } from './config';
import { selfSignedCert } from '../test/harness/tls';

const SIG = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';
const SSH_PRIVATE_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-attachment-test\n-----END OPENSSH PRIVATE KEY-----\n';
const MOCK_PUBLIC = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmock-public\n-----END PGP PUBLIC KEY BLOCK-----\n';
const MOCK_BINARY = Buffer.from('mock-binary-public').toString('base64');

interface Registered {
  type: string;
  name: string;
  urn: string;
  deps: string[];
  raw: Record<string, unknown>;
}

const isSecret = (v: unknown) => !!v && typeof v === 'object' && (v as Record<string, unknown>)[SIG] === SECRET_SIG;
const unwrap = (v: unknown): unknown => (isSecret(v) ? (v as { value: unknown }).value : v);
const sha256 = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');

let tmp: string;
let bundle: string;
let certFile: string;
let keyFile: string;
let prodKey: { privateArmored: string; publicArmored: string; publicBinary: Uint8Array; fingerprint: string };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-attachment-'));
  bundle = path.join(tmp, 'apt-repo.cjs');
  fs.writeFileSync(bundle, '#!/usr/bin/env node\nconsole.log("stand-in bundle for the attachment test");\n');
  ({ certFile, keyFile } = selfSignedCert(tmp, 'apt.epiconcept.fr'));
  process.env.APT_REPO_BUNDLE = bundle;
  const { generateSigningKey } = await import('../lambda-free-tools/src/sign/keys');
  prodKey = await generateSigningKey({ name: 'attachment prod', email: 'apt-prod@example.org', type: 'ed25519' });
});
afterAll(() => {
  delete process.env.APT_REPO_BUNDLE;
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The raw stack config (keys without the `apt-repo:` namespace). */
function rawConfig(stack: 'preprod' | 'prod', tls: boolean): Record<string, string> {
  return {
    domain: 'epiconcept.fr',
    sshHost: 'apt.epiconcept.fr',
    sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q',
    sshPrivateKey: SSH_PRIVATE_KEY,
    codenames: JSON.stringify(['bookworm', 'bullseye']),
    architectures: JSON.stringify(['amd64', 'arm64']),
    allowedCidrs: JSON.stringify(['10.0.0.0/8']),
    clientCredentials: JSON.stringify([{ username: 'web1', password: 'attachment-password-1' }]),
    operators: JSON.stringify([{ name: 'ops-one', authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsKey ops@laptop'] }]),
    validUntilDays: '7',
    nodePath: '/usr/bin/node',
    ...(tls
      ? { tls: JSON.stringify({ mode: 'files', certFile, keyFile }) }
      : { tls: JSON.stringify({ mode: 'none' }), allowPlainHttp: 'true' }),
    ...(stack === 'preprod'
      ? { uploaders: JSON.stringify([{ name: 'ci-upload', authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevKey ci@build'] }]) }
      : {}),
    ...(stack === 'prod' ? { upstream: 'preprod', signingKey: prodKey.privateArmored, signingKeyFingerprint: prodKey.fingerprint } : {}),
  };
}

const MOCKS: import('@pulumi/pulumi').runtime.Mocks = {
  newResource(args) {
    if (args.type.startsWith('pulumi-nodejs:dynamic')) {
      return {
        id: 'MOCKFINGERPRINT',
        state: {
          ...args.inputs,
          privateArmored: '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nmock-private\n-----END PGP PRIVATE KEY BLOCK-----\n',
          publicArmored: MOCK_PUBLIC,
          publicBinaryBase64: MOCK_BINARY,
          fingerprint: 'MOCKFINGERPRINT',
          salts: { web1: 'abcdefghijklmnop' },
        },
      };
    }
    return { id: `${args.name}-id`, state: { ...args.inputs } };
  },
  call(args) {
    return args.inputs;
  },
};

/** Evaluates stacks/index.ts under mocks; resolves to the registered remote resources. */
async function evaluate(stack: string, raw: Record<string, string>): Promise<Registered[]> {
  const config = Object.fromEntries(Object.entries(raw).map(([k, v]) => [`apt-repo:${k}`, v]));
  const resources: Registered[] = [];
  let settings: { waitForRPCs(): Promise<void> } | undefined;
  let failure: unknown;
  jest.isolateModules(() => {
    // As in test/harness/stackProgram.ts: the closure serializer of dynamic providers cannot run under jest.
    jest.doMock('@pulumi/pulumi/runtime/closure/serializeClosure', () => ({
      serializeFunction: async () => ({ text: 'exports.handler = () => ({});', exportName: 'handler', containsSecrets: false }),
    }));
    const pulumi = require('@pulumi/pulumi') as typeof import('@pulumi/pulumi');
    settings = require('@pulumi/pulumi/runtime/settings');
    void pulumi.runtime.setMocks(MOCKS, 'apt-repo', stack, false);
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: any, cb: any): void };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
      resources.push({
        type: req.getType(),
        name: req.getName(),
        urn: '',
        deps: req.getDependenciesList(),
        raw: req.getObject()?.toJavaScript() ?? {},
      });
      return original(req, cb);
    };
    pulumi.runtime.setAllConfig(config, ['apt-repo:sshPrivateKey', 'apt-repo:clientCredentials', 'apt-repo:signingKey']);
    try {
      require('./index');
    } catch (e) {
      failure = e;
    }
  });
  if (failure) throw failure;
  await settings!.waitForRPCs();
  return resources.filter((r) => r.type.startsWith('command:remote:'));
}

const nameOf = (urn: string) => urn.split('::').pop() ?? urn;

const CASES: [string, 'preprod' | 'prod', boolean][] = [
  ['preprod with TLS files', 'preprod', true],
  ['preprod without TLS', 'preprod', false],
  ['prod with TLS files', 'prod', true],
  ['prod without TLS', 'prod', false],
];

describe.each(CASES)('%s: every plan step is attached to exactly one resource that carries what it reads', (_label, stack, tls) => {
  let resources: Registered[];
  let steps: PlanStep[];
  let stagingDir: string;

  beforeAll(async () => {
    const raw = rawConfig(stack, tls);
    resources = await evaluate(stack, raw);
    const { config } = parseStackConfig(raw, stack);
    const material: PlanMaterial = {
      signingKeyArmored: '(secret)',
      publicKeyArmored: stack === 'prod' ? prodKey.publicArmored : MOCK_PUBLIC,
      publicKeyBinaryBase64: stack === 'prod' ? Buffer.from(prodKey.publicBinary).toString('base64') : MOCK_BINARY,
      htpasswd: '(secret)',
      bundlePath: bundle,
      bundleSha256: sha256(fs.readFileSync(bundle)),
      ...(tls ? { tlsCert: fs.readFileSync(certFile, 'utf8'), tlsKey: '(secret)' } : {}),
    };
    steps = buildPlan(config, withoutSecrets(material));
    stagingDir = channelLayout(config).stagingDir;
  });

  const commandsOf = () => resources.filter((r) => r.type === 'command:remote:Command');
  const copiesOf = () => resources.filter((r) => r.type === 'command:remote:CopyToRemote');

  test('one command per step, with the script as create, stdin iff secret stdin, equal triggers; no other command', () => {
    expect(steps.some((s) => s.name === 'tls')).toBe(tls);
    const commands = commandsOf();
    expect(commands.map((c) => c.name).sort()).toEqual(steps.map((s) => resourceNames(stack, s).command).sort());
    for (const s of steps) {
      const matching = commands.filter((c) => c.name === resourceNames(stack, s).command);
      expect([s.name, matching.length]).toEqual([s.name, 1]);
      const c = matching[0];
      expect([s.name, unwrap(c.raw.create)]).toEqual([s.name, s.script]);
      expect([s.name, c.raw.stdin !== undefined]).toEqual([s.name, s.secretStdin !== undefined]);
      if (c.raw.stdin !== undefined) expect([s.name, isSecret(c.raw.stdin)]).toEqual([s.name, true]);
      expect([s.name, unwrap(c.raw.triggers) ?? []]).toEqual([s.name, s.triggers]);
    }
  });

  test('one copy per staged file, with its remotePath and content, that the command depends on; no other copy', () => {
    const copies = copiesOf();
    const commands = new Map(commandsOf().map((c) => [c.name, c]));
    const expected = steps.flatMap((s) => resourceNames(stack, s).copies);
    expect(copies.map((c) => c.name).sort()).toEqual([...expected].sort());
    for (const s of steps) {
      const names = resourceNames(stack, s);
      const cmd = commands.get(names.command)!;
      s.files.forEach((f, i) => {
        const matching = copies.filter((c) => c.name === names.copies[i]);
        expect([names.copies[i], matching.length]).toEqual([names.copies[i], 1]);
        const copy = matching[0];
        expect([copy.name, unwrap(copy.raw.remotePath)]).toEqual([copy.name, f.remotePath]);
        const source = unwrap(copy.raw.source) as Record<string, unknown>;
        if (f.localPath) expect([copy.name, source.path]).toEqual([copy.name, f.localPath]);
        else expect([copy.name, source.text]).toEqual([copy.name, f.content]);
        expect([copy.name, cmd.deps.map(nameOf)]).toEqual([copy.name, expect.arrayContaining([copy.name])]);
      });
    }
  });

  test("a step's script and files name no other step's staged file", () => {
    const escaped = stagingDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp(`${escaped}/([A-Za-z0-9._@-]+)`, 'g');
    // Folders of the staging area the dirs step makes (not staged files).
    const folders = new Set(['nginx-test']);
    const seen: string[] = [];
    for (const s of steps) {
      const own = new Set(s.files.map((f) => f.remotePath));
      for (const text of [s.script, ...s.files.map((f) => f.content)]) {
        for (const m of text.matchAll(re)) {
          const p = `${stagingDir}/${m[1]}`;
          seen.push(p);
          if (folders.has(m[1])) continue;
          expect([s.name, p, own.has(p)]).toEqual([s.name, p, true]);
        }
      }
    }
    // The check saw the staged files (the vhost's test config names the staged vhost, the indexer its bundle).
    expect(seen).toEqual(expect.arrayContaining([`${stagingDir}/vhost.site.conf`, `${stagingDir}/indexer.apt-repo.cjs`]));
  });

  test("every staged file's SHA-256 is in its step's script (the bundle's in its triggers)", () => {
    let files = 0;
    for (const s of steps) {
      for (const f of s.files) {
        files++;
        if (f.localPath)
          expect([s.name, f.remotePath, s.triggers]).toEqual([
            s.name,
            f.remotePath,
            expect.arrayContaining([sha256(fs.readFileSync(f.localPath))]),
          ]);
        else expect([s.name, f.remotePath, s.script.includes(sha256(f.content))]).toEqual([s.name, f.remotePath, true]);
      }
    }
    expect(files).toBeGreaterThan(10);
  });
});
