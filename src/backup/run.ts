/**
 * The backup runner. For each stack of the plan, in order:
 *
 *   write the prior state to the journal → freeze the on-demand socket (if
 *   active) → pre_stop → stop the unit → wait until no container of the
 *   project runs (on timeout: warn and go on) → post_stop → pre_backup → each
 *   job (wait until really finished, check its result) → post_backup →
 *   restore per policy (pre_start, start, wait for the containers, post_start)
 *   → pending undo hooks → thaw → verify → DONE, journal removed.
 *
 * On any failure or signal the stack and socket are put back as they were and
 * pending undo hooks run; the stack is marked failed and the next one goes on
 * (after a signal, the remaining stacks are skipped). The caller holds the lock
 * and has repaired leftovers from earlier runs (see runBackupCommand).
 */
import type { ContainerEngine, UnitManager } from '../core/ports.js';
import { formatDuration } from '../config/duration.js';
import { isZoopaError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HookPoint } from './config.js';
import { chainUnits, putBackDependents, type ChainDeps } from './dependents.js';
import { abortError, describeJob, InterruptedError, throwIfAborted, type BackupEngine, type JobResult } from './engine.js';
import { freezeWhy, willFreeze, type OndemandFreezer } from './freeze.js';
import { runHooks } from './hooks.js';
import { bounded, callTimeouts, type CallTimeouts } from './bounded.js';
import { journalDir, JournalStore, lockFile, type JournalEntry } from './journal.js';
import { readPrior } from './prior.js';
import { putBack, repairFromJournal, saveBestEffort, shouldStart, startAndWait, stopAndWait, waitForContainers, type RepairReport } from './put-back.js';
import { acquireLock } from './lock.js';
import { notifyRun } from './notify.js';
import { ping } from './ping.js';
import { redactUrls } from './redact.js';
import type { BackupPlan, StackPlan } from './plan.js';
import type { Progress } from './progress.js';
import { recordStatus, StackLog, summaryTable, type StackStatus } from './status.js';

export interface RunnerDeps {
  env: NodeJS.ProcessEnv;
  units: UnitManager;
  containers: ContainerEngine;
  /** For the rootful stack (sudo -n podman); default: `containers`. */
  rootfulContainers?: ContainerEngine;
  freezer: OndemandFreezer;
  engines: Partial<Record<'duplicati' | 'restic', BackupEngine>>;
  progress: Progress;
  logger: Logger;
  /** <XDG_STATE_HOME>/zoopa/backup */
  stateDir: string;
  /** How often to poll podman ps while waiting (default 1 s). */
  pollMs?: number;
  /** Deadlines of systemctl/podman calls (default: backup.call_timeout of the plan). */
  calls?: CallTimeouts;
}

export interface StackOutcome extends StackStatus {
  result: 'ok' | 'failed' | 'interrupted';
}

export interface RunOutcome {
  stacks: Array<StackOutcome | { stack: string; result: 'skipped'; error: string }>;
  repair: RepairReport;
  /** The signal that interrupted the run, if any. */
  interrupted?: NodeJS.Signals | undefined;
  exitCode: number;
}

/** An error as the log, the summary table, the status file and the ping show it: URL credentials redacted. */
function message(e: unknown): string {
  return redactUrls(e instanceof Error ? e.message : String(e));
}

/** A restore's changes to the steps (src/backup/restore.ts): log word, no status record, a rollback run on failure with the stack stopped. */
export interface StackRunOptions {
  what?: string;
  record?: boolean;
  rollback?: { pending: () => boolean; run: (log: (line: string) => void) => Promise<string[]> };
}

/** Back up one stack. Never throws: failures become the outcome. */
export async function backupStack(sp: StackPlan, runnerDeps: RunnerDeps, signal: AbortSignal, runOpts: StackRunOptions = {}): Promise<StackOutcome> {
  const deps: RunnerDeps = sp.rootful && runnerDeps.rootfulContainers ? { ...runnerDeps, containers: runnerDeps.rootfulContainers } : runnerDeps;
  const started = new Date();
  const store = new JournalStore(journalDir(deps.stateDir));
  const stackLog = new StackLog(sp.logFile, (m) => deps.progress.warn(sp.name, m));
  const log = (line: string) => {
    stackLog.line(line);
    deps.progress.detail(sp.name, line);
  };
  const step = (text: string) => {
    stackLog.line(text);
    deps.progress.step(sp.name, text);
  };
  const warn = (text: string) => {
    stackLog.line(`WARNING: ${text}`);
    deps.progress.warn(sp.name, text);
  };
  const jobs: JobResult[] = [];
  const hookOpts = {
    info: { stack: sp.name, stackDir: sp.dir, unit: sp.unit, project: sp.project },
    env: deps.env,
    log,
    signal,
  };
  let entry: JournalEntry | undefined;
  const calls = deps.calls ?? callTimeouts();
  /** Journal writes before a change are strict (nothing is touched unrecorded); after it, best effort. */
  const save = (e: JournalEntry) => store.write(e);
  const putBackDeps = { units: deps.units, containers: deps.containers, freezer: deps.freezer, env: deps.env, log, warn, save, pollMs: deps.pollMs, calls };
  const hooks = async (point: HookPoint) => {
    if (!sp.hooks[point].length) return;
    step(`${point} hooks`);
    await runHooks(point, sp.hooks[point], {
      ...hookOpts,
      onUndo: (u) => {
        entry!.pendingUndo.push(u);
        saveBestEffort(save, entry!, warn);
      },
    });
  };
  const ctx = { stack: sp.name, stackDir: sp.dir, log, signal };

  stackLog.line(`=== ${runOpts.what ?? 'backup'} of ${sp.name} (pid ${process.pid}) ===`);
  let failure: unknown;
  let restoreErrors: string[] = [];
  let downtimeSec: number | undefined;
  try {
    throwIfAborted(signal);
    const prior = await readPrior(sp, deps);
    entry = {
      version: 1,
      stack: sp.name,
      stackDir: sp.dir,
      unit: sp.unit,
      project: sp.project,
      rootful: sp.rootful,
      pid: process.pid,
      startedAt: started.toISOString(),
      restore: sp.restore,
      startTimeoutSec: sp.startTimeoutSec,
      prior,
      frozen: false,
      stopped: false,
      pendingUndo: [],
    };
    save(entry); // before anything is touched
    log(
      `prior state: ${sp.unit} ${prior.unitState}; running: ${prior.containers.join(', ') || 'none'}` +
        (prior.socket ? `; ${prior.socket.unit} ${prior.socket.active ? 'active' : 'inactive'}` : ''),
    );

    step('checking the jobs');
    for (const job of sp.jobs) {
      const engine = deps.engines[job.engine];
      if (!engine) throw new Error(`no ${job.engine} engine configured`);
      await engine.prepare(job, ctx);
    }

    if (willFreeze(sp, prior)) {
      step(`freezing on-demand activation (${sp.socketUnit})`);
      entry.frozen = true; // before the call: a kill during it still thaws (only our own freeze)
      save(entry);
      const why = freezeWhy(deps.stateDir, sp.name, runOpts.what === 'restore' ? 'restore' : 'backup');
      if (!(await bounded(() => deps.freezer.freeze(sp.name, deps.env, why), calls.freezeMs, `freezing ${sp.name}`))) {
        log('on-demand activation was frozen already: it stays frozen afterwards');
        entry.frozen = false;
        saveBestEffort(save, entry, warn);
      }
    }
    throwIfAborted(signal);
    await hooks('pre_stop');

    step(`stopping ${sp.unit}`);
    entry.stopped = true;
    save(entry);
    const downSince = Date.now();
    // A chain (dependents.ts) stops the stacks requiring this one first, within the same call.
    const chainStopMs = sp.dependents.reduce((a, d) => a + calls.freezeMs + 2 * calls.systemctlMs + calls.podmanMs + 2 * d.stopTimeoutSec * 1000, 0);
    await bounded((c) => deps.units.stop(sp.unit, c), calls.systemctlMs + sp.stopTimeoutSec * 1000 + chainStopMs, `systemctl stop ${sp.unit}`);
    throwIfAborted(signal);
    step(`waiting for the containers of ${sp.project} to stop`);
    const stopped = await waitForContainers(deps.containers, sp.project, (r) => r.length === 0, {
      timeoutSec: sp.stopTimeoutSec,
      pollMs: deps.pollMs,
      signal,
      calls,
    });
    if (!stopped.ok) warn(`containers still running after ${formatDuration(sp.stopTimeoutSec)}: ${stopped.running.join(', ')}; going on (as the original did)`);
    else log(`no container of ${sp.project} runs`);

    await hooks('post_stop');
    await hooks('pre_backup');
    for (const [i, job] of sp.jobs.entries()) {
      step(`job ${i + 1}/${sp.jobs.length}: ${describeJob(job)}`);
      const engine = deps.engines[job.engine]!;
      jobs.push(await engine.run(job, ctx));
      throwIfAborted(signal);
    }
    await hooks('post_backup');

    if (shouldStart(entry)) {
      await hooks('pre_start');
      step(`starting ${sp.unit}`);
      const extraStartMs = sp.dependents.reduce((a, d) => a + calls.systemctlMs + calls.podmanMs + d.startTimeoutSec * 1000, 0);
      const back = await startAndWait(deps, { unit: sp.unit, project: sp.project, containers: prior.containers, timeoutSec: sp.startTimeoutSec, extraStartMs }, { pollMs: deps.pollMs, signal, calls });
      log(`running again: ${back.join(', ')}`);
      downtimeSec = prior.containers.length > 0 ? (Date.now() - downSince) / 1000 : 0;
      await hooks('post_start');
    } else {
      log(`leaving ${sp.unit} stopped: its containers were not running before (restore: previous)`);
      downtimeSec = 0;
    }
    entry.stopped = false;
    saveBestEffort(save, entry, warn);

    // Undo hooks and thaw, through the same code a repair uses.
    const errs = await putBack(entry, putBackDeps);
    if (errs.length) {
      restoreErrors = errs;
      throw new Error(errs.join('; '));
    }
    await hooks('verify');
  } catch (e) {
    failure = signal.aborted ? abortError(signal) : e;
    const what = failure instanceof InterruptedError ? 'interrupted' : 'failed';
    stackLog.line(`${what}: ${message(failure)}`); // the terminal/journal get it once, from done() below
    if (entry && runOpts.rollback?.pending() && !restoreErrors.length) {
      if (!entry.stopped) {
        // Started already (a failing post_start or verify hook): stopped again before the data goes back.
        step(`stopping ${sp.unit} to put the data back`);
        entry.stopped = true;
        saveBestEffort(save, entry, warn);
        restoreErrors.push(...(await stopAndWait(deps, sp, { pollMs: deps.pollMs, calls })));
      }
      step('putting the previous data back');
      restoreErrors.push(...(await runOpts.rollback.run(log)));
      restoreErrors = [...restoreErrors, ...(await putBack(entry, putBackDeps))];
      for (const r of restoreErrors) warn(`could not put back: ${redactUrls(r)}`);
    } else if (entry && !restoreErrors.length && (entry.stopped || entry.frozen || entry.pendingUndo.length)) {
      step('putting the stack back as it was');
      restoreErrors = [...restoreErrors, ...(await putBack(entry, putBackDeps))];
      for (const r of restoreErrors) warn(`could not put back: ${redactUrls(r)}`);
    }
  }
  if (entry) {
    if (restoreErrors.length && (entry.stopped || entry.frozen || entry.pendingUndo.length)) {
      warn(`journal kept: the next "zoopa backup" or "zoopa backup repair" repairs it (${store.file(sp.name)})`);
    } else {
      try {
        store.remove(sp.name);
      } catch (e) {
        warn(`cannot remove the journal ${store.file(sp.name)}: ${message(e)} (the stack is back; the next run's repair will find it so)`);
      }
    }
  }
  const finished = new Date();
  const durationSec = (finished.getTime() - started.getTime()) / 1000;
  const result: StackOutcome['result'] = failure === undefined ? 'ok' : failure instanceof InterruptedError ? 'interrupted' : 'failed';
  if (result === 'ok') {
    stackLog.line(`DONE in ${formatDuration(durationSec)}`);
    deps.progress.done(sp.name, true, `done in ${formatDuration(durationSec)}${jobs.length ? ` (${jobs.map((j) => j.summary).join('; ')})` : ''}`);
  } else {
    stackLog.line(`${result.toUpperCase()}: ${message(failure)}`);
    deps.progress.done(sp.name, false, `${result}: ${message(failure)}`);
  }
  const outcome: StackOutcome = {
    stack: sp.name,
    result,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationSec,
    jobs: jobs.map((j) => ({ engine: j.engine, job: j.job, summary: j.summary })),
    error: failure === undefined ? undefined : message(failure) + (isZoopaError(failure) && failure.hint ? ` (hint: ${failure.hint})` : ''),
    restoreErrors: restoreErrors.length ? restoreErrors : undefined,
    downtimeSec,
    logFile: sp.logFile,
  };
  if (runOpts.record !== false) try {
    recordStatus(deps.stateDir, outcome);
  } catch (e) {
    deps.progress.warn(sp.name, `cannot record the status: ${message(e)}`);
  }
  return outcome;
}

/**
 * A stack that others require (src/backup/dependents.ts): the runner's usual steps,
 * with a UnitManager that stops its dependents first and starts them with it; then
 * the dependents are thawed and their journals removed.
 */
async function backupChain(sp: StackPlan, runnerDeps: RunnerDeps, signal: AbortSignal, runOpts: StackRunOptions = {}): Promise<StackOutcome> {
  const cd: ChainDeps = {
    units: runnerDeps.units,
    containers: sp.rootful && runnerDeps.rootfulContainers ? runnerDeps.rootfulContainers : runnerDeps.containers,
    freezer: runnerDeps.freezer,
    env: runnerDeps.env,
    stateDir: runnerDeps.stateDir,
    pollMs: runnerDeps.pollMs,
    calls: runnerDeps.calls,
    signal,
    log: (line) => runnerDeps.progress.step(sp.name, line),
    warn: (line) => runnerDeps.progress.warn(sp.name, line),
  };
  const chain = chainUnits(sp.unit, sp.dependents, cd);
  const outcome = await backupStack(sp, { ...runnerDeps, units: chain.units }, signal, runOpts);
  const errors = await putBackDependents(chain, cd);
  if (errors.length) {
    outcome.restoreErrors = [...(outcome.restoreErrors ?? []), ...errors];
    if (outcome.result === 'ok') outcome.result = 'failed';
    outcome.error ??= `could not put back: ${errors.join('; ')}`;
  }
  return outcome;
}

/** One stack through the runner's steps (with its dependents when others require it). Never throws. */
export function runStack(sp: StackPlan, deps: RunnerDeps, signal: AbortSignal, runOpts: StackRunOptions = {}): Promise<StackOutcome> {
  return sp.dependents.length ? backupChain(sp, deps, signal, runOpts) : backupStack(sp, deps, signal, runOpts);
}

export { summaryTable }; // the summary table printed at the end of a run

/**
 * A whole run: take the lock (a concurrent run fails at once), repair what an
 * earlier killed run left, ping start, back up each stack, ping the result.
 * SIGINT/SIGTERM abort the current step; the stack is put back; the rest is
 * skipped; the exit code is 128+signal.
 */
export async function runBackup(plan: BackupPlan, deps: RunnerDeps, opts: { argv?: string[]; installSignals?: boolean } = {}): Promise<RunOutcome> {
  deps = { ...deps, calls: deps.calls ?? callTimeouts(plan.config.call_timeout) };
  const lock = acquireLock(lockFile(deps.stateDir), { argv: opts.argv });
  const controller = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      deps.progress.note(`${sig} again: still putting things back, please wait (SIGKILL leaves a journal the next run repairs)`, 'warn');
      return;
    }
    interrupted = sig;
    deps.progress.note(`${sig} received: stopping the current step and putting the stack back`, 'warn');
    controller.abort(new InterruptedError(sig));
  };
  if (opts.installSignals !== false) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    if (lock.tookOverFrom) deps.progress.note(`took over the lock of pid ${lock.tookOverFrom.pid} (started ${lock.tookOverFrom.startedAt}), which no longer runs`, 'warn');
    const repair = await repairFromJournal({
      env: deps.env,
      units: deps.units,
      containers: deps.containers,
      rootfulContainers: deps.rootfulContainers,
      freezer: deps.freezer,
      stateDir: deps.stateDir,
      lockHeld: true,
      pollMs: deps.pollMs,
      ...(deps.calls ? { calls: deps.calls } : {}),
      log: (line) => deps.progress.note(line, 'warn'),
    });
    const unrepaired = new Set(repair.failed.map((f) => f.stack));
    for (const f of repair.failed) deps.progress.note(`${f.stack}: repair from the journal failed: ${f.errors.join('; ')}`, 'error');
    for (const u of repair.unreadable) deps.progress.note(`unreadable journal ${u.file}: ${u.error}`, 'error');

    const cfg = plan.config;
    const pingNow = async (kind: 'start' | 'success' | 'fail', body: string) => {
      if (!cfg.ping_url) return;
      const err = await ping(cfg.ping_url, kind, body, cfg.ping_timeout);
      if (err) deps.progress.note(`${err} (the backup goes on)`, 'warn');
    };
    await pingNow('start', `zoopa backup ${plan.stacks.map((s) => s.name).join(' ')}`);

    const stacks: RunOutcome['stacks'] = [];
    for (const sp of plan.stacks) {
      if (controller.signal.aborted) {
        stacks.push({ stack: sp.name, result: 'skipped', error: `skipped after ${interrupted}` });
        continue;
      }
      if (unrepaired.has(sp.name)) {
        stacks.push({ stack: sp.name, result: 'skipped', error: 'its journal from an interrupted run could not be repaired' });
        continue;
      }
      stacks.push(await runStack(sp, deps, controller.signal));
    }
    const ok = stacks.every((s) => s.result === 'ok') && repair.failed.length === 0 && repair.unreadable.length === 0;
    const outcome: RunOutcome = {
      stacks,
      repair,
      interrupted,
      exitCode: interrupted ? 128 + (interrupted === 'SIGINT' ? 2 : 15) : ok ? 0 : 1,
    };
    await notifyRun(cfg.notify, stacks, (m) => deps.progress.note(m, 'warn'));
    await pingNow(ok ? 'success' : 'fail', summaryTable(outcome));
    return outcome;
  } finally {
    if (opts.installSignals !== false) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    lock.release();
  }
}
