/**
 * Failed wakes, and the backoff after a start known to fail: the start job
 * failed, or ended with a container not running (stack-state.ts). For a while
 * after such a failure (5 s, doubling with each failure in a row, at most
 * 5 min) a new connection is not held for a start that would fail again: it is
 * refused at once, unless the diagnosis says its cause is fixed (a missing
 * image now exists), in which case the stack wakes. A wake that succeeds ends
 * the backoff. A wake that only timed out waiting for the app is not "known to
 * fail": the next connection tries again at once, as before.
 */
import { formatDuration } from '../config/duration.js';
import { ZoopaError } from '../errors.js';
import type { Diagnosis } from './diagnose.js';

export const FIRST_BACKOFF_MS = 5_000;
export const MAX_BACKOFF_MS = 300_000;
/** A `fixed` check gets this long at most. */
const FIXED_CHECK_TIMEOUT_MS = 10_000;

export class WakeFailedError extends ZoopaError {
  /** The start is known to fail (start job failed, or a container not running): back off. */
  readonly known: boolean;
  /** Refused during a backoff, without trying. */
  readonly backoff: boolean;
  readonly diagnosis: Diagnosis | null;

  constructor(message: string, o: { known?: boolean; backoff?: boolean; diagnosis?: Diagnosis | null; cause?: unknown } = {}) {
    super(o.backoff ? 'ZOOPA_WAKE_BACKOFF' : 'ZOOPA_WAKE_FAILED', message, { cause: o.cause });
    this.known = o.known ?? false;
    this.backoff = o.backoff ?? false;
    this.diagnosis = o.diagnosis ?? null;
  }
}

export class Failures {
  /** Known failures in a row. */
  private count = 0;
  private until = 0;
  private last: WakeFailedError | null = null;

  /** Epoch ms until which a wake is refused, or null. */
  get backoffUntil(): number | null {
    return this.last && Date.now() < this.until ? this.until : null;
  }

  failed(e: WakeFailedError): void {
    this.count++;
    this.last = e;
    this.until = Date.now() + Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.count - 1));
  }

  succeeded(): void {
    this.count = 0;
    this.until = 0;
    this.last = null;
  }

  /** How long a wake is refused after the last failure, for the log line. */
  get nextBackoff(): string {
    return formatDuration(Math.max(0, this.until - Date.now()) / 1000);
  }

  /** Resolves when a wake may run; throws a backoff WakeFailedError while the last cause stands. */
  async gate(what: string): Promise<void> {
    const last = this.last;
    if (!last || Date.now() >= this.until) return;
    const fixed = last.diagnosis?.fixed;
    if (fixed && (await fixed({ timeoutMs: FIXED_CHECK_TIMEOUT_MS }).catch(() => false))) {
      this.until = 0; // try now; a failure again doubles the backoff
      return;
    }
    throw new WakeFailedError(`${what} failed to start (${last.diagnosis?.cause ?? last.message}); not trying again for ${this.nextBackoff} unless the cause is fixed`, {
      backoff: true,
      diagnosis: last.diagnosis,
    });
  }
}

/** What a refused HTTP client reads: the stack's name, never the cause's details. */
export function refusalText(stack: string): string {
  return `${stack} could not be started; the administrator can see why with "zoopa status ${stack}"`;
}

/** The one log line of a failed (or refused) wake, naming the cause. */
export function failureLine(err: WakeFailedError, what: string, closed: number, nextBackoff: string): string {
  if (err.backoff) return `not waking: ${err.message}; closed ${closed} connection(s)`;
  const next = err.known ? `stopped it again; the next connection tries again in ${nextBackoff}, or at once when the cause is fixed` : 'the next connection tries again';
  return `wake failed: ${what}: ${err.message}; closed ${closed} waiting connection(s); ${next}`;
}
