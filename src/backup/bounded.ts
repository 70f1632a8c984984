/**
 * Every systemctl/podman call on the backup path has a deadline, so a hung
 * `podman ps` or `systemctl stop` cannot leave a stack stopped and frozen with
 * the lock held forever: past its deadline the call is a TimeoutError, and the
 * runner puts the stack back (each put-back call bounded too) and goes on.
 *
 * `bounded()` settles at the deadline whatever the call does; the command
 * itself is ended by run()'s own timeout where the backend passes one.
 */
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

/** `p`, or a TimeoutError naming `what` once `ms` have passed. */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${Math.round(ms / 1000)}s`, ms)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
