/**
 * Writing the proxy's state file: on every transition (write()), once a second
 * while traffic moves (the tick compares counters: nothing is done per chunk),
 * and a last time at exit, after which nothing more is written.
 */
import type { IdleTimer } from './idle.js';
import type { StackState } from './stack-state.js';
import { writeProxyState, type ProxyState } from './state-file.js';
import type { Traffic } from './traffic.js';

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

/** What the state file says about a proxy now. */
export function snapshotOf(stack: string, s: StackState, connections: number, traffic: Traffic, idle: IdleTimer): ProxyState {
  return {
    stack,
    pid: process.pid,
    state: s.state,
    owned: s.owned,
    connections,
    bytesIn: traffic.bytesIn,
    bytesOut: traffic.bytesOut,
    idleDeadline: s.state === 'awake' ? idle.deadline() : null,
    lastWake: s.lastWake,
    backoffUntil: s.failures.backoffUntil,
    lastFailure: s.lastFailure,
    updatedAt: Date.now(),
  };
}
