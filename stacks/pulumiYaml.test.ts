/**
 * Pulumi.yaml's project-level `config:` block declares every key of the stack schema (stacks/config.ts),
 * so the Pulumi CLI checks a stack's values (types, secrets, missing required keys) before the program
 * runs. These tests keep the block in step with the zod schema, and check that what the CLI hands the
 * program for an unset key (its declared default) reads exactly as the key left unset.
 *
 * Pulumi's rules, as its CLI applies them (sdk/go/common/workspace: project.json, ValidateConfigValue,
 * mergeConfig): types are string, integer, boolean and array (with `items`); a declared key without a
 * default is required; a secret typed key must be encrypted in the stack file, default included.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { CONFIG_KEYS, CONFIG_SCHEMA, SECRET_KEYS, parseStackConfig, type RawConfig } from './config';

const root = path.resolve(__dirname, '..');
const NS = 'apt-repo:';

interface Declaration {
  type?: 'string' | 'integer' | 'boolean' | 'array';
  items?: { type: string };
  default?: unknown;
  secret?: boolean;
  description?: string;
}

const project = parse(fs.readFileSync(path.join(root, 'Pulumi.yaml'), 'utf8')) as { name: string; config: Record<string, Declaration> };
const declared = (key: string): Declaration => project.config[`${NS}${key}`];

// Keys whose schema default depends on other keys: the program tells "unset" from the default
// (sshPort: 22, but devContainer.sshPort on the dev stack when sshPort is unset).
const DEPENDENT_DEFAULTS = new Set(['sshPort']);

/** What the schema says of a key: its Pulumi type (undefined: Pulumi has none for it), its constant default, optional. */
function fromSchema(key: string): { type?: Declaration['type']; hasDefault: boolean; defaultValue?: unknown; optional: boolean } {
  let def = (CONFIG_SCHEMA.shape as Record<string, { def: Record<string, any> }>)[key].def;
  let hasDefault = false;
  let defaultValue: unknown;
  let optional = false;
  if (def.type === 'default') {
    hasDefault = true;
    defaultValue = def.defaultValue;
    def = def.innerType.def;
  } else if (def.type === 'optional') {
    optional = true;
    def = def.innerType.def;
  }
  let type: Declaration['type'];
  if (def.type === 'string' || def.type === 'enum') type = 'string';
  else if (def.type === 'number') type = 'integer';
  else if (def.type === 'union' && def.options.some((o: { def: { type: string } }) => o.def.type === 'boolean')) type = 'boolean';
  else if (def.type === 'array' && def.element.def.type === 'string') type = 'array';
  return { type, hasDefault, defaultValue, optional };
}

/** Pulumi's ValidateConfigValue: does `value` (as the stack file or the default holds it) fit the declared type? */
function fitsType(d: Declaration, value: unknown): boolean {
  switch (d.type) {
    case undefined:
      return true;
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return (typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^[+-]?\d+$/.test(value));
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false';
    case 'array':
      return Array.isArray(value) && value.every((v) => fitsType(d.items as Declaration, v));
  }
}

/** A value as Pulumi hands it to the program: primitives as text, lists and maps as JSON. */
const asProgramValue = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

function stackFile(stack: string): Record<string, unknown> {
  const doc = parse(fs.readFileSync(path.join(root, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.slice(NS.length), v]));
}

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0QwK2gq6yqk1fO+N2pI5z9kz0zzQe0a1uF0yC4d3Q';
/** A stack file's keys as the program reads them, with the secrets and placeholders a real stack sets. */
function completeStack(stack: string): RawConfig {
  const raw: RawConfig = Object.fromEntries(Object.entries(stackFile(stack)).map(([k, v]) => [k, asProgramValue(v)]));
  raw.sshPrivateKey = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
  if (raw.devContainer) {
    raw.devContainer = JSON.stringify({ ...JSON.parse(raw.devContainer), authorizedKey: HOST_KEY + ' dev@laptop' });
  } else {
    raw.sshHostKey = HOST_KEY;
    raw.operators = JSON.stringify([{ name: 'apt-ops', authorizedKeys: [HOST_KEY + ' ci@example'] }]);
  }
  return raw;
}

/** Pulumi's mergeConfig: every declared key the stack leaves unset gets its default. */
function withProjectDefaults(raw: RawConfig): RawConfig {
  const merged: RawConfig = { ...raw };
  for (const [k, d] of Object.entries(project.config)) {
    const key = k.slice(NS.length);
    if (merged[key] === undefined && d.default !== undefined) merged[key] = asProgramValue(d.default);
  }
  return merged;
}

describe('Pulumi.yaml config block', () => {
  it('declares every schema key in the apt-repo namespace, and no other key', () => {
    expect(project.name).toBe('apt-repo');
    for (const k of Object.keys(project.config)) expect(k.startsWith(NS)).toBe(true);
    expect(
      Object.keys(project.config)
        .map((k) => k.slice(NS.length))
        .sort(),
    ).toEqual([...CONFIG_KEYS].sort());
  });

  it.each(CONFIG_KEYS)('declares %s with the schema type, default and secrecy, and a one-line description', (key) => {
    const d = declared(key);
    const s = fromSchema(key);
    const secret = (SECRET_KEYS as readonly string[]).includes(key);
    expect(d.description).toMatch(/^[^\n]{10,}$/);
    expect(Boolean(d.secret)).toBe(secret);
    const unsetByDefault = s.optional || DEPENDENT_DEFAULTS.has(key);
    if (unsetByDefault) {
      // Pulumi requires a declared key without default: '' is the program's "unset".
      expect(d.default).toBe('');
      // '' is only a string; a typed secret default would have to be encrypted.
      expect(d.type).toBe(s.type === 'string' && !secret ? 'string' : undefined);
    } else {
      expect(d.type).toBe(s.type);
      if (s.hasDefault) expect(d.default).toEqual(s.defaultValue);
      else expect(d.default).toBeUndefined();
    }
    if (d.type === 'array') expect(d.items).toEqual({ type: 'string' });
    else expect(d.items).toBeUndefined();
    if (d.default !== undefined) expect(fitsType(d, d.default)).toBe(true);
  });

  it('leaves required (no default) only the keys every stack must set', () => {
    const required = CONFIG_KEYS.filter((k) => declared(k).default === undefined).sort();
    expect(required).toEqual(['allowedCidrs', 'architectures', 'codenames', 'domain', 'sshPrivateKey']);
    for (const stack of ['dev', 'preprod', 'prod']) {
      const file = stackFile(stack);
      // sshPrivateKey is added, encrypted, by `pulumi config set --secret`.
      expect(required.filter((k) => file[k] === undefined)).toEqual(['sshPrivateKey']);
    }
  });

  it.each(['dev', 'preprod', 'prod'])('accepts every value of Pulumi.%s.yaml with its declared type', (stack) => {
    for (const [key, value] of Object.entries(stackFile(stack))) {
      expect([key, fitsType(declared(key), value)]).toEqual([key, true]);
    }
  });

  it.each(['dev', 'preprod', 'prod'])('reads Pulumi.%s.yaml the same with the defaults the CLI adds', (stack) => {
    const raw = completeStack(stack);
    expect(parseStackConfig(withProjectDefaults(raw), stack)).toEqual(parseStackConfig(raw, stack));
  });

  it('would move the dev stack off its container port if sshPort had the default 22 (why it is unset by default)', () => {
    const raw = completeStack('dev');
    expect(parseStackConfig(raw, 'dev').config.ssh.port).toBe(2222);
    expect(parseStackConfig({ ...raw, sshPort: '22' }, 'dev').config.ssh.port).toBe(22);
  });

  it('catches a wrong type the way the CLI does', () => {
    expect(fitsType(declared('httpPort'), 'eighty')).toBe(false);
    expect(fitsType(declared('httpPort'), '8080')).toBe(true);
    expect(fitsType(declared('allowPlainHttp'), 'yes')).toBe(false);
    expect(fitsType(declared('codenames'), 'bookworm')).toBe(false);
    expect(fitsType(declared('codenames'), ['bookworm'])).toBe(true);
  });
});

describe('apt-repo:signingKeyFingerprint', () => {
  it('is read as upper-case hex without spaces (gpg prints it in groups), and refused when not 40 hex digits', () => {
    const raw = completeStack('preprod');
    expect(parseStackConfig(raw, 'preprod').config.signingKeyFingerprint).toBeUndefined();
    const spaced = 'abcd 0123 abcd 0123 abcd  0123 abcd 0123 abcd 0123';
    expect(parseStackConfig({ ...raw, signingKeyFingerprint: spaced }, 'preprod').config.signingKeyFingerprint).toBe(
      'ABCD0123ABCD0123ABCD0123ABCD0123ABCD0123',
    );
    expect(() => parseStackConfig({ ...raw, signingKeyFingerprint: 'ABCD' }, 'preprod')).toThrow(
      /^apt-repo:signingKeyFingerprint: expected the 40 hex digits/,
    );
  });
});
