/**
 * The backup journal: before a stack is touched, its prior state (unit active,
 * containers running, on-demand socket active) is written to
 * `<state>/backup/journal/<stack>.json`; as the run goes on, the journal records
 * what has been changed (socket frozen, unit stopped, undo hooks pending). The
 * file is removed only once the stack is back as it was.
 *
 * A run killed with SIGKILL leaves its journal behind. The next `zoopa backup`,
 * and `zoopa doctor` through `repairFromJournal()`, put such stacks back first:
 * start the unit again per the restore policy and wait for the containers, run
 * the pending undo hooks, thaw the socket.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerEngine, UnitManager } from '../core/ports.js';
import { PodmanEngine } from '../podman/podman.js';
import { zoopaStateDir } from '../paths.js';
import { SystemctlUserManager } from '../systemd/systemctl.js';
import { which } from '../unitfile/tools.js';
import type { RestorePolicy } from './config.js';
import { sleep, throwIfAborted } from './engine.js';
import { loadFreezer, type OndemandFreezer } from './freeze.js';
import { runHookCommand, type PendingUndo } from './hooks.js';
import { acquireLock, BackupLockedError, type BackupLock } from './lock.js';
import { writeFileAtomic } from '../fsutil.js';

/** `<XDG_STATE_HOME>/zoopa/backup`: lock, journal, status. */
export function backupStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(zoopaStateDir(env), 'backup');
}
export function lockFile(stateDir: string): string {
  return path.join(stateDir, 'lock');
}
export function journalDir(stateDir: string): string {
  return path.join(stateDir, 'journal');
}

export interface PriorState {
  unitActive: boolean;
  /** ActiveState as systemd reported it. */
  unitState: string;
  /** Names of the project's running containers. */
  containers: string[];
  /** The on-demand socket, when the stack has one. */
  socket: { unit: string; active: boolean } | null;
}

export interface JournalEntry {
  version: 1;
  stack: string;
  stackDir: string;
  unit: string;
  project: string;
  /** Containers are seen through `sudo -n podman` (the rootful stack). */
  rootful?: boolean;
  pid: number;
  startedAt: string;
  restore: RestorePolicy;
  startTimeoutSec: number;
  prior: PriorState;
  /** We froze the on-demand socket (thaw it). */
  frozen: boolean;
  /** We asked systemd to stop the unit (start it again per policy). */
  stopped: boolean;
  /** Undo hooks whose hooks succeeded, oldest first (they run newest first). */
  pendingUndo: PendingUndo[];
}

/** Writes are atomic (temporary file, fsync, rename), so a killed run never leaves half a journal. */
export function writeJsonAtomic(file: string, data: unknown): void {
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n', { mode: 0o600, dirMode: 0o700, fsync: true });
}

export class JournalStore {
  constructor(readonly dir: string) {}

  file(stack: string): string {
    return path.join(this.dir, `${stack}.json`);
  }

  write(entry: JournalEntry): void {
    writeJsonAtomic(this.file(entry.stack), entry);
  }

  read(stack: string): JournalEntry | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(stack), 'utf8')) as JournalEntry;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Every journal left behind, with files that cannot be read reported separately. */
  list(): { entries: JournalEntry[]; unreadable: Array<{ file: string; error: string }> } {
    const entries: JournalEntry[] = [];
    const unreadable: Array<{ file: string; error: string }> = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { entries, unreadable };
      throw e;
    }
    for (const n of names) {
      const file = path.join(this.dir, n);
      try {
        const e = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalEntry;
        if (e.version !== 1 || typeof e.stack !== 'string' || !e.prior) throw new Error('not a zoopa backup journal');
        entries.push(e);
      } catch (err) {
        unreadable.push({ file, error: (err as Error).message });
      }
    }
    return { entries, unreadable };
  }

  remove(stack: string): void {
    fs.rmSync(this.file(stack), { force: true });
  }
}

/**
 * Restore policy: `always`, or `previous`: start again only if its containers were
 * running before (or the unit was being started at that moment, e.g. woken on demand).
 */
export function shouldStart(entry: Pick<JournalEntry, 'restore' | 'prior'>): boolean {
  return entry.restore === 'always' || entry.prior.containers.length > 0 || entry.prior.unitState === 'activating';
}

export interface WaitOptions {
  timeoutSec: number;
  pollMs?: number;
  signal?: AbortSignal | undefined;
}

/**
 * Poll `runningByProject()` (one podman ps per poll) until `done(names)` holds.
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
    const running = ((await containers.runningByProject()).get(project) ?? []).map((c) => c.name).sort();
    if (done(running)) return { ok: true, running };
    if (Date.now() >= deadline) return { ok: false, running };
    await sleep(Math.min(opts.pollMs ?? 1000, Math.max(1, deadline - Date.now())), opts.signal);
  }
}

/** The containers that were running before are all running again (at least one when none were recorded). */
export function backUp(prior: readonly string[]): (running: string[]) => boolean {
  return (running) => (prior.length ? prior.every((n) => running.includes(n)) : running.length > 0);
}

export interface PutBackDeps {
  units: UnitManager;
  /** Sees the entry's containers (the rootful one for a rootful stack). */
  containers: ContainerEngine;
  freezer: OndemandFreezer;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Persist the entry after each step (so a second kill does not repeat finished steps). */
  save: (entry: JournalEntry) => void;
  pollMs?: number;
  /** Skip the unit start (the runner has already started it). */
  skipStart?: boolean;
}

/**
 * Put a stack back as the journal says it was: start the unit per policy and
 * wait for its containers, run pending undo hooks (newest first), thaw the
 * socket. Every step is attempted; the errors are returned.
 */
export async function putBack(entry: JournalEntry, deps: PutBackDeps): Promise<string[]> {
  const errors: string[] = [];
  if (entry.stopped && !deps.skipStart) {
    if (shouldStart(entry)) {
      try {
        deps.log(`starting ${entry.unit} again (${entry.restore === 'always' ? 'restore: always' : `was running: ${entry.prior.containers.join(', ')}`})`);
        await deps.units.start(entry.unit);
        const w = await waitForContainers(deps.containers, entry.project, backUp(entry.prior.containers), {
          timeoutSec: entry.startTimeoutSec,
          pollMs: deps.pollMs,
        });
        if (!w.ok) throw new Error(`containers of ${entry.project} not back within ${entry.startTimeoutSec}s (running: ${w.running.join(', ') || 'none'})`);
        entry.stopped = false;
        deps.save(entry);
      } catch (e) {
        errors.push(`starting ${entry.unit}: ${(e as Error).message}`);
      }
    } else {
      deps.log(`leaving ${entry.unit} stopped: its containers were not running before (restore: previous)`);
      entry.stopped = false;
      deps.save(entry);
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
    deps.save(entry);
  }
  if (entry.frozen) {
    try {
      deps.log(`thawing the on-demand socket of ${entry.stack}`);
      await deps.freezer.thaw(entry.stack, deps.env, entry.pid);
      entry.frozen = false;
      deps.save(entry);
    } catch (e) {
      errors.push(`thawing ${entry.stack}: ${(e as Error).message}`);
    }
  }
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
    const containers = opts.containers ?? new PodmanEngine(env);
    const rootfulContainers = opts.rootfulContainers ?? new PodmanEngine(env, which('podman', env) ?? 'podman', [which('sudo', env) ?? 'sudo', '-n']);
    const freezer = opts.freezer ?? loadFreezer(units);
    for (const entry of entries) {
      log(`${entry.stack}: repairing after an interrupted backup (pid ${entry.pid}, started ${entry.startedAt})`);
      const errors = await putBack(entry, {
        units,
        containers: entry.rootful ? rootfulContainers : containers,
        freezer,
        env,
        log: (line) => log(`${entry.stack}: ${line}`),
        save: (e) => store.write(e),
        pollMs: opts.pollMs,
      });
      if (errors.length) {
        report.failed.push({ stack: entry.stack, errors });
      } else {
        store.remove(entry.stack);
        report.repaired.push(entry.stack);
      }
    }
  } finally {
    lock?.release();
  }
  return report;
}
