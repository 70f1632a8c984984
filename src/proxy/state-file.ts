/**
 * The proxy's state for `zoopa status`: `%t/ondemand/<stack>.state.json`,
 * replaced atomically (runtime-file.ts: exclusive temp file, mode 0600, rename) on every state transition and
 * at most once a second while traffic flows.
 *
 * A reader must check that `pid` is alive: a proxy that exited (idle stop,
 * killed) leaves its last state behind. `readProxyState` does this and reports a
 * dead proxy's stack as sleeping with no connections.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ondemandRuntimeDir } from '../paths.js';
import { ownedMarkerPath } from './owned-marker.js';
import { replaceRuntimeFile } from './runtime-file.js';

export type ProxyStateName = 'sleeping' | 'waking' | 'awake' | 'stopping';

export interface ProxyState {
  stack: string;
  /** The proxy process; null once it has exited. */
  pid: number | null;
  state: ProxyStateName;
  /** Zoopa started the stack (the owned marker exists) and so stops it at idle. */
  owned: boolean;
  /** Open client connections, including ones held while the stack wakes. */
  connections: number;
  /** Bytes client → upstream and upstream → client since the proxy started. */
  bytesIn: number;
  bytesOut: number;
  /** Epoch ms of the planned idle stop; null when none is planned. */
  idleDeadline: number | null;
  /** The last wake: ISO time, and the peer (addr:port) when the client is TCP. */
  lastWake: { at: string; peer?: string } | null;
  /** The last failed wake (kept after the proxy exits, like lastWake): ISO time and the cause's line. */
  lastFailure?: { at: string; cause: string } | null;
  /** After a start known to fail: epoch ms until which connections are refused at once (unless the cause is fixed). */
  backoffUntil?: number | null;
  /** Epoch ms of this write. */
  updatedAt: number;
}

export function proxyStatePath(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.state.json`);
}

/** Atomic replace; errors (a missing %t/ondemand) are returned, not thrown: state is best effort. */
export function writeProxyState(state: ProxyState, env: NodeJS.ProcessEnv = process.env): Error | null {
  try {
    replaceRuntimeFile(proxyStatePath(state.stack, env), JSON.stringify(state) + '\n');
    return null;
  } catch (e) {
    return e as Error;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The stack's proxy state, or null when no proxy ever wrote one. When the
 * proxy that wrote it is gone, the state is 'sleeping' with pid null and no
 * connections. `owned` is read from the owned marker (%t/ondemand/<stack>.owned),
 * which outlives the proxy.
 */
export function readProxyState(stack: string, env: NodeJS.ProcessEnv = process.env): ProxyState | null {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(proxyStatePath(stack, env), 'utf8'));
  } catch {
    return null;
  }
  if (!raw || typeof raw !== 'object') return null;
  const r = raw as Partial<ProxyState>;
  const states: ProxyStateName[] = ['sleeping', 'waking', 'awake', 'stopping'];
  const s: ProxyState = {
    stack,
    pid: typeof r.pid === 'number' ? r.pid : null,
    state: states.includes(r.state as ProxyStateName) ? (r.state as ProxyStateName) : 'sleeping',
    owned: fs.existsSync(ownedMarkerPath(stack, env)),
    connections: typeof r.connections === 'number' ? r.connections : 0,
    bytesIn: typeof r.bytesIn === 'number' ? r.bytesIn : 0,
    bytesOut: typeof r.bytesOut === 'number' ? r.bytesOut : 0,
    idleDeadline: typeof r.idleDeadline === 'number' ? r.idleDeadline : null,
    lastWake: r.lastWake && typeof r.lastWake === 'object' && typeof r.lastWake.at === 'string' ? r.lastWake : null,
    ...(typeof r.backoffUntil === 'number' ? { backoffUntil: r.backoffUntil } : {}),
    ...(r.lastFailure && typeof r.lastFailure === 'object' && typeof r.lastFailure.at === 'string' && typeof r.lastFailure.cause === 'string'
      ? { lastFailure: { at: r.lastFailure.at, cause: r.lastFailure.cause } }
      : {}),
    updatedAt: typeof r.updatedAt === 'number' ? r.updatedAt : 0,
  };
  if (s.pid !== null && !alive(s.pid)) {
    const { backoffUntil: _gone, ...rest } = s;
    return { ...rest, pid: null, state: 'sleeping', connections: 0, idleDeadline: null };
  }
  return s;
}
