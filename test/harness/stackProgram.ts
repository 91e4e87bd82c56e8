/**
 * stacks/index.ts evaluated under pulumi.runtime.setMocks, as stacks/index.test.ts and
 * stacks/index.e2e.test.ts do: the stack config, the mocks (a fixed generated key, real htpasswd
 * salts kept between evaluations like Pulumi's state), and what the engine received (resources,
 * dependencies, inputs with their secrets wrapped, exports).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { selfSignedCert } from './tls';

const SIG = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

/** The stack's SSH private key (fake OpenSSH armor). */
export const SSH_PRIVATE_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-ssh-private-material\n-----END OPENSSH PRIVATE KEY-----\n';
/** The private key the mocked SigningKey resource returns. */
export const MOCK_PGP_PRIVATE =
  '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nmock-generated-private-material\n-----END PGP PRIVATE KEY BLOCK-----\n';
/** The passwords of the clients web1 and web2. */
export const PASSWORDS = ['preprod-client-password-1', 'preprod-client-password-2'];

/** One registered resource, as the engine would receive it. */
export interface Registered {
  type: string;
  name: string;
  parent: string;
  deps: string[];
  /** Inputs as serialized on the wire (secrets wrapped in the secret signature). */
  raw: Record<string, unknown>;
  additionalSecretOutputs: string[];
  protect: boolean;
}

/** The resource name at the end of a URN. */
export const nameOf = (urn: string) => urn.split('::').pop() ?? urn;

/** Replaces every secret value of serialized inputs with '[secret]'. */
export function redact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o[SIG] === SECRET_SIG) return '[secret]';
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, redact(x)]));
  }
  return v;
}
/** Whether a serialized input is a secret (wrapped in the secret signature). */
export const isSecret = (v: unknown) => !!v && typeof v === 'object' && (v as Record<string, unknown>)[SIG] === SECRET_SIG;
/** A serialized input without its secret wrapper. */
export const unwrap = (v: unknown): unknown => (isSecret(v) ? (v as { value: unknown }).value : v);

/** The files a stack evaluation reads: a stand-in indexer bundle and a TLS certificate and key (made by openssl), in `tmp`. */
export interface StackFiles {
  tmp: string;
  bundle: string;
  certFile: string;
  keyFile: string;
  /** The PEM text of keyFile: a secret no input may show. */
  tlsKeyText: string;
}

const files: StackFiles = { tmp: '', bundle: '', certFile: '', keyFile: '', tlsKeyText: '' };

/**
 * Registers the beforeAll/afterAll that make the stack's files (and point APT_REPO_BUNDLE at the
 * bundle) and remove them; returns the object holding their paths, filled in once beforeAll ran.
 * Call it once, at the top of a test file, before stackConfig is used.
 */
export function useStackFiles(): Readonly<StackFiles> {
  beforeAll(() => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-test-'));
    const bundle = path.join(tmp, 'apt-repo.cjs');
    fs.writeFileSync(bundle, '#!/usr/bin/env node\nconsole.log("stand-in bundle");\n');
    const { certFile, keyFile } = selfSignedCert(tmp, 'apt-preprod.epiconcept.fr');
    Object.assign(files, { tmp, bundle, certFile, keyFile, tlsKeyText: fs.readFileSync(keyFile, 'utf8') });
    process.env.APT_REPO_BUNDLE = bundle;
  });
  afterAll(() => {
    delete process.env.APT_REPO_BUNDLE;
    fs.rmSync(files.tmp, { recursive: true, force: true });
  });
  return files;
}

/**
 * The `apt-repo:`-prefixed config of `stack` as Pulumi passes it (strings): epiconcept.fr, three
 * codenames, amd64, two clients, TLS from the files of useStackFiles, prod pinned to preprod; a key
 * of `over` set to undefined is left out.
 */
export function stackConfig(stack: string, over: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    domain: 'epiconcept.fr',
    sshHost: 'apt.epiconcept.fr',
    sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q',
    sshPrivateKey: SSH_PRIVATE_KEY,
    codenames: JSON.stringify(['bookworm', 'bullseye', 'buster']),
    architectures: JSON.stringify(['amd64']),
    allowedCidrs: JSON.stringify(['10.0.0.0/8', '192.0.2.0/24']),
    clientCredentials: JSON.stringify(PASSWORDS.map((p, i) => ({ username: `web${i + 1}`, password: p }))),
    tls: JSON.stringify({ mode: 'files', certFile: files.certFile, keyFile: files.keyFile }),
    ...(stack === 'prod' ? { upstream: 'preprod' } : {}),
    ...over,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[`apt-repo:${k}`] = v;
  return out;
}

/** The type of the HtpasswdSalts dynamic resource. */
export const SALTS_TYPE = 'pulumi-nodejs:dynamic/apt-repo:HtpasswdSalts';
/**
 * The engine's state of the HtpasswdSalts resources by name, kept between evaluations as between two
 * `pulumi up`: the real provider decides (create, or diff then update) as the engine would have it.
 * A new Map is a new stack state.
 */
let saltState = new Map<string, import('../../infra/htpasswdSalts').HtpasswdSaltsOutputs>();
/**
 * Runs `fn` against a new, empty HtpasswdSalts state (another stack), then puts the kept state back.
 */
export async function withFreshSaltState<T>(fn: () => Promise<T>): Promise<T> {
  const kept = saltState;
  saltState = new Map();
  try {
    return await fn();
  } finally {
    saltState = kept;
  }
}

async function saltsResource(name: string, inputs: Record<string, unknown>) {
  const { htpasswdSaltsProvider } = await import('../../infra/htpasswdSalts');
  const news = { credentials: unwrap(inputs.credentials) as import('../../stacks/config').ClientCredential[] };
  const olds = saltState.get(name);
  let outs = olds;
  if (!olds) outs = (await htpasswdSaltsProvider.create(news)).outs;
  else if ((await htpasswdSaltsProvider.diff('htpasswd-salts', olds, news)).changes)
    outs = (await htpasswdSaltsProvider.update('htpasswd-salts', olds, news)).outs as typeof olds;
  saltState.set(name, outs!);
  return { id: 'htpasswd-salts', state: { ...outs } };
}

/** The parts of the engine's RegisterResourceRequest (protobuf) that evaluate records. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getAdditionalsecretoutputsList(): string[];
  getProtect(): boolean;
}

/** Mocks: the generated key resource returns a fixed key, the salts come from saltState, the image a digest, everything else its inputs. */
export const MOCKS: import('@pulumi/pulumi').runtime.Mocks = {
  newResource(args) {
    if (args.type === SALTS_TYPE) return saltsResource(args.name, args.inputs);
    if (args.type.startsWith('pulumi-nodejs:dynamic')) {
      return {
        id: 'MOCKFINGERPRINT',
        state: {
          ...args.inputs,
          privateArmored: MOCK_PGP_PRIVATE,
          publicArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmock-public\n-----END PGP PUBLIC KEY BLOCK-----\n',
          publicBinaryBase64: Buffer.from('mock-binary-public').toString('base64'),
          fingerprint: 'MOCKFINGERPRINT',
        },
      };
    }
    return {
      id: `${args.name}-id`,
      state: { ...args.inputs, ...(args.type === 'docker:index/image:Image' ? { repoDigest: 'sha256:0123' } : {}) },
    };
  },
  call(args) {
    return args.inputs;
  },
};

/**
 * Evaluates stacks/index.ts under `mocks` (default MOCKS) for `stack` with `config`; resolves to the
 * registered resources and the exports.
 */
export async function evaluate(
  stack: string,
  config: Record<string, string>,
  mocks: import('@pulumi/pulumi').runtime.Mocks = MOCKS,
): Promise<{ resources: Registered[]; exports: Record<string, unknown> }> {
  const resources: Registered[] = [];
  let pulumi: typeof import('@pulumi/pulumi') | undefined;
  let program: Record<string, unknown> | undefined;
  let settings: { waitForRPCs(): Promise<void> } | undefined;
  let failure: unknown;
  jest.isolateModules(() => {
    // Pulumi's closure serializer needs Node's own require cache, which jest replaces: a dynamic
    // provider would never finish serializing here. signingKeyProvider.test.ts checks the real one.
    jest.doMock('@pulumi/pulumi/runtime/closure/serializeClosure', () => ({
      serializeFunction: async () => ({ text: 'exports.handler = () => ({});', exportName: 'handler', containsSecrets: false }),
    }));
    pulumi = require('@pulumi/pulumi');
    settings = require('@pulumi/pulumi/runtime/settings');
    void pulumi!.runtime.setMocks(mocks, 'apt-repo', stack, false);
    const monitor = pulumi!.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): void };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
      resources.push({
        type: req.getType(),
        name: req.getName(),
        parent: req.getParent(),
        deps: req.getDependenciesList(),
        raw: req.getObject()?.toJavaScript() ?? {},
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        protect: req.getProtect(),
      });
      return original(req, cb);
    };
    pulumi!.runtime.setAllConfig(
      config,
      Object.keys(config).filter((k) => ['apt-repo:sshPrivateKey', 'apt-repo:clientCredentials', 'apt-repo:signingKey'].includes(k)),
    );
    try {
      program = require('../../stacks/index');
    } catch (e) {
      failure = e;
    }
  });
  if (failure) throw failure;
  const exported: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(program!)) {
    exported[k] = pulumi!.Output.isInstance(v)
      ? await new Promise((resolve) => (v as import('@pulumi/pulumi').Output<unknown>).apply((x) => resolve(x)))
      : v;
  }
  await settings!.waitForRPCs();
  return { resources, exports: exported };
}

/** The remote commands among the registered resources. */
export const commands = (rs: Registered[]) => rs.filter((r) => r.type === 'command:remote:Command');
/** The registered resources by name. */
export const byName = (rs: Registered[]) => new Map(rs.map((r) => [r.name, r]));
