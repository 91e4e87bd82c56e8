/**
 * Verifying a published channel the way a client would depend on it: `dists` resolves to a
 * complete generation; the format's index layout checks its indexes (IndexLayout.verify; for
 * Debian: every Release signed (InRelease, Release.gpg) by the channel's public key, every index
 * file matching Release with its by-hash copy, compressed indexes holding the same text as
 * Packages); every index entry's pool file exists with
 * the listed size and digests (really re-hashed: this is the check, the cache is not trusted);
 * every pool file is served by a kept generation, every file a kept generation lists is in the pool
 * or the trash, and no interrupted writer's intent record is pending (repo/recover.ts).
 * Formats: https://wiki.debian.org/DebianRepository/Format; signatures: RFC 4880 (v4 keys).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as openpgp from 'openpgp';
import { trashDir } from './trash';
import { publicKeyFileNames } from '../sign/keys';
import { compareDigests, digestFile } from '../core/digests';
import { formatOf } from './format';
import { currentGeneration, generationDir, listGenerations, readGenerationInfo } from './generations';
import { intentFile, readIntent } from './intent';
import { confine } from '../core/files';
import { isPoolPath, listPoolEntries } from './pool';
import type { ChannelConfig, Digests } from '../core/types';

const HASH_CONCURRENCY = 8;

/** Reads the channel's public key from the web root (`.asc`, else `.gpg`); undefined with a problem when missing or unreadable. */
async function readPublicKey(ch: ChannelConfig, problems: string[]): Promise<openpgp.PublicKey | undefined> {
  const names = publicKeyFileNames(ch.keyName);
  const asc = path.join(ch.webRoot, names.asc);
  const gpg = path.join(ch.webRoot, names.gpg);
  try {
    if (fs.existsSync(asc)) return await openpgp.readKey({ armoredKey: fs.readFileSync(asc, 'utf8') });
    if (fs.existsSync(gpg)) return await openpgp.readKey({ binaryKey: fs.readFileSync(gpg) });
    problems.push(`${asc}: missing (public key; run \`apt-repo keygen\`)`);
  } catch (e) {
    problems.push(`${fs.existsSync(asc) ? asc : gpg}: not a valid OpenPGP public key: ${(e as Error).message}`);
  }
  return undefined;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/**
 * Checks one published channel and returns the problems found, one line each naming the file
 * (empty: the repository is consistent). Never throws for repository content; reads only.
 * Does not take the lock (a long check must not block publishing); a generation pruned while this
 * runs shows up as missing files.
 */
export async function verifyChannel(ch: ChannelConfig): Promise<string[]> {
  const problems: string[] = [];
  let id: string | undefined;
  try {
    id = await currentGeneration(ch);
  } catch (e) {
    return [(e as Error).message];
  }
  if (!id) return [`${path.join(ch.webRoot, 'dists')}: missing (nothing published yet; run \`apt-repo publish\`)`];
  if (!readGenerationInfo(ch, id)) problems.push(`${generationDir(ch, id)}: incomplete generation (no valid generation.json)`);
  const distsDir = path.join(generationDir(ch, id), 'dists');
  if (!fs.existsSync(distsDir)) return [...problems, `${path.join(ch.webRoot, 'dists')}: points at missing ${distsDir}`];

  const key = await readPublicKey(ch, problems);
  await checkKeyMatchesSigningKey(ch, key, problems);

  /** Pool file → the index entries that name it (each with the file they came from). */
  const wanted = new Map<string, { index: string; size: number; digests: Partial<Digests> }[]>();

  const layout = formatOf(ch).indexes;
  for (const codename of ch.codenames) {
    const r = await layout.verify(distsDir, codename, ch, { isPoolPath: (p) => isPoolPath(p, formatOf(ch)), key });
    problems.push(...r.problems);
    for (const e of r.entries) {
      const list = wanted.get(e.poolPath) ?? [];
      list.push({ index: e.where, size: e.size, digests: e.digests });
      wanted.set(e.poolPath, list);
    }
  }

  // A link in the pool is never published; its target might be anything (issue 8).
  let poolFiles: string[] = [];
  try {
    const listing = listPoolEntries(ch.webRoot);
    poolFiles = listing.files;
    for (const l of listing.links)
      problems.push(`${path.join(ch.webRoot, l)}: symbolic link in the pool (never followed nor published; remove it)`);
  } catch (e) {
    problems.push((e as Error).message);
  }
  const servedSha = new Set<string>();
  for (const list of wanted.values()) for (const w of list) if (w.digests.SHA256) servedSha.add(w.digests.SHA256);
  problems.push(...(await checkPoolAgainstGenerations(ch, poolFiles, servedSha)));

  await forEachLimited([...wanted.keys()].sort(), HASH_CONCURRENCY, async (filename) => {
    let file = path.join(ch.webRoot, filename);
    let actual: { size: number; digests: Digests };
    try {
      // Confined under the web root: a link on the way (or the file itself a link) is never followed.
      file = confine(ch.webRoot, filename);
    } catch (e) {
      problems.push(`${(e as Error).message} (named by ${wanted.get(filename)![0].index})`);
      return;
    }
    try {
      actual = await digestFile(file);
    } catch {
      problems.push(`${file}: missing (named by ${wanted.get(filename)![0].index})`);
      return;
    }
    for (const w of wanted.get(filename)!) problems.push(...compareDigests(`${file} (named by ${w.index})`, w.digests, w.size, actual));
    // nginx runs as another user: a file others cannot read is a 403 for every client.
    const mode = fs.lstatSync(file).mode & 0o777;
    if ((mode & 0o004) === 0)
      problems.push(`${file}: mode ${mode.toString(8).padStart(4, '0')} is not world-readable; the web server cannot serve it`);
  });
  return problems;
}

/**
 * The pool against the kept generations: a pool file that no kept generation lists is served by
 * nothing (stranded by an interrupted writer, or routed to no codename / architecture of the
 * channel), unless its bytes are served under another pool path (`servedSha`: the SHA256 of every
 * served entry; an identical copy is listed once); a pool path a kept generation lists that is in neither the pool nor the trash makes a
 * rollback to it impossible (the current generation's own are reported as missing by the entry
 * checks); an intent record means an interrupted writer whose changes are not served yet.
 */
async function checkPoolAgainstGenerations(ch: ChannelConfig, poolFiles: string[], servedSha: Set<string>): Promise<string[]> {
  const problems: string[] = [];
  let intent;
  try {
    intent = readIntent(ch);
  } catch (e) {
    problems.push((e as Error).message);
  }
  // A record whose generation no longer serves belongs to a writer whose publish flipped: its changes are served.
  const current = (await currentGeneration(ch).catch(() => undefined)) ?? null;
  const interrupted = intent && intent.header.served === current ? intent : undefined;
  // A record without operations (publish, re-sign) changed nothing clients could miss.
  if (interrupted && interrupted.ops.length > 0) {
    problems.push(
      `${intentFile(ch)}: an interrupted ${interrupted.header.command} (pid ${interrupted.header.pid}, since ${interrupted.header.since}) left ${interrupted.ops.length} change(s) not served yet; any writing command of ${ch.name} (\`apt-repo --channel ${ch.name} publish\`) finishes it`,
    );
  }
  // Generations the interrupted writer completed but never served are not kept: the next writer removes them.
  const before = new Set(interrupted?.header.generations ?? []);
  const gens = (await listGenerations(ch).catch(() => [])).filter((g) => !interrupted || g.current || before.has(g.id));
  const listed = new Set<string>();
  for (const g of gens) for (const p of g.poolPaths) listed.add(p);
  for (const f of poolFiles) {
    if (listed.has(f)) continue;
    let sha: string | undefined;
    try {
      sha = (await digestFile(confine(ch.webRoot, f))).digests.SHA256;
    } catch {
      sha = undefined; // unreadable: reported as unserved
    }
    if (sha === undefined || !servedSha.has(sha))
      problems.push(
        `${path.join(ch.webRoot, f)}: in the pool but served by no kept generation (\`apt-repo --channel ${ch.name} publish\` serves it, \`remove\` withdraws it)`,
      );
  }
  const inPool = new Set(poolFiles);
  const trash = trashDir(ch);
  for (const g of gens) {
    if (g.current) continue;
    for (const p of g.poolPaths) {
      if (inPool.has(p) || !isPoolPath(p)) continue;
      if (fs.lstatSync(path.join(trash, p), { throwIfNoEntry: false })?.isFile()) continue;
      problems.push(
        `${path.join(ch.webRoot, p)}: listed by kept generation ${g.id} but in neither the pool nor ${trash} (a rollback to ${g.id} would fail)`,
      );
    }
  }
  return problems;
}

/** Reports a web-root public key that is not the signing key's (clients would reject the next publish). */
async function checkKeyMatchesSigningKey(ch: ChannelConfig, key: openpgp.PublicKey | undefined, problems: string[]): Promise<void> {
  if (!key) return;
  let armored: string;
  try {
    armored = fs.readFileSync(ch.signingKeyFile, 'utf8');
  } catch {
    return; // verify may run where the private key is not readable; signatures are still checked
  }
  try {
    const priv = await openpgp.readPrivateKey({ armoredKey: armored });
    if (priv.getFingerprint() !== key.getFingerprint()) {
      problems.push(
        `${path.join(ch.webRoot, publicKeyFileNames(ch.keyName).asc)}: fingerprint ${key.getFingerprint().toUpperCase()} is not the signing key's (${priv.getFingerprint().toUpperCase()})`,
      );
    }
  } catch (e) {
    problems.push(`${ch.signingKeyFile}: not a valid private key: ${(e as Error).message}`);
  }
}
