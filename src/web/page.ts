/**
 * The status page, rendered on the server as plain HTML: it reads fine with scripts
 * off (tables), and assets/web/zoopa.js swaps in a fresh `<main>` from `/fragment`
 * every few seconds (one renderer, no full reload, no flicker). No external assets.
 */
import os from 'node:os';
import { formatBytes } from '../format.js';
import type { OndemandEvent } from '../ondemand/stats.js';
import { ondemandStateName, type StackStatus, type StatusReport } from '../status/collect.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
const h = escapeHtml;

function secs(n: number): string {
  if (n < 1) return `${Math.round(n * 1000)} ms`;
  if (n < 90) return `${n < 10 ? n.toFixed(1) : Math.round(n)} s`;
  if (n < 5400) return `${Math.round(n / 60)} min`;
  return `${(n / 3600).toFixed(1)} h`;
}

/** "3 min ago", with the exact time as a tooltip. */
function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return '<span class="muted">never</span>';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return h(iso);
  const d = Math.max(0, (now - t) / 1000);
  const text = d < 5 ? 'just now' : `${secs(d)} ago`;
  return `<time datetime="${h(iso)}" title="${h(iso)}">${text}</time>`;
}

function badge(text: string, kind: string): string {
  return `<span class="badge ${h(kind)}">${h(text)}</span>`;
}

function unitCell(s: StackStatus): string {
  if (!s.installed) return badge('not installed', 'off');
  const kind = s.state === 'active' ? 'ok' : s.state === 'failed' ? 'bad' : s.state === 'inactive' ? 'off' : 'busy';
  return badge(s.state, kind) + (s.enabled === 'enabled' ? ' <span class="muted">enabled</span>' : '');
}

function ondemandCell(s: StackStatus): string {
  const o = s.ondemand;
  if (!o) return '<span class="muted">always on</span>';
  const st = ondemandStateName(o);
  const kind = { awake: 'ok', waking: 'busy', stopping: 'busy', sleeping: 'sleep', frozen: 'frozen', off: 'off' }[st];
  const parts = [badge(st, kind)];
  if (st === 'awake' || st === 'waking') parts.push(`${o.connections} conn`);
  if (o.secondsUntilIdleStop !== null) parts.push(`idle stop in ${secs(o.secondsUntilIdleStop)}`);
  if (o.owned) parts.push('<span class="muted">started by zoopa</span>');
  return parts.join(' <span class="muted">·</span> ');
}

function lastWakeCell(s: StackStatus, now: number): string {
  const o = s.ondemand;
  if (!o) return '<span class="muted">-</span>';
  const last = [...o.stats.recent].reverse().find((e) => e.kind === 'wake');
  if (last && last.kind === 'wake') {
    const took = last.result === 'ready' ? `took ${secs(last.seconds)}` : `<span class="bad-text">failed</span>`;
    return `${ago(last.at, now)}, ${took}${last.peer ? ` <span class="muted">by ${h(last.peer)}</span>` : ''}`;
  }
  if (o.lastWake) return `${ago(o.lastWake.at, now)}${o.lastWake.peer ? ` <span class="muted">by ${h(o.lastWake.peer)}</span>` : ''}`;
  return '<span class="muted">never</span>';
}

function backupCell(s: StackStatus, now: number): string {
  const b = s.backup;
  if (!b) return '<span class="muted">none</span>';
  const kind = b.result === 'ok' ? 'ok' : 'bad';
  const down = b.downtimeSec !== null ? `, down ${secs(b.downtimeSec)}` : '';
  const jobs = b.jobs.length ? `<div class="small muted">${h(b.jobs.join('; '))}</div>` : '';
  return `${badge(b.result, kind)} ${ago(b.finishedAt, now)}, took ${secs(b.durationSec)}${down}${jobs}`;
}

function stacksTable(r: StatusReport, now: number): string {
  if (r.stacks.length === 0) return `<p class="muted">No stacks in ${h(r.root)}.</p>`;
  const rows = r.stacks.map(
    (s) => `<tr data-stack="${h(s.name)}">
<th scope="row" data-label="Stack">${h(s.name)}${s.rootful ? ' <span class="muted">(rootful)</span>' : ''}</th>
<td data-label="Unit" class="unit">${unitCell(s)}</td>
<td data-label="Containers" class="containers">${s.containers ? s.containers.running : '?'}</td>
<td data-label="On demand" class="ondemand" data-state="${h(s.ondemand ? ondemandStateName(s.ondemand) : 'always-on')}">${ondemandCell(s)}</td>
<td data-label="Last wake">${lastWakeCell(s, now)}</td>
<td data-label="Last backup">${backupCell(s, now)}</td>
</tr>`,
  );
  return `<table class="stacks"><thead><tr><th scope="col">Stack</th><th scope="col">Unit</th><th scope="col">Containers</th><th scope="col">On demand</th><th scope="col">Last wake</th><th scope="col">Last backup</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

function llamaTable(r: StatusReport): string {
  if (r.llama.length === 0) return '';
  const rows = r.llama.map((m) => {
    const model = m.mode === 'router' ? `${h(m.modelsDir ?? '')}/ <span class="muted">(router)</span>` : `${h(m.model ?? '')}${m.alias ? ` <span class="muted">as ${h(m.alias)}</span>` : ''}`;
    const size = m.modelBytes !== null ? ` <span class="muted">${formatBytes(m.modelBytes)}</span>` : '';
    const kind = m.state === 'active' ? 'ok' : m.state === 'failed' ? 'bad' : m.state === 'inactive' ? 'off' : 'busy';
    return `<tr data-llama="${h(m.name)}"><th scope="row" data-label="Service">${h(m.name)}</th><td data-label="Model" class="path">${model}${size}</td><td data-label="Listen">${h(m.host)}:${m.port}</td><td data-label="State">${badge(m.state, kind)}${m.ondemand ? ' <span class="muted">on demand</span>' : ''}</td></tr>`;
  });
  return `<h2>llama.cpp</h2><table class="llama"><thead><tr><th scope="col">Service</th><th scope="col">Model</th><th scope="col">Listen</th><th scope="col">State</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function history(r: StatusReport, now: number): string {
  const events: Array<{ at: string; stack: string; e: OndemandEvent }> = [];
  for (const s of r.stacks) for (const e of s.ondemand?.stats.recent ?? []) events.push({ at: e.at, stack: s.name, e });
  events.sort((a, b) => (a.at < b.at ? 1 : -1));
  const wakes = events.slice(0, 10).map(({ at, stack, e }) => {
    const what =
      e.kind === 'idle-stop'
        ? 'went to sleep (idle)'
        : e.result === 'ready'
          ? `woke in ${secs(e.seconds)}${e.peer ? ` for ${h(e.peer)}` : ''}`
          : `<span class="bad-text">failed to wake</span> after ${secs(e.seconds)}`;
    return `<li>${ago(at, now)}: <b>${h(stack)}</b> ${what}</li>`;
  });
  const backups = r.backups.slice(0, 10).map((b) => {
    const res = b.result === 'ok' ? 'backed up' : `<span class="bad-text">backup ${h(b.result)}</span>`;
    return `<li>${ago(b.finishedAt, now)}: <b>${h(b.stack)}</b> ${res} in ${secs(b.durationSec)}</li>`;
  });
  return `<div class="history">
<section><h2>Recent wakes</h2>${wakes.length ? `<ul>${wakes.join('')}</ul>` : '<p class="muted">none yet</p>'}</section>
<section><h2>Recent backups</h2>${backups.length ? `<ul>${backups.join('')}</ul>` : '<p class="muted">none yet</p>'}</section>
</div>`;
}

/** The part of the page the script refreshes. */
export function renderMain(r: StatusReport, now = Date.now()): string {
  return `<p class="stamp muted">Updated <time datetime="${h(r.generatedAt)}">${h(r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time></p>
<h2>Stacks</h2>
${stacksTable(r, now)}
${llamaTable(r)}
${history(r, now)}`;
}

export function renderPage(r: StatusReport, opts: { refreshSeconds: number }): string {
  const host = os.hostname();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Zoopa on ${h(host)}</title>
<link rel="stylesheet" href="assets/zoopa.css">
</head>
<body>
<header><h1>Zoopa <span class="muted">on ${h(host)}</span></h1>
<nav><a href="metrics">metrics</a> <a href="api/status">json</a></nav></header>
<main id="main" data-refresh="${opts.refreshSeconds}">
${renderMain(r)}
</main>
<noscript><p class="muted small">Scripts are off: reload the page to refresh it.</p></noscript>
<script src="assets/zoopa.js" defer></script>
</body>
</html>
`;
}
