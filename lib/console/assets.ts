/**
 * The console's only assets, served by the console itself (the Content-Security-Policy allows
 * nothing else): its stylesheet and a script of a few lines that reloads the page every
 * `data-refresh` seconds (0: paused). Without JavaScript every page still reads the same.
 */

export const CONSOLE_CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --band: #f6f8fa;
  --active: #1a7f37; --cooling: #9a6700; --suspect: #8250df; --exhausted: #bc4c00; --disabled: #cf222e; --undecryptable: #82071e; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 0.75rem; font: 16px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
nav a { margin-right: 1rem; }
a { color: #0550ae; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.25rem; margin: 1.25rem 0 0.5rem; }
.read { color: var(--muted); font-size: 0.9rem; }
code { font: 0.9em ui-monospace, monospace; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--band); }
.num, .count { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
time { white-space: nowrap; }
.none, .why { color: var(--muted); font-size: 0.9em; }
.scroll { overflow-x: auto; }
.pool { border-top: 2px solid var(--line); }
.headline strong { font-size: 1.2em; }
.policy { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; margin: 0.5rem 0; }
.policy div { display: flex; gap: 0.4rem; }
.policy dt { color: var(--muted); }
.policy dd { margin: 0; font-weight: 600; }
.columns { display: flex; flex-wrap: wrap; gap: 0 2rem; align-items: flex-start; }
.histogram { min-width: 18rem; }
.histogram td.bar { width: 12rem; }
.histogram svg { display: block; width: 100%; height: 1rem; }
.histogram rect.under { fill: var(--active); }
.histogram rect.over { fill: var(--disabled); }
.status { display: inline-block; padding: 0 0.45rem; border-radius: 0.75rem; border: 1px solid currentColor; font-weight: 600; font-size: 0.85rem; }
.status-active { color: var(--active); }
.status-cooling { color: var(--cooling); }
.status-suspect { color: var(--suspect); }
.status-exhausted { color: var(--exhausted); }
.status-disabled { color: var(--disabled); }
.status-undecryptable { color: var(--undecryptable); }
.pages a { margin-right: 1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
ul { margin: 0; padding-left: 1.1rem; }
@media (max-width: 40rem) {
  body { padding: 0.5rem; font-size: 15px; }
  table.keys, table.runs { width: 100%; }
  table.keys thead, table.runs thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  table.keys tr, table.runs tr { display: block; border-bottom: 2px solid var(--line); padding: 0.25rem 0; }
  table.keys th, table.keys td, table.runs th, table.runs td { display: grid; grid-template-columns: 7.5rem 1fr; gap: 0.5rem; border: 0; padding: 0.15rem 0.25rem; text-align: left; }
  table.keys [data-label]::before, table.runs [data-label]::before { content: attr(data-label); color: var(--muted); font-weight: 400; }
  .histogram td.bar { width: 6rem; }
}
`;

export const CONSOLE_JS = `// keypool console: reload every data-refresh seconds (0 or absent: paused). Nothing else.
(function () {
  var seconds = Number(document.documentElement.getAttribute('data-refresh'));
  if (seconds > 0) setTimeout(function () { location.reload(); }, seconds * 1000);
})();
`;
