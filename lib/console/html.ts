/**
 * The console's HTML building blocks: escaping (every value from the table goes through `text`
 * or `attr`), the page frame, and the small formats (times, numbers) the views share.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** A value as HTML text or a quoted attribute's value: every markup character escaped. */
export function text(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** HTML that is already safe (built from `text` and literals); a marker so views never double-escape. */
export interface Html {
  readonly html: string;
}

/** Joins template parts, escaping every value that is not already Html. */
export function html(strings: TemplateStringsArray, ...values: (Html | string | number | Html[])[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    if (Array.isArray(value)) out += value.map((v) => v.html).join('');
    else out += typeof value === 'object' ? value.html : text(value);
    out += strings[i + 1] ?? '';
  });
  return { html: out };
}

/** The console's refresh period: every page reloads itself this often unless paused. */
export const REFRESH_SECONDS = 10;

/** A path with its query, for links that keep the page's own parameters. */
export function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, value);
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

/** A link to another view that keeps the operator's pause (`?refresh=off`) as the console is browsed. */
export function viewLink(path: string, paused: boolean): string {
  return withQuery(path, { refresh: paused ? 'off' : undefined });
}

export interface PageFrame {
  title: string;
  /** when the data on the page was read (ISO 8601) */
  readAt: string;
  /** the page's own path and query, for the pause link */
  path: string;
  query: Record<string, string | undefined>;
  paused: boolean;
  body: Html;
}

/** A whole page: the frame every view shares (language, stylesheet, script, navigation, when read, refresh). */
export function page(frame: PageFrame): string {
  const { paused } = frame;
  const toggle = withQuery(frame.path, { ...frame.query, refresh: paused ? undefined : 'off' });
  // The operator's pause, not a refusal's page that never reloads: only the former is carried on.
  const kept = frame.query.refresh === 'off';
  return `<!doctype html>${
    html`<html lang="en" data-refresh="${paused ? 0 : REFRESH_SECONDS}">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${frame.title} · keypool console</title>
        <link rel="stylesheet" href="/console.css" />
        <script src="/console.js" defer></script>
      </head>
      <body>
        <header>
          <nav aria-label="Views">
            <a href="${viewLink('/', kept)}">Pools</a> <a href="${viewLink('/runs', kept)}">Maintenance runs</a>
          </nav>
          <p class="read">
            Data read at <time datetime="${frame.readAt}">${clock(frame.readAt)}</time>.
            ${paused ? html`Auto-refresh paused.` : html`Refreshes every ${REFRESH_SECONDS} s.`}
            <a href="${toggle}">${paused ? 'Resume auto-refresh' : 'Pause auto-refresh'}</a>
          </p>
        </header>
        <main>${frame.body}</main>
      </body>
    </html>`.html
  }\n`;
}

/** A moment as `YYYY-MM-DD HH:MM:SS UTC`. */
export function clock(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** A moment as a <time> element, or a dash for none. */
export function when(iso: string | null | undefined): Html {
  return iso ? html`<time datetime="${iso}">${clock(iso)}</time>` : html`<span class="none">never</span>`;
}

/** A number as people read it (thousands separated). */
export function number(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

/** How long from `nowIso` until `iso`, in words: "in 45 s", "in 3 min", or "now". */
export function until(iso: string, nowIso: string): string {
  const seconds = Math.round((Date.parse(iso) - Date.parse(nowIso)) / 1000);
  if (seconds <= 0) return 'now';
  if (seconds < 120) return `in ${seconds} s`;
  if (seconds < 7200) return `in ${Math.round(seconds / 60)} min`;
  return `in ${Math.round(seconds / 3600)} h`;
}
