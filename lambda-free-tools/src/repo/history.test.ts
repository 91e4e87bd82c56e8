import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, resolveChannelPair } from './channel';
import { ingest } from './ingest';
import { promote, parsePackageSpec } from './promote';
import { gc, removePackage } from './remove';
import { rollback } from './rollback';
import { publish } from './publish';
import { currentActor, historyFile, readHistory, type HistoryRecord } from './history';
import { currentGeneration, generationDir } from './generations';
import { generateSigningKey } from '../sign/keys';
import type { ChannelConfig } from '../core/types';

let root: string;
let preprod: ChannelConfig;
let prod: ChannelConfig;
const savedEnv = { ...process.env };

beforeAll(async () => {
  root = mkTemp('history-test');
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  preprod = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  for (const ch of [preprod, prod]) {
    fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
  }
});
afterAll(() => rmTemp(root));
afterEach(() => {
  process.env = { ...savedEnv };
});

/** Runs as operator `user` through sudo from an SSH client at `from`. */
function asOperator(user: string, from = '192.0.2.7'): void {
  process.env.SUDO_USER = user;
  process.env.SSH_CLIENT = `${from} 51234 22`;
}

/** The history's lines but the `key` one each channel's first writer adds (its key was installed as files: repo/keyWatch.test.ts). */
const lines = (ch: ChannelConfig): HistoryRecord[] =>
  fs
    .readFileSync(historyFile(ch), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as HistoryRecord)
    .filter((r) => r.op !== 'key');

describe('currentActor', () => {
  it('names the sudo user and the SSH client, else the login user', () => {
    expect(currentActor({ SUDO_USER: 'alice', SSH_CLIENT: '10.1.2.3 5555 22', USER: 'aptrepo-prod' })).toEqual({
      user: 'alice',
      via: 'sudo',
      from: '10.1.2.3',
    });
    expect(currentActor({ SSH_CONNECTION: '10.1.2.4 5555 10.0.0.1 22', USER: 'ci' })).toEqual({ user: 'ci', via: 'ssh', from: '10.1.2.4' });
    expect(currentActor({ USER: 'aptrepo-preprod' })).toEqual({ user: 'aptrepo-preprod', via: 'local' });
    // Control characters never reach the record.
    expect(currentActor({ SUDO_USER: 'bob\n{"op":"x"}' }).user).toBe('bob {"op":"x"}');
  });
});

describe('the history of a channel', () => {
  it('records ingest (accepted with their drop folder, rejected with the reason), promote, remove, rollback and gc, with who made them', async () => {
    asOperator('ci-runner');
    buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'app', version: '1.0' });
    buildDeb(path.join(preprod.incomingDir, 'build'), { name: 'tool', version: '2' });
    fs.writeFileSync(path.join(preprod.incomingDir, 'ci', 'broken_1_all.deb'), 'not a deb');
    const first = await ingest(preprod, { settleMs: 0 });
    const [ing] = lines(preprod);
    expect(ing).toMatchObject({
      op: 'ingest',
      who: { user: 'ci-runner', via: 'sudo', from: '192.0.2.7' },
      generation: first.publish!.generation,
      // In the order of the ingest report (by file as dropped).
      added: [
        { name: 'tool', version: '2', architecture: 'all', source: 'build' },
        { name: 'app', version: '1.0', architecture: 'all', source: 'ci' },
      ],
    });
    expect(ing.rejected).toEqual([{ file: 'ci/broken_1_all.deb', reason: expect.stringMatching(/./) }]);
    expect(Date.parse(ing.time)).toBeGreaterThan(Date.now() - 60_000);

    asOperator('alice');
    const pair = await resolveChannelPair(root, 'prod');
    const p = await promote(pair, [parsePackageSpec('app=1.0')]);
    expect(lines(prod)).toEqual([
      expect.objectContaining({
        op: 'promote',
        who: { user: 'alice', via: 'sudo', from: '192.0.2.7' },
        generation: p.publish!.generation,
        added: [{ name: 'app', version: '1.0', architecture: 'all' }],
        detail: 'from preprod',
      }),
    ]);

    asOperator('bob', '198.51.100.2');
    await removePackage(preprod, parsePackageSpec('tool=2'));
    await rollback(preprod, {});
    await gc(preprod);
    await publish(preprod);
    const ops = lines(preprod).map((r) => [r.op, r.who.user, r.who.from]);
    expect(ops).toEqual([
      ['ingest', 'ci-runner', '192.0.2.7'],
      ['remove', 'bob', '198.51.100.2'],
      ['rollback', 'bob', '198.51.100.2'],
      ['publish', 'bob', '198.51.100.2'],
    ]);
    expect(lines(preprod)[1].removed).toEqual([{ name: 'tool', version: '2', architecture: 'all' }]);
    expect(lines(preprod)[2].detail).toMatch(/^to generation \S+ \(the package set of \S+\), from \S+$/);
    // Every record that published names the generation it published, which served right after.
    expect(lines(preprod).every((r) => r.generation && fs.existsSync(generationDir(preprod, r.generation)))).toBe(true);

    expect((await readHistory(preprod, { package: 'tool' })).map((r) => r.op)).toEqual(['ingest', 'remove']);
    expect((await readHistory(preprod, { limit: 1 })).map((r) => r.op)).toEqual(['publish']);
  });

  it("a writer killed between its flip and its history line: readers show the served generation's change, the next writer writes it", async () => {
    asOperator('carol');
    buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'late', version: '1' });
    await ingest(preprod, { settleMs: 0 });
    const served = (await currentGeneration(preprod))!;
    // As if killed after the flip: the history file loses its last line.
    const file = historyFile(preprod);
    const text = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(JSON.parse(text[text.length - 1]).generation).toBe(served);
    fs.writeFileSync(file, text.slice(0, -1).join('\n') + '\n');

    const shown = await readHistory(preprod);
    expect(shown[shown.length - 1]).toMatchObject({ op: 'ingest', generation: served, who: { user: 'carol' }, added: [{ name: 'late' }] });
    expect(lines(preprod).some((r) => r.generation === served)).toBe(false);

    // The next writer (here gc, which publishes nothing) heals the file first.
    asOperator('dave');
    await gc(preprod);
    const healed = lines(preprod).filter((r) => r.generation === served);
    expect(healed).toEqual([expect.objectContaining({ op: 'ingest', who: expect.objectContaining({ user: 'carol' }) })]);
    // Healed once only.
    await gc(preprod);
    expect(lines(preprod).filter((r) => r.generation === served)).toHaveLength(1);
  });

  it('a complete generation that was never served (killed before its flip) is not a change', async () => {
    const served = (await currentGeneration(preprod))!;
    const before = lines(preprod).length;
    // A copy of the served generation under a later id, never pointed at.
    const later = served.replace(/-(\d+)$/, (_m, n: string) => `-${String(Number(n) + 50).padStart(6, '0')}`);
    fs.cpSync(generationDir(preprod, served), generationDir(preprod, later), { recursive: true });
    const info = JSON.parse(fs.readFileSync(path.join(generationDir(preprod, later), 'generation.json'), 'utf8'));
    fs.writeFileSync(path.join(generationDir(preprod, later), 'generation.json'), JSON.stringify({ ...info, id: later }));
    expect((await readHistory(preprod)).some((r) => r.generation === later)).toBe(false);
    await gc(preprod);
    expect(lines(preprod)).toHaveLength(before);
    fs.rmSync(generationDir(preprod, later), { recursive: true });
  });

  it('a line cut by a kill is skipped by readers and cut off by the next append', async () => {
    const file = historyFile(preprod);
    const whole = fs.readFileSync(file, 'utf8');
    fs.appendFileSync(file, '{"time":"2026-11-29T00:00:00.000Z","op":"ing');
    expect((await readHistory(preprod)).length).toBe(whole.split('\n').filter(Boolean).length);
    asOperator('erin');
    buildDeb(path.join(preprod.incomingDir, 'ci'), { name: 'after-cut', version: '1' });
    await ingest(preprod, { settleMs: 0 });
    const text = fs.readFileSync(file, 'utf8');
    expect(text.startsWith(whole)).toBe(true);
    expect(text.slice(whole.length)).toMatch(/^\{"time":"[^"]+","op":"ingest","who":\{"user":"erin"[^\n]*\}\n$/);
  });
});

describe('history file safety', () => {
  it('never writes through a link planted at history.jsonl: the append is refused, the link target unchanged', async () => {
    const dir = mkTemp('history-link');
    try {
      const stateDir = path.join(dir, 'state');
      fs.mkdirSync(stateDir);
      const target = path.join(dir, 'elsewhere');
      fs.writeFileSync(target, 'untouched\n');
      fs.symlinkSync(target, path.join(stateDir, 'history.jsonl'));
      const { appendHistory, changeRecord } = await import('./history');
      expect(() => appendHistory({ stateDir }, changeRecord('gc', { detail: 'x' }))).toThrow(/history\.jsonl/);
      expect(fs.readFileSync(target, 'utf8')).toBe('untouched\n');
      // A second name for the file (a hard link) is refused too.
      fs.rmSync(path.join(stateDir, 'history.jsonl'));
      fs.linkSync(target, path.join(stateDir, 'history.jsonl'));
      expect(() => appendHistory({ stateDir }, changeRecord('gc', { detail: 'x' }))).toThrow(/not a regular file with one name/);
      expect(fs.readFileSync(target, 'utf8')).toBe('untouched\n');
    } finally {
      rmTemp(dir);
    }
  });
});
