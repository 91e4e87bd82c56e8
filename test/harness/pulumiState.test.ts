/**
 * pulumiUp's decisions against a fake replayer that records every upload and command: what a copy,
 * a stdin, a trigger or a removed step makes @pulumi/command do, and how a failure is retried.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { diffResource, pulumiUp, PulumiUpError, ReplayState, resourceNames, stepsRan, type ReplayTarget } from './pulumiState';
import { stepsToRun } from './pulumiRule';
import type { ReplayStep } from './replay';

/** A fake server: records calls; a script containing `FAIL` exits 1 while `failing` is true. */
class FakeTarget implements ReplayTarget {
  calls: string[] = [];
  failing = true;
  async upload(remotePath: string, content: string): Promise<void> {
    this.calls.push(`upload ${remotePath} ${content}`);
  }
  async uploadFile(localPath: string, remotePath: string): Promise<void> {
    this.calls.push(`uploadFile ${path.basename(localPath)} ${remotePath}`);
  }
  async exec(command: string, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    this.calls.push(`exec ${command}${stdin !== undefined ? ` <${stdin}` : ''}`);
    if (this.failing && command.includes('FAIL')) return { code: 1, stdout: '', stderr: 'boom\n' };
    return { code: 0, stdout: 'CHANGED\n', stderr: '' };
  }
}

const file = (step: string, name: string, content: string) => ({
  remotePath: `/stage/${step}.${name}`,
  content,
  mode: '0644',
  owner: 'root',
  secret: false,
});
const st = (name: string, dependsOn: string[], script: string, extra: Partial<ReplayStep> = {}): ReplayStep => ({
  name,
  dependsOn,
  files: [],
  script,
  triggers: [],
  ...extra,
});

describe('pulumiUp (fake replayer)', () => {
  let dir: string;
  let stateFile: string;
  let target: FakeTarget;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pulumi-state-'));
    stateFile = path.join(dir, 'state.json');
    target = new FakeTarget();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const plan = (
    over: {
      vhost?: string;
      vhostScript?: string;
      keyStdin?: string;
      indexerTriggers?: string[];
      withUnits?: boolean;
      unitsScript?: string;
    } = {},
  ): ReplayStep[] => [
    st('dirs', ['host-base'], 'mkdirs'),
    st('host-base', [], 'apt-get install'),
    st('signing-key', ['dirs'], 'install key', { secretStdin: over.keyStdin ?? 'S0VZ\n' }),
    st('indexer', ['dirs'], 'install bundle', { triggers: over.indexerTriggers ?? ['sha-1'] }),
    st('vhost', ['signing-key'], over.vhostScript ?? 'install vhost', { files: [file('vhost', 'site.conf', over.vhost ?? 'server {}')] }),
    ...(over.withUnits === false
      ? []
      : [
          st('backup-units', ['indexer'], over.unitsScript ?? 'install units', {
            files: [file('backup-units', 'apt-repo-backup.timer', '[Timer]')],
          }),
        ]),
  ];
  const up = async (steps: ReplayStep[]) => {
    target.calls = [];
    return pulumiUp(target, ReplayState.load(stateFile), steps, { channel: 'preprod', connection: 'root@127.0.0.1:22' });
  };

  test('first up creates every resource in dependency order; a second up does nothing', async () => {
    const first = await up(plan());
    expect(stepsRan(first)).toEqual(['host-base', 'dirs', 'signing-key', 'indexer', 'vhost', 'backup-units']);
    expect(first.ran.every((r) => r.op === 'create' && r.changed)).toBe(true);
    expect(first.resources).toEqual({
      'preprod-host-base-host-base': 'create',
      'preprod-dirs': 'create',
      'preprod-signing-key': 'create',
      'preprod-indexer': 'create',
      'preprod-vhost-copy-site.conf': 'create',
      'preprod-vhost': 'create',
      'preprod-backups-backup-units-copy-apt-repo-backup.timer': 'create',
      'preprod-backups-backup-units': 'create',
    });
    // The copy comes before its command; the secret goes on stdin only.
    expect(target.calls.slice(4, 6)).toEqual(['upload /stage/vhost.site.conf server {}', 'exec install vhost']);
    expect(target.calls).toContain('exec install key <S0VZ\n');
    const second = await up(plan());
    expect(second.ran).toEqual([]);
    expect(second.copied).toEqual([]);
    expect(target.calls).toEqual([]);
    expect(Object.values(second.resources).every((op) => op === 'same')).toBe(true);
  });

  test('the state stores digests of stdin and connection, never the secret', async () => {
    await up(plan({ keyStdin: 'UFJJVkFURS1LRVktTUFURVJJQUw=\n' }));
    const text = fs.readFileSync(stateFile, 'utf8');
    expect(text).not.toContain('UFJJVkFURS1LRVktTUFURVJJQUw=');
    expect(text).not.toContain('root@127.0.0.1');
    expect(JSON.parse(text).resources['preprod-signing-key'].inputs.stdinSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(stateFile).mode & 0o777).toBe(0o600);
  });

  test("a copy whose source changed re-uploads but does not run its command when the command's inputs are the same", async () => {
    await up(plan());
    const r = await up(plan({ vhost: 'server { listen 80; }' }));
    expect(r.resources['preprod-vhost-copy-site.conf']).toBe('update');
    expect(r.resources['preprod-vhost']).toBe('same');
    expect(target.calls).toEqual(['upload /stage/vhost.site.conf server { listen 80; }']);
    // The command text changes too (the plan names the staged file's digest): now it runs, once.
    const r2 = await up(plan({ vhost: 'server { listen 80; }', vhostScript: 'install vhost # sha256 b' }));
    expect([r2.resources['preprod-vhost-copy-site.conf'], r2.resources['preprod-vhost']]).toEqual(['same', 'update']);
    expect(target.calls).toEqual(['exec install vhost # sha256 b']);
  });

  test('a triggers change replaces the command (its create runs); dependants are not re-run', async () => {
    await up(plan());
    const r = await up(plan({ indexerTriggers: ['sha-2'] }));
    expect(r.resources['preprod-indexer']).toBe('replace');
    expect(r.ran.map((x) => [x.step, x.op])).toEqual([['indexer', 'replace']]);
    expect(r.resources['preprod-backups-backup-units']).toBe('same');
  });

  test('a stdin change updates the command (create runs again with the new stdin)', async () => {
    await up(plan());
    const r = await up(plan({ keyStdin: 'TkVX\n' }));
    expect(r.ran.map((x) => [x.step, x.op])).toEqual([['signing-key', 'update']]);
    expect(target.calls).toEqual(['exec install key <TkVX\n']);
  });

  test('a connection change updates every command; their copies stay', async () => {
    await up(plan());
    target.calls = [];
    const r = await pulumiUp(target, ReplayState.load(stateFile), plan(), { channel: 'preprod', connection: 'root@127.0.0.1:2222' });
    expect(stepsRan(r)).toEqual(['host-base', 'dirs', 'signing-key', 'indexer', 'vhost', 'backup-units']);
    expect(r.copied).toEqual([]);
  });

  test('a removed step is deleted: nothing runs on the server, its resources leave the state', async () => {
    await up(plan());
    const r = await up(plan({ withUnits: false }));
    expect(r.resources['preprod-backups-backup-units']).toBe('delete');
    expect(r.resources['preprod-backups-backup-units-copy-apt-repo-backup.timer']).toBe('delete');
    expect(target.calls).toEqual([]);
    const saved = Object.keys(JSON.parse(fs.readFileSync(stateFile, 'utf8')).resources);
    expect(saved).not.toContain('preprod-backups-backup-units');
    expect(saved).not.toContain('preprod-backups-backup-units-copy-apt-repo-backup.timer');
    // Declared again: created again.
    expect(stepsRan(await up(plan()))).toEqual(['backup-units']);
  });

  test('a failure is not recorded: the next up retries the failed step and runs the later ones', async () => {
    await up(plan());
    const failing = plan({
      vhostScript: 'install vhost FAIL',
      indexerTriggers: ['sha-2'],
      keyStdin: 'TkVX\n',
      unitsScript: 'install units 2',
    });
    const err = await up(failing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PulumiUpError);
    expect((err as PulumiUpError).resource).toBe('preprod-vhost');
    expect((err as PulumiUpError).message).toMatch(/step 'vhost' .* exited with 1:\nboom/);
    // Ran before the failure (dependency order: signing-key, indexer, then vhost); backup-units was never reached.
    expect(stepsRan((err as PulumiUpError).report)).toEqual(['signing-key', 'indexer']);
    expect(target.calls).not.toContain('exec install units 2');
    target.failing = false;
    const retry = await up(failing);
    // What succeeded is not repeated; the failed command and everything after it are.
    expect(retry.ran.map((x) => [x.step, x.op])).toEqual([
      ['vhost', 'update'],
      ['backup-units', 'update'],
    ]);
    expect(stepsRan(await up(failing))).toEqual([]);
  });

  test('a failure on first sight is retried as a create, and a later step never reached is created then', async () => {
    target.failing = true;
    const steps = [st('a', [], 'FAIL a'), st('b', ['a'], 'run b')];
    await expect(up(steps)).rejects.toThrow(PulumiUpError);
    expect(Object.keys(JSON.parse(fs.readFileSync(stateFile, 'utf8')).resources)).toEqual([]);
    target.failing = false;
    const r = await up(steps);
    expect(r.ran.map((x) => [x.step, x.op])).toEqual([
      ['a', 'create'],
      ['b', 'create'],
    ]);
  });

  test('a bundle copied from a local file is diffed by its content', async () => {
    const bundle = path.join(dir, 'apt-repo.cjs');
    fs.writeFileSync(bundle, 'v1\n');
    const steps = () => [st('indexer', [], 'install', { files: [{ ...file('indexer', 'apt-repo.cjs', ''), localPath: bundle }] })];
    await up(steps());
    expect(target.calls).toEqual(['uploadFile apt-repo.cjs /stage/indexer.apt-repo.cjs', 'exec install']);
    fs.appendFileSync(bundle, '// another\n');
    const r = await up(steps());
    expect(r.resources['preprod-indexer-copy-apt-repo.cjs']).toBe('update');
    expect(target.calls).toEqual(['uploadFile apt-repo.cjs /stage/indexer.apt-repo.cjs']);
  });

  test('resource names follow stacks/index.ts and infra/remoteSteps.ts', () => {
    expect(resourceNames('prod', { name: 'host-base', files: [] })).toEqual({ command: 'prod-host-base-host-base', copies: [] });
    expect(resourceNames('prod', { name: 'config', files: [file('config', 'liste_dist', ''), file('config', 'repo.yaml', '')] })).toEqual({
      command: 'prod-config',
      copies: ['prod-config-copy-liste_dist', 'prod-config-copy-repo.yaml'],
    });
    expect(resourceNames('prod', { name: 'backup-units', files: [] }).command).toBe('prod-backups-backup-units');
  });

  test('diffResource: kinds and inputs', () => {
    const cmd = (inputs: Record<string, unknown>) => ({ kind: 'command' as const, step: 's', inputs });
    expect(diffResource(undefined, cmd({ create: 'a', triggers: [] }))).toBe('create');
    expect(diffResource(cmd({ create: 'a', triggers: [] }), cmd({ create: 'a', triggers: [] }))).toBe('same');
    expect(diffResource(cmd({ create: 'a', triggers: [] }), cmd({ create: 'b', triggers: [] }))).toBe('update');
    expect(diffResource(cmd({ create: 'a', triggers: [] }), cmd({ create: 'b', triggers: ['x'] }))).toBe('replace');
    expect(
      diffResource({ kind: 'copy', step: 's', inputs: { remotePath: '/a' } }, { kind: 'copy', step: 's', inputs: { remotePath: '/b' } }),
    ).toBe('update');
  });

  test('stepsToRun (pulumiRule) agrees with the command diff', () => {
    const before = plan();
    expect(stepsToRun(undefined, before).map((s) => s.name)).toHaveLength(6);
    expect(stepsToRun(before, plan()).map((s) => s.name)).toEqual([]);
    expect(
      stepsToRun(before, plan({ keyStdin: 'TkVX\n', indexerTriggers: ['z'], vhost: 'changed only in the copy' })).map((s) => s.name),
    ).toEqual(['signing-key', 'indexer']);
  });
});
