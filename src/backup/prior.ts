/**
 * A stack's state before a backup touches it (read only: one systemctl show, one
 * podman ps): its unit, its running containers, and its on-demand socket when the
 * stack may be on demand (see freezeMode in freeze.ts). Used for the stack itself
 * (run.ts, the dry run) and for the stacks that require it (dependents.ts).
 */
import type { ContainerEngine, UnitManager } from '../core/ports.js';
import { bounded, callTimeouts, type CallTimeouts } from './bounded.js';
import type { FreezeMode } from './freeze.js';
import type { PriorState } from './journal.js';
import { runningNames } from './put-back.js';

export interface PriorTarget {
  unit: string;
  project: string;
  socketUnit: string;
  freeze: FreezeMode;
}

/** Read the stack's current state (read-only: systemctl show, podman ps). */
export async function readPrior(sp: PriorTarget, deps: { units: UnitManager; containers: ContainerEngine; calls?: CallTimeouts | undefined }): Promise<PriorState> {
  const calls = deps.calls ?? callTimeouts();
  const showSocket = sp.freeze !== 'no';
  const unitsToShow = showSocket ? [sp.unit, sp.socketUnit] : [sp.unit];
  const shown = await bounded((c) => deps.units.show(unitsToShow, [], c), calls.systemctlMs, 'systemctl show');
  const u = shown.get(sp.unit);
  const running = await runningNames(deps.containers, sp.project, calls);
  const sock = showSocket ? shown.get(sp.socketUnit) : undefined;
  let socket: PriorState['socket'] = null;
  if (sock && sock.loadState !== 'not-found') {
    const active = sock.activeState === 'active';
    const enabled = /^(enabled|linked)/.test(sock.unitFileState);
    // A stack only `auto` could freeze and whose socket is neither enabled nor active is not on demand.
    if (sp.freeze === 'yes' || active || enabled) socket = { unit: sp.socketUnit, active, ...(enabled ? { enabled } : {}) };
  }
  return {
    unitActive: u?.activeState === 'active' || u?.activeState === 'reloading',
    unitState: u ? (u.loadState === 'not-found' ? 'not-found' : u.activeState) : 'unknown',
    containers: running,
    socket,
  };
}
