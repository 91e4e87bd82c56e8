import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import * as zlib from 'zlib';
import { pack } from 'tar-stream';
import { arArchive, buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel } from './channel';
import { generateSigningKey } from '../sign/keys';
import { ingest, ingestExitCode } from './ingest';
import { utcStamp } from '../core/stamp';
import { sha256File } from '../core/files';
import { keyOf } from './pool';
import { removePackage } from './remove';
import { readAdded } from './pool';
import * as generations from './generations';
import { currentGeneration } from './generations';
import { verifyChannel } from './verify';
import { publish } from './publish';
import { UsageError } from '../errors';
import type { ChannelConfig } from '../core/types';
import { noticeKeyChange } from './keyWatch';

let root: string;
let ch: ChannelConfig;
let debs: string;
let keyCache: Awaited<ReturnType<typeof generateSigningKey>> | undefined;

async function channel(name: string, upstream?: string): Promise<ChannelConfig> {
  const c = await initChannel({ root, channel: name, codenames: ['bookworm', 'bullseye'], architectures: ['amd64'], upstream });
  keyCache ??= await generateSigningKey({ name: 'Test', email: 'test@example.org', type: 'ed25519' });
  fs.writeFileSync(c.signingKeyFile, keyCache.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(c.webRoot, `${c.keyName}-archive-keyring.asc`), keyCache.publicArmored);
  fs.writeFileSync(path.join(c.webRoot, `${c.keyName}-archive-keyring.gpg`), keyCache.publicBinary);
  return c;
}

function drop(rel: string, src: string): string {
  const dest = path.join(ch.incomingDir, rel);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(src, dest);
  return dest;
}

beforeEach(async () => {
  root = mkTemp('ingest-test');
  debs = path.join(root, 'build');
  ch = await channel('preprod');
});
afterEach(() => rmTemp(root));

describe('ingest', () => {
  test('refuses new bytes under a removed version (still in the trash), accepts the same bytes back', async () => {
    const original = buildDeb(debs, { name: 'once', version: '1.0-1', description: 'first build' });
    drop('ci/once_1.0-1_all.deb', original);
    expect((await ingest(ch, { settleMs: 0 })).entries[0].status).toBe('accepted');
    await removePackage(ch, { name: 'once', version: '1.0-1' });
    const rebuilt = buildDeb(path.join(debs, 'rebuilt'), { name: 'once', version: '1.0-1', description: 'second build' });
    drop('ci/once_1.0-1_all.deb', rebuilt);
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries[0].status).toBe('rejected');
    expect(r.entries[0].reason).toMatch(/once 1.0-1 \(all\) was removed with different content/);
    expect(ingestExitCode(r)).toBe(1);
    expect(fs.existsSync(path.join(ch.webRoot, 'pool/main/o/once/once_1.0-1_all.deb'))).toBe(false);
    drop('ci/once_1.0-1_all.deb', original);
    expect((await ingest(ch, { settleMs: 0 })).entries[0].status).toBe('accepted');
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('moves valid debs into the pool (codename folder kept), records upload times, publishes once, verify clean', async () => {
    drop('ci/hello_1.0-1_all.deb', buildDeb(debs, { name: 'hello', version: '1.0-1' }));
    drop(
      'php/bookworm/php-app_2.0_amd64.deb',
      buildDeb(debs, { name: 'php-app', version: '2.0', architecture: 'amd64', extraFields: { Source: 'php-src (2.0)' } }),
    );
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries.map((e) => [e.status, e.file, e.poolPath])).toEqual([
      ['accepted', 'ci/hello_1.0-1_all.deb', 'pool/main/h/hello/hello_1.0-1_all.deb'],
      ['accepted', 'php/bookworm/php-app_2.0_amd64.deb', 'pool/main/p/php-src/bookworm/php-app_2.0_amd64.deb'],
    ]);
    expect(r.entries[1].codenames).toEqual(['bookworm']);
    expect(r.entries[0].codenames).toEqual(['bookworm', 'bullseye']);
    expect(ingestExitCode(r)).toBe(0);
    expect(fs.existsSync(path.join(ch.incomingDir, 'ci/hello_1.0-1_all.deb'))).toBe(false);
    expect(fs.statSync(path.join(ch.webRoot, 'pool/main/h/hello/hello_1.0-1_all.deb')).mode & 0o777).toBe(0o664);
    expect(Object.keys(readAdded(ch)).sort()).toEqual([
      'pool/main/h/hello/hello_1.0-1_all.deb',
      'pool/main/p/php-src/bookworm/php-app_2.0_amd64.deb',
    ]);
    expect(r.generation).toBeDefined();
    expect(await currentGeneration(ch)).toBe(r.generation);
    expect(r.publish?.packages).toEqual({ bookworm: 2, bullseye: 1 });
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('rejects garbage, a folder and a FIFO named .deb, a symlink, an unknown codename folder and a foreign architecture, each with a .reason', async () => {
    const outside = path.join(root, 'secret.deb');
    fs.copyFileSync(buildDeb(debs, { name: 'outside', version: '1' }), outside);
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/garbage.deb'), 'not an ar archive at all\n');
    fs.mkdirSync(path.join(ch.incomingDir, 'ci/folder.deb'));
    execFileSync('mkfifo', [path.join(ch.incomingDir, 'ci/pipe.deb')]);
    fs.symlinkSync(outside, path.join(ch.incomingDir, 'ci/link.deb'));
    drop('ci/sid/aa_1_all.deb', buildDeb(debs, { name: 'aa', version: '1' }));
    drop('ci/bb_1_arm64.deb', buildDeb(debs, { name: 'bb', version: '1', architecture: 'arm64' }));
    const before = await sha256File(outside);
    const r = await ingest(ch, { settleMs: 0 });
    const byFile = Object.fromEntries(r.entries.map((e) => [e.file, e]));
    expect(r.entries.every((e) => e.status === 'rejected')).toBe(true);
    expect(Object.keys(byFile).sort()).toEqual([
      'ci/bb_1_arm64.deb',
      'ci/folder.deb',
      'ci/garbage.deb',
      'ci/link.deb',
      'ci/pipe.deb',
      'ci/sid/aa_1_all.deb',
    ]);
    expect(byFile['ci/link.deb'].reason).toMatch(/symbolic link/);
    expect(byFile['ci/folder.deb'].reason).toMatch(/not a regular file \(directory\)/);
    expect(byFile['ci/pipe.deb'].reason).toMatch(/not a regular file \(FIFO\)/);
    expect(byFile['ci/sid/aa_1_all.deb'].reason).toMatch(/codename folder 'sid' is not in liste_dist/);
    expect(byFile['ci/bb_1_arm64.deb'].reason).toMatch(/architecture arm64 is not in liste_arch/);
    expect(byFile['ci/garbage.deb'].reason).toBeTruthy();
    for (const e of r.entries) {
      expect(e.movedTo).toBeDefined();
      expect(path.dirname(e.movedTo!)).toBe(ch.rejectedDir);
      expect(path.basename(e.movedTo!)).toMatch(/^\d{8}T\d{6}Z-/);
      const [r1, f1, t1, ...rest] = fs.readFileSync(`${e.movedTo}.reason`, 'utf8').split('\n');
      expect([r1, f1, rest]).toEqual([`reason: ${e.reason}`, `file: ${e.file}`, ['']]);
      expect(t1).toMatch(/^time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(fs.existsSync(path.join(ch.incomingDir, e.file))).toBe(false);
    }
    // The symlink was moved as a link: its target is untouched and still where it was.
    expect(fs.lstatSync(byFile['ci/link.deb'].movedTo!).isSymbolicLink()).toBe(true);
    expect(await sha256File(outside)).toBe(before);
    expect(ingestExitCode(r)).toBe(1);
    expect(r.generation).toBeUndefined();
    expect(fs.readdirSync(path.join(ch.webRoot, 'pool'))).toEqual([]);
  });

  test('skips temporary names, non-debs and files changed within the settle time, leaving them for the next run', async () => {
    drop('ci/.hidden.deb', buildDeb(debs, { name: 'hh', version: '1' }));
    drop('ci/up.deb.part', buildDeb(debs, { name: 'pp', version: '1' }));
    drop('ci/notes.txt', buildDeb(debs, { name: 'nn', version: '1' }));
    drop('ci/fresh_1_all.deb', buildDeb(debs, { name: 'fresh', version: '1' }));
    const r = await ingest(ch, { settleMs: 60_000, recheckMs: 0 });
    expect(r.entries.map((e) => [e.status, e.file])).toEqual([
      ['skipped', 'ci/.hidden.deb'],
      ['skipped', 'ci/fresh_1_all.deb'],
      ['skipped', 'ci/notes.txt'],
      ['skipped', 'ci/up.deb.part'],
    ]);
    expect(r.entries[1].reason).toMatch(/changed less than 60000 ms ago/);
    for (const e of r.entries) expect(fs.existsSync(path.join(ch.incomingDir, e.file))).toBe(true);
    expect(ingestExitCode(r)).toBe(0);
    // Next run, once settled: taken.
    const again = await ingest(ch, { settleMs: 0 });
    expect(again.entries.find((e) => e.file === 'ci/fresh_1_all.deb')?.status).toBe('accepted');
  });

  test('a file still growing between the two looks is skipped', async () => {
    const f = drop('ci/grow_1_all.deb', buildDeb(debs, { name: 'grow', version: '1' }));
    const timer = setTimeout(() => fs.appendFileSync(f, 'x'), 50);
    const r = await ingest(ch, { settleMs: 0, recheckMs: 1500 });
    clearTimeout(timer);
    expect(r.entries).toEqual([
      { status: 'skipped', file: 'ci/grow_1_all.deb', reason: expect.stringMatching(/still being written/), reasonCode: 'settling' },
    ]);
    expect(fs.existsSync(f)).toBe(true);
  });

  test('identical re-upload is removed as present; same name, version and architecture with other bytes is rejected naming the pool file', async () => {
    const v1 = buildDeb(debs, { name: 'dup', version: '1.0' });
    drop('ci/dup_1.0_all.deb', v1);
    await ingest(ch, { settleMs: 0 });
    const gen = await currentGeneration(ch);
    drop('build/dup_1.0_all.deb', v1);
    const other = buildDeb(path.join(root, 'other'), { name: 'dup', version: '1.0', description: 'different bytes' });
    drop('ci/dup_1.0_all.deb', other);
    const r = await ingest(ch, { settleMs: 0 });
    const byFile = Object.fromEntries(r.entries.map((e) => [e.file, e]));
    expect(byFile['build/dup_1.0_all.deb'].status).toBe('present');
    expect(byFile['build/dup_1.0_all.deb'].reason).toMatch(/already present/);
    expect(fs.existsSync(path.join(ch.incomingDir, 'build/dup_1.0_all.deb'))).toBe(false);
    expect(byFile['ci/dup_1.0_all.deb'].status).toBe('rejected');
    expect(byFile['ci/dup_1.0_all.deb'].reason).toContain('pool/main/d/dup/dup_1.0_all.deb');
    expect(await sha256File(path.join(ch.webRoot, 'pool/main/d/dup/dup_1.0_all.deb'))).toBe(await sha256File(v1));
    expect(await currentGeneration(ch)).toBe(gen); // nothing accepted: no publish
  });

  test('the same version in two codename folders with different bytes is fine; a third copy overlapping a codename is not', async () => {
    drop('php/bookworm/pp_1_all.deb', buildDeb(path.join(root, 'b1'), { name: 'pp', version: '1', description: 'bookworm build' }));
    drop('php/bullseye/pp_1_all.deb', buildDeb(path.join(root, 'b2'), { name: 'pp', version: '1', description: 'bullseye build' }));
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries.map((e) => e.status)).toEqual(['accepted', 'accepted']);
    drop('ci/pp_1_all.deb', buildDeb(path.join(root, 'b3'), { name: 'pp', version: '1', description: 'every codename' }));
    const r2 = await ingest(ch, { settleMs: 0 });
    expect(r2.entries[0].status).toBe('rejected');
    expect(r2.entries[0].reason).toMatch(/conflicts with pool file pool\/main\/p\/pp\/bookworm\/pp_1_all.deb/);
  });

  test('--source limits the run; an unknown source or a downstream channel is a usage error', async () => {
    drop('ci/aa_1_all.deb', buildDeb(debs, { name: 'aa', version: '1' }));
    drop('php/bb_1_all.deb', buildDeb(debs, { name: 'bb', version: '1' }));
    const r = await ingest(ch, { settleMs: 0, source: 'php' });
    expect(r.entries.map((e) => e.file)).toEqual(['php/bb_1_all.deb']);
    await expect(ingest(ch, { source: 'nope' })).rejects.toThrow(UsageError);
    await expect(ingest(ch, { source: '../etc' })).rejects.toThrow(UsageError);
    const prod = await channel('prod', 'preprod');
    await expect(ingest(prod, { settleMs: 0 })).rejects.toThrow(/promote/);
  });

  test('a rejected file that cannot be moved is reported and left in place', async () => {
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'garbage');
    // rejectedDir occupied by a plain file: mkdir/rename into it fails.
    fs.rmSync(ch.rejectedDir, { recursive: true, force: true });
    fs.writeFileSync(ch.rejectedDir, 'in the way');
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries[0].status).toBe('rejected');
    expect(r.entries[0].movedTo).toBeUndefined();
    expect(r.entries[0].reason).toMatch(/left in place/);
    expect(fs.existsSync(path.join(ch.incomingDir, 'ci/bad.deb'))).toBe(true);
    expect(ingestExitCode(r)).toBe(1);
  });

  test('a publish that fails after switching says the new generation serves the files', async () => {
    drop('ci/hello_1_all.deb', buildDeb(debs, { name: 'hello', version: '1' }));
    const prune = jest.spyOn(generations, 'pruneGenerations').mockRejectedValueOnce(new Error('EACCES: cannot prune'));
    let err: Error | undefined;
    try {
      await ingest(ch, { settleMs: 0 });
    } catch (e) {
      err = e as Error;
    } finally {
      prune.mockRestore();
    }
    const gen = await currentGeneration(ch);
    expect(gen).toBeDefined();
    expect(err?.message).toContain(
      `1 file(s) were moved into ${ch.webRoot}/pool but publishing failed (generation ${gen} serves them, but publish did not finish): EACCES: cannot prune`,
    );
  });

  test('a publish that fails before switching keeps the intent record: the next run, with nothing new, publishes the files (issue 9)', async () => {
    drop('ci/hello_1_all.deb', buildDeb(debs, { name: 'hello', version: '1' }));
    const keyText = fs.readFileSync(ch.signingKeyFile);
    fs.rmSync(ch.signingKeyFile);
    await expect(ingest(ch, { settleMs: 0 })).rejects.toThrow(
      /the previous index still serves; the next writing command of this channel publishes them/,
    );
    expect(fs.existsSync(path.join(ch.stateDir, 'intent.jsonl'))).toBe(true);
    fs.writeFileSync(ch.signingKeyFile, keyText, { mode: 0o600 });
    const lines: string[] = [];
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((t: string | Uint8Array) => lines.push(String(t)) > 0);
    let r;
    try {
      r = await ingest(ch, { settleMs: 0 });
    } finally {
      stderr.mockRestore();
    }
    expect(r.entries).toEqual([]);
    expect(r.generation).toBeDefined();
    expect(r.generation).toBe(await currentGeneration(ch));
    expect(lines).toContainEqual(expect.stringMatching(/^apt-repo: recovering: preprod: interrupted ingest/));
    expect(fs.existsSync(path.join(ch.stateDir, 'intent.jsonl'))).toBe(false);
    expect(await verifyChannel(ch)).toEqual([]);
  });

  test('every pool placement is announced in the intent record before it is made', async () => {
    drop('ci/hello_1_all.deb', buildDeb(debs, { name: 'hello', version: '1' }));
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'garbage');
    const seen: string[] = [];
    const files = await import('../core/files');
    const place = jest.spyOn(files, 'placeFile').mockImplementation(async (...a) => {
      seen.push(fs.readFileSync(path.join(ch.stateDir, 'intent.jsonl'), 'utf8'));
      place.mockRestore();
      return files.placeFile(...a);
    });
    await ingest(ch, { settleMs: 0 });
    expect(seen).toHaveLength(1);
    const lines = seen[0]
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ intent: 1, command: 'ingest', pid: process.pid, served: null });
    expect(lines.slice(1)).toEqual([
      { op: 'reject', rel: 'ci/bad.deb', name: expect.stringMatching(/-bad\.deb$/) },
      {
        op: 'add',
        poolPath: 'pool/main/h/hello/hello_1_all.deb',
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        at: expect.any(Number),
        from: { kind: 'incoming', rel: 'ci/hello_1_all.deb', ino: expect.any(Number) },
      },
    ]);
    expect(fs.existsSync(path.join(ch.stateDir, 'intent.jsonl'))).toBe(false);
  });

  test('a rejected file whose .reason cannot be written is left in place, with no partial .reason', async () => {
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'garbage');
    // The key watch records the channel's key at a writer's start (its first write): done now.
    await noticeKeyChange(ch);
    const realFs = require('fs') as typeof fs;
    const real = realFs.writeFileSync;
    // The .reason is then the first file ingest writes through a descriptor (SafeDir.createFile).
    let failed = false;
    const write = jest.spyOn(realFs, 'writeFileSync').mockImplementation((file, ...rest) => {
      if (typeof file === 'number' && !failed) {
        failed = true;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return real(file, ...rest);
    });
    let r;
    try {
      r = await ingest(ch, { settleMs: 0 });
    } finally {
      write.mockRestore();
    }
    const e = r.entries[0];
    expect(e.status).toBe('rejected');
    expect(e.movedTo).toBeUndefined();
    expect(e.reason).toMatch(/could not be moved to .*\(ENOSPC.*left in place/);
    expect(fs.readFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'utf8')).toBe('garbage');
    expect(fs.readdirSync(ch.rejectedDir)).toEqual([]);
    expect(ingestExitCode(r)).toBe(1);
  });
});

describe('file helpers', () => {
  test('keyOf treats an explicit epoch 0 as the same version', () => {
    expect(keyOf('a', '0:1.0', 'all')).toBe(keyOf('a', '1.0', 'all'));
    expect(keyOf('a', '1:1.0', 'all')).not.toBe(keyOf('a', '1.0', 'all'));
  });
  test('utcStamp is a sortable UTC stamp', () => {
    expect(utcStamp(new Date('2026-11-21T05:15:00.123Z'))).toBe('20261121T051500Z');
  });
});

/** A .deb whose control text is exactly `control` (no validation, on purpose: hostile fields). */
async function rawDeb(control: string): Promise<Buffer> {
  const p = pack();
  p.entry({ name: './control', mode: 0o644 }, control);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return arArchive([
    ['debian-binary', '2.0\n'],
    ['control.tar.gz', zlib.gzipSync(Buffer.concat(chunks))],
    ['data.tar.gz', zlib.gzipSync(Buffer.alloc(1024))],
  ]);
}

/** Every file (content) and symlink (target) below `dir`, by relative path. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(path.join(dir, r))}`;
      else if (e.isDirectory()) walk(r);
      else out[r] = fs.readFileSync(path.join(dir, r)).toString('base64');
    }
  };
  walk('');
  return out;
}

describe('ingest against a hostile uploader (issue 8)', () => {
  let prod: ChannelConfig;
  let prodBefore: Record<string, string>;
  let victim: string;
  beforeEach(async () => {
    prod = await channel('prod', 'preprod');
    victim = path.join(prod.webRoot, `${prod.keyName}-archive-keyring.asc`);
    prodBefore = snapshot(prod.webRoot);
  });
  const prodUnchanged = () => expect(snapshot(prod.webRoot)).toEqual(prodBefore);

  test.each([
    [
      'Source with ../ into prod',
      'Package: evil\nSource: ../../../prod/pool/main/e/evil\nVersion: 1.0\nArchitecture: all\n',
      /invalid Source field/,
    ],
    ['Source with a slash', 'Package: evil\nSource: a/b\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['Source version with ../', 'Package: evil\nSource: evil (1/../../x)\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['Source with a newline', 'Package: evil\nSource: evil\n ../../../prod\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['Source with NUL', 'Package: evil\nSource: ev\u0000il\nVersion: 1.0\nArchitecture: all\n', /invalid Source field/],
    ['Package with ../', 'Package: ../../../../prod/pool/main/e/evil/x\nVersion: 1.0\nArchitecture: all\n', /invalid Package field/],
    ['Package with NUL', 'Package: evil\u0000\nVersion: 1.0\nArchitecture: all\n', /invalid Package field/],
    ['Version with ../', 'Package: evil\nVersion: 1/../../../../../prod/x\nArchitecture: all\n', /invalid Version field/],
    ['Version with a newline', 'Package: evil\nVersion: 1.0\n /../x\nArchitecture: all\n', /invalid Version field/],
    ['Architecture with ../', 'Package: evil\nVersion: 1.0\nArchitecture: all/../../../../../../prod/x\n', /invalid Architecture field/],
  ])('%s: rejected naming the field, nothing lands in either pool', async (_label, control, reason) => {
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/evil.deb'), await rawDeb(control));
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries.map((e) => [e.status, e.file])).toEqual([['rejected', 'ci/evil.deb']]);
    expect(r.entries[0].reason).toMatch(reason);
    expect(r.entries[0].movedTo).toBeDefined();
    expect(fs.readFileSync(`${r.entries[0].movedTo}.reason`, 'utf8').split('\n')[0]).toMatch(reason);
    expect(fs.readdirSync(path.join(ch.webRoot, 'pool'))).toEqual([]);
    prodUnchanged();
  });

  test('a dropped file with a second hard link is rejected', async () => {
    const f = drop('ci/hl_1.0_all.deb', buildDeb(debs, { name: 'hl', version: '1.0' }));
    fs.linkSync(f, path.join(root, 'kept-by-uploader.deb'));
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries.map((e) => [e.status, e.reason])).toEqual([['rejected', 'hard link (2 names): drop a fresh file']]);
    expect(fs.readdirSync(path.join(ch.webRoot, 'pool'))).toEqual([]);
  });

  test('a symlinked drop folder or codename folder is skipped with a reason, its target untouched', async () => {
    const elsewhere = path.join(root, 'elsewhere');
    buildDeb(elsewhere, { name: 'far', version: '1.0' });
    const before = snapshot(elsewhere);
    fs.symlinkSync(elsewhere, path.join(ch.incomingDir, 'linked-source'));
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(ch.incomingDir, 'ci/bookworm'));
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries.map((e) => [e.status, e.file, e.reason])).toEqual([
      ['skipped', 'ci/bookworm', 'symbolic link that is not a .deb (never followed, not even as a codename folder)'],
      ['skipped', 'linked-source', 'symbolic link instead of a drop folder (never followed)'],
    ]);
    expect(snapshot(elsewhere)).toEqual(before);
    expect(fs.readdirSync(path.join(ch.webRoot, 'pool'))).toEqual([]);
  });

  test('symlinks planted at the rejected and .reason names of the next 10 seconds are never written through', async () => {
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'garbage');
    fs.mkdirSync(ch.rejectedDir, { recursive: true });
    const now = Date.now();
    for (let s = -1; s <= 10; s++) {
      const stamp = utcStamp(new Date(now + s * 1000));
      fs.symlinkSync(victim, path.join(ch.rejectedDir, `${stamp}-bad.deb.reason`));
      fs.symlinkSync(victim, path.join(ch.rejectedDir, `${stamp}-bad.deb`));
    }
    const r = await ingest(ch, { settleMs: 0 });
    const e = r.entries[0];
    expect(e.status).toBe('rejected');
    expect(e.movedTo).toBeDefined();
    expect(fs.lstatSync(e.movedTo!).isFile()).toBe(true);
    expect(fs.readFileSync(e.movedTo!, 'utf8')).toBe('garbage');
    expect(fs.lstatSync(`${e.movedTo}.reason`).isFile()).toBe(true);
    expect(fs.readFileSync(`${e.movedTo}.reason`, 'utf8')).toMatch(/^reason: not an ar archive/);
    prodUnchanged();
  });

  test('a rejected folder that is a symlink (or not ours) is never written into: the file stays in place', async () => {
    fs.mkdirSync(path.join(ch.incomingDir, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ch.incomingDir, 'ci/bad.deb'), 'garbage');
    fs.rmSync(ch.rejectedDir, { recursive: true, force: true });
    fs.symlinkSync(prod.webRoot, ch.rejectedDir);
    let r = await ingest(ch, { settleMs: 0 });
    expect(r.entries[0].status).toBe('rejected');
    expect(r.entries[0].reason).toMatch(/symbolic link.*left in place/);
    expect(fs.existsSync(path.join(ch.incomingDir, 'ci/bad.deb'))).toBe(true);
    prodUnchanged();
    if (process.geteuid?.() === 0) {
      fs.unlinkSync(ch.rejectedDir);
      fs.mkdirSync(ch.rejectedDir);
      fs.chownSync(ch.rejectedDir, 65534, 65534);
      r = await ingest(ch, { settleMs: 0 });
      expect(r.entries[0].reason).toMatch(/owned by uid 65534, not by the running user.*left in place/);
      expect(fs.readdirSync(ch.rejectedDir)).toEqual([]);
    }
  });

  test('a pool folder swapped for a symlink into prod is refused: nothing lands in prod', async () => {
    fs.mkdirSync(path.join(ch.webRoot, 'pool/main'), { recursive: true });
    fs.mkdirSync(path.join(prod.webRoot, 'pool/main/e'), { recursive: true });
    prodBefore = snapshot(prod.webRoot);
    fs.symlinkSync(path.join(prod.webRoot, 'pool/main/e'), path.join(ch.webRoot, 'pool/main/e'));
    drop('ci/evil_1.0_all.deb', buildDeb(debs, { name: 'evil', version: '1.0' }));
    const r = await ingest(ch, { settleMs: 0 });
    expect(r.entries[0].status).toBe('rejected');
    expect(r.entries[0].reason).toMatch(/symbolic link.*left in place/);
    prodUnchanged();
  });

  test('a symlink in the pool is a problem: never published, never followed', async () => {
    drop('ci/ok_1.0_all.deb', buildDeb(debs, { name: 'ok', version: '1.0' }));
    await ingest(ch, { settleMs: 0 });
    const outside = path.join(root, 'outside_1.0_all.deb');
    fs.copyFileSync(buildDeb(debs, { name: 'outside', version: '1.0' }), outside);
    fs.symlinkSync(outside, path.join(ch.webRoot, 'pool/main/o/ok/outside_1.0_all.deb'));
    await expect(publish(ch, { rescan: true })).rejects.toThrow(/outside_1.0_all.deb: symbolic link in the pool/);
    expect(fs.readFileSync(path.join(ch.webRoot, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8')).not.toMatch(/outside/);
    expect((await verifyChannel(ch)).join('\n')).toMatch(/outside_1.0_all.deb: symbolic link in the pool/);
  });
});
