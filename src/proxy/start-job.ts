/**
 * A wake's start job and what follows it: `systemctl start` bounded by the
 * wake's deadline; the run's InvocationID recorded with the owned marker once
 * it ran; the diagnosis (diagnose.ts) when the job failed or ended with a
 * container not running (podman-compose 1.0.3 exits 0 then), and, until the
 * stack is ready, a look at its containers now and then (one that exits a
 * moment after `up` fails the wake too, instead of a wait for the start timeout).
 */
import { CommandError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Diagnose, Diagnosis } from './diagnose.js';
import { WakeFailedError } from './failures.js';
import { readOwnedMarker, writeOwnedMarker } from './owned-marker.js';
import { SHOW_TIMEOUT_MS, type ProxyUnits } from './units.js';

/** Asking why a start failed (all its calls together) gets this long at most. */
export const DIAGNOSE_TIMEOUT_MS = 60_000;

export interface StartJobContext {
  stack: string;
  units: ProxyUnits;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  diagnose: Diagnose | null;
}

/** Rejects with a known WakeFailedError when the job fails or leaves a container not running. */
export function startJob(x: StartJobContext, unit: string, deadline: number, signal: AbortSignal): Promise<void> {
  const since = Date.now();
  return x.units.start(unit, { timeoutMs: Math.max(1000, deadline - Date.now()) }).then(
    async () => {
      await recordInvocation(x, unit);
      const d = await diagnoseWithin(x, unit, deadline, signal);
      if (d) throw new WakeFailedError(`${unit} started, but ${d.cause}`, { known: true, diagnosis: d });
    },
    async (e: unknown) => {
      if (e instanceof TimeoutError) throw e;
      const d = await diagnoseWithin(x, unit, deadline, signal, since);
      // systemctl's first line says what happened ("Job for X failed because ..."); its last only where to look.
      const why = e instanceof CommandError && e.stderr ? e.stderr.split('\n')[0]! : ((e as Error)?.message ?? String(e));
      throw new WakeFailedError(d ? `${unit} failed to start: ${d.cause}` : why, { known: true, diagnosis: d, cause: e });
    },
  );
}

/**
 * After the start job: rejects once the diagnosis finds a container not
 * running; looks every few seconds (less often for long starts) while
 * `waking()` holds and the signal is not aborted; never resolves.
 */
export async function watchContainers(x: StartJobContext, unit: string, deadline: number, signal: AbortSignal, waking: () => boolean): Promise<never> {
  const since = Date.now();
  while (!signal.aborted && waking() && x.diagnose) {
    await new Promise((r) => setTimeout(r, Date.now() - since < 30_000 ? 3_000 : 15_000).unref());
    if (signal.aborted || !waking()) break;
    const d = await diagnoseWithin(x, unit, deadline, signal);
    if (d && !signal.aborted && waking()) throw new WakeFailedError(`${unit} started, but ${d.cause}`, { known: true, diagnosis: d });
  }
  return new Promise<never>(() => undefined); // the wake ended some other way
}

/** Why the unit is not running, asked within the wake's deadline; null when all runs or nobody can tell. */
async function diagnoseWithin(x: StartJobContext, unit: string, deadline: number, signal: AbortSignal, since?: number): Promise<Diagnosis | null> {
  if (!x.diagnose) return null;
  try {
    return await x.diagnose(x.stack, { unit, timeoutMs: Math.max(5000, Math.min(DIAGNOSE_TIMEOUT_MS, deadline - Date.now())), signal, since });
  } catch (e) {
    x.logger.warn(`could not tell why ${unit} is not running: ${(e as Error).message}`);
    return null;
  }
}

/** The run zoopa started, by its InvocationID, with the owned marker. */
async function recordInvocation(x: StartJobContext, unit: string): Promise<void> {
  try {
    const { invocationId } = await x.units.show(unit, { timeoutMs: SHOW_TIMEOUT_MS });
    const marker = readOwnedMarker(x.stack, x.env);
    if (marker && invocationId && marker.invocation === '') writeOwnedMarker(x.stack, unit, x.env, invocationId);
  } catch {
    /* the marker without an invocation still says "owned" */
  }
}
