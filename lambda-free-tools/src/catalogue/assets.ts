/**
 * The catalogue's static assets: its style sheet, the search script and an icon (so browsers do
 * not ask the vhost for /favicon.ico, which it refuses). Written into every catalogue as files:
 * the pages' Content-Security-Policy allows no inline script or style.
 */

/** catalogue.css: readable on a phone (tables scroll sideways), visible focus, colours with WCAG AA contrast, dark mode. */
export const CATALOGUE_CSS = `:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #ffffff; --muted: #555555; --line: #d0d0d0; --accent: #0b5cad; --warn: #8a3b00; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e8; --bg: #121212; --muted: #b0b0b0; --line: #3a3a3a; --accent: #7db7ff; --warn: #ffb37a; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header { border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
a:focus, input:focus, summary:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem; }
.channel { margin: .75rem 0 .25rem; font-weight: 600; }
.badge { display: inline-block; padding: 0 .5rem; border: 1px solid var(--line); border-radius: 1rem; font-weight: 400; }
nav ul { display: flex; flex-wrap: wrap; gap: 1rem; list-style: none; margin: 0; padding: .25rem 0 .75rem; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
h1 { font-size: 1.6rem; margin: 1rem 0 .25rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .25rem; word-break: break-all; }
h2 a { text-decoration: none; }
.meta, .summary { color: var(--muted); margin: .25rem 0; }
.problems { color: var(--warn); }
.search { margin: 1rem 0; }
.search label { display: block; font-weight: 600; }
.search input { width: 100%; max-width: 32rem; font: inherit; padding: .5rem; border: 1px solid var(--muted); border-radius: .25rem; color: var(--fg); background: var(--bg); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td code, td.nowrap { white-space: nowrap; }
code, pre { font-family: ui-monospace, monospace; font-size: .9em; }
pre.description { white-space: pre-wrap; margin: .25rem 0 .5rem; }
.entries { columns: 20rem; }
.empty { font-style: italic; }
`;

/**
 * catalogue.js: shows the search box and filters the package sections by their `data-search` text
 * (name and summary, lower case) as the user types; `?q=` in the address pre-fills it.
 */
export const CATALOGUE_JS = `'use strict';
(function () {
  var form = document.querySelector('form.search');
  if (!form) return;
  var input = form.querySelector('input');
  var shown = document.getElementById('shown');
  var sections = Array.prototype.slice.call(document.querySelectorAll('section.pkg'));
  function apply() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    sections.forEach(function (s) {
      var text = s.getAttribute('data-search') || '';
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
      s.hidden = !hit;
      if (hit) n++;
    });
    shown.textContent = words.length ? n + ' of ' + sections.length + ' packages match' : '';
  }
  form.addEventListener('submit', function (e) { e.preventDefault(); apply(); });
  input.addEventListener('input', apply);
  var q = new URLSearchParams(window.location.search).get('q');
  if (q) input.value = q;
  form.hidden = false;
  apply();
})();
`;

/** favicon.svg: a plain box, the catalogue's own icon. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="3" width="14" height="11" rx="2" fill="#0b5cad"/><rect x="4" y="1" width="8" height="4" rx="1" fill="#7db7ff"/></svg>
`;
