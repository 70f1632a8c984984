/**
 * Writing the proxy's state file: on every transition (write()), once a second
 * while traffic moves (the tick compares counters: nothing is done per chunk),
 * and a last time at exit, after which nothing more is written.
 */
import { writeProxyState, type ProxyState } from './state-file.js';

const STATE_INTERVAL_MS = 1000;

export class StateWriter {
  private written = { bytesIn: -1, bytesOut: -1, connections: -1 };
  private timer: NodeJS.Timeout | null = null;
  private final = false;

  constructor(
    private readonly snapshot: () => ProxyState,
    private readonly env: NodeJS.ProcessEnv,
    private readonly enabled: boolean,
  ) {}

  start(): void {
    this.write();
    this.timer = setInterval(this.tick, STATE_INTERVAL_MS);
    this.timer.unref();
  }

  write(): void {
    if (!this.enabled || this.final) return;
    const s = this.snapshot();
    this.written = { bytesIn: s.bytesIn, bytesOut: s.bytesOut, connections: s.connections };
    writeProxyState(s, this.env);
  }

  /** The last write: a wake still finishing in the background writes no more. */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.write();
    this.final = true;
  }

  private readonly tick = (): void => {
    const s = this.snapshot();
    const w = this.written;
    if (w.bytesIn !== s.bytesIn || w.bytesOut !== s.bytesOut || w.connections !== s.connections) this.write();
  };
}
