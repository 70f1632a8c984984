/**
 * The proxy's open connections, and the questions asked of them: which are
 * held for the wake (each Connection knows whether it is), how many, the first.
 * These walks happen only around a wake, never per byte.
 */
import type { Connection } from './connection.js';

export class Connections {
  private readonly all = new Set<Connection>();

  get size(): number {
    return this.all.size;
  }

  add(c: Connection): void {
    this.all.add(c);
  }

  delete(c: Connection): void {
    this.all.delete(c);
  }

  /** Every connection held for the wake, now. */
  held(): Connection[] {
    return [...this.all].filter((c) => c.held);
  }

  heldCount(): number {
    let n = 0;
    for (const c of this.all) if (c.held) n++;
    return n;
  }

  /** A held connection waits for the waiting page (scout.ts then probes with HTTP). */
  pagePending(): boolean {
    for (const c of this.all) if (c.held && c.pagePending) return true;
    return false;
  }

  /** The first held connection (the next scout), or null. One waiting for the waiting page is not taken: the probes decide without it. */
  firstHeld(): Connection | null {
    for (const c of this.all) if (c.held && !c.pagePending) return c;
    return null;
  }

  /** The connections carrying traffic (not held). */
  attached(): Connection[] {
    return [...this.all].filter((c) => !c.held);
  }

  releaseAll(): void {
    for (const c of [...this.all]) c.release();
  }
}
