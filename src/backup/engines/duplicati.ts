/**
 * Duplicati behind the BackupEngine interface, through `duplicati-server-util`
 * (inside the rootful Duplicati container by default:
 * `sudo -n podman exec duplicati duplicati-server-util`).
 *
 * The ServerUtil's plain-text interface, as its source prints it:
 *  - every command that talks to the server first prints `Connecting to <url>...`;
 *  - `list-backups` prints `<ID>: <name>` per job; with `--detailed`, indented
 *    `  Last backup: ...`, `  Last duration: ...` and, when the last error is newer
 *    than the last backup, `  Last error: <date> - <message>`;
 *  - `run <job> [--wait]` queues the job; `--wait` polls until the job is neither
 *    active nor queued, prints `Backup finished` and exits 0 WHETHER OR NOT the
 *    backup succeeded; when the job already finished before its first check it
 *    fails with `Backup is not queued or running` (exit 2). Older versions have no `--wait`;
 *  - `status` prints `Server state: ...`, `Active task: [Task N]: BackupId = X`
 *    or `Active task: None`, then `Scheduled tasks:` lines or `Scheduler tasks: Empty`;
 *  - exit 2 for user errors (unknown job, cannot connect), 1 for unexpected ones.
 *
 * So success is never taken from the exit status alone: the job's
 * `list-backups --detailed` block is read before and after the run. A new
 * `Last error` means failure; otherwise a changed `Last backup` or `Last duration`
 * means a completed run; neither means no result was recorded, which is failure.
 */
import { CommandError, formatArgv, TimeoutError, trimOutput } from '../../errors.js';
import { run, type RunResult } from '../../exec.js';
import { BackupJobError, sleep, throwIfAborted, type BackupEngine, type JobContext, type JobResult, type JobSpec } from '../engine.js';

export interface DuplicatiJob {
  id: string;
  name: string;
  /** `  Key: value` lines of `list-backups --detailed`. */
  details: Record<string, string>;
}

export interface DuplicatiTask {
  task: string;
  backupId: string;
}

export interface DuplicatiStatus {
  serverState: string;
  active: DuplicatiTask | undefined;
  scheduled: DuplicatiTask[];
}

export interface DuplicatiEngineOptions {
  /** argv prefix reaching duplicati-server-util. */
  command: readonly string[];
  wait: 'auto' | 'flag' | 'poll';
  pollIntervalSec: number;
  env?: NodeJS.ProcessEnv;
  /** Timeout of one list/status call. */
  callTimeoutMs?: number;
}

/** Parse `list-backups [--detailed]` output. */
export function parseListBackups(stdout: string): DuplicatiJob[] {
  const jobs: DuplicatiJob[] = [];
  let cur: DuplicatiJob | undefined;
  for (const line of stdout.split(/\r?\n/)) {
    const head = /^(\d+): (.*)$/.exec(line);
    if (head) {
      cur = { id: head[1]!, name: head[2]!.trim(), details: {} };
      jobs.push(cur);
      continue;
    }
    const detail = /^\s+([A-Z][A-Za-z ]*?): (.*)$/.exec(line);
    if (detail && cur) cur.details[detail[1]!] = detail[2]!.trim();
    else if (line.trim() === '') cur = undefined;
  }
  return jobs;
}

/** Parse `status` output. */
export function parseStatus(stdout: string): DuplicatiStatus {
  let serverState = '';
  let active: DuplicatiTask | undefined;
  const scheduled: DuplicatiTask[] = [];
  let inScheduled = false;
  for (const line of stdout.split(/\r?\n/)) {
    let m: RegExpExecArray | null;
    if ((m = /^Server state: (.*)$/.exec(line))) {
      serverState = m[1]!.trim();
      inScheduled = false;
    } else if ((m = /^Active task: \[Task (\S+)\]: BackupId = (.*)$/.exec(line))) {
      active = { task: m[1]!, backupId: m[2]!.trim() };
      inScheduled = false;
    } else if (/^Active task: (None|Empty)\s*$/.test(line)) {
      active = undefined;
      inScheduled = false;
    } else if (/^Schedule(d|r) tasks:\s*$/.test(line)) {
      inScheduled = true;
    } else if (inScheduled && (m = /^\s+\[Task (\S+)\]: BackupId = (.*)$/.exec(line))) {
      scheduled.push({ task: m[1]!, backupId: m[2]!.trim() });
    } else if (line.trim() !== '') {
      inScheduled = false;
    }
  }
  if (!serverState) throw new Error('no "Server state:" line');
  return { serverState, active, scheduled };
}

export function findJob(jobs: readonly DuplicatiJob[], wanted: string): DuplicatiJob | undefined {
  return jobs.find((j) => j.id === wanted) ?? jobs.find((j) => j.name.toLowerCase() === wanted.toLowerCase());
}

/** Compare a job's detail block before and after a run. */
export function judgeResult(before: DuplicatiJob, after: DuplicatiJob): { ok: true; summary: string } | { ok: false; reason: string } {
  const errBefore = before.details['Last error'];
  const errAfter = after.details['Last error'];
  if (errAfter && errAfter !== errBefore) return { ok: false, reason: `Duplicati reports: ${errAfter}` };
  const lastBackup = after.details['Last backup'];
  const lastDuration = after.details['Last duration'];
  if ((lastBackup && lastBackup !== before.details['Last backup']) || (lastDuration && lastDuration !== before.details['Last duration'])) {
    const parts = [`last backup ${lastBackup ?? '?'}`];
    if (lastDuration) parts.push(`took ${lastDuration}`);
    if (after.details['Versions']) parts.push(`${after.details['Versions']} versions`);
    return { ok: true, summary: parts.join(', ') };
  }
  return { ok: false, reason: 'Duplicati recorded no new result for the job ("Last backup" unchanged), so its success cannot be confirmed' };
}

export class DuplicatiEngine implements BackupEngine {
  readonly kind = 'duplicati' as const;
  private waitSupport: Promise<boolean> | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly callTimeoutMs: number;

  constructor(private readonly opts: DuplicatiEngineOptions) {
    this.env = opts.env ?? process.env;
    this.callTimeoutMs = opts.callTimeoutMs ?? 120_000;
  }

  /** One duplicati-server-util call; never throws for a non-zero exit (reject: false). */
  private util(args: readonly string[], opts: { timeoutMs?: number; signal?: AbortSignal | undefined } = {}): Promise<RunResult> {
    return run([...this.opts.command, ...args], {
      env: this.env,
      reject: false,
      timeoutMs: opts.timeoutMs ?? this.callTimeoutMs,
      signal: opts.signal,
    });
  }

  private failed(what: string, r: RunResult): BackupJobError {
    const out = trimOutput([r.stdout, r.stderr].filter(Boolean).join('\n'), 1000);
    const last = out.split('\n').filter((l) => l.trim() && !l.startsWith('Connecting to ')).pop() ?? '';
    return new BackupJobError(`${what}: ${formatArgv(r.argv)} exited with status ${r.status ?? r.signal}${last ? `: ${last}` : ''}`, {
      cause: new CommandError(r.argv, r),
      hint: r.status === 2 ? 'duplicati-server-util reported a user error (unknown job, cannot connect or log in)' : undefined,
    });
  }

  async listBackups(signal?: AbortSignal): Promise<DuplicatiJob[]> {
    const r = await this.util(['list-backups', '--detailed'], { signal });
    throwIfAborted(signal);
    if (r.status !== 0) throw this.failed('listing Duplicati jobs', r);
    return parseListBackups(r.stdout);
  }

  async status(signal?: AbortSignal): Promise<DuplicatiStatus> {
    const r = await this.util(['status'], { signal });
    throwIfAborted(signal);
    if (r.status !== 0) throw this.failed('reading Duplicati status', r);
    try {
      return parseStatus(r.stdout);
    } catch (e) {
      throw new BackupJobError(`cannot read the output of ${formatArgv(r.argv)}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Does this duplicati-server-util offer `run --wait`? (Asked once, from `run --help`.) */
  supportsWait(signal?: AbortSignal): Promise<boolean> {
    if (this.opts.wait !== 'auto') return Promise.resolve(this.opts.wait === 'flag');
    this.waitSupport ??= this.util(['run', '--help'], { signal }).then((r) => /--wait\b/.test(r.stdout + r.stderr));
    return this.waitSupport;
  }

  private async resolve(job: JobSpec, signal?: AbortSignal): Promise<DuplicatiJob> {
    if (job.engine !== 'duplicati') throw new Error('DuplicatiEngine given a restic job');
    const jobs = await this.listBackups(signal);
    const found = findJob(jobs, job.job);
    if (!found) {
      throw new BackupJobError(`Duplicati has no job ${JSON.stringify(job.job)}`, {
        hint: jobs.length ? `jobs in Duplicati: ${jobs.map((j) => `${j.id}: ${j.name}`).join(', ')}` : 'Duplicati lists no jobs at all',
      });
    }
    return found;
  }

  async prepare(job: JobSpec, ctx: JobContext): Promise<void> {
    const found = await this.resolve(job, ctx.signal);
    ctx.log(`duplicati job ${JSON.stringify((job as { job: string }).job)} is ${found.id}: ${found.name}`);
  }

  async run(job: JobSpec, ctx: JobContext): Promise<JobResult> {
    if (job.engine !== 'duplicati') throw new Error('DuplicatiEngine given a restic job');
    const signal = ctx.signal;
    const before = await this.resolve(job, signal);
    const label = `${before.id}: ${before.name}`;
    const deadline = Date.now() + job.timeoutSec * 1000;
    const remaining = () => Math.max(1, deadline - Date.now());
    const timedOut = () =>
      new BackupJobError(`Duplicati job ${label} did not finish within ${job.timeoutSec}s`, {
        cause: new TimeoutError('job timeout', job.timeoutSec * 1000),
        hint: 'it may still be running inside Duplicati; raise the job timeout if it needs longer',
      });

    if (await this.supportsWait(signal)) {
      ctx.log(`running duplicati job ${label} (run --wait)`);
      const poll = Math.max(1, Math.round(this.opts.pollIntervalSec));
      let r: RunResult;
      try {
        r = await this.util(['run', before.id, '--wait', '--poll-interval', String(poll)], { timeoutMs: remaining(), signal });
      } catch (e) {
        if (e instanceof TimeoutError) throw timedOut();
        throw e;
      }
      throwIfAborted(signal);
      for (const line of r.stdout.split('\n')) if (line.trim()) ctx.log(`  ${line}`);
      if (r.status === 2 && /not queued or running/i.test(r.stdout + r.stderr)) {
        // The job finished before --wait's first check: read its result below.
        ctx.log('the job finished before duplicati-server-util first checked on it');
      } else if (r.status !== 0) {
        throw this.failed(`Duplicati job ${label} failed`, r);
      }
    } else {
      ctx.log(`running duplicati job ${label} (polling status)`);
      const r = await this.util(['run', before.id], { signal });
      throwIfAborted(signal);
      for (const line of r.stdout.split('\n')) if (line.trim()) ctx.log(`  ${line}`);
      if (r.status !== 0) throw this.failed(`Duplicati job ${label} could not be started`, r);
      for (let first = true; ; first = false) {
        if (!first) await sleep(Math.min(this.opts.pollIntervalSec * 1000, remaining()), signal);
        const s = await this.status(signal);
        const busy = s.active?.backupId === before.id || s.scheduled.some((t) => t.backupId === before.id);
        if (!busy) {
          if (first) ctx.log('the job had already finished at the first status check');
          break;
        }
        if (Date.now() >= deadline) throw timedOut();
      }
    }

    const after = findJob(await this.listBackups(signal), before.id);
    if (!after) throw new BackupJobError(`Duplicati job ${label} disappeared during the run`);
    const verdict = judgeResult(before, after);
    if (!verdict.ok) throw new BackupJobError(`Duplicati job ${label} failed: ${verdict.reason}`);
    ctx.log(`duplicati job ${label} succeeded: ${verdict.summary}`);
    return { engine: 'duplicati', job: label, summary: verdict.summary, data: { ...after.details } };
  }
}
