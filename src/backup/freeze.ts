/**
 * Freezing a stack's on-demand activation for the length of its backup, so a
 * connection during the run does not wake the stack.
 *
 * The on-demand feature owns how (src/ondemand/freeze.ts: stop the proxy, record
 * the state in %t/ondemand/<stack>.frozen.json, restore exactly that on thaw;
 * meanwhile the sockets answer with a maintenance page). This module declares
 * what the backup needs and adapts it:
 *  - a stack the user had frozen already stays frozen afterwards (freeze says so
 *    and the runner does not thaw it);
 *  - a repair after SIGKILL thaws only a freeze made by the killed run's pid;
 *  - the maintenance page says a backup (or restore) runs, and about how long
 *    it takes: `expectedRunSeconds`, from the stack's previous successful runs.
 */
import type { UnitManager } from '../core/ports.js';
import { freeze as ondemandFreeze, readFreezeRecord, thaw as ondemandThaw, type FreezeWhy } from '../ondemand/freeze.js';
import { ondemandSocketUnit } from '../names.js';
import { ondemandEnvFile } from '../paths.js';
import type { Stack } from '../stacks/discover.js';
import type { PriorState } from './journal.js';
import { readStatus } from './status.js';
import fs from 'node:fs';

export interface OndemandFreezer {
  /** Freeze; true when this call froze it, false when it was frozen already (leave it so). */
  freeze(stack: string, env: NodeJS.ProcessEnv, why?: FreezeWhy): Promise<boolean>;
  /** Undo our freeze. With `owner`, only a freeze recorded by that pid is thawed. */
  thaw(stack: string, env: NodeJS.ProcessEnv, owner?: number): Promise<void>;
}

export class OndemandModuleFreezer implements OndemandFreezer {
  constructor(
    private readonly units: UnitManager,
    /** Extra listener names per stack (zoopa.yaml ondemand.listeners). */
    private readonly listeners: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {}

  async freeze(stack: string, env: NodeJS.ProcessEnv, why?: FreezeWhy): Promise<boolean> {
    const r = await ondemandFreeze(stack, { units: this.units, env, listeners: this.listeners.get(stack) ?? [] }, why);
    return !r.already;
  }

  async thaw(stack: string, env: NodeJS.ProcessEnv, owner?: number): Promise<void> {
    if (owner !== undefined) {
      const rec = readFreezeRecord(stack, env);
      if (!rec || (rec.pid !== 0 && rec.pid !== owner)) return; // not frozen, or frozen by someone else
    }
    await ondemandThaw(stack, { units: this.units, env });
  }
}

/** The freezer for a project: listeners from each stack's ondemand section. */
export function loadFreezer(units: UnitManager, stacks: ReadonlyArray<{ name: string; config: { ondemand?: { listeners?: Array<{ name: string }> | undefined } | undefined } }> = []): OndemandFreezer {
  return new OndemandModuleFreezer(units, new Map(stacks.map((s) => [s.name, (s.config.ondemand?.listeners ?? []).map((l) => l.name)])));
}

/** How many of a stack's last successful runs the expected duration is taken from. */
const EXPECTED_FROM_RUNS = 5;

/**
 * About how long a run of this stack takes, seconds: the median of its last
 * successful runs in the status file (src/backup/status.ts), or undefined when
 * there are none (or the file cannot be read: the page then says no time).
 */
export function expectedRunSeconds(stateDir: string, stack: string): number | undefined {
  let history;
  try {
    const st = readStatus(stateDir);
    history = st.history ?? (st.stacks[stack] ? [st.stacks[stack]!] : []);
  } catch {
    return undefined;
  }
  const d = history
    .filter((h) => h.stack === stack && h.result === 'ok' && Number.isFinite(h.durationSec) && h.durationSec > 0)
    .slice(-EXPECTED_FROM_RUNS)
    .map((h) => h.durationSec)
    .sort((a, b) => a - b);
  return d.length ? d[Math.floor(d.length / 2)] : undefined;
}

/** What the maintenance page of a freeze for `stack`'s backup or restore says: a restore's length is unknown, a backup's about that of its previous runs. */
export function freezeWhy(stateDir: string, stack: string, what: 'backup' | 'restore'): FreezeWhy {
  return what === 'restore' ? { reason: 'restore' } : { reason: 'backup', expectedSeconds: expectedRunSeconds(stateDir, stack) };
}

export type FreezeMode = 'yes' | 'no' | 'auto';

/**
 * Is the stack on demand, as far as files tell? A stack is on demand when its
 * socket unit is enabled or active (known only by asking systemd: `auto`) or its
 * env file `~/.config/zoopa-ondemand/<stack>.env` exists (the original's
 * hand-written setup), whatever zoopa.yaml says; `freeze: false` opts out.
 */
export function freezeMode(stack: Pick<Stack, 'name' | 'config'>, env: NodeJS.ProcessEnv): { mode: FreezeMode; reason: string } {
  const explicit = stack.config.backup?.freeze;
  if (explicit === false) return { mode: 'no', reason: 'backup.freeze: false in zoopa.yaml' };
  if (explicit === true) return { mode: 'yes', reason: 'backup.freeze: true in zoopa.yaml' };
  if (stack.config.ondemand !== undefined) return { mode: 'yes', reason: 'on demand (zoopa.yaml)' };
  const file = ondemandEnvFile(stack.name, env);
  if (fs.existsSync(file)) return { mode: 'yes', reason: `on demand (${file} exists)` };
  return { mode: 'auto', reason: `if ${ondemandSocketUnit(stack.name)} is enabled or active when the run starts` };
}

/** Will this run freeze the stack? `prior` (its socket's state) decides `auto`. */
export function willFreeze(sp: { freeze: FreezeMode }, prior: Pick<PriorState, 'socket'> | undefined): boolean {
  if (sp.freeze !== 'auto') return sp.freeze === 'yes';
  return Boolean(prior?.socket && (prior.socket.active || prior.socket.enabled));
}
