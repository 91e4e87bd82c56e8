/**
 * rollback: serves an earlier kept generation's package set again, as a NEW generation. apt keeps
 * a Release whose Date is newer than the one it is offered (a client that fetched the bad
 * generation's InRelease would ignore the old one), so re-pointing `dists` at the old generation is
 * not enough: its Packages texts (exactly what it served) are written into a new generation with a
 * fresh Date (and Valid-Until), signed again, with the current indexes' files carried into by-hash
 * (a client holding the current Release never gets a Hash Sum mismatch), through the one generation
 * writer (publish.ts writeGenerationLocked). Its generation.json records `rolledBackFrom`.
 *
 * The pool is not rolled back: files added since stay (unserved) and the next publish (ingest,
 * promote, publish) lists them again, so remove a bad version before the next publish. Files the
 * target lists but that were removed since are restored from the trash first, so every index entry
 * points at a real file. That restore is the only pool change, announced in the channel's intent
 * record (recover.ts) before it happens: a rollback killed before its generation serves has the
 * restored files put back into the trash by the next writing command.
 * Format of Release and Packages: https://wiki.debian.org/DebianRepository/Format.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AptRepoError, UsageError } from '../errors';
import { withChannelLock } from './lock';
import { currentGeneration, generationDir, generationSequence, listGenerations, readServed } from './generations';
import { channelSigner, writeGenerationLocked } from './generationWriter';
import { changeRecord } from './history';
import { recoverChannel } from './recover';
import { beginIntent } from './intent';
import { moveToTrash, restoreFromTrash } from './trash';
import { formatOf } from './format';
import type { ChannelConfig, GenerationInfo, Progress, ServedRecord } from '../core/types';

/** Result of rollback(). */
export interface RollbackResult {
  /** Generation `dists` pointed at before (undefined if none). */
  from?: string;
  /** The kept generation whose package set is served again (the one chosen, `--to` or the default). */
  to: string;
  /** The new generation written and now served. */
  generation: string;
  /** The original publish whose package set the new generation serves (recorded in its generation.json). */
  rolledBackFrom: string;
  /** Pool paths put back from the trash. */
  restored: string[];
}

/** The publish whose package set `g` serves: itself, or the one a rollback generation went back to. */
export function servedSetOf(g: Pick<GenerationInfo, 'id' | 'rolledBackFrom'>): string {
  return g.rolledBackFrom ?? g.id;
}

/**
 * The generation `rollback` without `--to` goes to: the newest kept generation published before
 * the package set now served. After a rollback the served set is the rolled-back-to publish, so a
 * second rollback goes one step further back, never forward to the generation rolled back from.
 * Undefined when no kept generation is older. `gens` newest first (listGenerations).
 */
export function defaultRollbackTarget(gens: GenerationInfo[], current: GenerationInfo): GenerationInfo | undefined {
  const bound = generationSequence(servedSetOf(current));
  return gens.find((g) => g.id !== current.id && generationSequence(g.id) < bound);
}

/**
 * Reads generation `id`'s index text of every codename and architecture of `ch`, each checked
 * against its signed manifest by the format's layout (IndexLayout.read: for Debian, Packages
 * against Release, size and SHA256), so what is re-signed is exactly what that generation served.
 * Resolves to codename → architecture → text.
 * Throws AptRepoError naming the index when the generation has none (liste_dist, liste_arch or the
 * component changed since it was published) or when it differs from its manifest.
 */
export async function readServedIndexes(ch: ChannelConfig, id: string): Promise<Map<string, Map<string, string>>> {
  const dists = path.join(generationDir(ch, id), 'dists');
  const layout = formatOf(ch).indexes;
  const out = new Map<string, Map<string, string>>();
  for (const codename of ch.codenames) {
    try {
      out.set(codename, await layout.read(dists, codename, ch));
    } catch (e) {
      if (e instanceof AptRepoError) throw new AptRepoError(`cannot roll ${ch.name} back to ${id}: ${e.message}`);
      throw e;
    }
  }
  return out;
}

/**
 * What generation `id` recorded as served (served.json), when it records exactly `poolPaths` (the
 * pool paths its indexes list); undefined otherwise (an older generation: pending then scans).
 */
export function servedOf(ch: ChannelConfig, id: string, poolPaths: string[]): ServedRecord[] | undefined {
  const served = readServed(ch, id);
  if (!served || served.length !== poolPaths.length) return undefined;
  const wanted = new Set(poolPaths);
  const seen = new Set(served.map((r) => r.poolPath));
  return seen.size === wanted.size && [...seen].every((p) => wanted.has(p)) ? served : undefined;
}

/**
 * The Date of the rollback's Release: in a later second than `currentMs` (the current generation's
 * date), since apt ignores a Release older than the one it holds. With the clock (`given`
 * undefined) in the same second, or less than 2 s behind, it waits for the next second, so Dates
 * do not run ahead of the clock (a publish right after must not look older); otherwise (a clock
 * far behind, or `given` not later) it is one second after `currentMs`.
 */
async function laterDate(currentMs: number, given?: Date): Promise<Date> {
  const floorS = (ms: number) => Math.floor(ms / 1000);
  if (Number.isNaN(currentMs)) return given ?? new Date();
  const next = (floorS(currentMs) + 1) * 1000;
  if (given) return floorS(given.getTime()) > floorS(currentMs) ? given : new Date(next);
  const wait = next - Date.now();
  if (wait > 0 && wait <= 2000) await new Promise((r) => setTimeout(r, wait));
  const now = new Date();
  return floorS(now.getTime()) > floorS(currentMs) ? now : new Date(next);
}

/**
 * Rolls `ch` back, under the channel lock (after recoverChannel): serves generation `opts.to`'s
 * package set, or by default that of the generation published before the set now served (see
 * defaultRollbackTarget), as a new generation (see the module comment). Its Date is `opts.now`
 * (default: the clock) in a later second than the current generation's (see laterDate), so apt
 * always takes the new Release.
 * Throws, leaving `dists` and the pool as they were:
 * - UsageError for an unknown id, the current id, or no earlier generation;
 * - AptRepoError naming the pool files in neither the pool nor the trash, or the index the target
 *   lacks or that differs from its Release (see readServedIndexes);
 * - ConfigError (signing key), SignerError (signer socket) from channelSigner.
 */
export async function rollback(ch: ChannelConfig, opts: { to?: string; now?: Date; progress?: Progress } = {}): Promise<RollbackResult> {
  return withChannelLock(ch, async () => {
    await recoverChannel(ch, { progress: opts.progress });
    const gens = await listGenerations(ch);
    const currentId = await currentGeneration(ch);
    const current = gens.find((g) => g.id === currentId);
    const kept = gens.map((g) => g.id).join(', ') || 'none';
    let target: GenerationInfo | undefined;
    if (opts.to !== undefined) {
      target = gens.find((g) => g.id === opts.to);
      if (!target) throw new UsageError(`generation ${opts.to} is not kept in ${ch.webRoot}/.generations (kept: ${kept})`);
      if (target.id === currentId) throw new UsageError(`generation ${opts.to} is already the current one of ${ch.name}`);
    } else {
      target = current ? defaultRollbackTarget(gens, current) : undefined;
      if (!target)
        throw new UsageError(
          `${ch.name} has no generation older than ${current ? servedSetOf(current) : (currentId ?? '(none)')} to roll back to (kept: ${kept})`,
        );
    }
    const indexes = await readServedIndexes(ch, target.id);
    const layout = formatOf(ch).indexes;
    const packages: Record<string, number> = {};
    const poolPaths = new Set<string>();
    for (const [codename, byArch] of indexes) {
      const files = new Set<string>();
      for (const text of byArch.values()) for (const f of layout.poolPathsOf(text)) files.add(f);
      packages[codename] = files.size;
      for (const f of files) poolPaths.add(f);
    }
    const listed = [...poolPaths].sort();
    // Checked first, with the signer, so a rollback that cannot finish leaves the pool as it was.
    const { restored: toRestore, missing } = await restoreFromTrash(ch, listed, { dryRun: true });
    if (missing.length) {
      throw new AptRepoError(
        `cannot roll ${ch.name} back to ${target.id}: ${missing.length} pool file(s) it lists are in neither ${ch.webRoot} nor the trash: ${missing.join(', ')}`,
      );
    }
    const signer = await channelSigner(ch);
    // Each restore is announced before it happens: a rollback killed before its generation serves
    // has its restores put back into the trash by the next writer (recover.ts, `untrash`), so a
    // version removed on purpose does not come back with the next publish.
    const intent = await beginIntent(ch, 'rollback');
    intent.record(...toRestore.map((poolPath) => ({ op: 'untrash' as const, poolPath })));
    let restored: string[] = [];
    let generation: string;
    const rolledBackFrom = servedSetOf(target);
    try {
      ({ restored } = await restoreFromTrash(ch, listed));
      const now = await laterDate(current ? Date.parse(current.date) : NaN, opts.now);
      generation = await writeGenerationLocked(
        ch,
        {
          indexes,
          packages,
          poolPaths: listed,
          rolledBackFrom,
          ...(target.counts ? { counts: target.counts } : {}),
          served: servedOf(ch, target.id, listed),
          change: changeRecord('rollback', {
            detail: `to generation ${target.id} (the package set of ${rolledBackFrom}), from ${currentId ?? 'none'}`,
          }),
        },
        signer,
        now,
      );
    } catch (e) {
      // Not served (dists unchanged): put the restored files back, then drop the record. Served
      // (only pruning failed): the record stays for the next writer, which finishes the pruning.
      if ((await currentGeneration(ch)) === currentId) {
        // Every announced path, not just `restored`: the restore itself may have stopped midway.
        // Each was in the trash only (the dry run said so); if putting one back fails, the record stays.
        for (const p of toRestore) if (await fs.promises.lstat(path.join(ch.webRoot, p)).catch(() => undefined)) await moveToTrash(ch, p);
        intent.clear();
      }
      throw e;
    }
    intent.clear();
    return { from: currentId, to: target.id, generation, rolledBackFrom, restored };
  });
}
