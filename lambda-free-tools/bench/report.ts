/**
 * The bench's output on stdout: every row measured (min, median, each run, peak RSS, load average),
 * then the issue's table (apt-repo against the fastest peer per piece of work, ratio ours / peer) and,
 * with --compare, apt-repo before/after per row.
 */
import * as os from 'os';
import { minOf, msOf, Row, rssOf } from './measure';

const s = (ms: number) => (ms / 1000).toFixed(2);
const mib = (r: Row) => (rssOf(r) / 1024).toFixed(0);

/** The table of every row, in the order measured. */
function detailed(rows: Row[], repeat: number): string {
  const head = `${'dataset'.padEnd(14)} ${'command'.padEnd(58)} ${'min ms'.padStart(8)} ${'med ms'.padStart(8)} ${'runs (ms)'.padEnd(22)} ${'MiB'.padStart(5)} ${'load'.padStart(5)}`;
  const lines = rows.map((r) =>
    [
      r.dataset.padEnd(14),
      r.what.padEnd(58),
      minOf(r).toFixed(0).padStart(8),
      msOf(r).toFixed(0).padStart(8),
      r.runs
        .map((t) => t.ms.toFixed(0))
        .join(' ')
        .padEnd(22),
      mib(r).padStart(5),
      r.load.toFixed(2).padStart(5),
    ].join(' '),
  );
  const notes = [...new Set(rows.flatMap((r) => (r.note ? [`  ${r.tool}: ${r.note}`] : [])))];
  return (
    `each row: ${repeat} runs interleaved with the other tools of the same work (fewer when the first run took over 10 s);\n` +
    `min and median wall time, largest peak RSS (GNU time %M), 1-minute load average before the row's first run\n\n` +
    `${head}\n${lines.join('\n')}\n` +
    (notes.length ? `\nnotes:\n${notes.join('\n')}\n` : '')
  );
}

/** The issue's table: per piece of work, apt-repo against the fastest peer (others in parentheses). */
function issueTable(rows: Row[]): string {
  const works = [...new Set(rows.filter((r) => r.work).map((r) => r.work))];
  const lines = ['| work | apt-repo (median s, peak MiB) | fastest peer (name, median s) | ratio |', '|---|---|---|---|'];
  for (const work of works) {
    const ours = rows.find((r) => r.work === work && r.tool === 'apt-repo');
    const peers = rows.filter((r) => r.work === work && !r.tool.startsWith('apt-repo')).sort((a, b) => msOf(a) - msOf(b));
    if (!ours) continue;
    const best = peers[0];
    const others = peers
      .slice(1)
      .map((p) => `${p.tool} ${s(msOf(p))} s`)
      .join(', ');
    const peer = best ? `${best.tool} ${s(msOf(best))} s${others ? ` (${others})` : ''}` : 'none measured';
    const ratio = best ? (msOf(ours) / msOf(best)).toFixed(2) : '';
    lines.push(`| ${work} | ${s(msOf(ours))} s, ${mib(ours)} MiB | ${peer} | ${ratio} |`);
  }
  return `${lines.join('\n')}\n\nratio = apt-repo median / fastest peer median: below 1, apt-repo is faster.\n`;
}

/** apt-repo before (--compare bundle) and after (the build under test), per row. */
function compareTable(rows: Row[]): string {
  const lines = ['| work | command | before (median s, MiB) | after (median s, MiB) | after / before |', '|---|---|---|---|---|'];
  for (const before of rows.filter((r) => r.tool === 'apt-repo (before)')) {
    const after = rows.find(
      (r) => r.dataset === before.dataset && r.tool === 'apt-repo' && r.what === before.what.replace(' (before)', ''),
    );
    if (!after) continue;
    lines.push(
      `| ${before.work || before.dataset} | ${after.what} | ${s(msOf(before))} s, ${mib(before)} | ${s(msOf(after))} s, ${mib(after)} | ${(msOf(after) / msOf(before)).toFixed(2)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the whole report on stdout. */
export function report(rows: Row[], o: { repeat: number; bundle: string; compare?: string }): void {
  const [l1, l5, l15] = os.loadavg();
  const out = process.stdout;
  out.write(
    `\napt-repo benchmark, ${new Date().toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}\n`,
  );
  out.write(
    `bundle: ${o.bundle}${o.compare ? `; before: ${o.compare}` : ''}; load average at the end: ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)}\n`,
  );
  out.write(detailed(rows, o.repeat));
  out.write(`\n${issueTable(rows)}`);
  if (o.compare) out.write(`\nbefore / after (same run, interleaved):\n\n${compareTable(rows)}`);
  out.write(
    '\napt-ftparchive and dpkg-scanpackages write one uncompressed, unsigned Packages on stdout; apt-repo, aptly and reprepro\n' +
      'write Packages (and compressed forms), Release, InRelease and Release.gpg, signed with the same key.\n',
  );
}
