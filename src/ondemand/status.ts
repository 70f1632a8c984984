/**
 * On-demand state of stacks for `zoopa status`, from files only (no processes,
 * no systemctl): the freeze record, the proxy's state file (readProxyState checks
 * that its pid is alive), the owned marker, and whether the socket file exists
 * (our sockets have RemoveOnStop=yes, so it exists exactly while systemd listens).
 *
 *   frozen    a freeze record exists (zoopa freeze, a backup): the sockets answer with the maintenance page, nothing wakes
 *   waking    the proxy started the stack and holds connections until it is ready
 *   awake     the proxy is running and the stack is up
 *   stopping  the proxy is stopping the stack after the idle timeout
 *   sleeping  the socket listens, no proxy runs: the next connection wakes the stack
 *   off       nothing listens (socket stopped, disabled or never installed)
 */
import fs from 'node:fs';
import { ownedMarkerPath } from '../proxy/owned-marker.js';
import { readProxyState } from '../proxy/state-file.js';
import { readFreezeRecord } from './freeze.js';
import { socketPath } from './units.js';

export interface OndemandStatus {
  state: 'sleeping' | 'waking' | 'awake' | 'stopping' | 'frozen' | 'off';
  /** Open client connections (including ones held while waking). */
  connections: number;
  /** Bytes moved both ways since the running proxy started (0 when none runs). */
  bytes: number;
  secondsUntilIdleStop: number | null;
  /** The last wake (kept after the proxy exits): ISO time, and the peer when known. */
  lastWake: { at: string; peer?: string } | null;
  /** Zoopa started the stack (and so may stop it at idle). */
  owned: boolean;
  /** When frozen: since when (ISO time), why, and about how long it was expected to last (seconds). */
  frozenAt?: string;
  frozenFor?: string;
  frozenExpectedSeconds?: number;
  /** The last failed wake (when, and the cause the proxy found), kept after the proxy exits. */
  lastFailure?: { at: string; cause: string } | null;
  /** Seconds until a new connection may try to start the stack again after a failure known to repeat. */
  backoffSeconds?: number | null;
}

function isSocketFile(p: string): boolean {
  try {
    return fs.lstatSync(p).isSocket();
  } catch {
    return false;
  }
}

export function stackOndemandStatus(stack: string, env: NodeJS.ProcessEnv = process.env, now = Date.now()): OndemandStatus {
  const frozen = readFreezeRecord(stack, env);
  const ps = readProxyState(stack, env);
  const owned = ps ? ps.owned : fs.existsSync(ownedMarkerPath(stack, env));
  const lastWake = ps?.lastWake ?? null;
  const lastFailure = ps?.lastFailure ?? null;
  if (frozen) {
    const why = { ...(frozen.reason ? { frozenFor: frozen.reason } : {}), ...(frozen.expectedSeconds ? { frozenExpectedSeconds: frozen.expectedSeconds } : {}) };
    return { state: 'frozen', connections: 0, bytes: 0, secondsUntilIdleStop: null, lastWake, owned, frozenAt: frozen.frozenAt, ...why, lastFailure };
  }
  if (ps && ps.pid !== null) {
    return {
      state: ps.state,
      connections: ps.connections,
      bytes: ps.bytesIn + ps.bytesOut,
      secondsUntilIdleStop: ps.idleDeadline === null ? null : Math.max(0, (ps.idleDeadline - now) / 1000),
      lastWake,
      owned,
      lastFailure,
      backoffSeconds: typeof ps.backoffUntil === 'number' && ps.backoffUntil > now ? (ps.backoffUntil - now) / 1000 : null,
    };
  }
  return {
    state: isSocketFile(socketPath(stack, env)) ? 'sleeping' : 'off',
    connections: 0,
    bytes: 0,
    secondsUntilIdleStop: null,
    lastWake,
    owned,
    lastFailure,
  };
}

export function ondemandStatus(stacks: readonly string[], env: NodeJS.ProcessEnv = process.env): Map<string, OndemandStatus> {
  const now = Date.now();
  return new Map(stacks.map((s) => [s, stackOndemandStatus(s, env, now)]));
}
