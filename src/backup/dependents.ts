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
import type { CallOptions, ContainerEngine, UnitManager } from '../core/ports.js';
import { ondemandSocketUnit, stackUnitName } from '../names.js';
import type { Stack } from '../stacks/discover.js';
import { dependentsToStop } from '../stacks/requires.js';
import type { OndemandFreezer } from './freeze.js';
import { bounded, callTimeouts, type CallTimeouts } from './bounded.js';
import { freezeMode, freezeWhy, willFreeze, type FreezeMode } from './freeze.js';
import { journalDir, JournalStore, type JournalEntry } from './journal.js';
import { readPrior } from './prior.js';
import { putBack, saveBestEffort, shouldStart, startAndWait, waitForContainers } from './put-back.js';

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
  /** Freeze its on-demand activation for the length of the backup (its ondemand: section, its env file, or backup.freeze: true). */
  freeze: boolean;
  /** Freeze it too if its socket unit is enabled or active when the run starts (neither of the above, and no freeze: false). */
  freezeIfSocket: boolean;
  socketUnit: string;
}

function mode(d: DependentPlan): FreezeMode {
  return d.freeze ? 'yes' : d.freezeIfSocket ? 'auto' : 'no';
}

/** The stacks requiring `stack`, directly or through others, in the order they are stopped (furthest first). */
export function dependentPlans(stacks: readonly Stack[], stack: Stack, env: NodeJS.ProcessEnv = process.env): DependentPlan[] {
  const chain = dependentsToStop(stacks, stack.name);
  const onChain = new Set([stack.name, ...chain]);
  return chain.map((name) => {
    const d = stacks.find((s) => s.name === name)!;
    const f = freezeMode(d, env).mode;
    return {
      name,
      dir: d.dir,
      unit: d.config.backup?.unit ?? stackUnitName(name),
      project: d.config.backup?.project ?? name,
      requires: d.config.requires.find((r) => onChain.has(r)) ?? stack.name,
      stopTimeoutSec: d.config.backup?.stop_timeout ?? d.config.stop_timeout,
      startTimeoutSec: d.config.backup?.start_timeout ?? d.config.start_timeout,
      freeze: f === 'yes',
      freezeIfSocket: f === 'auto',
      socketUnit: ondemandSocketUnit(name),
    };
  });
}

/** Lines for `backup --dry-run`: what happens to the dependents, around the stack's own stop and start. */
export function dependentSteps(stack: string, unit: string, dependents: readonly DependentPlan[]): { beforeStop: string[]; restore: string } {
  const names = dependents.map((d) => `${d.name} (requires ${d.requires})`).join(', ');
  const frozen = dependents.filter((d) => d.freeze).map((d) => d.socketUnit);
  const maybe = dependents.filter((d) => d.freezeIfSocket).map((d) => d.socketUnit);
  return {
    beforeStop: [
      `stacks that require ${stack}: ${names}; write each one's prior state to its own journal`,
      ...(frozen.length ? [`freeze their on-demand activation: ${frozen.join(', ')}`] : []),
      ...(maybe.length ? [`freeze, if enabled or active when the run starts: ${maybe.join(', ')}`] : []),
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
  /** Deadlines of systemctl/podman calls (backup.call_timeout). */
  calls?: CallTimeouts | undefined;
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

/** A UnitManager that stops the stack's dependents before it and starts them with it (see the top of this file). */
export function chainUnits(stackUnit: string, dependents: readonly DependentPlan[], deps: ChainDeps): Chain {
  const store = new JournalStore(journalDir(deps.stateDir));
  const entries: JournalEntry[] = [];
  const inner = deps.units;
  const save = (e: JournalEntry) => store.write(e);
  const calls = deps.calls ?? callTimeouts();

  const stopDependents = async () => {
    for (const d of dependents) {
      if (entries.some((e) => e.stack === d.name)) continue; // a second stop (a retry) finds them journaled
      const prior = await readPrior({ unit: d.unit, project: d.project, socketUnit: d.socketUnit, freeze: mode(d) }, { ...deps, units: inner });
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
      if (!willFreeze({ freeze: mode(d) }, entry.prior) || entry.frozen) continue;
      deps.log(`freezing on-demand activation of ${d.name} (${d.socketUnit})`);
      entry.frozen = true; // before the call: a kill during it still thaws
      save(entry);
      const why = freezeWhy(deps.stateDir, d.requires, 'backup');
      if (!(await bounded(() => deps.freezer.freeze(d.name, deps.env, why), calls.freezeMs, `freezing ${d.name}`))) {
        deps.log(`on-demand activation of ${d.name} was frozen already: it stays frozen afterwards`);
        entry.frozen = false;
        saveBestEffort(save, entry, deps.warn);
      }
    }
    for (const [i, d] of dependents.entries()) {
      const entry = entries[i]!;
      deps.log(`stopping ${d.unit} first (it requires ${d.requires})`);
      entry.stopped = true;
      save(entry);
      await bounded((c) => inner.stop(d.unit, c), calls.systemctlMs + d.stopTimeoutSec * 1000, `systemctl stop ${d.unit}`);
      const gone = await waitForContainers(deps.containers, d.project, (r) => r.length === 0, { timeoutSec: d.stopTimeoutSec, pollMs: deps.pollMs, signal: deps.signal, calls });
      if (!gone.ok) deps.warn(`containers of ${d.project} still running after ${d.stopTimeoutSec}s: ${gone.running.join(', ')}; going on`);
    }
  };

  const startWithDependents = async (call?: CallOptions) => {
    // The nearest first: each start brings up what it requires, the stack included.
    const again = [...entries].reverse().filter((e) => e.stopped && shouldStart(e));
    if (!again.length) {
      await inner.start(stackUnit, call);
    } else {
      for (const e of again) {
        deps.log(`starting ${e.unit} again (was running: ${e.prior.containers.join(', ') || e.prior.unitState}); systemd starts ${stackUnit} first`);
        await startAndWait({ units: inner, containers: deps.containers }, { unit: e.unit, project: e.project, containers: e.prior.containers, timeoutSec: e.startTimeoutSec }, { pollMs: deps.pollMs, calls });
        e.stopped = false;
        saveBestEffort(save, e, deps.warn);
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
    start: async (unit, call) => (unit === stackUnit ? startWithDependents(call) : inner.start(unit, call)),
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
    const errs = await putBack(e, {
      units: deps.units,
      containers: deps.containers,
      freezer: deps.freezer,
      env: deps.env,
      log: deps.log,
      warn: deps.warn,
      save: (x) => store.write(x),
      pollMs: deps.pollMs,
      calls: deps.calls,
    });
    if (errs.length) {
      errors.push(...errs.map((x) => `${e.stack}: ${x}`));
      deps.warn(`journal kept: the next "zoopa backup" or "zoopa backup repair" repairs ${e.stack} (${store.file(e.stack)})`);
    } else {
      try {
        store.remove(e.stack);
      } catch (x) {
        deps.warn(`cannot remove the journal ${store.file(e.stack)}: ${(x as Error).message} (${e.stack} is back)`);
      }
    }
  }
  return errors;
}
