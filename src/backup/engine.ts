/**
 * What the backup runner needs from a backup tool. The runner is written
 * against this interface; src/backup/engines/duplicati.ts and
 * src/backup/engines/restic.ts implement it.
 */
import { StateError } from '../errors.js';

export interface DuplicatiJobSpec {
  engine: 'duplicati';
  /** Job name or ID as the user wrote it. */
  job: string;
  timeoutSec: number;
}

export interface ResticJobSpec {
  engine: 'restic';
  /** Absolute paths to back up. */
  paths: string[];
  /** Tags besides zoopa and stack:<name>. */
  tags: string[];
  exclude: string[];
  timeoutSec: number;
  /** Where the paths came from, for the plan ("zoopa.yaml" or "bind mounts of compose.yaml"). */
  pathsFrom: string;
}

export type JobSpec = DuplicatiJobSpec | ResticJobSpec;

export function describeJob(job: JobSpec): string {
  return job.engine === 'duplicati' ? `duplicati job ${JSON.stringify(job.job)}` : `restic ${job.paths.join(' ')}`;
}

export interface JobContext {
  stack: string;
  stackDir: string;
  /** A line for the stack's log (and the journal / terminal). */
  log: (line: string) => void;
  /** Fires on SIGINT/SIGTERM: stop what you are doing. */
  signal?: AbortSignal | undefined;
}

export interface JobResult {
  engine: 'duplicati' | 'restic';
  job: string;
  /** One line for the summary table and `zoopa backup status`. */
  summary: string;
  /** Engine-specific figures (restic's summary message, Duplicati's job result). */
  data?: Record<string, unknown>;
}

export interface BackupEngine {
  readonly kind: 'duplicati' | 'restic';
  /**
   * Checks done before the stack is touched: the job exists, the repository
   * is reachable. Throws (a BackupJobError or CommandError) when the job cannot run.
   */
  prepare(job: JobSpec, ctx: JobContext): Promise<void>;
  /** Run the job, wait until it has really finished, and confirm its result. Throws BackupJobError on failure. */
  run(job: JobSpec, ctx: JobContext): Promise<JobResult>;
}

/** A backup job failed (exit status, failed result, timeout). */
export class BackupJobError extends StateError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('ZOOPA_BACKUP_JOB_FAILED', message, opts);
  }
}

/** Sleep, waking early (and rejecting) when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The run was interrupted by a signal. */
export class InterruptedError extends StateError {
  constructor(what: string) {
    super('ZOOPA_BACKUP_INTERRUPTED', `interrupted by ${what}`);
  }
}

export function abortError(signal: AbortSignal): InterruptedError {
  const r: unknown = signal.reason;
  return r instanceof InterruptedError ? r : new InterruptedError(typeof r === 'string' ? r : 'a signal');
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}
