/**
 * When is the stack idle, and may it be stopped?
 *
 * The data path only stamps `Traffic.lastActivity` per chunk; this timer is
 * armed for lastActivity + timeout and, when it fires early because traffic
 * moved the deadline, simply re-arms for the new deadline (no timer reset per
 * chunk).
 *
 *  traffic (default): deadline = last byte (or connection open/close) + timeout;
 *    open but silent connections do not keep the stack awake.
 *  connections (the original rule): no deadline while a connection is open;
 *    then last close + timeout.
 *
 * The veto (ZOOPA_STOP_CHECK) is a command run without a shell; a non-zero exit
 * postpones the stop by one more timeout.
 */
import { CommandError, TimeoutError, formatArgv } from '../errors.js';
import { run } from '../exec.js';
import type { IdleMode } from './config.js';
import type { Traffic } from './traffic.js';

export interface IdleTimerOptions {
  /** null: never idle. */
  timeoutMs: number | null;
  mode: IdleMode;
  traffic: Traffic;
  /** Open client connections (held ones included). */
  connections: () => number;
  /** The deadline passed with nothing moving. The timer re-arms when it settles. */
  onIdle: () => unknown;
}

export class IdleTimer {
  private timer: NodeJS.Timeout | null = null;
  private notBefore = 0;
  private stopped = false;
  private running = false;

  constructor(private readonly o: IdleTimerOptions) {}

  /** Epoch ms of the planned idle stop, or null when none is planned. */
  deadline(): number | null {
    if (this.o.timeoutMs === null || this.stopped) return null;
    if (this.o.mode === 'connections' && this.o.connections() > 0) return null;
    return Math.max(this.o.traffic.lastActivity + this.o.timeoutMs, this.notBefore);
  }

  /**
   * (Re)arm for the current deadline. The timer re-arms itself when traffic
   * moved the deadline and after each onIdle; from outside it is armed once at
   * the start and when the last connection goes (the deadline may then come
   * sooner: in connections mode there was none).
   */
  arm(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running) return; // re-armed when onIdle ends
    const d = this.deadline();
    if (d === null) return;
    this.timer = setTimeout(this.check, Math.max(0, d - Date.now()));
    this.timer.unref();
  }

  /** Postpone by one more timeout from now (a veto). */
  postpone(): void {
    if (this.o.timeoutMs !== null) this.notBefore = Date.now() + this.o.timeoutMs;
    this.arm();
  }

  /** Idle for real right now? (The re-check before and after the veto.) */
  isDue(now = Date.now()): boolean {
    const d = this.deadline();
    return d !== null && now >= d;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly check = (): void => {
    this.timer = null;
    if (!this.isDue()) return this.arm();
    this.running = true;
    void Promise.resolve()
      .then(() => this.o.onIdle())
      .finally(() => {
        this.running = false;
        // Still due (onIdle declined: a wake running, or the stack left running): look again one timeout later.
        if (this.isDue()) this.postpone();
        else this.arm();
      });
  };
}

export type StopCheckResult = { allow: true } | { allow: false; why: string };

/** Run the veto command. Anything but exit 0 (including not starting, or hanging) vetoes. */
export async function runStopCheck(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<StopCheckResult> {
  try {
    const r = await run(argv, { env, timeoutMs, reject: false });
    if (r.status === 0) return { allow: true };
    const last = r.stderr.trim().split('\n').pop() || r.stdout.trim().split('\n').pop() || '';
    return { allow: false, why: `${formatArgv(argv)} exited with ${r.status ?? r.signal}${last ? `: ${last}` : ''}` };
  } catch (e) {
    if (e instanceof TimeoutError) return { allow: false, why: `${formatArgv(argv)} did not finish within ${Math.round(timeoutMs / 1000)} s` };
    if (e instanceof CommandError) return { allow: false, why: e.message };
    return { allow: false, why: (e as Error).message };
  }
}
