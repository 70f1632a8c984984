/**
 * A frozen stack's answers (zoopa freeze, a backup or a restore: the freeze
 * record %t/ondemand/<stack>.frozen.json exists). Its sockets keep listening and
 * the proxy answers every connection by itself, waking nothing:
 *  - an HTTP request gets the 503 maintenance page (waitpage.ts) with
 *    Retry-After: the time the freeze should still last (the record's expected
 *    length, e.g. a backup's previous runs, from when it was frozen), or
 *    MAINTENANCE_RETRY_S when unknown or overdue;
 *  - a poll of the readiness path gets `{"ready":false,"maintenance":true}`, so
 *    the page reloads itself the moment the freeze ends;
 *  - anything else, or nothing within MAINTENANCE_PEEK_MS, is closed.
 * A proxy started while frozen (a "maintenance proxy") does only this; it
 * never looks at or touches the stack, and exits once the freeze has ended
 * (zoopa thaw stops it; should it be activated during the thaw, it notices at
 * its next connection).
 */
import { readFreezeRecord, type FreezeReason, type FreezeRecord } from '../ondemand/freeze-record.js';
import type { Connection } from './connection.js';
import { classify } from './http-peek.js';
import { maintenancePage, maintenanceTemplatePage, pageResponse, readyResponse } from './waitpage.js';

/** How long a connection to a frozen stack may take to send its first bytes (nginx sends them at once). */
export const MAINTENANCE_PEEK_MS = 500;
/** Retry-After when the freeze's length is unknown, or it lasts longer than expected, seconds. */
export const MAINTENANCE_RETRY_S = 30;
const MIN_RETRY_S = 5;
const MAX_RETRY_S = 3600;

export interface MaintenanceInfo {
  reason: FreezeReason | undefined;
  /** About how many seconds are left, or null when unknown or overdue. */
  remainingS: number | null;
  retryAfterS: number;
}

/** What the page says, from the freeze record, at `now` (epoch ms). */
export function maintenanceInfo(record: FreezeRecord | undefined, now = Date.now()): MaintenanceInfo {
  const reason = record?.reason;
  const since = record ? Date.parse(record.frozenAt) : NaN;
  const expected = record?.expectedSeconds;
  const unknown = { reason, remainingS: null, retryAfterS: MAINTENANCE_RETRY_S };
  if (expected === undefined || !Number.isFinite(expected) || !Number.isFinite(since)) return unknown;
  const remaining = Math.ceil(expected - (now - since) / 1000);
  if (remaining <= 0) return unknown;
  return { reason, remainingS: remaining, retryAfterS: Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, remaining)) };
}

export class Maintenance {
  /** Connections being answered (peeked, or their answer being written). */
  private readonly answering = new Set<Connection>();
  private drainedNow: (() => void) | null = null;

  constructor(
    private readonly o: {
      stack: string;
      title: string;
      env: NodeJS.ProcessEnv;
      /** ZOOPA_MAINTENANCE_TEMPLATE's text, or null: the built-in page. */
      template: string | null;
      /** The (rate-limited) log line per page served. */
      served: (c: Connection) => void;
    },
  ) {}

  /** Answer `c` by itself (see the header); it is released once answered. */
  serve(c: Connection): void {
    if (c.closed) return;
    this.answering.add(c);
    c.held = false;
    c.pagePending = false;
    c.endPeek(); // a peek of the waiting-page path: this one takes over
    const timer = setTimeout(() => c.release(), MAINTENANCE_PEEK_MS);
    c.peek((first) => {
      clearTimeout(timer);
      const p = classify(first);
      if (p.kind === 'other') return c.release();
      if (p.kind === 'ready-poll') return c.answer(readyResponse(false, p.head, true));
      const info = maintenanceInfo(readFreezeRecord(this.o.stack, this.o.env));
      this.o.served(c);
      const vars = { title: this.o.title, ...info };
      const html = this.o.template === null ? maintenancePage(vars) : maintenanceTemplatePage(this.o.template, vars);
      c.answer(pageResponse('maintenance', html, p.head, info.retryAfterS));
    });
  }

  /** A connection closed (Proxy's one close path). */
  closed(c: Connection): void {
    if (this.answering.delete(c) && this.answering.size === 0) this.drainedNow?.();
  }

  /** Resolves once every connection being answered is closed, or after `ms`. */
  drained(ms: number): Promise<void> {
    if (this.answering.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.drainedNow = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.drainedNow = done;
    });
  }
}
