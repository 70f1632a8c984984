/**
 * The wake/sleep state machine of one stack, shared by every listener of its proxy.
 *
 *   sleeping ──ensureAwake()──▶ waking ──ready──▶ awake ──stopForIdle()──▶ stopping ──▶ sleeping
 *                                  │ start failed / not ready in time
 *                                  ▼
 *                               sleeping (the next connection tries again)
 *
 * Waking: when the unit is deactivating, wait for that stop to finish; when it
 * is not active, write the owned marker and start it (`UnitManager.start`, the
 * blocking `systemctl --user start`), while polling the upstream(s) for
 * readiness in parallel; awake as soon as the upstream is ready (a start job
 * that fails ends the wake at once). Concurrent callers share one wake, so N
 * first connections make one start job. A wake asked for while the stack is
 * stopping runs after the stop.
 *
 * Without a unit (`--stack-unit none`, a plain proxy) waking is only the
 * readiness wait: the first connection waits until the upstream is ready, and
 * so does a connection the upstream refuses later (markGone).
 */
import type { UnitManager } from '../core/ports.js';
import { InputError, TimeoutError, ZoopaError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ReadyCheck } from './config.js';
import { readOwnedMarker, removeOwnedMarker, writeOwnedMarker } from './owned-marker.js';
import { waitReady } from './readiness.js';
import type { ProxyStateName } from './state-file.js';
import type { Upstream } from './upstream.js';

export interface StackStateOptions {
  stack: string;
  /** null: no unit to start or stop. */
  unit: string | null;
  units: UnitManager | null;
  /** Readiness targets: the main upstream first (checked with `ready`), then the named ones (tcp). */
  upstreams: readonly Upstream[];
  ready: ReadyCheck;
  startTimeoutMs: number;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Called after every transition (state or ownership). */
  onChange: () => void;
  /**
   * After the readiness check passed (tcp only): make sure a real answer comes
   * through (the proxy's scout connection). Rejects when none does by the deadline.
   */
  confirm?: (deadline: number) => Promise<void>;
}

const UP_STATES = new Set(['active', 'activating', 'reloading']);
const STOP_POLL_MS = 100;

export interface WakeInfo {
  /** ms from the wake's start to ready. */
  readyMs: number;
  /** A start job was issued by this wake. */
  started: boolean;
}

export class StackState {
  state: ProxyStateName = 'sleeping';
  owned = false;
  lastWake: { at: string; peer?: string } | null = null;
  private waking: Promise<WakeInfo> | null = null;
  private stopping: Promise<void> | null = null;
  private wakeAbort: AbortController | null = null;
  /** The start job of the last wake, until an idle stop has waited for it. */
  private pendingStart: Promise<void> | null = null;

  constructor(private readonly o: StackStateOptions) {}

  /** A wake or stop is in progress or queued. */
  get busy(): boolean {
    return this.waking !== null || this.stopping !== null || this.state === 'waking' || this.state === 'stopping';
  }

  private set(state: ProxyStateName): void {
    if (this.state === state) return;
    this.state = state;
    this.o.onChange();
  }

  private unitManager(): UnitManager {
    if (!this.o.units) throw new Error('StackState: a unit without a UnitManager');
    return this.o.units;
  }

  private async activeState(unit: string): Promise<{ activeState: string; loadState: string }> {
    const info = (await this.unitManager().show([unit])).get(unit);
    return { activeState: info?.activeState ?? 'inactive', loadState: info?.loadState ?? 'not-found' };
  }

  /**
   * Look at the unit once, at proxy start. Active (started by hand, or by an
   * earlier proxy per the marker) → awake. A marker left for a unit that is
   * down is removed. An unknown unit is an InputError: nothing is started.
   */
  async init(): Promise<void> {
    const unit = this.o.unit;
    if (unit === null) return; // sleeping: the first connection checks readiness
    const { activeState, loadState } = await this.activeState(unit);
    if (loadState === 'not-found') {
      throw new InputError('ZOOPA_UNKNOWN_UNIT', `${unit} is not a unit systemd knows, so stack ${this.o.stack} cannot be started on demand`, {
        key: 'ZOOPA_STACK_UNIT',
        value: unit,
        hint: `install the stack's units ("zoopa install"), or set ZOOPA_STACK_UNIT in the stack's env file ("none" to proxy without a unit)`,
      });
    }
    const marker = readOwnedMarker(this.o.stack, this.o.env);
    if (marker && !UP_STATES.has(activeState) && activeState !== 'deactivating') {
      removeOwnedMarker(this.o.stack, this.o.env);
      this.owned = false;
    } else {
      this.owned = marker !== null;
    }
    this.state = activeState === 'active' || activeState === 'reloading' ? 'awake' : 'sleeping';
  }

  /** Re-read the owned marker (another proxy or `zoopa thaw` may have changed it). */
  refreshOwned(): boolean {
    if (this.o.unit === null) return false;
    const owned = readOwnedMarker(this.o.stack, this.o.env) !== null;
    if (owned !== this.owned) {
      this.owned = owned;
      this.o.onChange();
    }
    return owned;
  }

  /** Resolves when the stack is awake (at once when it is); all callers share one wake. */
  ensureAwake(peer?: string): Promise<WakeInfo> {
    if (this.state === 'awake' && this.waking === null) return Promise.resolve({ readyMs: 0, started: false });
    if (!this.waking) {
      this.lastWake = peer ? { at: new Date().toISOString(), peer } : { at: new Date().toISOString() };
      this.waking = this.wake().finally(() => {
        this.waking = null;
      });
    }
    return this.waking;
  }

  /** The upstream refused a connection while awake: the next ensureAwake() looks again. */
  markGone(): void {
    if (this.state === 'awake' && this.waking === null) this.set('sleeping');
  }

  private async wake(): Promise<WakeInfo> {
    if (this.stopping) await this.stopping.catch(() => undefined);
    const t0 = Date.now();
    const deadline = t0 + this.o.startTimeoutMs;
    this.set('waking');
    const unit = this.o.unit;
    let startJob: Promise<void> | null = null;
    const abort = new AbortController();
    this.wakeAbort = abort;
    try {
      if (unit !== null) {
        let { activeState } = await this.activeState(unit);
        while (activeState === 'deactivating') {
          if (abort.signal.aborted) throw abort.signal.reason;
          if (Date.now() >= deadline) throw new TimeoutError(`${unit} was still stopping after ${Math.round(this.o.startTimeoutMs / 1000)} s`, this.o.startTimeoutMs);
          await new Promise((r) => setTimeout(r, STOP_POLL_MS));
          ({ activeState } = await this.activeState(unit));
        }
        if (!UP_STATES.has(activeState)) {
          writeOwnedMarker(this.o.stack, unit, this.o.env);
          this.owned = true;
          this.o.onChange();
          this.o.logger.notice(`wake: ${this.lastWake?.peer ?? 'a client'} connected while ${unit} was ${activeState}; starting it`);
          startJob = this.unitManager().start(unit);
          startJob.catch(() => undefined);
          this.pendingStart = startJob.catch(() => undefined);
        } else {
          this.o.logger.notice(`wake: ${this.lastWake?.peer ?? 'a client'} connected while ${unit} was ${activeState}; waiting for ${this.o.upstreams[0]!.text}`);
        }
      }
      const ready = waitReady(this.o.upstreams, this.o.ready, { deadline, timeoutMs: this.o.startTimeoutMs, signal: abort.signal });
      ready.catch(() => undefined);
      await (startJob ? Promise.race([ready, startJob.then(() => ready)]) : ready);
      if (this.o.ready.kind === 'tcp' && this.o.confirm) await this.o.confirm(deadline);
      if (abort.signal.aborted) throw abort.signal.reason;
      const readyMs = Date.now() - t0;
      this.set('awake');
      return { readyMs, started: startJob !== null };
    } catch (e) {
      if (!abort.signal.aborted) abort.abort(new Error('wake abandoned'));
      if (unit !== null) await this.forgetIfDown(unit);
      this.set('sleeping');
      throw e instanceof ZoopaError ? e : new ZoopaError('ZOOPA_WAKE_FAILED', (e as Error).message ?? String(e), { cause: e });
    } finally {
      if (this.wakeAbort === abort) this.wakeAbort = null;
    }
  }

  /** Give up a wake in progress (the proxy is closing); the start job, if any, is left to systemd. */
  cancelWake(): void {
    this.wakeAbort?.abort(new Error('the proxy is closing'));
  }

  /** After a failed wake: a unit that did not come up is not ours to stop later. */
  private async forgetIfDown(unit: string): Promise<void> {
    try {
      const { activeState } = await this.activeState(unit);
      if (!UP_STATES.has(activeState) && this.owned) {
        removeOwnedMarker(this.o.stack, this.o.env);
        this.owned = false;
        this.o.onChange();
      }
    } catch {
      /* keep the marker: stopping later is the safe side */
    }
  }

  /**
   * The idle stop. Stops the unit only when the owned marker says Zoopa started
   * it; removes the marker after. Returns whether a stop job ran.
   */
  async stopForIdle(): Promise<boolean> {
    const unit = this.o.unit;
    if (unit === null || !this.refreshOwned()) {
      this.set('sleeping');
      return false;
    }
    this.set('stopping');
    this.stopping = (async () => {
      // The app may answer before its start job ends (a stack whose first container
      // is up while podman-compose still starts the next): stopping a unit in the
      // middle of `podman-compose up` can hang until TimeoutStopSec. Let it finish.
      await this.pendingStart;
      this.pendingStart = null;
      await this.unitManager().stop(unit);
      removeOwnedMarker(this.o.stack, this.o.env);
      this.owned = false;
    })();
    try {
      await this.stopping;
      return true;
    } finally {
      this.stopping = null;
      this.set('sleeping');
    }
  }
}
