/**
 * The pages the proxy answers by itself to a browser (HTTP/1, then closed):
 * the waiting page while a stack wakes, the error page of a failed wake, the
 * maintenance page while it is frozen, and the readiness answer the waiting
 * and maintenance pages poll. Self-contained HTML (inline CSS
 * and script, no external asset); every variable is escaped.
 */
import { readStats } from '../ondemand/stats.js';
import { READY_PATH } from './http-peek.js';

export type PageKind = 'waiting' | 'error' | 'maintenance';

/** The largest page template (ZOOPA_PAGE_TEMPLATE) the proxy reads, bytes; zoopa install checks the same. */
export const PAGE_TEMPLATE_MAX_BYTES = 256 * 1024;

/** Retry-After of the waiting page, seconds. */
export const RETRY_AFTER_S = 5;
/** How often the waiting page polls READY_PATH, ms. */
export const POLL_MS = 1000;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** The average wake-to-ready seconds of the stack's previous wakes (src/ondemand/stats.ts), or null. */
export function typicalWakeSeconds(stack: string, env: NodeJS.ProcessEnv): number | null {
  try {
    const { sum, count } = readStats(stack, env).wakeSeconds;
    return count > 0 && Number.isFinite(sum) ? sum / count : null;
  } catch {
    return null;
  }
}

export interface WaitingPageVars {
  /** The stack's name (or description). */
  title: string;
  /** Seconds since the wake began. */
  elapsedS: number;
  /** About how long a wake takes, or null when unknown. */
  typicalS: number | null;
}

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:#f4f5f7;color:#222}' +
  'main{max-width:32em;padding:2em;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002}h1{font-size:1.3em;margin:0 0 .5em}p{margin:.4em 0}small{color:#666}';

export function waitingPage(v: WaitingPageVars): string {
  const title = escapeHtml(v.title);
  const elapsed = Math.max(0, Math.round(v.elapsedS));
  const typical = v.typicalS === null ? '' : `<p>It usually takes about ${escapeHtml(String(Math.max(1, Math.round(v.typicalS))))} s.</p>`;
  // The script reloads the page's own URL as soon as the proxy says ready, or the app itself answers the poll.
  const script =
    `var t0=Date.now()-${elapsed}*1000,e=document.getElementById('s');` +
    `setInterval(function(){e.textContent=Math.round((Date.now()-t0)/1000)},1000);` +
    `function p(){fetch(${JSON.stringify(READY_PATH)},{cache:'no-store'}).then(function(r){` +
    `if(r.headers.get('X-Zoopa-Ready')===null){if(r.status<500||r.status===502)location.reload();else setTimeout(p,${POLL_MS});return}` +
    `return r.json().then(function(j){if(j.ready)location.reload();else setTimeout(p,${POLL_MS})})` +
    `}).catch(function(){setTimeout(p,${POLL_MS})})}setTimeout(p,${POLL_MS});`;
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<noscript><meta http-equiv="refresh" content="${RETRY_AFTER_S}"></noscript><title>${title} is starting</title><style>${STYLE}</style></head>` +
    `<body><main id="zoopa-waiting"><h1>${title} is starting</h1><p>Started <span id="s">${elapsed}</span> s ago.</p>${typical}` +
    `<p><small>This page reloads by itself when it is ready.</small></p></main><script>${script}</script></body></html>\n`
  );
}

/**
 * A custom waiting page (ZOOPA_PAGE_TEMPLATE): {{stack}}, {{elapsed}}, {{typical}}
 * (empty when unknown), {{ready_path}} and {{retry_after}} are replaced, escaped;
 * anything else is left as written.
 */
export function templatePage(template: string, v: WaitingPageVars): string {
  const values: Record<string, string> = {
    stack: v.title,
    elapsed: String(Math.max(0, Math.round(v.elapsedS))),
    typical: v.typicalS === null ? '' : String(Math.max(1, Math.round(v.typicalS))),
    ready_path: READY_PATH,
    retry_after: String(RETRY_AFTER_S),
  };
  return template.replace(/\{\{\s*(stack|elapsed|typical|ready_path|retry_after)\s*\}\}/g, (_m, name: string) => escapeHtml(values[name]!));
}

export function errorPage(title: string, stack: string): string {
  const t = escapeHtml(title);
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${t} could not be started</title><style>${STYLE}</style></head><body><main id="zoopa-error"><h1>${t} could not be started</h1>` +
    `<p>The administrator can see why with <code>zoopa status ${escapeHtml(stack)}</code>.</p></main></body></html>\n`
  );
}

/** What the maintenance page says (maintenance.ts works it out from the freeze record). */
export interface MaintenanceVars {
  title: string;
  /** Why it is frozen: a backup, a restore, or by hand (or unknown: an older record). */
  reason: 'backup' | 'restore' | 'by hand' | undefined;
  /** About how many seconds are left, or null when unknown (or overdue). */
  remainingS: number | null;
  /** Retry-After, and the meta refresh when scripts are off. */
  retryAfterS: number;
}

/** How often the maintenance page asks whether the freeze ended, ms. */
export const MAINTENANCE_POLL_MS = 3000;

function aboutTime(s: number): string {
  return s < 90 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`;
}

/**
 * The page of a frozen stack (zoopa freeze, a backup or restore). It polls the
 * readiness path: the proxy answers `maintenance: true` while frozen; anything
 * else (the freeze ended) reloads the page, which then wakes the stack.
 */
export function maintenancePage(v: MaintenanceVars): string {
  const t = escapeHtml(v.title);
  const why = v.reason === 'backup' ? 'A backup is running.' : v.reason === 'restore' ? 'A restore from a backup is running.' : 'It is under maintenance.';
  const left = v.remainingS === null ? '' : `<p>It should be back in about ${escapeHtml(aboutTime(v.remainingS))}.</p>`;
  const script =
    `function p(){fetch(${JSON.stringify(READY_PATH)},{cache:'no-store'}).then(function(r){` +
    `if(r.headers.get('X-Zoopa-Ready')===null){location.reload();return}` +
    `return r.json().then(function(j){if(j.maintenance)setTimeout(p,${MAINTENANCE_POLL_MS});else location.reload()})` +
    `}).catch(function(){setTimeout(p,${MAINTENANCE_POLL_MS})})}setTimeout(p,${MAINTENANCE_POLL_MS});`;
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<noscript><meta http-equiv="refresh" content="${v.retryAfterS}"></noscript><title>${t}: maintenance</title><style>${STYLE}</style></head><body><main id="zoopa-maintenance">` +
    `<h1>${t} is not available right now</h1><p>${why}</p>${left}<p><small>This page reloads by itself when ${t} is back.</small></p></main><script>${script}</script></body></html>\n`
  );
}

/**
 * A custom maintenance page (ZOOPA_MAINTENANCE_TEMPLATE): {{stack}}, {{reason}}
 * (backup, restore or maintenance), {{remaining}} (seconds; empty when unknown),
 * {{ready_path}} (answers {"ready":false,"maintenance":true} while frozen) and
 * {{retry_after}} are replaced, escaped; anything else is left as written.
 */
export function maintenanceTemplatePage(template: string, v: MaintenanceVars): string {
  const values: Record<string, string> = {
    stack: v.title,
    reason: v.reason === 'backup' || v.reason === 'restore' ? v.reason : 'maintenance',
    remaining: v.remainingS === null ? '' : String(v.remainingS),
    ready_path: READY_PATH,
    retry_after: String(v.retryAfterS),
  };
  return template.replace(/\{\{\s*(stack|reason|remaining|ready_path|retry_after)\s*\}\}/g, (_m, name: string) => escapeHtml(values[name]!));
}

function response(status: string, headers: Array<[string, string]>, body: string, head: boolean): string {
  const all: Array<[string, string]> = [...headers, ['Content-Length', String(Buffer.byteLength(body))], ['Cache-Control', 'no-store'], ['Connection', 'close']];
  return `HTTP/1.1 ${status}\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${head ? '' : body}`;
}

/** The whole HTTP response of a page (HEAD: the head only). `retryAfterS`: the maintenance page's. */
export function pageResponse(kind: PageKind, html: string, head = false, retryAfterS = RETRY_AFTER_S): string {
  if (kind === 'waiting') return response('503 Service Unavailable', [['Content-Type', 'text/html; charset=utf-8'], ['Retry-After', String(RETRY_AFTER_S)], ['X-Zoopa-Page', 'waiting']], html, head);
  if (kind === 'maintenance') return response('503 Service Unavailable', [['Content-Type', 'text/html; charset=utf-8'], ['Retry-After', String(retryAfterS)], ['X-Zoopa-Page', 'maintenance']], html, head);
  return response('502 Bad Gateway', [['Content-Type', 'text/html; charset=utf-8'], ['X-Zoopa-Page', 'error']], html, head);
}

/** The answer to a poll of READY_PATH; `maintenance`: the stack is frozen (the maintenance page keeps polling). */
export function readyResponse(ready: boolean, head = false, maintenance = false): string {
  const body = maintenance ? { ready, maintenance } : { ready };
  return response('200 OK', [['Content-Type', 'application/json'], ['X-Zoopa-Ready', ready ? '1' : '0']], `${JSON.stringify(body)}\n`, head);
}
