/**
 * `zoopa backup restore <stack>`: a restic snapshot put back in place, with the
 * safety of a backup. The plan comes first (snapshot, paths, what is replaced,
 * the stack's state); an unknown snapshot or path is an input error before
 * anything is touched.
 *
 * In place, the runner's own steps run (src/backup/run.ts `backupStack`: journal,
 * freeze, pre_stop, stop, wait for no containers, post_stop, start per policy,
 * post_start, verify, put back on failure) with one job: `RestoreJob` below.
 * For each path it restores the snapshot's copy into a staging folder next to the
 * path (same filesystem; owners and modes through `podman unshare` when the
 * backup used `restic.unshare`), moves the current data aside to
 * `<path>.zoopa-before-restore-<timestamp>` (a rename, never a delete) and renames
 * the restored copy into place. A failure at any step (of the job, or a hook
 * after it) moves the restored copy to `<path>.zoopa-failed-restore-<timestamp>`
 * and the set-aside data back, with the stack stopped, before it is put back.
 * The moves are recorded (`<state>/restore/<stack>.json`) before each rename: a
 * restore killed with SIGKILL is undone by the next repair (src/backup/put-back.ts).
 *
 * `--to DIR` restores into a folder and touches nothing of the stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { callTimeouts } from './bounded.js';
import { InterruptedError, type BackupEngine, type JobContext, type JobResult, type JobSpec } from './engine.js';
import { lockFile, writeJsonAtomic } from './journal.js';
import { acquireLock } from './lock.js';
import { repairFromJournal, restoreMovesFile, type RestoreMoves } from './put-back.js';
import { runStack, type RunnerDeps, type StackOutcome } from './run.js';
import type { ResticEngine, ResticSnapshot } from './engines/restic.js';
import type { PriorState } from './journal.js';
import type { StackPlan } from './plan.js';

export interface RestorePlan {
  stack: string;
  snapshot: { id: string; shortId: string; time: string; paths: string[] };
  /** Absolute paths restored. */
  paths: string[];
  /** A folder to restore into (nothing of the stack touched), or null: in place. */
  to: string | null;
  /** In place: for each path, whether current data exists (it is moved aside) and where it goes. */
  replaces: Array<{ path: string; exists: boolean; asideTo: string }>;
  /** The suffix stamp of this restore's set-aside names. */
  stamp: string;
}

/** `2026-12-02T04-05-13Z`: sortable, no colons. */
export function restoreStamp(now: Date = new Date()): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

export function asideName(p: string, stamp: string): string {
  return `${p}.zoopa-before-restore-${stamp}`;
}

/** The snapshot `wanted` (`latest`, a full id or an id prefix) among the stack's snapshots; an input error when there is none. */
export function pickSnapshot(snaps: readonly ResticSnapshot[], stack: string, wanted: string): ResticSnapshot {
  const sorted = [...snaps].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  if (!sorted.length) {
    throw new UsageError(`${stack} has no restic snapshot to restore`, { key: '--snapshot', value: wanted, hint: `back it up first: "zoopa backup ${stack}"` });
  }
  if (wanted === 'latest') return sorted[0]!;
  const hits = /^[0-9a-f]{4,64}$/i.test(wanted) ? sorted.filter((s) => s.id.startsWith(wanted.toLowerCase())) : [];
  if (hits.length === 1) return hits[0]!;
  throw new UsageError(`--snapshot ${wanted}: ${hits.length ? 'more than one' : 'no'} snapshot of ${stack} has this id`, {
    key: '--snapshot',
    value: wanted,
    hint: `"zoopa backup snapshots ${stack}" lists them (e.g. ${sorted[0]!.short_id}); or --snapshot latest`,
  });
}

/** The restored paths: the snapshot's, or those asked for (each inside one of the snapshot's paths). */
export function pickPaths(snap: ResticSnapshot, stackDir: string, asked: readonly string[]): string[] {
  if (!asked.length) return [...snap.paths];
  return asked.map((a) => {
    const abs = path.resolve(stackDir, a);
    if (!snap.paths.some((p) => abs === p || abs.startsWith(p.endsWith('/') ? p : p + '/'))) {
      throw new UsageError(`--path ${a}: ${abs} is not in snapshot ${snap.short_id}`, {
        key: '--path',
        value: a,
        hint: `the snapshot holds ${snap.paths.join(', ')} (relative paths are read from ${stackDir})`,
      });
    }
    return abs;
  });
}

export async function planRestore(
  engine: Pick<ResticEngine, 'snapshots'>,
  sp: Pick<StackPlan, 'name' | 'dir'>,
  opts: { snapshot?: string | undefined; paths?: readonly string[]; to?: string | undefined; now?: Date },
): Promise<RestorePlan> {
  const snap = pickSnapshot(await engine.snapshots(sp.name), sp.name, opts.snapshot ?? 'latest');
  const paths = pickPaths(snap, sp.dir, opts.paths ?? []);
  const stamp = restoreStamp(opts.now);
  let to: string | null = null;
  if (opts.to !== undefined) {
    to = path.resolve(opts.to);
    if (fs.existsSync(to) && (!fs.statSync(to).isDirectory() || fs.readdirSync(to).length)) {
      throw new UsageError(`--to ${opts.to}: ${to} exists and is not an empty folder`, { key: '--to', value: opts.to, hint: 'name a new or empty folder' });
    }
  }
  return {
    stack: sp.name,
    snapshot: { id: snap.id, shortId: snap.short_id, time: snap.time, paths: snap.paths },
    paths,
    to,
    replaces: to ? [] : paths.map((p) => ({ path: p, exists: fs.existsSync(p), asideTo: asideName(p, stamp) })),
    stamp,
  };
}

export function renderRestorePlan(plan: RestorePlan, prior?: PriorState, note?: string): string {
  const out = [`restore of ${plan.stack} from snapshot ${plan.snapshot.shortId} (${plan.snapshot.time})`];
  if (plan.to) {
    out.push(`  into ${plan.to} (the stack is not touched):`);
    for (const p of plan.paths) out.push(`    ${p} -> ${path.join(plan.to, p)}`);
    return out.join('\n') + '\n';
  }
  if (prior) {
    out.push(`  state: ${prior.unitState}; running: ${prior.containers.join(', ') || 'none'}${prior.socket ? `; ${prior.socket.unit} ${prior.socket.active ? 'active' : 'inactive'}` : ''}`);
  } else if (note) out.push(note);
  out.push('  the stack is stopped (as for a backup: freeze, pre_stop, stop, wait), then per path:');
  for (const r of plan.replaces) {
    out.push(r.exists ? `    ${r.path}: replaced; the current data is kept as ${r.asideTo}` : `    ${r.path}: does not exist now; created`);
  }
  out.push('  then the stack is put back per its restore policy; post_start and verify hooks run; a failure puts the previous data back');
  return out.join('\n') + '\n';
}

/** The job a restore runs in the runner's place of the backup jobs. */
export class RestoreJob implements BackupEngine {
  readonly kind = 'restic' as const;
  /** Paths whose current data was moved aside (and the restored copy put in place, when `placed`). */
  readonly moved: Array<{ path: string; aside: string | null; placed: boolean }> = [];

  constructor(
    private readonly engine: ResticEngine,
    private readonly plan: RestorePlan,
    private readonly timeoutMs: number,
    /** `<state>/restore/<stack>.json`: the moves, for a repair after SIGKILL (src/backup/put-back.ts). */
    private readonly recordFile?: string,
  ) {}

  /** Record the moves (before each rename), or drop the record when there are none. */
  record(): void {
    if (!this.recordFile) return;
    if (!this.moved.length) fs.rmSync(this.recordFile, { force: true });
    else writeJsonAtomic(this.recordFile, { stamp: this.plan.stamp, moves: this.moved } satisfies RestoreMoves);
  }

  async prepare(): Promise<void> {
    /* the snapshot was found while planning */
  }

  async run(_job: JobSpec, ctx: JobContext): Promise<JobResult> {
    for (const r of this.plan.replaces) {
      // Restored next to the path first: the rename into place stays on one filesystem.
      const staging = path.join(path.dirname(r.path), `.zoopa-restore-${this.plan.stamp}`);
      await this.engine.restoreInto(this.plan.snapshot.id, staging, { include: [r.path], timeoutMs: this.timeoutMs, signal: ctx.signal, log: ctx.log });
      const restored = path.join(staging, r.path);
      if (!fs.existsSync(restored)) throw new Error(`restic restored nothing for ${r.path} (into ${staging})`);
      const exists = fs.existsSync(r.path);
      const m = { path: r.path, aside: exists ? r.asideTo : null, placed: false };
      this.moved.push(m);
      this.record();
      if (exists) {
        await this.engine.rename(r.path, r.asideTo);
        ctx.log(`moved the current ${r.path} aside to ${r.asideTo}`);
      }
      m.placed = true;
      this.record();
      await this.engine.rename(restored, r.path);
      ctx.log(`restored ${r.path}`);
      // Only the empty folders leading to the path are left there: a failure to remove them is no failed restore.
      const left = await this.engine.removeStaging(staging);
      if (left) ctx.log(`WARNING: cannot remove the empty staging folder ${staging}: ${left}`);
    }
    const aside = this.moved.filter((m) => m.aside).map((m) => m.aside);
    return {
      engine: 'restic',
      job: this.plan.paths.join(' '),
      summary: `snapshot ${this.plan.snapshot.shortId} restored: ${this.plan.paths.join(', ')}${aside.length ? `; previous data kept as ${aside.join(', ')}` : ''}`,
    };
  }

  pending(): boolean {
    return this.moved.length > 0;
  }

  /** Put the set-aside data back (the restored copy is kept as `<path>.zoopa-failed-restore-<stamp>`). Returns errors. */
  async rollback(log: (line: string) => void): Promise<string[]> {
    const errors: string[] = [];
    while (this.moved.length) {
      const m = this.moved[this.moved.length - 1]!;
      try {
        if (m.placed && fs.existsSync(m.path)) {
          const failed = `${m.path}.zoopa-failed-restore-${this.plan.stamp}`;
          await this.engine.rename(m.path, failed);
          log(`the restored ${m.path} is kept as ${failed}`);
        }
        if (m.aside) {
          await this.engine.rename(m.aside, m.path);
          log(`put the previous ${m.path} back`);
        }
      } catch (e) {
        errors.push(`putting ${m.path} back from ${m.aside}: ${(e as Error).message}`);
      }
      this.moved.pop();
    }
    if (!errors.length) this.record();
    return errors;
  }
}

/** The stack plan for a restore: the runner's hooks without pre_backup/post_backup, one job. */
export function restoreStackPlan(sp: StackPlan, plan: RestorePlan): StackPlan {
  return {
    ...sp,
    hooks: { ...sp.hooks, pre_backup: [], post_backup: [] },
    jobs: [{ engine: 'restic', paths: plan.paths, tags: [], exclude: [], timeoutSec: sp.jobs.find((j) => j.engine === 'restic')?.timeoutSec ?? 3600, pathsFrom: `snapshot ${plan.snapshot.shortId}` }],
  };
}

export interface RestoreOutcome {
  outcome: StackOutcome;
  /** The set-aside copies of the data the restore replaced (none when it was put back). */
  kept: string[];
  exitCode: number;
}

/**
 * Restore in place: take the backup lock (a running backup or restore refuses it),
 * repair what a killed run left, then the runner's steps with the RestoreJob.
 * SIGINT/SIGTERM abort the current step; the data and the stack are put back.
 */
export async function runRestore(sp: StackPlan, plan: RestorePlan, engine: ResticEngine, deps: RunnerDeps, opts: { argv?: string[]; callTimeoutSec?: number } = {}): Promise<RestoreOutcome> {
  const calls = deps.calls ?? callTimeouts(opts.callTimeoutSec);
  deps = { ...deps, calls };
  const lock = acquireLock(lockFile(deps.stateDir), { argv: opts.argv });
  const controller = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = sig;
    deps.progress.note(`${sig} received: stopping the current step and putting the data and the stack back`, 'warn');
    controller.abort(new InterruptedError(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const repair = await repairFromJournal({ env: deps.env, units: deps.units, containers: deps.containers, rootfulContainers: deps.rootfulContainers, freezer: deps.freezer, stateDir: deps.stateDir, lockHeld: true, pollMs: deps.pollMs, calls, log: (l) => deps.progress.note(l, 'warn') });
    if (repair.failed.some((f) => f.stack === sp.name)) throw new Error(`${sp.name}: its journal from an interrupted run could not be repaired; run "zoopa backup repair"`);
    const rsp = restoreStackPlan(sp, plan);
    const job = new RestoreJob(engine, plan, rsp.jobs[0]!.timeoutSec * 1000, restoreMovesFile(deps.stateDir, sp.name));
    const outcome = await runStack(rsp, { ...deps, engines: { restic: job } }, controller.signal, {
      what: 'restore',
      record: false,
      rollback: { pending: () => job.pending(), run: (log) => job.rollback(log) },
    });
    if (outcome.result === 'ok') fs.rmSync(restoreMovesFile(deps.stateDir, sp.name), { force: true });
    // Still set aside: after a success, or a failure that left the restored data in place (e.g. a thaw that failed).
    const kept = job.moved.flatMap((m) => (m.aside ? [m.aside] : []));
    return { outcome, kept, exitCode: interrupted ? 128 + (interrupted === 'SIGINT' ? 2 : 15) : outcome.result === 'ok' ? 0 : 1 };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    lock.release();
  }
}
