import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { rawControlDeb } from '../../../test/harness/debs';
import { generateSigningKey } from '../sign/keys';
import { initChannel } from './channel';
import { currentGeneration, generationDir, listGenerations, readGenerationInfo } from './generations';
import { publish } from './publish';
import { publishLocked } from './generationWriter';
import { recoverChannel } from './recover';
import { beginIntent, intentFile, readIntent } from './intent';
import { verifyChannel } from './verify';
import type { ChannelConfig } from '../core/types';

let root: string;
let ch: ChannelConfig;
let prod: ChannelConfig;
let key: Awaited<ReturnType<typeof generateSigningKey>>;
let stderr: string[];

/** A pid no process can have (above Linux's largest pid_max, 2^22). */
const DEAD_PID = 4_194_999;
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const debBytes = (name: string, version = '1.0') =>
  rawControlDeb(`Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: R <r@example.org>\nDescription: recovery test\n`);
const poolPath = (name: string, version = '1.0') => `pool/main/${name[0]}/${name}/${name}_${version}_all.deb`;
const inPool = (c: ChannelConfig, name: string) => path.join(c.webRoot, poolPath(name));
const served = async (c: ChannelConfig) => readGenerationInfo(c, (await currentGeneration(c))!)!.poolPaths;
const recovering = () => stderr.filter((l) => l.startsWith('apt-repo: recovering: '));

async function putInPool(c: ChannelConfig, name: string): Promise<string> {
  const f = inPool(c, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, await debBytes(name), { mode: 0o664 });
  return f;
}

beforeAll(async () => {
  key = await generateSigningKey({ name: 'Recover Test', email: 'test@example.org', type: 'ed25519' });
});

beforeEach(async () => {
  root = mkTemp('recover-test');
  ch = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64'] });
  prod = await initChannel({ root, channel: 'prod', codenames: ['bookworm'], architectures: ['amd64'], upstream: 'preprod' });
  for (const c of [ch, prod]) {
    fs.writeFileSync(c.signingKeyFile, key.privateArmored, { mode: 0o600 });
    fs.writeFileSync(path.join(c.webRoot, `${c.keyName}-archive-keyring.asc`), key.publicArmored);
  }
  await putInPool(ch, 'base');
  await publish(ch);
  stderr = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr.push(...String(s).split('\n').filter(Boolean));
    return true;
  });
});
afterEach(() => {
  jest.restoreAllMocks();
  rmTemp(root);
});

test('nothing to do: undefined, nothing printed', async () => {
  expect(await recoverChannel(ch)).toBeUndefined();
  expect(stderr).toEqual([]);
});

test("stale temp files of dead writers are removed (a 0-byte .cache.json.tmp-* included); a live writer's are kept", async () => {
  const stale = [
    path.join(ch.stateDir, `.cache.json.tmp-${DEAD_PID}-0a1b2c3d`),
    path.join(ch.stateDir, `.added.json.tmp-${DEAD_PID}-deadbeef`),
    path.join(ch.stateDir, `lock.${DEAD_PID}.k2j3h4`),
  ];
  for (const f of stale) fs.writeFileSync(f, '');
  const live = path.join(ch.stateDir, `.cache.json.tmp-${process.pid}-01234567`);
  fs.writeFileSync(live, '');
  fs.symlinkSync('.generations/x/dists', path.join(ch.webRoot, `.dists.tmp-${DEAD_PID}-abc`));
  fs.mkdirSync(path.join(ch.webRoot, '.generations/.trash-20261121T000000Z-000007/dists'), { recursive: true });
  const r = await recoverChannel(ch);
  for (const f of stale) expect(fs.existsSync(f)).toBe(false);
  expect(fs.existsSync(live)).toBe(true);
  expect(fs.readdirSync(ch.webRoot).filter((n) => n.startsWith('.dists.tmp-'))).toEqual([]);
  expect(fs.readdirSync(path.join(ch.webRoot, '.generations')).filter((n) => n.startsWith('.trash-'))).toEqual([]);
  expect(r?.actions).toHaveLength(5);
  expect(recovering()).toContain(`apt-repo: recovering: preprod: removed stale temporary file ${stale[0]}`);
  expect(fs.readlinkSync(path.join(ch.webRoot, 'dists'))).toMatch(/^\.generations\/.*\/dists$/);
});

test('writeFileAtomic and restore temps of dead writers in the config folder and web root are removed too (keygen writes the keys there); a link is removed, not followed', async () => {
  const asc = `${ch.keyName}-archive-keyring.asc`;
  const stale = [
    path.join(ch.configDir, `.signing-key.asc.tmp-${DEAD_PID}-0a1b2c3d`),
    path.join(ch.webRoot, `.${asc}.tmp-${DEAD_PID}-deadbeef`),
    path.join(ch.webRoot, `.${asc}.tmp-${DEAD_PID}-restore`),
    path.join(ch.webRoot, `..${asc}.tmp-${DEAD_PID}-restore.tmp-${DEAD_PID}-18c0831b`),
    path.join(ch.stateDir, `.added.json.tmp-${DEAD_PID}-restore`),
  ];
  for (const f of stale) fs.writeFileSync(f, '');
  const target = path.join(root, 'outside.txt');
  fs.writeFileSync(target, 'kept');
  const link = path.join(ch.configDir, `.repo.yaml.tmp-${DEAD_PID}-restore`);
  fs.symlinkSync(target, link);
  const kept = [path.join(ch.webRoot, `.${asc}.tmp-${process.pid}-restore`), path.join(ch.configDir, `.repo.yaml.tmp-${DEAD_PID}-notours`)];
  for (const f of kept) fs.writeFileSync(f, '');
  const r = await recoverChannel(ch);
  for (const f of [...stale, link]) expect([f, fs.existsSync(f) || !!fs.lstatSync(f, { throwIfNoEntry: false })]).toEqual([f, false]);
  expect(fs.readFileSync(target, 'utf8')).toBe('kept');
  for (const f of kept) expect(fs.existsSync(f)).toBe(true);
  expect(r?.actions).toHaveLength(6);
  expect(recovering()).toContain(`apt-repo: recovering: preprod: removed stale temporary file ${stale[3]}`);
});

describe('add from incoming (ingest)', () => {
  test('a move cut between link and unlink: the pool file is kept and published, the incoming name removed', async () => {
    const upload = path.join(ch.incomingDir, 'ci/moved_1.0_all.deb');
    fs.mkdirSync(path.dirname(upload), { recursive: true });
    // Uploaded 0600: the move was cut before ingest's chmod to the pool file mode.
    fs.writeFileSync(upload, await debBytes('moved'), { mode: 0o600 });
    const before = await currentGeneration(ch);
    const intent = await beginIntent(ch, 'ingest');
    intent.record({
      op: 'add',
      poolPath: poolPath('moved'),
      sha256: sha(upload),
      at: 1234,
      from: { kind: 'incoming', rel: 'ci/moved_1.0_all.deb', ino: fs.statSync(upload).ino },
    });
    fs.mkdirSync(path.dirname(inPool(ch, 'moved')), { recursive: true });
    fs.linkSync(upload, inPool(ch, 'moved'));
    const r = await recoverChannel(ch);
    expect(fs.existsSync(upload)).toBe(false);
    expect(fs.statSync(inPool(ch, 'moved')).mode & 0o777).toBe(0o664);
    expect(r?.generation).toBeDefined();
    expect(await currentGeneration(ch)).not.toBe(before);
    expect(await served(ch)).toEqual([poolPath('base'), poolPath('moved')]);
    expect(fs.existsSync(intentFile(ch))).toBe(false);
    expect(recovering()[0]).toMatch(
      /^apt-repo: recovering: preprod: interrupted ingest \(pid \d+, since .*\): 1 recorded change\(s\), generation .* still serves; finishing$/,
    );
    expect(recovering()).toContain(`apt-repo: recovering: preprod: removed ${upload} (already in the pool as ${poolPath('moved')})`);
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('a copy with other bytes than announced is removed, the upload stays in incoming, nothing is published', async () => {
    const upload = path.join(ch.incomingDir, 'ci/copied_1.0_all.deb');
    fs.mkdirSync(path.dirname(upload), { recursive: true });
    fs.writeFileSync(upload, await debBytes('copied'));
    const before = await currentGeneration(ch);
    const intent = await beginIntent(ch, 'ingest');
    intent.record({
      op: 'add',
      poolPath: poolPath('copied'),
      sha256: sha(upload),
      at: 1,
      from: { kind: 'incoming', rel: 'ci/copied_1.0_all.deb', ino: fs.statSync(upload).ino },
    });
    const partial = await putInPool(ch, 'copied');
    fs.truncateSync(partial, 100);
    const tmp = path.join(path.dirname(partial), `.copied_1.0_all.deb.tmp-${DEAD_PID}-0badc0de`);
    fs.writeFileSync(tmp, 'half');
    await recoverChannel(ch);
    expect(fs.existsSync(partial)).toBe(false);
    expect(fs.existsSync(tmp)).toBe(false);
    expect(fs.existsSync(upload)).toBe(true);
    expect(await currentGeneration(ch)).toBe(before);
    expect(fs.existsSync(intentFile(ch))).toBe(false);
    expect(recovering()).toContain(
      `apt-repo: recovering: preprod: removed ${partial}: incomplete or unverified copy (${upload} is still where it was)`,
    );
    expect(recovering()).toContain(`apt-repo: recovering: preprod: removed partial copy ${tmp}`);
  });

  test('a complete copy of an upload another user owns is kept; the incoming file is removed only while it holds the same bytes', async () => {
    const upload = path.join(ch.incomingDir, 'ci/foreign_1.0_all.deb');
    fs.mkdirSync(path.dirname(upload), { recursive: true });
    fs.writeFileSync(upload, await debBytes('foreign'));
    const announced = sha(upload);
    const intent = await beginIntent(ch, 'ingest');
    intent.record({
      op: 'add',
      poolPath: poolPath('foreign'),
      sha256: announced,
      at: 1,
      from: { kind: 'incoming', rel: 'ci/foreign_1.0_all.deb', ino: fs.statSync(upload).ino },
    });
    fs.mkdirSync(path.dirname(inPool(ch, 'foreign')), { recursive: true });
    fs.copyFileSync(upload, inPool(ch, 'foreign'));
    // The uploader rewrote its file in place after the copy: a new upload, left for the next ingest.
    fs.appendFileSync(upload, 'new bytes');
    await recoverChannel(ch);
    expect(await served(ch)).toContain(poolPath('foreign'));
    expect(fs.existsSync(upload)).toBe(true);
  });

  test('the record never names a file that was not placed: nothing changes, the record is cleared', async () => {
    const before = await currentGeneration(ch);
    const intent = await beginIntent(ch, 'ingest');
    intent.record({
      op: 'add',
      poolPath: poolPath('never'),
      sha256: '0'.repeat(64),
      at: 1,
      from: { kind: 'incoming', rel: 'ci/never_1.0_all.deb', ino: 1 },
    });
    await recoverChannel(ch);
    expect(await currentGeneration(ch)).toBe(before);
    expect(readIntent(ch)).toBeUndefined();
  });
});

test('add from upstream (promote): a link of the upstream inode is kept and published downstream', async () => {
  const up = await putInPool(ch, 'promoted');
  await publish(ch);
  await publish(prod);
  const intent = await beginIntent(prod, 'promote');
  intent.record({ op: 'add', poolPath: poolPath('promoted'), sha256: sha(up), at: 1, from: { kind: 'upstream', webRoot: ch.webRoot } });
  fs.mkdirSync(path.dirname(inPool(prod, 'promoted')), { recursive: true });
  fs.linkSync(up, inPool(prod, 'promoted'));
  await recoverChannel(prod);
  expect(await served(prod)).toEqual([poolPath('promoted')]);
  expect(fs.statSync(inPool(prod, 'promoted')).ino).toBe(fs.statSync(up).ino);
  expect(await verifyChannel(prod)).toEqual([]);
});

describe('trash (remove)', () => {
  test('a removal not started or cut between link and unlink is completed into the trash and published', async () => {
    const other = await putInPool(ch, 'other');
    await publish(ch);
    const trash = (n: string) => path.join(ch.stateDir, 'trash', poolPath(n));
    const intent = await beginIntent(ch, 'remove');
    intent.record(
      { op: 'trash', poolPath: poolPath('base'), sha256: sha(inPool(ch, 'base')) },
      { op: 'trash', poolPath: poolPath('other'), sha256: sha(other) },
    );
    // base: linked into the trash, not yet unlinked from the pool; other: not started.
    fs.mkdirSync(path.dirname(trash('base')), { recursive: true });
    fs.linkSync(inPool(ch, 'base'), trash('base'));
    await recoverChannel(ch);
    for (const n of ['base', 'other']) {
      expect(fs.existsSync(inPool(ch, n))).toBe(false);
      expect(fs.existsSync(trash(n))).toBe(true);
    }
    expect(await served(ch)).toEqual([]);
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('a removal already complete in the pool is published', async () => {
    const intent = await beginIntent(ch, 'remove');
    intent.record({ op: 'trash', poolPath: poolPath('base'), sha256: sha(inPool(ch, 'base')) });
    const t = path.join(ch.stateDir, 'trash', poolPath('base'));
    fs.mkdirSync(path.dirname(t), { recursive: true });
    fs.renameSync(inPool(ch, 'base'), t);
    await recoverChannel(ch);
    expect(await served(ch)).toEqual([]);
  });
});

test("untrash (a rollback's restore) never served is put back into the trash", async () => {
  const t = path.join(ch.stateDir, 'trash', poolPath('old'));
  fs.mkdirSync(path.dirname(t), { recursive: true });
  fs.writeFileSync(t, await debBytes('old'));
  const before = await currentGeneration(ch);
  const intent = await beginIntent(ch, 'rollback');
  intent.record({ op: 'untrash', poolPath: poolPath('old') });
  fs.mkdirSync(path.dirname(inPool(ch, 'old')), { recursive: true });
  fs.renameSync(t, inPool(ch, 'old'));
  await recoverChannel(ch);
  expect(fs.existsSync(inPool(ch, 'old'))).toBe(false);
  expect(fs.existsSync(t)).toBe(true);
  expect(await currentGeneration(ch)).toBe(before);
});

test('reject: a .reason left without its upload is removed; a complete rejection is left alone', async () => {
  fs.mkdirSync(ch.rejectedDir, { recursive: true });
  fs.writeFileSync(path.join(ch.rejectedDir, 'S-a.deb.reason'), 'reason: x\n');
  fs.writeFileSync(path.join(ch.rejectedDir, 'S-b.deb.reason'), 'reason: y\n');
  fs.writeFileSync(path.join(ch.rejectedDir, 'S-b.deb'), 'b');
  const intent = await beginIntent(ch, 'ingest');
  intent.record({ op: 'reject', rel: 'ci/a.deb', name: 'S-a.deb' }, { op: 'reject', rel: 'ci/b.deb', name: 'S-b.deb' });
  await recoverChannel(ch);
  expect(fs.readdirSync(ch.rejectedDir).sort()).toEqual(['S-b.deb', 'S-b.deb.reason']);
});

test('a writer killed after its flip: the record is cleared, nothing republished', async () => {
  const intent = await beginIntent(ch, 'ingest');
  await putInPool(ch, 'late');
  intent.record({
    op: 'add',
    poolPath: poolPath('late'),
    sha256: sha(inPool(ch, 'late')),
    at: 1,
    from: { kind: 'incoming', rel: 'ci/late_1.0_all.deb', ino: 1 },
  });
  const flipped = (await publishLocked(ch)).generation; // the writer's own publish, then the kill
  stderr.length = 0;
  await recoverChannel(ch);
  expect(await currentGeneration(ch)).toBe(flipped);
  expect(readIntent(ch)).toBeUndefined();
  expect(recovering()[0]).toMatch(new RegExp(`interrupted ingest .* had published generation ${flipped}`));
});

test('a complete generation the writer wrote but never served is removed, after the recovery publish', async () => {
  const intent = await beginIntent(ch, 'ingest');
  const f = await putInPool(ch, 'gen');
  intent.record({
    op: 'add',
    poolPath: poolPath('gen'),
    sha256: sha(f),
    at: 1,
    from: { kind: 'incoming', rel: 'ci/gen_1.0_all.deb', ino: fs.statSync(f).ino },
  });
  // Killed between generation.json and the flip: copy the current generation under a new id.
  const cur = (await currentGeneration(ch))!;
  const ghost = cur.replace(/\d{6}$/, '000099');
  fs.cpSync(generationDir(ch, cur), generationDir(ch, ghost), { recursive: true });
  fs.writeFileSync(path.join(generationDir(ch, ghost), 'generation.json'), JSON.stringify({ ...readGenerationInfo(ch, cur), id: ghost }));
  const r = await recoverChannel(ch);
  expect(r?.generation).toMatch(/-000100$/); // above the ghost's id
  expect((await listGenerations(ch)).map((g) => g.id)).not.toContain(ghost);
  expect(await served(ch)).toContain(poolPath('gen'));
});

test('a last line cut short is ignored; a failed finishing publish keeps the record for the next writer', async () => {
  const intent = await beginIntent(ch, 'import');
  const f = await putInPool(ch, 'kept');
  intent.record({ op: 'add', poolPath: poolPath('kept'), sha256: sha(f), at: 1, from: { kind: 'copy', file: '/x/kept.deb' } });
  fs.appendFileSync(intentFile(ch), '{"op":"add","poolPath":"pool/main/h/ha');
  expect(readIntent(ch)?.ops).toHaveLength(1);
  const keyFile = fs.readFileSync(ch.signingKeyFile);
  fs.rmSync(ch.signingKeyFile);
  await expect(recoverChannel(ch)).rejects.toThrow(/publishing them failed \(the record .*intent\.jsonl is kept/);
  expect(readIntent(ch)?.ops).toHaveLength(1);
  fs.writeFileSync(ch.signingKeyFile, keyFile, { mode: 0o600 });
  await recoverChannel(ch);
  expect(readIntent(ch)).toBeUndefined();
  expect(await served(ch)).toContain(poolPath('kept'));
});

test('beginIntent refuses while a record is pending', async () => {
  (await beginIntent(ch, 'ingest')).record({ op: 'reject', rel: 'ci/x.deb', name: 'x' });
  await expect(beginIntent(ch, 'promote')).rejects.toThrow(/intent record is still there/);
});

test('a publish killed between generation.json and the flip: verify does not count its generation as kept, the next writer removes it', async () => {
  // What the killed publish left: its intent record (no operation) and a complete generation, never
  // served, that lists a file put into the pool by hand (publish --rescan would serve it).
  const intent = await beginIntent(ch, 'publish');
  intent.mark();
  const servedBefore = (await currentGeneration(ch))!;
  await putInPool(ch, 'extra');
  // A real generation, complete (generation.json), written by the generation writer, then `dists` put back as it was.
  await publishLocked(ch, { trustCache: false });
  const leftover = (await currentGeneration(ch))!;
  fs.rmSync(path.join(ch.webRoot, 'dists'));
  fs.symlinkSync(`.generations/${servedBefore}/dists`, path.join(ch.webRoot, 'dists'));
  expect(readGenerationInfo(ch, leftover)!.poolPaths).toContain(poolPath('extra'));

  // verify reports the unserved file (the leftover generation does not hide it) and not the record without operations.
  expect(await verifyChannel(ch)).toEqual([
    `${inPool(ch, 'extra')}: in the pool but served by no kept generation (\`apt-repo --channel preprod publish\` serves it, \`remove\` withdraws it)`,
  ]);
  // The next writer removes the leftover, never served, and clears the record.
  await recoverChannel(ch);
  expect(fs.existsSync(generationDir(ch, leftover))).toBe(false);
  expect((await listGenerations(ch)).map((g) => g.id)).not.toContain(leftover);
  expect(readIntent(ch)).toBeUndefined();
  expect(recovering()).toEqual(
    expect.arrayContaining([
      expect.stringMatching(
        /interrupted publish \(pid \d+, since [^)]+\): 0 recorded change\(s\), generation \S+ still serves; finishing$/,
      ),
      `apt-repo: recovering: preprod: removed generation ${leftover}: written by the interrupted writer, never served`,
    ]),
  );
});
