/**
 * The wake's last step with a tcp check: the upstream accepted a probe, but a
 * port forwarder (rootless podman's rootlessport) accepts before the app
 * listens. Two ways to prove the app is there, whichever is first:
 *  - one held connection goes ahead as a scout (Connection's scout mode): its
 *    bytes are sent again until the upstream answers one byte (the fast proof,
 *    within ms of the app listening);
 *  - probes, one after another, until one stays open SCOUT_CONFIRM_MS (a
 *    forwarder without an app closes sooner): the proof for apps that close a
 *    connection without answering. When the held clients are browsers waiting
 *    for the waiting page (never scouts: a scout cannot be given the page), a
 *    probe sends `HEAD /` (readiness.ts httpGreeting) and the app's first byte
 *    proves it at once.
 * The other connections stay held until then. With no held connection the
 * probes alone decide.
 *
 * Scout mode of a Connection (connection.ts): a scout keeps what the client
 * sent; if the upstream closes before answering a byte, it connects again and
 * sends the same bytes again, until the upstream answers (or survives
 * SCOUT_CONFIRM_MS), which confirms the stack is up. At most one attempt is in
 * flight, so the app sees the request once. Nothing is dropped: once it has
 * kept SCOUT_MAX_BYTES the scout stops reading the client until confirmed (a
 * big upload waits at most SCOUT_CONFIRM_MS longer), so every byte sent to an
 * attempt can be sent again.
 */
import { TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import { pollDelayMs, probe } from './readiness.js';
import type { Upstream } from './upstream.js';

/**
 * A scout attempt (or a silent probe) still open after this long counts as an
 * answer: rootlessport without an app closes after ~190 ms on an idle machine,
 * later on a loaded one (a false "ready" attaches every held client to a
 * forwarder that then drops them: nginx 502). Only wakes whose app answers
 * nothing within this long wait for it: an HTTP scout is confirmed by the
 * app's first byte.
 */
export const SCOUT_CONFIRM_MS = 1000;
/** Pause before a scout connects again. */
export const SCOUT_RETRY_MS = 5;
/** A scout reads (and keeps, for sending again) at most this much of the client's data until confirmed. */
export const SCOUT_MAX_BYTES = 256 * 1024;

/** A scouting connection's own state (kept by connection.ts's Connection). */
export interface ScoutState {
  until: number;
  /** Everything the client sent so far, for sending again. */
  chunks: Buffer[];
  bytes: number;
  /** SCOUT_MAX_BYTES are kept: the client is not read until the scout is confirmed. */
  full: boolean;
  clientEnded: boolean;
  timer: NodeJS.Timeout | null;
  /** The next attempt is the last: after sending the kept bytes, a normal connection. */
  final: boolean;
}

/** What the scout needs of a connection (connection.ts's Connection; not imported: connection.ts imports the limits above). */
export interface ScoutConnection {
  readonly target: Upstream | null;
  readonly scoutAttempts: number;
  attach(up: Upstream, opts: { scoutUntil: number }): void;
  endScout(): void;
}

export interface ScoutOptions {
  upstream: Upstream;
  startTimeoutMs: number;
  logger: Logger;
  /** The first held connection, if any (it stops being held when chosen). */
  takeHeld: () => ScoutConnection | null;
  /** The scout of a failed wake: answer (or close) it. */
  abandon: (c: ScoutConnection) => void;
  /** Bytes each probe sends (readiness.ts httpGreeting), or null: silent probes. Asked per probe. */
  greeting?: () => string | null;
}

export class Scout {
  /** The connection scouting now. */
  private conn: ScoutConnection | null = null;
  /** Ends the confirm() in progress: resolve (no error) or reject. */
  private finish: ((err?: Error) => void) | null = null;
  /** Connections that scouted successfully since the last take (for the "serving N" line). */
  private served = 0;

  constructor(private readonly o: ScoutOptions) {}

  /** Resolves once the app answered (or a probe stayed open); rejects at the deadline or on cancel(). */
  confirm(deadline: number, since = Date.now()): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const stopProbes = new AbortController();
      this.finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        this.finish = null;
        stopProbes.abort();
        const c = this.conn;
        this.conn = null;
        if (err) {
          if (c) this.o.abandon(c); // the wake failed: no answer is coming through it
          return reject(err);
        }
        if (c) {
          c.endScout();
          if (c.scoutAttempts > 1) this.o.logger.info(`${c.target?.text} answered attempt ${c.scoutAttempts} (a port forwarder accepted connections before the app listened)`);
          this.served++;
        }
        resolve();
      };
      const timeout = (): Error =>
        new TimeoutError(`${this.o.upstream.text} accepted connections but did not answer within ${Math.round(this.o.startTimeoutMs / 1000)} s`, this.o.startTimeoutMs);
      const nextScout = (): void => {
        this.conn = null;
        if (settled) return;
        if (Date.now() >= deadline) return this.finish?.(timeout());
        const c = this.o.takeHeld();
        if (!c) return; // the probes decide
        this.conn = c;
        c.attach(c.target!, { scoutUntil: deadline });
      };
      this.lost = nextScout;
      const probeLoop = async (): Promise<void> => {
        while (!settled) {
          const r = await probe(this.o.upstream, { kind: 'tcp' }, SCOUT_CONFIRM_MS, stopProbes.signal, this.o.greeting?.() ?? undefined);
          if (settled) return;
          if (r.ok) return this.finish?.();
          if (Date.now() >= deadline) return this.finish?.(timeout());
          await new Promise((res) => setTimeout(res, pollDelayMs(Date.now() - since)));
        }
      };
      nextScout();
      void probeLoop();
    });
  }

  private lost: () => void = () => undefined;

  /** How many connections scouted since the last call (and were served that way). */
  takeServed(): number {
    const n = this.served;
    this.served = 0;
    return n;
  }

  /** A connection's scout attempt got an answer. */
  confirmed(c: ScoutConnection): void {
    if (this.conn === c) this.finish?.();
  }

  /** A connection closed: when it was the scout, another held one takes over. */
  closed(c: ScoutConnection): void {
    if (this.conn === c) this.lost();
  }

  /** End a confirm() in progress (the wake failed some other way, or the proxy closes). */
  cancel(why = 'the proxy is closing'): void {
    this.finish?.(new Error(why));
  }
}
