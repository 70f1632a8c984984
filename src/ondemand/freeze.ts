/**
 * Freezing a stack's on-demand activation (for backups, maintenance) and
 * thawing it back to exactly the state it had.
 *
 * freeze(stack):
 *  1. reads the state of the stack's sockets (main + extra listeners) and of its
 *     proxy service from systemd (one `systemctl show`), and whether the stack's
 *     current run is zoopa's (its owned marker);
 *  2. writes that state, with why and for about how long, to
 *     %t/ondemand/<stack>.frozen.json, created exclusively (so of two concurrent
 *     freezes exactly one records; the other finds it frozen);
 *  3. stops the proxy service. The sockets are left as they are.
 *  Enablement is not touched (a reboot during a freeze comes back unfrozen, which is
 *  right: the record lives in the runtime directory and is gone too).
 *
 * While frozen the sockets keep listening: a connection activates a proxy that
 * sees the record and answers by itself (src/proxy/maintenance.ts): HTTP gets a
 * 503 maintenance page with Retry-After, anything else is closed at once.
 * Nothing wakes the stack, and nginx never answers a bare 502.
 *
 * thaw(stack): stops that maintenance proxy, removes the record, then starts what
 * was running before (the sockets, the proxy service), so every unit is as it
 * was. A maintenance proxy activated in between exits at its next connection
 * (it re-checks the record). When the stack's run was zoopa's at the freeze, the
 * owned marker is handed on to the run that is up now (a backup restarts the
 * stack: a new InvocationID), so the stack is still stopped at idle. Both are
 * idempotent and work from any process (the record is the only state).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { UnitInfo, UnitManager } from '../core/ports.js';
import { StateError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { checkStackArgument, ondemandListenerPrefix, ondemandListenerSocketUnit, ondemandServiceUnit, ondemandSocketUnit } from '../names.js';
import { ondemandRuntimeDir, userUnitDir } from '../paths.js';
import { ownsRun, readOwnedMarker, writeOwnedMarker } from '../proxy/owned-marker.js';
import { DEFAULT_DIRECTORY_MODE } from './config.js';
import { freezeRecordExists, freezeRecordPath, readFreezeRecord, type FreezeReason, type FreezeRecord, type FrozenUnit } from './freeze-record.js';

export { readFreezeRecord, type FreezeReason, type FreezeRecord, type FrozenUnit } from './freeze-record.js';

export interface FreezeDeps {
  units: UnitManager;
  env?: NodeJS.ProcessEnv;
  /** Extra listener names from zoopa.yaml; installed extra sockets are found on disk too. */
  listeners?: readonly string[];
  log?: Logger;
  now?: () => Date;
}

/** Why a freeze is made (the maintenance page tells visitors). */
export interface FreezeWhy {
  reason?: FreezeReason;
  /** About how long it will last, seconds (Retry-After of the maintenance page). */
  expectedSeconds?: number | undefined;
}

export interface FreezeResult {
  stack: string;
  /** It was frozen already (by this or another process): nothing was done. */
  already: boolean;
  record: FreezeRecord;
  /** Units this call stopped, in order. */
  stopped: string[];
}

export interface ThawResult {
  stack: string;
  /** There was a freeze record. */
  wasFrozen: boolean;
  /** Units this call started, in order. */
  started: string[];
  /** Units this call stopped (the maintenance proxy), in order. */
  stopped: string[];
  record: FreezeRecord | null;
  /** Why the record could not be read, when it could not (the sockets were started instead). */
  recordError?: string;
}

/** A freeze record exists (freeze-record.ts's check, under the name the CLI uses). */
export const isFrozen = freezeRecordExists;

/** Extra listener sockets of a stack: from config, plus installed `zoopa-ondemand@<stack>.<name>.socket` files. */
export function listenerSockets(stack: string, env: NodeJS.ProcessEnv, listeners: readonly string[] = []): string[] {
  const names = new Set(listeners.map((l) => ondemandListenerSocketUnit(stack, l)));
  const prefix = ondemandListenerPrefix(stack);
  let files: string[] = [];
  try {
    files = fs.readdirSync(userUnitDir(env));
  } catch {
    /* no unit folder: none installed */
  }
  for (const f of files) if (f.startsWith(prefix) && f.endsWith('.socket') && f !== ondemandSocketUnit(stack)) names.add(f);
  return [...names].sort();
}

const RUNNING = new Set(['active', 'activating', 'reloading']);

function frozenUnit(info: UnitInfo | undefined, name: string): FrozenUnit {
  return {
    name,
    activeState: info?.activeState ?? 'inactive',
    unitFileState: info?.unitFileState ?? '',
    loadState: info?.loadState ?? 'not-found',
  };
}

function ensureRuntimeDir(env: NodeJS.ProcessEnv): void {
  const dir = ondemandRuntimeDir(env);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: parseInt(DEFAULT_DIRECTORY_MODE, 8) });
}

/**
 * Write the record only if none exists (atomic: a complete file appears, or
 * nothing). The temp file has an unpredictable name and is created exclusively
 * (`wx`): nothing planted in the folder is followed. Mode 0600.
 */
function createRecord(file: string, record: FreezeRecord): boolean {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(8).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

async function stopIfRunning(units: UnitManager, names: readonly string[], stopped: string[]): Promise<void> {
  if (names.length === 0) return;
  const info = await units.show(names);
  for (const n of names) {
    const i = info.get(n);
    if (!i || i.loadState === 'not-found') continue;
    if (RUNNING.has(i.activeState) || i.activeState === 'deactivating') {
      await units.stop(n);
      stopped.push(n);
    }
  }
}

/** The stack's current run is zoopa's (its owned marker names this run): the unit, or undefined. */
async function ownedRun(stack: string, units: UnitManager, env: NodeJS.ProcessEnv): Promise<{ unit: string } | undefined> {
  const marker = readOwnedMarker(stack, env);
  if (!marker || !marker.unit) return undefined;
  const info = (await units.show([marker.unit], ['InvocationID'])).get(marker.unit);
  if (!info || !(RUNNING.has(info.activeState) || info.activeState === 'deactivating')) return undefined;
  return ownsRun(marker, info.props.InvocationID ?? '') ? { unit: marker.unit } : undefined;
}

/**
 * Stop a stack's on-demand proxy, recording what to restore; its sockets go on
 * listening and answer with the maintenance page. Idempotent.
 */
export async function freeze(stack: string, deps: FreezeDeps, why: FreezeWhy = {}): Promise<FreezeResult> {
  checkStackArgument(stack);
  const env = deps.env ?? process.env;
  const file = freezeRecordPath(stack, env);
  const existing = readFreezeRecord(stack, env);
  if (existing) return { stack, already: true, record: existing, stopped: [] };

  const main = ondemandSocketUnit(stack);
  const sockets = [main, ...listenerSockets(stack, env, deps.listeners)];
  const service = ondemandServiceUnit(stack);
  const info = await deps.units.show([...sockets, service]);
  const owned = await ownedRun(stack, deps.units, env);
  const expected = why.expectedSeconds;
  const record: FreezeRecord = {
    version: 1,
    stack,
    frozenAt: (deps.now?.() ?? new Date()).toISOString(),
    pid: process.pid,
    sockets: sockets.map((s) => frozenUnit(info.get(s), s)),
    service: frozenUnit(info.get(service), service),
    reason: why.reason ?? 'by hand',
    ...(expected !== undefined && Number.isFinite(expected) && expected > 0 ? { expectedSeconds: Math.round(expected) } : {}),
    ...(owned ? { owned } : {}),
  };
  ensureRuntimeDir(env);
  if (!createRecord(file, record)) {
    // Another process froze it between our check and now.
    return { stack, already: true, record: readFreezeRecord(stack, env) ?? record, stopped: [] };
  }
  const stopped: string[] = [];
  try {
    // The proxy: the record exists, so any proxy the sockets activate from now on
    // answers with the maintenance page; this one may be proxying to the stack.
    await stopIfRunning(deps.units, [service], stopped);
  } catch (e) {
    // Put back what we stopped, drop the record, report.
    fs.rmSync(file, { force: true });
    await restore(record, deps.units, [], []).catch(() => undefined);
    throw new StateError('ZOOPA_FREEZE_FAILED', `could not freeze ${stack}: ${(e as Error).message}`, { cause: e, hint: 'its units were put back as they were; see "zoopa status"' });
  }
  const listening = record.sockets.filter((s) => RUNNING.has(s.activeState)).length > 0;
  deps.log?.info(
    `${stack}: frozen (${stopped.length ? `stopped ${stopped.join(', ')}` : 'no proxy was running'}; ${listening ? 'its sockets answer with the maintenance page' : 'its sockets were not listening'})`,
  );
  return { stack, already: false, record, stopped };
}

/**
 * Start what the record says was running and is not now; stop the proxy when it
 * runs but did not before (a maintenance proxy activated during the thaw).
 */
async function restore(record: FreezeRecord, units: UnitManager, started: string[], stopped: string[]): Promise<void> {
  const all = [...record.sockets, record.service].filter((u) => u.loadState !== 'not-found');
  if (all.length === 0) return;
  const now = await units.show(all.map((u) => u.name));
  const running = (name: string) => RUNNING.has(now.get(name)?.activeState ?? 'inactive');
  for (const s of record.sockets) {
    if (s.loadState !== 'not-found' && RUNNING.has(s.activeState) && !running(s.name)) {
      await units.start(s.name);
      started.push(s.name);
    }
  }
  const svc = record.service;
  if (svc.loadState === 'not-found') return;
  if (RUNNING.has(svc.activeState)) {
    if (!running(svc.name)) {
      await units.start(svc.name);
      started.push(svc.name);
    }
  } else if (running(svc.name)) {
    await units.stop(svc.name);
    stopped.push(svc.name);
  }
}

/** Hand the owned marker on to the stack's run that is up now (see the header). */
async function handOnOwnership(stack: string, owned: { unit: string }, units: UnitManager, env: NodeJS.ProcessEnv, log: Logger | undefined): Promise<void> {
  const info = (await units.show([owned.unit], ['InvocationID'])).get(owned.unit);
  const invocation = info?.props.InvocationID ?? '';
  if (!info || !RUNNING.has(info.activeState) || invocation === '') return;
  const marker = readOwnedMarker(stack, env);
  if (marker && marker.invocation === invocation) return;
  writeOwnedMarker(stack, owned.unit, env, invocation);
  log?.info(`${stack}: ${owned.unit} was started by zoopa before the freeze: it is still stopped at idle`);
}

/** Restore what freeze() recorded and remove the record. Idempotent: a stack that is not frozen is left alone. */
export async function thaw(stack: string, deps: FreezeDeps): Promise<ThawResult> {
  checkStackArgument(stack);
  const env = deps.env ?? process.env;
  const file = freezeRecordPath(stack, env);
  let record = readFreezeRecord(stack, env);
  if (!record) return { stack, wasFrozen: false, started: [], stopped: [], record: null };
  if (record.unreadable) {
    // Nothing says what ran before the freeze: restart the sockets (installed
    // ones), the state in which nothing is lost (a connection wakes the stack).
    (deps.log ?? createLogger()).error(
      `${stack}: the freeze record ${file} ${record.unreadable}; restarting its sockets instead of restoring the recorded state`,
    );
    const names = [ondemandSocketUnit(stack), ...listenerSockets(stack, env, deps.listeners)];
    const info = await deps.units.show(names);
    const sockets = names.map((n) => frozenUnit(info.get(n), n)).filter((u) => u.loadState !== 'not-found').map((u) => ({ ...u, activeState: 'active' }));
    record = { ...record, sockets };
  }
  const started: string[] = [];
  const stopped: string[] = [];
  let removed = false;
  try {
    // The maintenance proxy goes first (the record still exists: one activated
    // meanwhile answers with the maintenance page too); then the freeze ends.
    await stopIfRunning(deps.units, [record.service.name], stopped);
    fs.rmSync(file, { force: true });
    removed = true;
    await restore(record, deps.units, started, stopped);
    if (record.owned) await handOnOwnership(stack, record.owned, deps.units, env, deps.log);
  } catch (e) {
    if (removed && !record.unreadable) createRecord(file, record); // a thaw run again retries
    throw new StateError('ZOOPA_THAW_FAILED', `could not thaw ${stack}: ${(e as Error).message}`, {
      cause: e,
      hint: `the freeze record ${file} is kept; fix the cause and run "zoopa thaw ${stack}" again`,
    });
  }
  deps.log?.info(`${stack}: thawed (${started.length ? `started ${started.join(', ')}` : 'nothing to start: it was as before the freeze'})`);
  return { stack, wasFrozen: true, started, stopped: [...new Set(stopped)], record, ...(record.unreadable ? { recordError: record.unreadable } : {}) };
}
/** Forget a freeze without restoring anything (zoopa ondemand disable). */
export function dropFreeze(stack: string, env: NodeJS.ProcessEnv = process.env): boolean {
  checkStackArgument(stack);
  const file = freezeRecordPath(stack, env);
  const had = fs.existsSync(file);
  fs.rmSync(file, { force: true });
  return had;
}
