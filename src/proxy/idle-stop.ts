/**
 * What happens when the idle timer fires: the veto (ZOOPA_STOP_CHECK), closing
 * the silent connections, the stop (only of a run zoopa started), and whether
 * the proxy then exits. The steps and their log lines; the state changes are
 * StackState's.
 */
import { formatDuration } from '../config/duration.js';
import type { Logger } from '../log.js';
import type { ProxySettings } from './config.js';
import type { Connections } from './connections.js';
import { runStopCheck, type IdleTimer } from './idle.js';
import type { StackState } from './stack-state.js';
import type { Traffic } from './traffic.js';

/** The veto command gets this long at most (or the idle timeout, when shorter). */
const STOP_CHECK_TIMEOUT_MS = 120_000;

export interface IdleStopContext {
  settings: ProxySettings;
  env: NodeJS.ProcessEnv;
  log: Logger;
  stack: StackState;
  idle: IdleTimer;
  traffic: Traffic;
  conns: Connections;
  closing: () => boolean;
  onChange: () => void;
}

/** Returns true when the proxy may exit (the stack is asleep or left to its owner, and nobody waits). */
export async function idleStop(x: IdleStopContext): Promise<boolean> {
  const { settings, log, stack } = x;
  if (x.closing() || stack.busy) return false;
  const unit = settings.stackUnit;
  const owned = await stack.refreshOwned();
  const idleFor = formatDuration((Date.now() - x.traffic.lastActivity) / 1000);
  if (unit !== null && owned && settings.stopCheck) {
    const timeoutMs = Math.min(STOP_CHECK_TIMEOUT_MS, settings.idleTimeoutMs ?? STOP_CHECK_TIMEOUT_MS);
    const r = await runStopCheck(settings.stopCheck, { ...x.env, ZOOPA_STACK: settings.stack, ZOOPA_STACK_UNIT: unit }, timeoutMs);
    if (!r.allow) {
      x.idle.postpone();
      log.notice(`veto: ${r.why}; the stop of ${unit} is postponed by ${formatDuration((settings.idleTimeoutMs ?? 0) / 1000)}`);
      x.onChange();
      return false;
    }
    if (!x.idle.isDue() || stack.busy || x.closing()) return false; // traffic moved while the check ran
  }
  const silent = x.conns.size;
  for (const c of x.conns.attached()) c.release();
  const closed = silent > 0 ? `; closed ${silent} silent connection(s)` : '';
  if (unit === null) log.notice(`idle for ${idleFor}${closed}; exiting`);
  else if (!owned && stack.state === 'sleeping') log.notice(`idle for ${idleFor}${closed}; ${unit} is not running; exiting`);
  else if (owned) log.notice(`idle stop: nothing moved for ${idleFor}; stopping ${unit} (started by zoopa)${closed}`);
  else log.notice(`idle: nothing moved for ${idleFor}; leaving ${unit} running (not started by zoopa)${closed}`);
  try {
    const r = await stack.stopForIdle();
    if (r === 'canceled') log.notice(`idle stop of ${unit} was canceled: another job (a start by hand) took over; ${unit} is the user's now and stays up`);
  } catch (e) {
    log.error(`idle stop of ${unit} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  // A client came during the stop: keep serving.
  return x.conns.heldCount() === 0 && !stack.busy;
}
