/**
 * The wake/sleep state machine of one stack, shared by every listener of its
 * proxy. It alone changes the state and owns waking, stopping and ownership.
 *
 *   sleeping ──wake()──▶ waking ──ready──▶ awake ──stopForIdle()──▶ stopping ──▶ sleeping
 *                          │ not ready in time: sleeping (the next connection tries again)
 *                          │ start failed / containers not running: stopped again,
 *                          ▼ sleeping with a backoff (failures.ts)
 *
 * Waking: when the unit is deactivating, wait for that stop to finish; when it
 * is not active, write the owned marker and start it (the blocking `systemctl
 * --user start`, bounded by the start timeout), while polling the upstream(s)
 * for readiness in parallel; awake as soon as the upstream is ready. A start
 * job that fails, or one that ends with a container not running (podman-compose
 * 1.0.3 exits 0 then), ends the wake at once with the diagnosed cause. One wake
 * at a time: wake() while waking joins it; its end is reported once, through
 * onAwake / onWakeFailed. A wake asked for while the stack is stopping runs
 * after the stop.
 *
 * Without a unit (`--stack-unit none`, a plain proxy) waking is only the
 * readiness wait.
 */
import { InputError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import { ENV_STACK_UNIT } from '../names.js';
import type { ReadyCheck } from './config.js';
import type { Diagnose } from './diagnose.js';
import { Failures, WakeFailedError } from './failures.js';
import { ownsRun, readOwnedMarker, removeOwnedMarker, writeOwnedMarker } from './owned-marker.js';
import { waitReady } from './readiness.js';
import { startJob, watchContainers, type StartJobContext } from './start-job.js';
import type { ProxyStateName } from './state-file.js';
import { isCanceledJob, SHOW_TIMEOUT_MS, type ProxyUnits, type StackUnitInfo } from './units.js';
import type { Upstream } from './upstream.js';
import { recordIdleStop, recordWake } from '../ondemand/stats.js';

export interface StackStateOptions {
  stack: string;
  /** null: no unit to start or stop. */
  unit: string | null;
  units: ProxyUnits | null;
  /** Readiness targets: the main upstream first (checked with `ready`), then the named ones (tcp). */
  upstreams: readonly Upstream[];
  ready: ReadyCheck;
  startTimeoutMs: number;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Why a started stack is not running (null: no diagnosis). */
  diagnose?: Diagnose | null;
  /** Called after every transition (state or ownership). */
  onChange: () => void;
  /** The wake ended: the stack is ready. */
  onAwake: (info: WakeInfo) => void;
  /** The wake ended without the stack. */
  onWakeFailed: (err: WakeFailedError) => void;
  /**
   * After the readiness check passed (tcp only): make sure a real answer comes
   * through (scout.ts). Rejects when none does by the deadline.
   */
  confirm?: (deadline: number, since: number) => Promise<void>;
}

const UP_STATES = new Set(['active', 'activating', 'reloading']);
const STOP_POLL_MS = 100;
/** An idle stop (podman-compose down) gets this long at most. */
export const IDLE_STOP_TIMEOUT_MS = 300_000;
/** Stopping what a failed start left gets this long at most. */
const AFTERMATH_TIMEOUT_MS = 60_000;

export interface WakeInfo {
  /** ms from the wake's start to ready. */
  readyMs: number;
  /** A start job was issued by this wake. */
  started: boolean;
}

export type IdleStopResult = 'stopped' | 'not-owned' | 'canceled';

export class StackState {
  private current: ProxyStateName = 'sleeping';
  private isOwned = false;
  lastWake: { at: string; peer?: string } | null = null;
  /** The last failed wake: when, and why (for the state file, `zoopa status`). */
  lastFailure: { at: string; cause: string } | null = null;
  private waking: Promise<void> | null = null;
  private stopping: Promise<unknown> | null = null;
  private wakeAbort: AbortController | null = null;
  /** The start job of the last wake, until an idle stop has waited for it. */
  private pendingStart: Promise<void> | null = null;
  readonly failures: Failures;
  private closing = false;

  constructor(private readonly o: StackStateOptions) {
    this.failures = new Failures();
  }

  get state(): ProxyStateName {
    return this.current;
  }

  /** Zoopa started the stack's current run (and so stops it at idle). */
  get owned(): boolean {
    return this.isOwned;
  }

  /** A wake or stop is in progress or queued. */
  get busy(): boolean {
    return this.waking !== null || this.stopping !== null || this.current === 'waking' || this.current === 'stopping';
  }

  get isWaking(): boolean {
    return this.waking !== null;
  }

  /** The running wake's AbortSignal, which every readiness probe listens to (tests count its listeners). */
  get wakeSignal(): AbortSignal | null {
    return this.wakeAbort?.signal ?? null;
  }

  private set(state: ProxyStateName): void {
    if (this.current === state) return;
    this.current = state;
    this.o.onChange();
  }

  private setOwned(owned: boolean): void {
    if (!owned) removeOwnedMarker(this.o.stack, this.o.env);
    if (owned === this.isOwned) return;
    this.isOwned = owned;
    this.o.onChange();
  }

  private unitManager(): ProxyUnits {
    if (!this.o.units) throw new Error('StackState: a unit without a unit manager');
    return this.o.units;
  }

  private show(unit: string, deadline = Date.now() + SHOW_TIMEOUT_MS, signal?: AbortSignal): Promise<StackUnitInfo> {
    return this.unitManager().show(unit, { timeoutMs: Math.max(1000, Math.min(SHOW_TIMEOUT_MS, deadline - Date.now())), signal });
  }

  /**
   * Look at the unit once, at proxy start. Active → awake. A marker left for a
   * unit that is down, or for a run that is not the current one, is removed.
   * An unknown unit is an InputError: nothing is started.
   */
  async init(): Promise<void> {
    const unit = this.o.unit;
    if (unit === null) return; // sleeping: the first connection checks readiness
    const { activeState, loadState, invocationId } = await this.show(unit);
    if (loadState === 'not-found') {
      throw new InputError('ZOOPA_UNKNOWN_UNIT', `${unit} is not a unit systemd knows, so stack ${this.o.stack} cannot be started on demand`, {
        key: ENV_STACK_UNIT,
        value: unit,
        hint: `install the stack's units ("zoopa install"), or set ZOOPA_STACK_UNIT in the stack's env file ("none" to proxy without a unit)`,
      });
    }
    const marker = readOwnedMarker(this.o.stack, this.o.env);
    const up = UP_STATES.has(activeState) || activeState === 'deactivating';
    this.isOwned = up && ownsRun(marker, invocationId);
    if (marker && !this.isOwned) removeOwnedMarker(this.o.stack, this.o.env);
    this.current = activeState === 'active' || activeState === 'reloading' ? 'awake' : 'sleeping';
  }

  /**
   * Is the unit's current run zoopa's? Reads the marker (another proxy or
   * `zoopa thaw` may have changed it) and the unit's InvocationID; a marker for
   * another run (a start by hand since) is removed.
   */
  async refreshOwned(): Promise<boolean> {
    const unit = this.o.unit;
    if (unit === null) return false;
    const marker = readOwnedMarker(this.o.stack, this.o.env);
    let owned = marker !== null;
    if (marker && marker.invocation !== '') {
      const info = await this.show(unit).catch(() => null);
      owned = info === null || ownsRun(marker, info.invocationId); // unknown: stopping is the safe side
      if (!owned) this.o.logger.notice(`${unit} runs as invocation ${info?.invocationId}, not the one zoopa started: started by hand, so not stopped at idle`);
    }
    this.setOwned(owned);
    return owned;
  }

  /** Start a wake (or join the one running); its end comes through onAwake / onWakeFailed. */
  wake(peer?: string): void {
    if (this.waking) return;
    this.lastWake = peer ? { at: new Date().toISOString(), peer } : { at: new Date().toISOString() };
    this.waking = this.runWake().then(
      (info) => {
        this.waking = null;
        this.failures.succeeded();
        this.o.onAwake(info);
      },
      (e: unknown) => {
        this.waking = null;
        this.o.onWakeFailed(e instanceof WakeFailedError ? e : new WakeFailedError((e as Error)?.message ?? String(e), { cause: e }));
      },
    );
  }

  /** The upstream refused a connection while awake: the next wake() looks again. */
  markGone(): void {
    if (this.current === 'awake' && this.waking === null) this.set('sleeping');
  }

  /** The proxy exits after an idle stop: what it leaves behind is a sleeping stack. */
  markAsleep(): void {
    this.set('sleeping');
  }

  private async runWake(): Promise<WakeInfo> {
    // A start already known to fail: fail at once, unless its cause is fixed.
    await this.failures.gate(this.o.unit ?? this.o.upstreams[0]!.text);
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
        let { activeState } = await this.show(unit, deadline, abort.signal);
        while (activeState === 'deactivating') {
          if (abort.signal.aborted) throw abort.signal.reason;
          if (Date.now() >= deadline) throw new TimeoutError(`${unit} was still stopping after ${Math.round(this.o.startTimeoutMs / 1000)} s`, this.o.startTimeoutMs);
          await new Promise((r) => setTimeout(r, STOP_POLL_MS));
          ({ activeState } = await this.show(unit, deadline, abort.signal));
        }
        if (!UP_STATES.has(activeState)) {
          writeOwnedMarker(this.o.stack, unit, this.o.env);
          this.setOwned(true);
          this.o.logger.notice(`wake: ${this.lastWake?.peer ?? 'a client'} connected while ${unit} was ${activeState}; starting it`);
          startJob = this.startJob(unit, deadline, abort.signal);
        } else {
          this.o.logger.notice(`wake: ${this.lastWake?.peer ?? 'a client'} connected while ${unit} was ${activeState}; waiting for ${this.o.upstreams[0]!.text}`);
        }
      }
      const ready = waitReady(this.o.upstreams, this.o.ready, { deadline, timeoutMs: this.o.startTimeoutMs, signal: abort.signal, since: t0 });
      ready.catch(() => undefined);
      // The start job failing, or a container not running after it (watched until the wake ends), fails the wake at once.
      const failed = startJob ? startJob.then(() => watchContainers(this.jobContext(), unit!, deadline, abort.signal, () => this.current === 'waking')) : null;
      failed?.catch(() => undefined);
      await (failed ? Promise.race([ready, failed]) : ready);
      if (this.o.ready.kind === 'tcp' && this.o.confirm) await (failed ? Promise.race([this.o.confirm(deadline, t0), failed]) : this.o.confirm(deadline, t0));
      if (abort.signal.aborted) throw abort.signal.reason;
      const readyMs = Date.now() - t0;
      this.set('awake');
      if (startJob) this.stat(recordWake(this.o.stack, { seconds: readyMs / 1000, ready: true, peer: this.lastWake?.peer, at: new Date(t0) }, this.o.env));
      startJob?.catch((e: unknown) => this.failedLate(e));
      return { readyMs, started: startJob !== null };
    } catch (e) {
      if (!abort.signal.aborted) abort.abort(new Error('wake abandoned'));
      const err = e instanceof WakeFailedError ? e : new WakeFailedError((e as Error)?.message ?? String(e), { cause: e });
      if (!this.closing) this.lastFailure = { at: new Date().toISOString(), cause: err.message };
      if (!this.closing && startJob) this.stat(recordWake(this.o.stack, { seconds: (Date.now() - t0) / 1000, ready: false, reason: err.message, peer: this.lastWake?.peer, at: new Date(t0) }, this.o.env));
      if (err.known) this.failures.failed(err);
      if (unit !== null && err.known && this.isOwned) await this.stopAfterFailure(unit);
      else if (unit !== null) await this.forgetIfDown(unit);
      this.set('sleeping');
      throw err;
    } finally {
      if (this.wakeAbort === abort) this.wakeAbort = null;
    }
  }

  /** Counters for `zoopa web` (src/ondemand/stats.ts), written on transitions only; best effort: a failed write is a warning. */
  private stat(err: Error | null): void {
    if (err) this.o.logger.warn(`cannot record on-demand counters: ${err.message}`);
  }

  /** The start job (start-job.ts), kept until an idle stop or the failure handling has waited for it. */
  private startJob(unit: string, deadline: number, signal: AbortSignal): Promise<void> {
    const job = startJob(this.jobContext(), unit, deadline, signal);
    job.catch(() => undefined);
    this.pendingStart = job.catch(() => undefined);
    return job;
  }

  private jobContext(): StartJobContext {
    return { stack: this.o.stack, units: this.unitManager(), env: this.o.env, logger: this.o.logger, diagnose: this.o.diagnose ?? null };
  }

  /** A start zoopa made failed: stop what it left, so the next wake runs a fresh start. */
  private async stopAfterFailure(unit: string): Promise<void> {
    await this.pendingStart;
    this.pendingStart = null;
    try {
      await this.unitManager().stop(unit, { timeoutMs: AFTERMATH_TIMEOUT_MS });
    } catch (e) {
      this.o.logger.warn(`could not stop ${unit} after its failed start: ${(e as Error).message}`);
    }
    this.setOwned(false);
  }

  /** Give up a wake in progress (the proxy is closing); the start job, if any, is left to systemd. */
  cancelWake(): void {
    this.closing = true;
    this.wakeAbort?.abort(new Error('the proxy is closing'));
  }

  /**
   * The app answered, but the start job failed after all (a check after
   * `podman-compose up`, ExecStartPost, found a container not running): one
   * line, the backoff, and the next connection looks at the stack again.
   */
  private failedLate(e: unknown): void {
    if (this.closing || !(e instanceof WakeFailedError)) return;
    this.lastFailure = { at: new Date().toISOString(), cause: e.message };
    this.failures.failed(e);
    this.o.logger.error(`${e.message} (after the app answered); the next connection looks at the stack again`);
    this.markGone();
  }

  /** After a failed wake: a unit that did not come up is not ours to stop later. */
  private async forgetIfDown(unit: string): Promise<void> {
    try {
      const { activeState } = await this.show(unit);
      if (!UP_STATES.has(activeState) && this.isOwned) this.setOwned(false);
    } catch {
      /* keep the marker: stopping later is the safe side */
    }
  }

  /**
   * The idle stop. Stops the unit only when its current run is zoopa's; removes
   * the marker after. A stop cancelled by another job (a start by hand while
   * it ran) leaves the stack to the user.
   */
  async stopForIdle(): Promise<IdleStopResult> {
    const unit = this.o.unit;
    if (unit === null || !(await this.refreshOwned())) {
      this.set('sleeping');
      return 'not-owned';
    }
    this.set('stopping');
    const stop = (async (): Promise<IdleStopResult> => {
      // The app may answer before its start job ends: stopping a unit in the
      // middle of `podman-compose up` can hang until TimeoutStopSec. Let it finish.
      await this.pendingStart;
      this.pendingStart = null;
      try {
        await this.unitManager().stop(unit, { timeoutMs: IDLE_STOP_TIMEOUT_MS });
      } catch (e) {
        if (!isCanceledJob(e)) throw e;
        this.setOwned(false);
        return 'canceled';
      }
      this.setOwned(false);
      return 'stopped';
    })();
    this.stopping = stop;
    try {
      const r = await stop;
      this.set(r === 'canceled' ? 'awake' : 'sleeping');
      if (r === 'stopped') this.stat(recordIdleStop(this.o.stack, this.o.env));
      return r;
    } catch (e) {
      this.set('sleeping');
      throw e;
    } finally {
      this.stopping = null;
    }
  }
}
