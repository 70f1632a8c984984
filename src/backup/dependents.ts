/**
 * Backing up a stack that other stacks require (`stacks.<name>.requires`, see
 * src/stacks/requires.ts): its dependents are stopped first and put back as
 * they were, each with its own journal entry, so a killed run is repaired like
 * any other (repairFromJournal).
 *
 * The runner's own steps for the stack are unchanged; the chain lives in the
 * UnitManager the runner is given for that stack (`chainUnits`):
 *  - stopping the stack first reads and journals each dependent's state,
 *    freezes the on-demand ones (so a request cannot wake them, and through
 *    Requires= the stack, during the backup), and stops them, the furthest first;
 *  - starting the stack starts again the dependents that were running, the
 *    nearest first: systemd starts the stack with them in the same transaction
 *    (Requires=/After=), which also keeps a `stop_when_unneeded` stack from
 *    being stopped again as unneeded; with none to start, the stack alone.
 * `putBackDependents` then thaws them, starts any still stopped that were
 * running (when the stack itself stayed stopped, or failed), and removes their
 * journals; what it cannot put back keeps its journal.
 */
import type { ContainerEngine, UnitManager } from '../core/ports.js';
import { ondemandSocketUnit } from '../names.js';
import type { Stack } from '../stacks/discover.js';
import { dependentsToStop } from '../stacks/requires.js';
import type { OndemandFreezer } from './freeze.js';
import { backUp, journalDir, JournalStore, putBack, shouldStart, waitForContainers, type JournalEntry, type PriorState } from './journal.js';

export interface DependentPlan {
  name: string;
  dir: string;
  unit: string;
  /** Compose project whose containers are waited for. */
  project: string;
  /** The stack on the chain it requires directly (for messages). */
  requires: string;
  stopTimeoutSec: number;
  startTimeoutSec: number;
  /** Freeze its on-demand activation for the length of the backup. */
  freeze: boolean;
  socketUnit: string;
}

/** The stacks requiring `stack`, directly or through others, in the order they are stopped (furthest first). */
export function dependentPlans(stacks: readonly Stack[], stack: Stack): DependentPlan[] {
  const chain = dependentsToStop(stacks, stack.name);
  const onChain = new Set([stack.name, ...chain]);
  return chain.map((name) => {
    const d = stacks.find((s) => s.name === name)!;
    return {
      name,
      dir: d.dir,
      unit: d.config.backup?.unit ?? `${name}-stack.service`,
      project: d.config.backup?.project ?? name,
      requires: d.config.requires.find((r) => onChain.has(r)) ?? stack.name,
      stopTimeoutSec: d.config.backup?.stop_timeout ?? d.config.stop_timeout,
      startTimeoutSec: d.config.backup?.start_timeout ?? d.config.start_timeout,
      freeze: d.config.backup?.freeze ?? d.config.ondemand !== undefined,
      socketUnit: ondemandSocketUnit(name),
    };
  });
}

/** Lines for `backup --dry-run`: what happens to the dependents, around the stack's own stop and start. */
export function dependentSteps(stack: string, unit: string, dependents: readonly DependentPlan[]): { beforeStop: string[]; restore: string } {
  const names = dependents.map((d) => `${d.name} (requires ${d.requires})`).join(', ');
  const frozen = dependents.filter((d) => d.freeze).map((d) => d.socketUnit);
  return {
    beforeStop: [
      `stacks that require ${stack}: ${names}; write each one's prior state to its own journal`,
      ...(frozen.length ? [`freeze their on-demand activation: ${frozen.join(', ')}`] : []),
      `stop them first, the furthest first: ${dependents.map((d) => d.unit).join(', ')}; wait until their containers are gone`,
    ],
    restore: `start again those of ${dependents.map((d) => d.name).join(', ')} that were running (systemd starts ${unit} with them), else ${unit} alone; thaw them`,
  };
}

export interface ChainDeps {
  units: UnitManager;
  /** Sees the stack's containers (and its dependents': the same manager, see requires.ts). */
  containers: ContainerEngine;
  freezer: OndemandFreezer;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  pollMs?: number | undefined;
  /** Aborts the waits (SIGINT/SIGTERM of the run); what was changed is put back afterwards. */
  signal?: AbortSignal | undefined;
  log: (line: string) => void;
  warn: (line: string) => void;
}

/** The chain's state while the stack is backed up. */
export interface Chain {
  units: UnitManager;
  entries: JournalEntry[];
}

async function readState(d: DependentPlan, deps: ChainDeps): Promise<PriorState> {
  const shown = await deps.units.show(d.freeze ? [d.unit, d.socketUnit] : [d.unit]);
  const u = shown.get(d.unit);
  const sock = d.freeze ? shown.get(d.socketUnit) : undefined;
  return {
    unitActive: u?.activeState === 'active' || u?.activeState === 'reloading',
    unitState: u ? (u.loadState === 'not-found' ? 'not-found' : u.activeState) : 'unknown',
    containers: ((await deps.containers.runningByProject()).get(d.project) ?? []).map((c) => c.name).sort(),
    socket: sock ? { unit: d.socketUnit, active: sock.activeState === 'active' } : null,
  };
}

/** A UnitManager that stops the stack's dependents before it and starts them with it (see the top of this file). */
export function chainUnits(stackUnit: string, dependents: readonly DependentPlan[], deps: ChainDeps): Chain {
  const store = new JournalStore(journalDir(deps.stateDir));
  const entries: JournalEntry[] = [];
  const inner = deps.units;
  const save = (e: JournalEntry) => store.write(e);

  const stopDependents = async () => {
    for (const d of dependents) {
      if (entries.some((e) => e.stack === d.name)) continue; // a second stop (a retry) finds them journaled
      const prior = await readState(d, deps);
      const entry: JournalEntry = {
        version: 1,
        stack: d.name,
        stackDir: d.dir,
        unit: d.unit,
        project: d.project,
        pid: process.pid,
        startedAt: new Date().toISOString(),
        restore: 'previous',
        startTimeoutSec: d.startTimeoutSec,
        prior,
        frozen: false,
        stopped: false,
        pendingUndo: [],
      };
      save(entry);
      entries.push(entry);
      deps.log(`${d.name} requires ${d.requires}: prior state ${d.unit} ${prior.unitState}; running: ${prior.containers.join(', ') || 'none'}`);
    }
    for (const [i, d] of dependents.entries()) {
      const entry = entries[i]!;
      if (!d.freeze || entry.frozen) continue;
      deps.log(`freezing on-demand activation of ${d.name} (${d.socketUnit})`);
      entry.frozen = true; // before the call: a kill during it still thaws
      save(entry);
      if (!(await deps.freezer.freeze(d.name, deps.env))) {
        deps.log(`on-demand activation of ${d.name} was frozen already: it stays frozen afterwards`);
        entry.frozen = false;
        save(entry);
      }
    }
    for (const [i, d] of dependents.entries()) {
      const entry = entries[i]!;
      deps.log(`stopping ${d.unit} first (it requires ${d.requires})`);
      entry.stopped = true;
      save(entry);
      await inner.stop(d.unit);
      const gone = await waitForContainers(deps.containers, d.project, (r) => r.length === 0, { timeoutSec: d.stopTimeoutSec, pollMs: deps.pollMs, signal: deps.signal });
      if (!gone.ok) deps.warn(`containers of ${d.project} still running after ${d.stopTimeoutSec}s: ${gone.running.join(', ')}; going on`);
    }
  };

  const startWithDependents = async () => {
    // The nearest first: each start brings up what it requires, the stack included.
    const again = [...entries].reverse().filter((e) => e.stopped && shouldStart(e));
    if (!again.length) {
      await inner.start(stackUnit);
    } else {
      for (const e of again) {
        deps.log(`starting ${e.unit} again (was running: ${e.prior.containers.join(', ') || e.prior.unitState}); systemd starts ${stackUnit} first`);
        await inner.start(e.unit);
        const w = await waitForContainers(deps.containers, e.project, backUp(e.prior.containers), { timeoutSec: e.startTimeoutSec, pollMs: deps.pollMs });
        if (!w.ok) throw new Error(`containers of ${e.project} not back within ${e.startTimeoutSec}s (running: ${w.running.join(', ') || 'none'})`);
        e.stopped = false;
        save(e);
      }
    }
  };

  const units: UnitManager = {
    show: (u, extra, call) => inner.show(u, extra, call),
    list: (p, call) => inner.list(p, call),
    stop: async (unit, call) => {
      if (unit === stackUnit) await stopDependents();
      await inner.stop(unit, call);
    },
    start: async (unit, call) => (unit === stackUnit ? startWithDependents() : inner.start(unit, call)),
    restart: (unit, call) => inner.restart(unit, call),
    enable: (u, o, call) => inner.enable(u, o, call),
    disable: (u, o, call) => inner.disable(u, o, call),
    daemonReload: (call) => inner.daemonReload(call),
    resetFailed: (unit, call) => inner.resetFailed(unit, call),
    logs: (unit, o, call) => inner.logs(unit, o, call),
  };
  return { units, entries };
}

/**
 * After the stack's own run: put each dependent back as its journal says (the
 * nearest first): start it if it was running and is still stopped, thaw it, and
 * remove its journal. Returns the errors; a dependent with errors keeps its journal.
 */
export async function putBackDependents(chain: Chain, deps: ChainDeps): Promise<string[]> {
  const store = new JournalStore(journalDir(deps.stateDir));
  const errors: string[] = [];
  for (const e of [...chain.entries].reverse()) {
    const errs = await putBack(e, { units: deps.units, containers: deps.containers, freezer: deps.freezer, env: deps.env, log: deps.log, save: (x) => store.write(x), pollMs: deps.pollMs });
    if (errs.length) {
      errors.push(...errs.map((x) => `${e.stack}: ${x}`));
      deps.warn(`journal kept: the next "zoopa backup" or "zoopa doctor" repairs ${e.stack} (${store.file(e.stack)})`);
    } else store.remove(e.stack);
  }
  return errors;
}
