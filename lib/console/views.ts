/**
 * The console's views, as HTML: every pool, one pool's keys, the last maintenance runs. Each
 * takes what the Overview read and nothing else; values are escaped by `html` (html.ts).
 */
import type { MaintenanceRunRecord } from '../domain/maintenance-run.js';
import { type KeyStatus, type PoolPolicy, STATUS_READING_ORDER } from '../domain/types.js';
import type { HistogramBar, KeyRow, PoolSummary } from '../use-cases/overview.js';
import { html, type Html, number, until, viewLink, when, withQuery } from './html.js';

/** The order statuses are listed in, and the words beside each colour. */
const STATUSES: readonly KeyStatus[] = STATUS_READING_ORDER;

/** A pool's page in the console. */
export function poolPath(pool: string): string {
  return `/pools/${encodeURIComponent(pool)}`;
}

/** A status as text in its colour (the word is always there: colour is never the only sign). */
function status(value: string): Html {
  return html`<span class="status status-${value}">${value}</span>`;
}

function barLabel(bar: HistogramBar): string {
  if (bar.to === null) return `over the cap (${bar.from}+)`;
  return bar.from === bar.to ? String(bar.from) : `${bar.from}–${bar.to}`;
}

/** Usage counts against the cap: one row per bar, the count as text and an SVG bar of the same length. */
function histogram(summary: PoolSummary): Html {
  const largest = Math.max(1, ...summary.histogram.map((bar) => bar.keys));
  const rows = summary.histogram.map((bar) => {
    const width = (bar.keys / largest) * 100;
    return html`<tr data-from="${bar.from}" data-keys="${bar.keys}">
      <th scope="row">${barLabel(bar)}</th>
      <td class="count">${number(bar.keys)}</td>
      <td class="bar">
        <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false">
          <rect
            class="${bar.to === null ? 'over' : 'under'}"
            x="0"
            y="0"
            height="10"
            width="${width.toFixed(2)}"
          ></rect>
        </svg>
      </td>
    </tr>`;
  });
  return html`<table class="histogram">
    <caption>
      Keys by usage count (cap ${summary.policy.maxUses}: a key is usable while its count is at most the cap)
    </caption>
    <thead>
      <tr>
        <th scope="col">Usage count</th>
        <th scope="col">Keys</th>
        <th scope="col"><span class="visually-hidden">Bar</span></th>
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}

function policy(p: PoolPolicy): Html {
  return html`<dl class="policy">
    <div>
      <dt>Cap (maxUses)</dt>
      <dd>${p.maxUses}</dd>
    </div>
    <div>
      <dt>Lease TTL</dt>
      <dd>${p.leaseTtlSeconds} s</dd>
    </div>
    <div>
      <dt>Cooldown</dt>
      <dd>${p.cooldownSeconds} s</dd>
    </div>
    <div>
      <dt>Provider</dt>
      <dd>${p.provider}</dd>
    </div>
    <div>
      <dt>Min credits</dt>
      <dd>${number(p.minCredits)}</dd>
    </div>
    <div>
      <dt>Shards</dt>
      <dd>${p.shards}${p.previousShards === undefined ? '' : ` (moving from ${p.previousShards})`}</dd>
    </div>
  </dl>`;
}

function poolSection(summary: PoolSummary, paused: boolean): Html {
  const { health } = summary;
  const name = summary.policy.pool;
  const counts = STATUSES.map(
    (s) =>
      html`<tr>
        <th scope="row">${status(s)}</th>
        <td>${number(health[s])}</td>
      </tr>`,
  );
  return html`<section class="pool" aria-labelledby="pool-${name}">
    <h2 id="pool-${name}"><a href="${viewLink(poolPath(name), paused)}">${name}</a></h2>
    <p class="headline">
      <strong>${number(health.usable)}</strong> usable of ${number(health.total)} keys ·
      <strong>${number(summary.usableCredits)}</strong> usable credits (${number(health.credits)} in all;
      ${number(health.unchecked)} never checked)
    </p>
    ${policy(summary.policy)}
    <div class="columns">
      <table class="by-status">
        <caption>
          Keys by status
        </caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Keys</th>
          </tr>
        </thead>
        <tbody>
          ${counts}
        </tbody>
      </table>
      ${histogram(summary)}
    </div>
  </section>`;
}

/** Every pool: its policy, its keys by status, usable keys and credits, its usage histogram; links keep a pause. */
export function poolsView(pools: readonly PoolSummary[], paused: boolean): Html {
  return html`<h1>Pools</h1>
    ${pools.length ? pools.map((summary) => poolSection(summary, paused)) : [html`<p>No pools yet: import keys or create a pool (<code>keypool pool set</code>).</p>`]}`;
}

function statusCell(key: KeyRow): Html {
  const by = key.statusBy
    ? html` <span class="why">by ${key.statusBy}${key.statusReason ? html`: ${key.statusReason}` : html``}</span>`
    : html``;
  const at = key.statusAt ? html` <span class="why">since ${when(key.statusAt)}</span>` : html``;
  return html`${status(key.status)}${by}${at}`;
}

function coolingCell(key: KeyRow, readAt: string): Html {
  if (!key.cooldownUntil) return html`<span class="none">–</span>`;
  return html`${when(key.cooldownUntil)} <span class="why">(${until(key.cooldownUntil, readAt)})</span>`;
}

function keyRow(key: KeyRow, maxUses: number, readAt: string): Html {
  return html`<tr data-key-id="${key.keyId}" data-status="${key.status}">
    <th scope="row" data-label="Key"><code>${key.maskedKey}</code></th>
    <td data-label="Label">${key.label ?? ''}</td>
    <td data-label="Uses" class="num">${key.usageCount} <span class="why">of ${maxUses + 1}</span></td>
    <td data-label="Status">${statusCell(key)}</td>
    <td data-label="Cooling until">${coolingCell(key, readAt)}</td>
    <td data-label="Last used">${when(key.lastUsedAt)}</td>
    <td data-label="Credits" class="num">
      ${key.credits === null ? html`<span class="none">unchecked</span>` : number(key.credits)}
    </td>
  </tr>`;
}

/** A page of keys as a table: a row per key, each cell labelled for the narrow layout. */
function keysTable(keys: readonly KeyRow[], maxUses: number, readAt: string): Html {
  return html`<div class="scroll">
    <table class="keys">
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Label</th>
          <th scope="col">Uses</th>
          <th scope="col">Status</th>
          <th scope="col">Cooling until</th>
          <th scope="col">Last used</th>
          <th scope="col">Credits</th>
        </tr>
      </thead>
      <tbody>
        ${keys.map((key) => keyRow(key, maxUses, readAt))}
      </tbody>
    </table>
  </div>`;
}

/** A page with no key says why in words, not with a table of headings alone. */
function noKeys(pool: string, first: boolean): Html {
  return first
    ? html`<p class="empty">No key in this pool yet: import some (<code>keypool import --pool ${pool} ...</code>).</p>`
    : html`<p class="empty">No more keys: the page before this one was the last.</p>`;
}

export interface KeysViewInput {
  policy: PoolPolicy;
  keys: readonly KeyRow[];
  cursor: string | null;
  /** the cursor this page was read from; undefined on the first page */
  from: string | undefined;
  limit: number | undefined;
  readAt: string;
  paused: boolean;
}

/** One page of a pool's keys (masked), with links to the first and the next page. */
export function keysView(input: KeysViewInput): Html {
  const { policy: p, keys } = input;
  const path = poolPath(p.pool);
  const keep = {
    limit: input.limit === undefined ? undefined : String(input.limit),
    refresh: input.paused ? 'off' : undefined,
  };
  const links = [
    ...(input.from === undefined ? [] : [html`<a href="${withQuery(path, keep)}">First page</a>`]),
    ...(input.cursor === null
      ? []
      : [html`<a rel="next" href="${withQuery(path, { ...keep, cursor: input.cursor })}">Next page</a>`]),
  ];
  return html`<h1>Pool ${p.pool}</h1>
    ${policy(p)}
    <h2>Keys</h2>
    <p>
      ${input.from === undefined ? 'First page' : 'A later page'}: ${keys.length} key${keys.length === 1 ? '' : 's'}, in
      key-id order. Uses: a key serves uses 0 to ${p.maxUses} (${p.maxUses + 1} in all).
    </p>
    ${keys.length ? keysTable(keys, p.maxUses, input.readAt) : noKeys(p.pool, input.from === undefined)}
    <nav class="pages" aria-label="Pages">
      ${links.length ? links : [html`<span class="none">No other page.</span>`]}
    </nav>`;
}

function runRow(run: MaintenanceRunRecord): Html {
  const errors = run.firstErrors.map((e) => html`<li><code>${e.keyId}</code>: ${e.reason}</li>`);
  return html`<tr>
    <th scope="row" data-label="Started">${when(run.startedAt)}</th>
    <td data-label="Pool">${run.pool ?? 'every pool'}</td>
    <td data-label="Checked" class="num">${number(run.checked)}</td>
    <td data-label="Changed" class="num">${number(run.changed)}</td>
    <td data-label="Errors" class="num">${number(run.errors)}</td>
    <td data-label="First errors">
      ${
        errors.length
          ? html`<ul>
              ${errors}
            </ul>`
          : html`<span class="none">none</span>`
      }
    </td>
  </tr>`;
}

/** The last maintenance runs (kept 30 days), newest first. */
export function runsView(runs: readonly MaintenanceRunRecord[]): Html {
  return html`<h1>Maintenance runs</h1>
    <p>The newest runs first; each record is kept for 30 days.</p>
    ${
      runs.length
        ? html`<div class="scroll">
            <table class="runs">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Pool</th>
                  <th scope="col">Balances checked</th>
                  <th scope="col">Keys changed</th>
                  <th scope="col">Errors</th>
                  <th scope="col">First errors</th>
                </tr>
              </thead>
              <tbody>
                ${runs.map(runRow)}
              </tbody>
            </table>
          </div>`
        : html`<p>
            No maintenance run in the last 30 days (the schedule runs it; <code>keypool maintain</code> runs it now).
          </p>`
    }`;
}

/** A page that says what went wrong, in one sentence. */
export function messageView(title: string, message: string): Html {
  return html`<h1>${title}</h1>
    <p>${message}</p>
    <p><a href="/">Back to the pools</a></p>`;
}
