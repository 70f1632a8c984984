/**
 * The record `zoopa freeze` keeps of a stack's prior state:
 * %t/ondemand/<stack>.frozen.json. Kept apart from freeze.ts (and its imports)
 * so the proxy can check and read it cheaply: while it exists the proxy answers
 * every connection with the maintenance page (src/proxy/maintenance.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ondemandServiceUnit } from '../names.js';
import { ondemandRuntimeDir } from '../paths.js';

export interface FrozenUnit {
  name: string;
  /** systemd ActiveState at freeze time. */
  activeState: string;
  /** systemd UnitFileState at freeze time (not changed by freeze; recorded for people). */
  unitFileState: string;
  loadState: string;
}

/** Why a stack is frozen: `backup`, `restore`, or `zoopa freeze` by hand. */
export type FreezeReason = 'backup' | 'restore' | 'by hand';

export interface FreezeRecord {
  version: 1;
  stack: string;
  frozenAt: string;
  pid: number;
  sockets: FrozenUnit[];
  service: FrozenUnit;
  /** Why (the maintenance page says so); absent in records of older versions. */
  reason?: FreezeReason;
  /** About how long the freeze should last, seconds (a backup: its previous runs), when known. */
  expectedSeconds?: number;
  /**
   * The stack's run was zoopa's (its owned marker matched the unit's InvocationID)
   * when frozen: thaw hands the marker on to the run that is up then (a backup
   * restarts the stack, a new invocation), so the stack is still stopped at idle.
   */
  owned?: { unit: string };
  /**
   * Set (never written) when the record on disk cannot be read or parsed: the
   * stack counts as frozen, and thaw falls back to the safe state, its sockets
   * started (the next connection wakes the stack as usual).
   */
  unreadable?: string;
}

export function freezeRecordPath(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.frozen.json`);
}

/** A freeze record exists: activation is meant to be off (a backup may be running). */
export function freezeRecordExists(stack: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return fs.existsSync(freezeRecordPath(stack, env));
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
