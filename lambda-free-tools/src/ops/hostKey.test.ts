import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError } from '../errors';
import {
  checkHostKey,
  fingerprint,
  hostMatches,
  keyTypeOfBlob,
  knownHostsName,
  knownKeysFor,
  parseKnownHosts,
  parsePublicKey,
  serverHostKeyAlgorithms,
} from './hostKey';

let dir: string;
let ed: string; // 'ssh-ed25519 AAAA… comment'
let ed2: string;
let rsa: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostkey-test-'));
  for (const [name, type] of [
    ['ed', 'ed25519'],
    ['ed2', 'ed25519'],
    ['rsa', 'rsa'],
  ]) {
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      type,
      ...(type === 'rsa' ? ['-b', '2048'] : []),
      '-N',
      '',
      '-C',
      `key ${name}`,
      '-f',
      path.join(dir, name),
    ]);
  }
  ed = fs.readFileSync(path.join(dir, 'ed.pub'), 'utf8').trim();
  ed2 = fs.readFileSync(path.join(dir, 'ed2.pub'), 'utf8').trim();
  rsa = fs.readFileSync(path.join(dir, 'rsa.pub'), 'utf8').trim();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const blobOf = (line: string) => Buffer.from(line.split(' ')[1], 'base64');

describe('parsePublicKey / fingerprint', () => {
  test('reads type, blob and comment of ssh-keygen output', () => {
    const k = parsePublicKey(ed, 'test');
    expect(k.type).toBe('ssh-ed25519');
    expect(k.comment).toBe('key ed');
    expect(keyTypeOfBlob(k.blob)).toBe('ssh-ed25519');
    expect(parsePublicKey(rsa, 'test').type).toBe('ssh-rsa');
  });

  test('fingerprint is what ssh-keygen -l prints', () => {
    const out = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'ed.pub')]).toString();
    expect(out).toContain(fingerprint(parsePublicKey(ed, 't').blob));
  });

  test('errors name the source: missing field, bad base64, type that lies', () => {
    expect(() => parsePublicKey('ssh-ed25519', 'Pulumi.prod.yaml: apt-repo:sshHostKey')).toThrow(
      /Pulumi\.prod\.yaml: apt-repo:sshHostKey: expected/,
    );
    expect(() => parsePublicKey('ssh-ed25519 !!!notbase64', 'k')).toThrow(ConfigError);
    const lying = 'ssh-rsa ' + ed.split(' ')[1];
    expect(() => parsePublicKey(lying, 'k')).toThrow(/says type ssh-rsa but its data holds ssh-ed25519/);
  });
});

describe('known_hosts matching', () => {
  test('port 22 uses the bare name, other ports [host]:port', () => {
    expect(knownHostsName('Repo.Example', 22)).toBe('repo.example');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  test('patterns: lists, wildcards, negation, case', () => {
    expect(hostMatches('a.example,repo.example', 'REPO.example', 22)).toBe(true);
    expect(hostMatches('*.example', 'repo.example', 22)).toBe(true);
    expect(hostMatches('*.example', 'repo.example', 2222)).toBe(false);
    expect(hostMatches('[*.example]:2222', 'repo.example', 2222)).toBe(true);
    expect(hostMatches('repo?.example', 'repo1.example', 22)).toBe(true);
    expect(hostMatches('*.example,!bad.example', 'bad.example', 22)).toBe(false);
    expect(hostMatches('repo.example', 'other.example', 22)).toBe(false);
  });

  test('hashed entries made by ssh-keygen -H match their host only', () => {
    const file = path.join(dir, 'known_hosts');
    fs.writeFileSync(file, `repo.example ${ed}\n[127.0.0.1]:2222 ${rsa}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'pipe' });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('repo.example');
    const entries = parseKnownHosts(text, file);
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.patterns.startsWith('|1|'))).toBe(true);
    expect(knownKeysFor(entries, 'repo.example', 22).keys.map((k) => k.type)).toEqual(['ssh-ed25519']);
    expect(knownKeysFor(entries, '127.0.0.1', 2222).keys.map((k) => k.type)).toEqual(['ssh-rsa']);
    expect(knownKeysFor(entries, '127.0.0.1', 22).keys).toEqual([]);
  });

  test('comments, blank and malformed lines are skipped; @revoked is kept apart, @cert-authority ignored', () => {
    const text = [
      `# comment`,
      '',
      'garbage',
      `repo.example ssh-ed25519 %%%`,
      `@revoked repo.example ${ed2}`,
      `@cert-authority *.example ${rsa}`,
      `repo.example ${ed}`,
    ].join('\n');
    const { keys, revoked } = knownKeysFor(parseKnownHosts(text, 'kh'), 'repo.example', 22);
    expect(keys.map((k) => k.comment)).toEqual(['key ed']);
    expect(revoked.map((k) => k.comment)).toEqual(['key ed2']);
  });
});

describe('checkHostKey', () => {
  test('pinned: the same blob passes, another is refused naming the source and both fingerprints', () => {
    const policy = { kind: 'pinned' as const, key: parsePublicKey(ed, 's'), source: '/p/Pulumi.prod.yaml: apt-repo:sshHostKey' };
    expect(checkHostKey(blobOf(ed), policy, 'repo:22')).toEqual({ ok: true });
    const r = checkHostKey(blobOf(ed2), policy, 'repo:22');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toContain('host key of repo:22 does not match /p/Pulumi.prod.yaml: apt-repo:sshHostKey');
      expect(r.reason).toContain(fingerprint(blobOf(ed)));
      expect(r.reason).toContain(fingerprint(blobOf(ed2)));
      expect(r.reason).not.toContain('\n');
    }
  });

  test('known_hosts: known passes, unknown host and other key and revoked key are refused', () => {
    const keys = [parsePublicKey(ed, 'k')];
    const base = { kind: 'known_hosts' as const, file: '/home/op/.ssh/known_hosts' };
    expect(checkHostKey(blobOf(ed), { ...base, keys, revoked: [] }, 'h:22').ok).toBe(true);
    const unknown = checkHostKey(blobOf(ed), { ...base, keys: [], revoked: [] }, 'h:22');
    expect(!unknown.ok && unknown.reason).toMatch(/host key of h:22 is unknown/);
    const other = checkHostKey(blobOf(ed2), { ...base, keys, revoked: [] }, 'h:22');
    expect(!other.ok && other.reason).toMatch(/does not match \/home\/op\/\.ssh\/known_hosts/);
    const revoked = checkHostKey(blobOf(ed), { ...base, keys, revoked: [parsePublicKey(ed, 'k')] }, 'h:22');
    expect(!revoked.ok && revoked.reason).toMatch(/@revoked/);
  });

  test('serverHostKeyAlgorithms asks for the known key types (RSA with SHA-2 first)', () => {
    expect(serverHostKeyAlgorithms([parsePublicKey(ed, 'k')])).toEqual(['ssh-ed25519']);
    expect(serverHostKeyAlgorithms([parsePublicKey(rsa, 'k'), parsePublicKey(ed, 'k')])).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
    ]);
    expect(serverHostKeyAlgorithms([])).toBeUndefined();
  });
});
