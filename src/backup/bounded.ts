/**
 * Every systemctl/podman call on the backup path has a deadline, so a hung
 * `podman ps` or `systemctl stop` cannot leave a stack stopped and frozen with
 * the lock held forever: past its deadline the call is a TimeoutError, and the
 * runner puts the stack back (each put-back call bounded too) and goes on.
 *
 * `bounded()` hands the deadline to the call (CallOptions: run() then kills the
 * command's whole process group), and settles a little after it in any case,
 * for calls that take no options (the on-demand freeze and thaw).
 */
import type { CallOptions } from '../core/ports.js';
import { formatDuration } from '../config/duration.js';
import { TimeoutError } from '../errors.js';
import { DEFAULT_CALL_TIMEOUT } from './config.js';

export interface CallTimeouts {
  /** One systemctl call (start/stop add the stack's start/stop timeout). */
  systemctlMs: number;
  /** One podman ps. */
  podmanMs: number;
  /** One freeze or thaw (a few systemctl calls). */
  freezeMs: number;
}

/** Deadlines from backup.call_timeout (default 2 minutes). */
export function callTimeouts(callTimeoutSec: number = DEFAULT_CALL_TIMEOUT): CallTimeouts {
  const ms = Math.max(1, callTimeoutSec) * 1000;
  return { systemctlMs: ms, podmanMs: ms, freezeMs: 3 * ms };
}

/**
 * `call({ timeoutMs: ms })`; a TimeoutError naming `what` when it does not finish
 * within `ms` (or, if it ignores its deadline, a little after).
 */
export async function bounded<T>(call: (c: CallOptions) => Promise<T>, ms: number, what: string): Promise<T> {
  const text = `${what} did not finish within ${formatDuration(ms / 1000)}`;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(text, ms)), ms + Math.min(5000, ms));
  });
  try {
    return await Promise.race([call({ timeoutMs: ms }), late]);
  } catch (e) {
    if (e instanceof TimeoutError && e.message !== text) throw new TimeoutError(text, ms, { cause: e });
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
