/**
 * One log line per kind of event per interval (connections closed over a cap,
 * at the fd limit, refused during a backoff): the first is logged at once, the
 * ones after it are counted and the count is logged with the next line.
 */
export const LOG_INTERVAL_MS = 10_000;

export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = LOG_INTERVAL_MS) {}

  /** Calls `emit` with how many lines of this kind were held back since the last one, or not at all. */
  line(kind: string, emit: (suppressed: number) => void): void {
    const now = Date.now();
    const e = this.last.get(kind);
    if (e && now - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    this.last.set(kind, { at: now, suppressed: 0 });
    emit(e?.suppressed ?? 0);
  }
}
