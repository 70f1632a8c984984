/**
 * Is the upstream ready? Polled quickly during the first seconds of a wake, so
 * that a held client is served within tens of milliseconds of the app
 * listening, then less and less often (up to every POLL_MAX_MS) for long starts
 * (a model loading for minutes). Each probe removes what it added to the wake's
 * AbortSignal: a long wake adds no listeners.
 *
 * tcp: a connection is accepted and not closed by the peer within SETTLE_MS;
 *   data from the peer (a banner) means ready at once. With rootless podman this
 *   is not enough: its port forwarder (rootlessport) accepts on the host port as
 *   soon as the container runs and drops the connection ~190 ms later when the
 *   app inside is not listening yet (what made the original answer first
 *   requests with a reset). The wake therefore confirms a tcp check with a real
 *   answer (scout.ts).
 * http:/path: `GET /path` over HTTP/1.1 answers a 2xx or 3xx status line.
 */
import net from 'node:net';
import { TimeoutError } from '../errors.js';
import type { ReadyCheck } from './config.js';
import { connectOptions, type Upstream } from './upstream.js';

/** Time between the end of one failed probe and the next, during the first POLL_FAST_FOR_MS of a wake. */
export const POLL_MS = 10;
export const POLL_FAST_FOR_MS = 3000;
/** The longest pause between two probes, reached a few seconds later. */
export const POLL_MAX_MS = 250;

/** The pause before the next probe, `elapsedMs` into a wake. */
export function pollDelayMs(elapsedMs: number): number {
  if (elapsedMs < POLL_FAST_FOR_MS) return POLL_MS;
  return Math.min(POLL_MAX_MS, Math.round(POLL_MS + (elapsedMs - POLL_FAST_FOR_MS) / 20));
}
/**
 * How long an accepted probe connection must stay open to count as ready (tcp).
 * Short: it only filters upstreams that drop connections at once; a forwarder
 * that holds them longer (rootlessport, ~190 ms) is caught by the wake's scout
 * (scout.ts).
 */
export const SETTLE_MS = 10;
/** Upper bound for one probe (a hung app must not stall polling). */
export const PROBE_TIMEOUT_MS = 2000;

export type ProbeResult = { ok: true } | { ok: false; why: string };

function hostHeader(u: Upstream): string {
  if (u.kind === 'unix') return 'localhost';
  return u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

/**
 * What a tcp probe sends when the clients waiting are HTTP (scout.ts): an app
 * answers it at once with some byte, which proves it listens; a forwarder with
 * no app behind it closes without one. A HEAD of / with no body.
 */
export function httpGreeting(up: Upstream): string {
  return `HEAD / HTTP/1.1\r\nHost: ${hostHeader(up)}\r\nUser-Agent: zoopa-proxy (readiness)\r\nConnection: close\r\n\r\n`;
}

/**
 * One readiness probe. Never throws. `settleMs`: how long a tcp probe must stay
 * open; `greeting`: bytes a tcp probe sends once connected (any byte back is ready).
 */
export function probe(up: Upstream, check: ReadyCheck, settleMs = SETTLE_MS, signal?: AbortSignal, greeting?: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    let settle: NodeJS.Timeout | undefined;
    let head = '';
    if (signal?.aborted) return resolve({ ok: false, why: 'aborted' });
    const sock = net.connect({ ...connectOptions(up), allowHalfOpen: false });
    const onAbort = (): void => finish({ ok: false, why: 'aborted' });
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(settle);
      clearTimeout(limit);
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(r);
    };
    const limit = setTimeout(() => finish({ ok: false, why: `no answer within ${PROBE_TIMEOUT_MS} ms` }), PROBE_TIMEOUT_MS);
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, why: e.code ?? e.message }));
    sock.on('end', () => finish({ ok: false, why: head ? `closed after ${JSON.stringify(head.slice(0, 40))}` : 'accepted, then closed' }));
    sock.on('close', () => finish({ ok: false, why: 'closed' }));
    sock.on('connect', () => {
      if (check.kind === 'tcp') {
        if (greeting) sock.write(greeting);
        settle = setTimeout(() => finish({ ok: true }), settleMs);
        sock.on('data', () => finish({ ok: true }));
        return;
      }
      sock.write(`GET ${check.path} HTTP/1.1\r\nHost: ${hostHeader(up)}\r\nUser-Agent: zoopa-proxy\r\nConnection: close\r\n\r\n`);
      sock.on('data', (b: Buffer) => {
        head += b.toString('latin1');
        const eol = head.indexOf('\r\n');
        if (eol < 0 && head.length < 1024) return;
        const line = eol < 0 ? head : head.slice(0, eol);
        const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(line);
        if (!m) return finish({ ok: false, why: `not an HTTP answer: ${JSON.stringify(line.slice(0, 60))}` });
        const status = Number(m[1]);
        finish(status >= 200 && status < 400 ? { ok: true } : { ok: false, why: `HTTP ${status}` });
      });
    });
  });
}

export interface WaitReadyOptions {
  /** Absolute Date.now() deadline. */
  deadline: number;
  /** For the TimeoutError: the configured start timeout. */
  timeoutMs: number;
  /** Stop polling (the wake was abandoned). */
  signal?: AbortSignal;
  /** Date.now() of the wake's start, for the backoff (default: now). */
  since?: number;
}

/** Poll until every upstream is ready (the first with `check`, the rest with tcp); TimeoutError at the deadline. */
export async function waitReady(upstreams: readonly Upstream[], check: ReadyCheck, opts: WaitReadyOptions): Promise<void> {
  const since = opts.since ?? Date.now();
  for (let i = 0; i < upstreams.length; i++) {
    const up = upstreams[i]!;
    const c: ReadyCheck = i === 0 ? check : { kind: 'tcp' };
    let last = '';
    for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      const r = await probe(up, c, SETTLE_MS, opts.signal);
      if (r.ok) break;
      last = r.why;
      const left = opts.deadline - Date.now();
      if (left <= 0) {
        throw new TimeoutError(`${up.text} was not ready within ${Math.round(opts.timeoutMs / 1000)} s (check ${c.kind === 'tcp' ? 'tcp' : `http:${c.path}`}; last probe: ${last})`, opts.timeoutMs);
      }
      await new Promise((r2) => setTimeout(r2, Math.min(pollDelayMs(Date.now() - since), left)));
    }
  }
}
