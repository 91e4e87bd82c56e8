/**
 * The web catalogue's files, rendered from CatalogueData (catalogue/model.ts) as plain HTML and
 * CSS with one small script for the search box: no external asset, no inline script or style (the
 * pages carry a Content-Security-Policy that forbids both), every list readable without
 * JavaScript, tables that scroll sideways on a phone. Every text that comes from package data,
 * the history or the configuration is escaped (escapeHtml): a control field is hostile.
 *
 * Pages: index.html (every package and version), pending.html (downstream channel only: what
 * `apt-repo pending` lists), generations.html (kept generations and what changed between them),
 * history.html (the newest changes), plus catalogue.css, catalogue.js, favicon.svg and
 * catalogue.json (which generation the catalogue describes, read back by catalogue/write.ts).
 */
import { CATALOGUE_CSS, CATALOGUE_JS, FAVICON_SVG } from './assets';
import type { CatalogueData, CatalogueGeneration, GenerationChangeEntry } from './model';
import type { HistoryRecord } from '../repo/history';

/** The marker file's name and the version of its content. */
export const MARKER_FILE = 'catalogue.json';

/** What catalogue.json holds. */
export interface CatalogueMarker {
  version: 1;
  channel: string;
  /** The generation the catalogue describes. */
  generation: string;
  /** ISO time of the build. */
  builtAt: string;
}

/** `text` with &, <, >, " and ' replaced by character references (HTML Living Standard §13.1.4), safe in text and quoted attributes. */
export function escapeHtml(text: string): string {
  // Most texts (names, versions, dates) have nothing to escape: no new string for them.
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => `&#${c.charCodeAt(0)};`) : text;
}
const SPECIAL = /[&<>"']/;
const SPECIALS = /[&<>"']/g;

const CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'";

/** `ms` (epoch milliseconds) or an ISO text as `YYYY-MM-DD HH:MM UTC` in a <time> element; an empty string when unknown. */
function when(t: number | string | undefined): string {
  if (t === undefined || t === '') return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const iso = d.toISOString();
  return `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 16)}&nbsp;UTC</time>`;
}

/** Bytes as people read them (KiB, MiB: powers of 1024). */
export function humanSize(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

type PageId = 'index' | 'pending' | 'generations' | 'history';

function page(d: CatalogueData, id: PageId, title: string, body: string[]): string {
  const nav: [PageId, string][] = [
    ['index', 'Packages'],
    ...(d.pending ? ([['pending', 'Pending']] as [PageId, string][]) : []),
    ['generations', 'Generations'],
    ['history', 'History'],
  ];
  const links = nav.map(([p, label]) => `<li><a href="${p}.html"${p === id ? ' aria-current="page"' : ''}>${label}</a></li>`);
  const problems = d.problems.length
    ? [
        '<div class="problems" role="note"><p>Not everything could be gathered:</p><ul>',
        ...d.problems.map((p) => `<li>${escapeHtml(p)}</li>`),
        '</ul></div>',
      ]
    : [];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)} · ${escapeHtml(d.channel)}</title>`,
    '<link rel="icon" href="favicon.svg" type="image/svg+xml">',
    '<link rel="stylesheet" href="catalogue.css">',
    '<script src="catalogue.js" defer></script>',
    '</head>',
    '<body>',
    '<a class="skip" href="#main">Skip to content</a>',
    '<header>',
    `<p class="channel">${escapeHtml(d.description)} <span class="badge">${escapeHtml(d.channel)}</span></p>`,
    `<nav aria-label="Catalogue"><ul>${links.join('')}</ul></nav>`,
    '</header>',
    '<main id="main">',
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="meta">Generation <code>${escapeHtml(d.generation.id)}</code>, published ${when(d.generation.date)}; this page built ${when(d.builtAt)}.</p>`,
    ...problems,
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function packagesPage(d: CatalogueData): string {
  const versions = d.packages.reduce((n, p) => n + p.versions.length, 0);
  const dates = d.pair ? '<th scope="col">Uploaded</th><th scope="col">Promoted</th>' : '<th scope="col">Added</th>';
  const body = [
    `<p>${d.packages.length} package${d.packages.length === 1 ? '' : 's'}, ${versions} version${versions === 1 ? '' : 's'}; codenames ${escapeHtml(d.codenames.join(', '))}; architectures ${escapeHtml(d.architectures.join(', '))}. Newest version first.</p>`,
    // Hidden until catalogue.js runs: without JavaScript every package is listed and the search box
    // would do nothing.
    '<form class="search" role="search" hidden>',
    '<label for="q">Search packages</label>',
    '<input id="q" name="q" type="search" autocomplete="off" spellcheck="false" placeholder="name or description">',
    '<p id="shown" aria-live="polite"></p>',
    '</form>',
  ];
  if (d.packages.length === 0) body.push('<p class="empty">This channel serves no package.</p>');
  for (const p of d.packages) {
    const search = `${p.name} ${p.summary}`.toLowerCase();
    body.push(
      `<section class="pkg" id="pkg-${escapeHtml(p.name)}" data-search="${escapeHtml(search)}">`,
      `<h2><a href="#pkg-${escapeHtml(p.name)}">${escapeHtml(p.name)}</a></h2>`,
      p.summary ? `<p class="summary">${escapeHtml(p.summary)}</p>` : '',
      p.description ? `<details><summary>Description</summary><pre class="description">${escapeHtml(p.description)}</pre></details>` : '',
      '<div class="scroll"><table>',
      `<thead><tr><th scope="col">Version</th><th scope="col">Architecture</th><th scope="col">Codenames</th><th scope="col">Size</th>${dates}<th scope="col">Install</th></tr></thead>`,
      '<tbody>',
      ...p.versions.map((v) => {
        const dateCells = d.pair ? `<td>${when(v.uploadedMs)}</td><td>${when(v.promotedMs)}</td>` : `<td>${when(v.uploadedMs)}</td>`;
        return (
          `<tr data-version="${escapeHtml(v.version)}" data-architecture="${escapeHtml(v.architecture)}">` +
          `<td class="nowrap">${escapeHtml(v.version)}</td><td>${escapeHtml(v.architecture)}</td><td>${escapeHtml(v.codenames.join(' '))}</td>` +
          `<td class="nowrap" title="${v.size ?? ''} bytes">${humanSize(v.size)}</td>${dateCells}<td><code>${escapeHtml(v.install)}</code></td></tr>`
        );
      }),
      '</tbody></table></div>',
      '</section>',
    );
  }
  return page(d, 'index', 'Packages', body);
}

function pendingPage(d: CatalogueData): string | undefined {
  const p = d.pending;
  if (!p) return undefined;
  const body = [
    `<p>What <strong>${escapeHtml(p.upstream)}</strong> serves and <strong>${escapeHtml(d.channel)}</strong> does not, as <code>apt-repo pending</code> lists it when this page was built: ${p.rows.length} file${p.rows.length === 1 ? '' : 's'}. Promote with <code>apt-ops promote &lt;name&gt;=&lt;version&gt;</code>.</p>`,
  ];
  if (p.problems.length) body.push('<ul class="problems">', ...p.problems.map((x) => `<li>${escapeHtml(x)}</li>`), '</ul>');
  if (p.rows.length === 0) body.push('<p class="empty">Nothing is pending.</p>');
  else
    body.push(
      '<div class="scroll"><table id="pending">',
      '<thead><tr><th scope="col">Package</th><th scope="col">Version</th><th scope="col">Architecture</th><th scope="col">Codenames</th><th scope="col">Uploaded</th><th scope="col">Note</th></tr></thead>',
      '<tbody>',
      ...p.rows.map(
        (r) =>
          `<tr data-name="${escapeHtml(r.name)}" data-version="${escapeHtml(r.version)}" data-architecture="${escapeHtml(r.architecture)}">` +
          `<td>${escapeHtml(r.name)}</td><td class="nowrap">${escapeHtml(r.version)}</td><td>${escapeHtml(r.architecture)}</td><td>${escapeHtml(r.codenames.join(' '))}</td>` +
          `<td>${when(r.addedMs)}</td><td>${r.conflict ? `conflict: ${escapeHtml(r.conflict)}` : ''}</td></tr>`,
      ),
      '</tbody></table></div>',
    );
  return page(d, 'pending', 'Pending promotion', body);
}

/** Items shown per list before "and N more". */
const LIST_SHOWN = 200;

function entryList(label: string, entries: GenerationChangeEntry[] | undefined): string[] {
  if (!entries || entries.length === 0) return [];
  const shown = entries
    .slice(0, LIST_SHOWN)
    .map((e) => `<li>${escapeHtml('file' in e ? e.file : `${e.name} ${e.version} ${e.architecture}`)}</li>`);
  const more = entries.length > LIST_SHOWN ? [`<li>and ${entries.length - LIST_SHOWN} more</li>`] : [];
  return [`<p>${label} (${entries.length}):</p>`, '<ul class="entries">', ...shown, ...more, '</ul>'];
}

function who(r: HistoryRecord): string {
  const w = r.who;
  if (!w || typeof w !== 'object') return '';
  return escapeHtml(`${w.user ?? '?'}${w.via === 'sudo' ? ' (sudo)' : ''}${w.from ? ` from ${w.from}` : ''}`);
}

function generationSection(g: CatalogueGeneration): string[] {
  const title = `${g.id}${g.current ? ' (served)' : ''}`;
  const lines = [
    `<section class="generation" id="gen-${escapeHtml(g.id)}">`,
    `<h2>${escapeHtml(title)}</h2>`,
    `<p>Published ${when(g.date)}${g.change ? ` by ${who(g.change)}: <strong>${escapeHtml(g.change.op)}</strong>` : ''}${g.change?.detail ? ` (${escapeHtml(g.change.detail)})` : ''}${g.rolledBackFrom ? `; serves again what <a href="#gen-${escapeHtml(g.rolledBackFrom)}">${escapeHtml(g.rolledBackFrom)}</a> served` : ''}.</p>`,
  ];
  if (g.added === undefined) lines.push('<p>Oldest kept generation, or not comparable with the one before it.</p>');
  else if (g.added.length === 0 && (g.removed ?? []).length === 0) lines.push('<p>Same packages as the generation before it.</p>');
  lines.push(...entryList('Added', g.added), ...entryList('Removed', g.removed), '</section>');
  return lines;
}

function generationsPage(d: CatalogueData): string {
  const body = [
    `<p>${d.generations.length} kept generation${d.generations.length === 1 ? '' : 's'}, newest first; each is compared with the one below it. <code>apt-ops rollback --to &lt;id&gt;</code> serves an earlier one again (as a new generation).</p>`,
    ...d.generations.flatMap(generationSection),
  ];
  return page(d, 'generations', 'Generations', body);
}

function packagesText(list: HistoryRecord['added']): string {
  if (!list || list.length === 0) return '';
  const shown = list.slice(0, 20).map((p) => `${p.name} ${p.version} ${p.architecture}`);
  return shown.join(', ') + (list.length > 20 ? ` and ${list.length - 20} more` : '');
}

function historyPage(d: CatalogueData): string {
  const body = [
    `<p>The newest ${d.history.length} change${d.history.length === 1 ? '' : 's'}, newest first (all of them: <code>apt-ops history</code>).</p>`,
  ];
  if (d.history.length === 0) body.push('<p class="empty">No change recorded.</p>');
  else
    body.push(
      '<div class="scroll"><table id="history">',
      '<thead><tr><th scope="col">Time</th><th scope="col">Operation</th><th scope="col">Who</th><th scope="col">Generation</th><th scope="col">What</th></tr></thead>',
      '<tbody>',
      ...d.history.map((r) => {
        const what = [
          r.added?.length ? `added ${packagesText(r.added)}` : '',
          r.removed?.length ? `removed ${packagesText(r.removed)}` : '',
          r.rejected?.length ? `rejected ${r.rejected.map((x) => `${x.file}: ${x.reason}`).join('; ')}` : '',
          r.detail ?? '',
        ].filter((x) => x !== '');
        return (
          `<tr data-op="${escapeHtml(r.op)}"><td>${when(r.time)}</td><td>${escapeHtml(r.op)}</td><td>${who(r)}</td>` +
          `<td>${r.generation ? `<code>${escapeHtml(r.generation)}</code>` : ''}</td><td>${escapeHtml(what.join('; '))}</td></tr>`
        );
      }),
      '</tbody></table></div>',
    );
  return page(d, 'history', 'History', body);
}

/** Every file of the catalogue of `d`: file name → content. */
export function renderCatalogue(d: CatalogueData): Map<string, string> {
  const files = new Map<string, string>([
    ['index.html', packagesPage(d)],
    ['generations.html', generationsPage(d)],
    ['history.html', historyPage(d)],
    ['catalogue.css', CATALOGUE_CSS],
    ['catalogue.js', CATALOGUE_JS],
    ['favicon.svg', FAVICON_SVG],
  ]);
  const pending = pendingPage(d);
  if (pending) files.set('pending.html', pending);
  const marker: CatalogueMarker = { version: 1, channel: d.channel, generation: d.generation.id, builtAt: d.builtAt };
  files.set(MARKER_FILE, JSON.stringify(marker) + '\n');
  return files;
}
