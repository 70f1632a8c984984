/**
 * Counters shared by every connection of one proxy, read by the idle timer and
 * the state file. Every sign of life (a byte moved, a connection opened or
 * closed, a wake finished) is reported through `touch()`, the one place the
 * idle clock is reset.
 */
export class Traffic {
  bytesIn = 0;
  bytesOut = 0;
  /** Date.now() of the last touch(). */
  lastActivity = Date.now();

  touch(): void {
    this.lastActivity = Date.now();
  }
}
