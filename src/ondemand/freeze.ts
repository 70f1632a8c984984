/**
 * Freezing a stack's on-demand activation (for backups, maintenance) and
 * thawing it back to exactly the state it had.
 *
 * freeze(stack):
 *  1. reads the state of the stack's sockets (main + extra listeners) and of its
 *     proxy service from systemd (one `systemctl show`),
 *  2. writes that state to %t/ondemand/<stack>.frozen.json, created exclusively
 *     (so of two concurrent freezes exactly one records; the other finds it frozen),
 *  3. stops the sockets, then the proxy service.
 *  Enablement is not touched (a reboot during a freeze comes back unfrozen, which is
 *  right: the record lives in the runtime directory and is gone too).
 *
 * While frozen nothing listens: the socket files are removed on stop
 * (RemoveOnStop=yes), so a client gets ENOENT at once and nginx answers 502 Bad
 * Gateway immediately. Nothing is queued and nothing wakes the stack.
 *
 * thaw(stack): starts the sockets that were active, then the proxy service if it was
 * running, and removes the record. Both are idempotent and work from any process
 * (the record is the only state). What happens to the stack itself is not changed
 * here: a proxy that is stopped keeps its "zoopa started the stack" marker, so after a
 * thaw the next proxy still stops the stack at idle.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { UnitInfo, UnitManager } from '../core/ports.js';
import { StateError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { checkStackArgument, ondemandListenerPrefix, ondemandListenerSocketUnit, ondemandServiceUnit, ondemandSocketUnit } from '../names.js';
import { ondemandRuntimeDir, userUnitDir } from '../paths.js';
import { DEFAULT_DIRECTORY_MODE } from './config.js';
import { freezeRecordPath } from './freeze-record.js';

export interface FreezeDeps {
  units: UnitManager;
  env?: NodeJS.ProcessEnv;
  /** Extra listener names from zoopa.yaml; installed extra sockets are found on disk too. */
  listeners?: readonly string[];
  log?: Logger;
  now?: () => Date;
}

export interface FrozenUnit {
  name: string;
  /** systemd ActiveState at freeze time. */
  activeState: string;
  /** systemd UnitFileState at freeze time (not changed by freeze; recorded for people). */
  unitFileState: string;
  loadState: string;
}

export interface FreezeRecord {
  version: 1;
  stack: string;
  frozenAt: string;
  pid: number;
  sockets: FrozenUnit[];
  service: FrozenUnit;
  /**
   * Set (never written) when the record on disk cannot be read or parsed: the
   * stack counts as frozen, and thaw falls back to the safe state, its sockets
   * started (the next connection wakes the stack as usual).
   */
  unreadable?: string;
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
  record: FreezeRecord | null;
  /** Why the record could not be read, when it could not (the sockets were started instead). */
  recordError?: string;
}

/**
 * The freeze record, or undefined when the stack is not frozen. Never throws on a
 * bad file: an unreadable, torn or foreign record comes back with `unreadable`
 * set and nothing recorded (thaw then restarts the sockets).
 */
export function readFreezeRecord(stack: string, env: NodeJS.ProcessEnv = process.env): FreezeRecord | undefined {
  const file = freezeRecordPath(stack, env);
  const unreadable = (why: string): FreezeRecord => ({
    version: 1,
    stack,
    frozenAt: '',
    pid: 0,
    sockets: [],
    service: { name: ondemandServiceUnit(stack), activeState: 'inactive', unitFileState: '', loadState: '' },
    unreadable: why,
  });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    return unreadable(`cannot be read: ${code ?? (e as Error).message}`);
  }
  try {
    const r = JSON.parse(text) as FreezeRecord;
    if (r && r.version === 1 && r.stack === stack && Array.isArray(r.sockets) && r.service) return r;
    return unreadable('is not a freeze record of this stack');
  } catch (e) {
    return unreadable(`is not valid JSON (${(e as Error).message})`);
  }
}

export function isFrozen(stack: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    fs.accessSync(freezeRecordPath(stack, env));
    return true;
  } catch {
    return false;
  }
}

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

/** Stop a stack's on-demand activation, recording what to restore. Idempotent. */
export async function freeze(stack: string, deps: FreezeDeps): Promise<FreezeResult> {
  checkStackArgument(stack);
  const env = deps.env ?? process.env;
  const file = freezeRecordPath(stack, env);
  const existing = fs.existsSync(file) ? readFreezeRecord(stack, env) : undefined;
  if (existing) return { stack, already: true, record: existing, stopped: [] };

  const main = ondemandSocketUnit(stack);
  const sockets = [main, ...listenerSockets(stack, env, deps.listeners)];
  const service = ondemandServiceUnit(stack);
  const info = await deps.units.show([...sockets, service]);
  const record: FreezeRecord = {
    version: 1,
    stack,
    frozenAt: (deps.now?.() ?? new Date()).toISOString(),
    pid: process.pid,
    sockets: sockets.map((s) => frozenUnit(info.get(s), s)),
    service: frozenUnit(info.get(service), service),
  };
  ensureRuntimeDir(env);
  if (!createRecord(file, record)) {
    // Another process froze it between our check and now.
    return { stack, already: true, record: readFreezeRecord(stack, env) ?? record, stopped: [] };
  }
  const stopped: string[] = [];
  try {
    // Sockets first, so nothing re-activates the proxy we stop next. Extra
    // sockets are PartOf the main one; stopping them by name too covers a main
    // socket that was stopped by hand while an extra one kept listening.
    await stopIfRunning(deps.units, sockets, stopped);
    await stopIfRunning(deps.units, [service], stopped);
  } catch (e) {
    // Put back what we stopped, drop the record, report.
    await restore(record, deps.units, []).catch(() => undefined);
    fs.rmSync(file, { force: true });
    throw new StateError('ZOOPA_FREEZE_FAILED', `could not freeze ${stack}: ${(e as Error).message}`, { cause: e, hint: 'its units were put back as they were; see "zoopa status"' });
  }
  deps.log?.info(`${stack}: frozen (${stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing was running'})`);
  return { stack, already: false, record, stopped };
}

async function restore(record: FreezeRecord, units: UnitManager, started: string[]): Promise<void> {
  for (const s of record.sockets) {
    if (s.loadState !== 'not-found' && RUNNING.has(s.activeState)) {
      await units.start(s.name);
      started.push(s.name);
    }
  }
  const svc = record.service;
  if (svc.loadState !== 'not-found' && RUNNING.has(svc.activeState)) {
    await units.start(svc.name);
    started.push(svc.name);
  }
}

/** Restore what freeze() recorded and remove the record. Idempotent: a stack that is not frozen is left alone. */
export async function thaw(stack: string, deps: FreezeDeps): Promise<ThawResult> {
  checkStackArgument(stack);
  const env = deps.env ?? process.env;
  let record = readFreezeRecord(stack, env);
  if (!record) return { stack, wasFrozen: false, started: [], record: null };
  if (record.unreadable) {
    // Nothing says what ran before the freeze: restart the sockets (installed
    // ones), the state in which nothing is lost (a connection wakes the stack).
    (deps.log ?? createLogger()).error(
      `${stack}: the freeze record ${freezeRecordPath(stack, env)} ${record.unreadable}; restarting its sockets instead of restoring the recorded state`,
    );
    const names = [ondemandSocketUnit(stack), ...listenerSockets(stack, env, deps.listeners)];
    const info = await deps.units.show(names);
    const sockets = names.map((n) => frozenUnit(info.get(n), n)).filter((u) => u.loadState !== 'not-found').map((u) => ({ ...u, activeState: 'active' }));
    record = { ...record, sockets };
  }
  const started: string[] = [];
  try {
    await restore(record, deps.units, started);
  } catch (e) {
    throw new StateError('ZOOPA_THAW_FAILED', `could not thaw ${stack}: ${(e as Error).message}`, {
      cause: e,
      hint: `the freeze record ${freezeRecordPath(stack, env)} is kept; fix the cause and run "zoopa thaw ${stack}" again`,
    });
  }
  fs.rmSync(freezeRecordPath(stack, env), { force: true });
  deps.log?.info(`${stack}: thawed (${started.length ? `started ${started.join(', ')}` : 'nothing was running before the freeze'})`);
  return { stack, wasFrozen: true, started, record, ...(record.unreadable ? { recordError: record.unreadable } : {}) };
}

/** Forget a freeze without restoring anything (zoopa ondemand disable). */
export function dropFreeze(stack: string, env: NodeJS.ProcessEnv = process.env): boolean {
  checkStackArgument(stack);
  const file = freezeRecordPath(stack, env);
  const had = fs.existsSync(file);
  fs.rmSync(file, { force: true });
  return had;
}
