/**
 * Putting a stack back as its journal says it was: start the unit per the
 * restore policy and wait for its containers (`startAndWait`, the one place that
 * does this), run the pending undo hooks (newest first), thaw the on-demand socket.
 *
 * Used by the runner after a failure or a signal, and by `repairFromJournal()`:
 * a run killed with SIGKILL leaves its journal behind, and the next `zoopa backup`
 * (first thing) or `zoopa backup repair` puts such stacks back. `zoopa doctor`
 * only reports them (src/backup/doctor.ts), unless run with `--fix`.
 *
 * Journal writes here are best effort: a full or read-only state folder must not
 * stop the stack and its socket from being put back (a warning says so).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerEngine, UnitManager } from '../core/ports.js';
import { formatDuration } from '../config/duration.js';
import { TimeoutError } from '../errors.js';
import { rootfulContainerEngine, rootlessContainerEngine } from '../podman/podman.js';
import { SystemctlUserManager } from '../systemd/systemctl.js';
import { bounded, callTimeouts, type CallTimeouts } from './bounded.js';
import { sleep, throwIfAborted } from './engine.js';
import { loadFreezer, type OndemandFreezer } from './freeze.js';
import { runHookCommand } from './hooks.js';
import { backupStateDir, journalDir, JournalStore, lockFile, type JournalEntry } from './journal.js';
import { acquireLock, BackupLockedError, type BackupLock } from './lock.js';

/**
 * Restore policy: `always`, or `previous`: start again only if its containers were
 * running before (or the unit was being started at that moment, e.g. woken on demand).
 */
export function shouldStart(entry: Pick<JournalEntry, 'restore' | 'prior'>): boolean {
  return entry.restore === 'always' || entry.prior.containers.length > 0 || entry.prior.unitState === 'activating';
}

export interface WaitOptions {
  timeoutSec: number;
  pollMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Bound of each podman ps. */
  calls?: CallTimeouts | undefined;
}

/** The project's running containers, by name, from one bounded podman ps. */
export async function runningNames(containers: ContainerEngine, project: string, calls: CallTimeouts = callTimeouts()): Promise<string[]> {
  const all = await bounded((c) => containers.runningByProject(c), calls.podmanMs, 'podman ps');
  return (all.get(project) ?? []).map((c) => c.name).sort();
}

/**
 * Poll the project's containers (one podman ps per poll) until `done(names)` holds.
 * Returns the last names seen and whether the condition was met in time.
 */
export async function waitForContainers(
  containers: ContainerEngine,
  project: string,
  done: (running: string[]) => boolean,
  opts: WaitOptions,
): Promise<{ ok: boolean; running: string[] }> {
  const deadline = Date.now() + opts.timeoutSec * 1000;
  for (;;) {
    throwIfAborted(opts.signal);
    const running = await runningNames(containers, project, opts.calls);
    if (done(running)) return { ok: true, running };
    if (Date.now() >= deadline) return { ok: false, running };
    await sleep(Math.min(opts.pollMs ?? 1000, Math.max(1, deadline - Date.now())), opts.signal);
  }
}

/** The containers that were running before are all running again (at least one when none were recorded). */
export function backUp(prior: readonly string[]): (running: string[]) => boolean {
  return (running) => (prior.length ? prior.every((n) => running.includes(n)) : running.length > 0);
}

export interface StartAndWaitTarget {
  unit: string;
  project: string;
  /** The containers that must run again (none recorded: at least one). */
  containers: readonly string[];
  timeoutSec: number;
  /** More time for the start call itself (a chain that starts the stacks requiring this one first). */
  extraStartMs?: number | undefined;
}

/**
 * Start the unit, then wait until its containers run again. Returns their names;
 * throws TimeoutError when they are not back within `timeoutSec`.
 */
export async function startAndWait(
  deps: { units: UnitManager; containers: ContainerEngine },
  t: StartAndWaitTarget,
  opts: { pollMs?: number | undefined; signal?: AbortSignal | undefined; calls?: CallTimeouts | undefined } = {},
): Promise<string[]> {
  const calls = opts.calls ?? callTimeouts();
  await bounded((c) => deps.units.start(t.unit, c), calls.systemctlMs + t.timeoutSec * 1000 + (t.extraStartMs ?? 0), `systemctl start ${t.unit}`);
  throwIfAborted(opts.signal);
  const w = await waitForContainers(deps.containers, t.project, backUp(t.containers), { timeoutSec: t.timeoutSec, pollMs: opts.pollMs, signal: opts.signal, calls });
  if (!w.ok) {
    throw new TimeoutError(`containers of ${t.project} not back within ${formatDuration(t.timeoutSec)} (running: ${w.running.join(', ') || 'none'})`, t.timeoutSec * 1000);
  }
  return w.running;
}

/** Stop the unit and wait until none of its containers runs. Returns the errors (none: stopped). */
export async function stopAndWait(
  deps: { units: UnitManager; containers: ContainerEngine },
  t: { unit: string; project: string; stopTimeoutSec: number },
  opts: { pollMs?: number | undefined; calls?: CallTimeouts | undefined } = {},
): Promise<string[]> {
  const calls = opts.calls ?? callTimeouts();
  try {
    await bounded((c) => deps.units.stop(t.unit, c), calls.systemctlMs + t.stopTimeoutSec * 1000, `systemctl stop ${t.unit}`);
    const w = await waitForContainers(deps.containers, t.project, (r) => r.length === 0, { timeoutSec: t.stopTimeoutSec, pollMs: opts.pollMs, calls });
    return w.ok ? [] : [`containers of ${t.project} still running after ${formatDuration(t.stopTimeoutSec)}: ${w.running.join(', ')}`];
  } catch (e) {
    return [`stopping ${t.unit}: ${(e as Error).message}`];
  }
}

export interface PutBackDeps {
  units: UnitManager;
  /** Sees the entry's containers (the rootful one for a rootful stack). */
  containers: ContainerEngine;
  freezer: OndemandFreezer;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** A warning (a journal write that failed). Default: log. */
  warn?: (line: string) => void;
  /** Persist the entry after each step (so a second kill does not repeat finished steps). */
  save: (entry: JournalEntry) => void;
  pollMs?: number | undefined;
  calls?: CallTimeouts | undefined;
}

/** Save the entry, or say why not and go on: putting the stack back matters more than recording it. */
export function saveBestEffort(save: (e: JournalEntry) => void, entry: JournalEntry, warn: (line: string) => void): void {
  try {
    save(entry);
  } catch (e) {
    warn(`cannot write the journal (${(e as Error).message}); putting the stack back all the same`);
  }
}

/**
 * Put a stack back as the journal says it was: start the unit per policy and
 * wait for its containers, run pending undo hooks (newest first), thaw the
 * socket. Every step is attempted; the errors are returned.
 */
export async function putBack(entry: JournalEntry, deps: PutBackDeps): Promise<string[]> {
  const errors: string[] = [];
  const calls = deps.calls ?? callTimeouts();
  const save = () => saveBestEffort(deps.save, entry, deps.warn ?? deps.log);
  if (entry.stopped) {
    if (shouldStart(entry)) {
      try {
        deps.log(`starting ${entry.unit} again (${entry.restore === 'always' ? 'restore: always' : `was running: ${entry.prior.containers.join(', ')}`})`);
        await startAndWait(deps, { unit: entry.unit, project: entry.project, containers: entry.prior.containers, timeoutSec: entry.startTimeoutSec }, { pollMs: deps.pollMs, calls });
        entry.stopped = false;
        save();
      } catch (e) {
        errors.push(`starting ${entry.unit}: ${(e as Error).message}`);
      }
    } else {
      deps.log(`leaving ${entry.unit} stopped: its containers were not running before (restore: previous)`);
      entry.stopped = false;
      save();
    }
  }
  while (entry.pendingUndo.length) {
    const u = entry.pendingUndo[entry.pendingUndo.length - 1]!;
    try {
      await runHookCommand(u.argv, `undo ${u.point}`, u.timeoutSec, {
        info: { stack: entry.stack, stackDir: entry.stackDir, unit: entry.unit, project: entry.project },
        env: deps.env,
        log: deps.log,
      });
    } catch (e) {
      errors.push((e as Error).message);
    }
    entry.pendingUndo.pop();
    save();
  }
  if (entry.frozen) {
    try {
      deps.log(`thawing the on-demand socket of ${entry.stack}`);
      await bounded(() => deps.freezer.thaw(entry.stack, deps.env, entry.pid), calls.freezeMs, `thawing ${entry.stack}`);
      entry.frozen = false;
      save();
    } catch (e) {
      errors.push(`thawing ${entry.stack}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** A restore's moves of data (src/backup/restore.ts), recorded before each rename: `<state>/restore/<stack>.json`. */
export interface RestoreMoves {
  stamp: string;
  moves: Array<{ path: string; aside: string | null; placed: boolean }>;
}
export function restoreMovesFile(stateDir: string, stack: string): string {
  return path.join(stateDir, 'restore', `${stack}.json`);
}

/**
 * After a restore killed while its stack was down: put the set-aside data back (the
 * restored copy kept as `<path>.zoopa-failed-restore-<stamp>`; renames within one
 * folder). The record goes once all is back. Returns the errors.
 */
export function undoRestoreMoves(stateDir: string, stack: string, log: (line: string) => void): string[] {
  const file = restoreMovesFile(stateDir, stack);
  let rec: RestoreMoves;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8')) as RestoreMoves;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? [] : [`reading ${file}: ${(e as Error).message}`];
  }
  const errors: string[] = [];
  for (const m of [...rec.moves].reverse()) {
    try {
      if (m.placed && fs.existsSync(m.path)) fs.renameSync(m.path, `${m.path}.zoopa-failed-restore-${rec.stamp}`);
      if (m.aside && fs.existsSync(m.aside)) fs.renameSync(m.aside, m.path);
      log(`put the data of ${m.path} back as it was before the interrupted restore`);
    } catch (e) {
      errors.push(`putting ${m.path} back from ${m.aside}: ${(e as Error).message}`);
    }
  }
  if (!errors.length) fs.rmSync(file, { force: true });
  return errors;
}

export interface RepairOptions {
  env?: NodeJS.ProcessEnv;
  units?: UnitManager;
  containers?: ContainerEngine;
  /** For rootful stacks; default `sudo -n podman`. */
  rootfulContainers?: ContainerEngine;
  freezer?: OndemandFreezer;
  /** Default: <XDG_STATE_HOME>/zoopa/backup */
  stateDir?: string;
  log?: (line: string) => void;
  /** The caller already holds the backup lock (the runner). Otherwise it is taken here. */
  lockHeld?: boolean;
  pollMs?: number;
  calls?: CallTimeouts;
}

export interface RepairReport {
  /** Stacks put back as they were. */
  repaired: string[];
  /** Stacks whose repair failed; their journal stays. */
  failed: Array<{ stack: string; errors: string[] }>;
  unreadable: Array<{ file: string; error: string }>;
  /** Set when nothing was done because a backup is running. */
  skipped?: string;
}

/**
 * Repair every stack a killed backup run left changed. Safe to call at any time:
 * while a backup runs (it holds the lock) it does nothing and says so.
 */
export async function repairFromJournal(opts: RepairOptions = {}): Promise<RepairReport> {
  const env = opts.env ?? process.env;
  const stateDir = opts.stateDir ?? backupStateDir(env);
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const store = new JournalStore(journalDir(stateDir));
  const report: RepairReport = { repaired: [], failed: [], unreadable: [] };
  const { entries, unreadable } = store.list();
  report.unreadable = unreadable;
  if (!entries.length) return report;

  let lock: BackupLock | undefined;
  if (!opts.lockHeld) {
    try {
      lock = acquireLock(lockFile(stateDir));
    } catch (e) {
      if (e instanceof BackupLockedError) {
        report.skipped = `a backup is running (pid ${e.holder.pid}, started ${e.holder.startedAt}); its journal is its own`;
        return report;
      }
      throw e;
    }
  }
  try {
    const units = opts.units ?? new SystemctlUserManager(env);
    const containers = opts.containers ?? rootlessContainerEngine(env);
    const rootfulContainers = opts.rootfulContainers ?? rootfulContainerEngine(env);
    const freezer = opts.freezer ?? loadFreezer(units);
    for (const entry of entries) {
      log(`${entry.stack}: repairing after an interrupted backup (pid ${entry.pid}, started ${entry.startedAt})`);
      // A restore killed with its stack down: its data goes back before the stack starts.
      const dataErrors = entry.stopped ? undoRestoreMoves(stateDir, entry.stack, (line) => log(`${entry.stack}: ${line}`)) : [];
      const errors = dataErrors.length ? dataErrors : await putBack(entry, {
        units,
        containers: entry.rootful ? rootfulContainers : containers,
        freezer,
        env,
        log: (line) => log(`${entry.stack}: ${line}`),
        save: (e) => store.write(e),
        pollMs: opts.pollMs,
        calls: opts.calls,
      });
      let removed = true;
      if (!errors.length) {
        try {
          store.remove(entry.stack);
        } catch (e) {
          removed = false;
          errors.push(`removing its journal: ${(e as Error).message}`);
        }
      }
      if (errors.length || !removed) report.failed.push({ stack: entry.stack, errors });
      else report.repaired.push(entry.stack);
    }
  } finally {
    lock?.release();
  }
  return report;
}
