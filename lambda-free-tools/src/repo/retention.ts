/**
 * Retention (`apt-repo gc --policy`): which versions a channel stops serving, by the rules of its
 * repo.yaml `retention` (per package-name pattern, the first that matches: keep the newest `keep`
 * versions and/or those uploaded less than `maxAgeDays` days ago). Never the newest version of a
 * package, never a version the downstream channel serves (prod, for preprod). The versions that go
 * are taken out as `remove` takes them (their files to the trash, one new generation; `gc` deletes
 * them once no kept generation lists them), under the lock, announced in the intent record first.
 */
import { UsageError } from '../errors';
import { withChannelLock } from './lock';
import { recoverChannel } from './recover';
import { readPool, scanPool } from './pool';
import { formatOf } from './format';
import type { PublishResult } from './generationWriter';
import { withdrawLocked } from './remove';
import type { ChannelConfig, PoolPackage, RetentionRule } from '../core/types';

const DAY_MS = 86_400_000;

/** What retention decides for one version of a package (all its architectures). */
export interface RetentionDecision {
  name: string;
  version: string;
  /** Its pool files (one per architecture). */
  poolPaths: string[];
  verdict: 'keep' | 'remove';
  /** Why, for people: 'the newest', 'served by prod', 'among the newest 5', 'uploaded 3 days ago', or why it goes. */
  reason: string;
  /** The rule's pattern. */
  rule: string;
}

/**
 * The decisions for every version of every package whose name a rule matches (packages no rule
 * matches are left out: retention does not touch them), newest version first per package.
 * `protectedVersions` holds `name=version` of what the downstream channel serves; `nowMs` dates
 * the ages (a version's age is its newest file's upload time, PoolPackage.addedMs); `compare`
 * orders versions (the format's). Pure.
 */
export function retentionPlan(
  packages: PoolPackage[],
  rules: RetentionRule[],
  opts: { protectedVersions: Set<string>; nowMs: number; compare: (a: string, b: string) => number },
): RetentionDecision[] {
  const compiled = rules.map((r) => ({ r, re: new RegExp(r.pattern) }));
  const byName = new Map<string, Map<string, PoolPackage[]>>();
  for (const p of packages) {
    let versions = byName.get(p.name);
    if (!versions) byName.set(p.name, (versions = new Map()));
    versions.set(p.version, [...(versions.get(p.version) ?? []), p]);
  }
  const out: RetentionDecision[] = [];
  for (const name of [...byName.keys()].sort()) {
    const rule = compiled.find((c) => c.re.test(name))?.r;
    if (!rule) continue;
    const versions = [...byName.get(name)!.entries()].sort(([a], [b]) => opts.compare(b, a));
    versions.forEach(([version, files], i) => {
      const poolPaths = files.map((f) => f.poolPath).sort();
      const ageDays = (opts.nowMs - Math.max(...files.map((f) => f.addedMs))) / DAY_MS;
      const keep = (reason: string): RetentionDecision => ({ name, version, poolPaths, verdict: 'keep', reason, rule: rule.pattern });
      if (i === 0) out.push(keep('the newest'));
      else if (opts.protectedVersions.has(`${name}=${version}`)) out.push(keep('served by the downstream channel'));
      else if (rule.keep !== undefined && i < rule.keep) out.push(keep(`among the newest ${rule.keep}`));
      else if (rule.maxAgeDays !== undefined && ageDays < rule.maxAgeDays) out.push(keep(`uploaded ${Math.floor(ageDays)} day(s) ago`));
      else {
        const why = [
          rule.keep !== undefined ? `not among the newest ${rule.keep}` : '',
          rule.maxAgeDays !== undefined ? `uploaded ${Math.floor(ageDays)} day(s) ago (over ${rule.maxAgeDays})` : '',
        ].filter(Boolean);
        out.push({ name, version, poolPaths, verdict: 'remove', reason: why.join(', '), rule: rule.pattern });
      }
    });
  }
  return out;
}

/** Result of applyRetention. */
export interface RetentionResult {
  decisions: RetentionDecision[];
  dryRun: boolean;
  /** The publish that stopped serving the removed versions; absent on a dry run or when nothing goes. */
  publish?: PublishResult;
}

/**
 * Applies `ch`'s retention rules under its lock (see retentionPlan): with `dryRun`, only says what
 * would go and why; otherwise moves the files of the versions that go to the trash (announced in
 * the intent record first, as remove does) and publishes once. `downstream`: the channel promote
 * feeds from `ch` (prod for preprod), whose served versions are kept; its store is only read.
 * Throws UsageError when repo.yaml has no `retention`; what publish throws, after putting the files
 * back when the new generation is not served.
 */
export async function applyRetention(
  ch: ChannelConfig,
  opts: { dryRun?: boolean; downstream?: ChannelConfig; now?: Date } = {},
): Promise<RetentionResult> {
  const rules = ch.retention;
  if (!rules?.length) throw new UsageError(`gc --policy: ${ch.name}'s repo.yaml has no retention rules (see its comments)`);
  return withChannelLock(ch, async () => {
    await recoverChannel(ch);
    const { packages } = await scanPool(ch);
    const protectedVersions = new Set<string>();
    if (opts.downstream) {
      const { servedRecordsOf } = await import('./pending');
      // A generation without served.json (an older writer): its pool, listed.
      const served = (await servedRecordsOf(opts.downstream)) ?? (await readPool(opts.downstream)).packages;
      for (const r of served) protectedVersions.add(`${r.name}=${r.version}`);
    }
    const decisions = retentionPlan(packages, rules, {
      protectedVersions,
      nowMs: (opts.now ?? new Date()).getTime(),
      compare: formatOf(ch).compareVersions,
    });
    const going = decisions.filter((d) => d.verdict === 'remove');
    if (opts.dryRun || going.length === 0) return { decisions, dryRun: Boolean(opts.dryRun) };
    const byPath = new Map(packages.map((p) => [p.poolPath, p]));
    const files = going.flatMap((d) => d.poolPaths.map((pp) => byPath.get(pp)!));
    const { publish } = await withdrawLocked(ch, files, {
      command: 'gc --policy',
      op: 'gc',
      detail: `retention: ${going.length} version(s) past their rule`,
      now: opts.now,
    });
    return { decisions, dryRun: false, publish };
  });
}
