/**
 * On-demand counters that outlive the proxy: the proxy exits when its stack goes to
 * sleep, so what `zoopa web`, `/metrics` and `zoopa status` show about past wakes lives
 * here, one small JSON file per stack in Zoopa's state folder:
 *
 *   $XDG_STATE_HOME/zoopa/ondemand/<stack>.stats.json   (0600)
 *
 * Written on transitions only (a wake starts, is ready or fails, an idle stop, the proxy
 * exits with its byte counts), never per chunk: nothing here touches the data path.
 * Only the stack's own proxy writes its file (one proxy per stack), so a read, change,
 * atomic replace is enough. Every write is best effort: a full disk must not stop a wake.
 *
 * Dependency-free on purpose (node's fs and path, src/paths.ts): the proxy imports it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { zoopaStateDir } from '../paths.js';

/** Upper bounds (seconds) of the wake-time histogram, Prometheus style (+Inf implied). */
export const WAKE_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;
/** How many recent events the file keeps for the status page's history. */
export const RECENT_KEEP = 20;

export type OndemandEvent =
  | { kind: 'wake'; at: string; seconds: number; result: 'ready'; peer?: string | undefined }
  | { kind: 'wake'; at: string; seconds: number; result: 'failed'; reason: string; peer?: string | undefined }
  | { kind: 'idle-stop'; at: string };

export interface OndemandStats {
  version: 1;
  stack: string;
  /** Wakes started by the proxy (ready or failed). */
  wakes: number;
  wakeFailures: number;
  idleStops: number;
  /** Wake-to-ready times of successful wakes: cumulative bucket counts, sum and count. */
  wakeSeconds: { buckets: number[]; sum: number; count: number };
  /** Bytes moved by proxies that have exited (a running proxy's bytes are in its state file). */
  bytesIn: number;
  bytesOut: number;
  /** Newest last. */
  recent: OndemandEvent[];
}

export function statsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(zoopaStateDir(env), 'ondemand');
}

export function statsFile(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(statsDir(env), `${stack}.stats.json`);
}

export function emptyStats(stack: string): OndemandStats {
  return {
    version: 1,
    stack,
    wakes: 0,
    wakeFailures: 0,
    idleStops: 0,
    wakeSeconds: { buckets: WAKE_BUCKETS.map(() => 0), sum: 0, count: 0 },
    bytesIn: 0,
    bytesOut: 0,
    recent: [],
  };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** The stack's counters; zeros when none were written or the file is unreadable. */
export function readStats(stack: string, env: NodeJS.ProcessEnv = process.env): OndemandStats {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(statsFile(stack, env), 'utf8'));
  } catch {
    return emptyStats(stack);
  }
  const s = emptyStats(stack);
  if (!raw || typeof raw !== 'object') return s;
  const r = raw as Partial<OndemandStats>;
  s.wakes = num(r.wakes);
  s.wakeFailures = num(r.wakeFailures);
  s.idleStops = num(r.idleStops);
  s.bytesIn = num(r.bytesIn);
  s.bytesOut = num(r.bytesOut);
  const ws = r.wakeSeconds;
  if (ws && Array.isArray(ws.buckets) && ws.buckets.length === WAKE_BUCKETS.length) {
    s.wakeSeconds = { buckets: ws.buckets.map(num), sum: num(ws.sum), count: num(ws.count) };
  }
  if (Array.isArray(r.recent)) {
    s.recent = r.recent.filter((e): e is OndemandEvent => !!e && typeof e === 'object' && typeof (e as OndemandEvent).at === 'string').slice(-RECENT_KEEP);
  }
  return s;
}

function write(stats: OndemandStats, env: NodeJS.ProcessEnv): Error | null {
  const file = statsFile(stats.stack, env);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, JSON.stringify(stats) + '\n', { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
    return null;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    return e as Error;
  }
}

/** Read, change, replace. Returns the write error, if any (best effort: the caller logs it). */
export function updateStats(stack: string, change: (s: OndemandStats) => void, env: NodeJS.ProcessEnv = process.env): Error | null {
  const s = readStats(stack, env);
  change(s);
  s.recent = s.recent.slice(-RECENT_KEEP);
  return write(s, env);
}

/** A wake ended: ready after `seconds`, or failed with a reason. */
export function recordWake(
  stack: string,
  outcome: { seconds: number; peer?: string | undefined; at?: Date } & ({ ready: true } | { ready: false; reason: string }),
  env: NodeJS.ProcessEnv = process.env,
): Error | null {
  const at = (outcome.at ?? new Date(Date.now() - outcome.seconds * 1000)).toISOString();
  return updateStats(
    stack,
    (s) => {
      s.wakes += 1;
      if (outcome.ready) {
        s.wakeSeconds.count += 1;
        s.wakeSeconds.sum += outcome.seconds;
        WAKE_BUCKETS.forEach((le, i) => {
          if (outcome.seconds <= le) s.wakeSeconds.buckets[i]! += 1;
        });
        s.recent.push({ kind: 'wake', at, seconds: outcome.seconds, result: 'ready', peer: outcome.peer });
      } else {
        s.wakeFailures += 1;
        s.recent.push({ kind: 'wake', at, seconds: outcome.seconds, result: 'failed', reason: outcome.reason, peer: outcome.peer });
      }
    },
    env,
  );
}

export function recordIdleStop(stack: string, env: NodeJS.ProcessEnv = process.env, at = new Date()): Error | null {
  return updateStats(
    stack,
    (s) => {
      s.idleStops += 1;
      s.recent.push({ kind: 'idle-stop', at: at.toISOString() });
    },
    env,
  );
}

/** The proxy is exiting: add the bytes it moved to the stack's totals. */
export function recordProxyBytes(stack: string, bytesIn: number, bytesOut: number, env: NodeJS.ProcessEnv = process.env): Error | null {
  if (bytesIn === 0 && bytesOut === 0) return null;
  return updateStats(
    stack,
    (s) => {
      s.bytesIn += bytesIn;
      s.bytesOut += bytesOut;
    },
    env,
  );
}
