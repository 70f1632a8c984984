/**
 * restic behind the BackupEngine interface: one `restic backup --json` per job,
 * tagged `zoopa` and `stack:<name>`, its result read from restic's JSON summary
 * message; then, when configured, `restic forget --keep-* [--prune]` over that
 * stack's snapshots.
 *
 * The repository reaches restic as RESTIC_REPOSITORY, never in argv; restic's
 * output is logged with URL credentials redacted (src/backup/redact.ts).
 *
 * Exit statuses (restic 0.14): 0 done, 1 fatal (no snapshot), 3 snapshot
 * written but some files could not be read. 3 counts as failure: the backup is incomplete.
 */
import fs from 'node:fs';
import { formatArgv, TimeoutError, trimOutput } from '../../errors.js';
import { run, type RunResult } from '../../exec.js';
import { DEFAULT_JOB_TIMEOUT, type ForgetConfig } from '../config.js';
import { BackupJobError, throwIfAborted, type BackupEngine, type JobContext, type JobResult, type JobSpec } from '../engine.js';
import { formatBytes } from '../../format.js';
import { redactUrls } from '../redact.js';

export interface ResticEngineOptions {
  /** restic executable. */
  command: string;
  /** argv before restic, e.g. ['podman', 'unshare'] to read files owned by subordinate uids. */
  prefix?: readonly string[];
  /** -r; undefined: $RESTIC_REPOSITORY from env. */
  repository?: string | undefined;
  /** --password-file; undefined: $RESTIC_PASSWORD / $RESTIC_PASSWORD_FILE from env. */
  passwordFile?: string | undefined;
  init?: boolean;
  forget?: ForgetConfig | undefined;
  env?: NodeJS.ProcessEnv;
  /** Deadline of opening (or creating) the repository; the backup itself has the job's timeout. Default 2 minutes. */
  callTimeoutMs?: number;
}

/** restic's `summary` message of `backup --json`. */
export interface ResticSummary {
  message_type: 'summary';
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  dirs_new: number;
  dirs_changed: number;
  dirs_unmodified: number;
  data_added: number;
  total_files_processed: number;
  total_bytes_processed: number;
  total_duration: number;
  snapshot_id?: string;
}

/** The summary message in `backup --json` output (the last one, if several). */
export function parseResticSummary(stdout: string): ResticSummary | undefined {
  let summary: ResticSummary | undefined;
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const msg = JSON.parse(t) as { message_type?: string };
      if (msg.message_type === 'summary') summary = msg as ResticSummary;
    } catch {
      /* a partial or non-JSON line: ignore */
    }
  }
  return summary;
}

export function summarize(s: ResticSummary): string {
  return (
    `snapshot ${s.snapshot_id ?? '?'}: ${s.total_files_processed} files (${s.files_new} new, ${s.files_changed} changed), ` +
    `${formatBytes(s.data_added)} added`
  );
}

/** One entry of `restic snapshots --json`. */
export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  paths: string[];
  tags?: string[];
  hostname?: string;
}

export function stackTags(stack: string, extra: readonly string[] = []): string[] {
  return ['zoopa', `stack:${stack}`, ...extra];
}

export function forgetArgs(f: ForgetConfig): string[] {
  const args: string[] = [];
  const keys: Array<[keyof ForgetConfig, string]> = [
    ['keep_last', '--keep-last'],
    ['keep_hourly', '--keep-hourly'],
    ['keep_daily', '--keep-daily'],
    ['keep_weekly', '--keep-weekly'],
    ['keep_monthly', '--keep-monthly'],
    ['keep_yearly', '--keep-yearly'],
    ['keep_within', '--keep-within'],
  ];
  for (const [k, flag] of keys) if (f[k] !== undefined) args.push(flag, String(f[k]));
  if (args.length && f.prune) args.push('--prune');
  return args;
}

export class ResticEngine implements BackupEngine {
  readonly kind = 'restic' as const;
  private readonly baseEnv: NodeJS.ProcessEnv;
  private ready: Promise<void> | undefined;

  constructor(private readonly opts: ResticEngineOptions) {
    this.baseEnv = opts.env ?? process.env;
  }

  /**
   * restic argv with the password option. The repository is never in argv (which
   * every user can read in /proc, and which logs and errors print): it may carry
   * credentials, so it goes to restic as RESTIC_REPOSITORY (see env()).
   */
  argv(args: readonly string[]): string[] {
    return [...(this.opts.prefix ?? []), this.opts.command, ...(this.opts.passwordFile ? ['--password-file', this.opts.passwordFile] : []), ...args];
  }

  /** restic's environment: ours, with RESTIC_REPOSITORY set when the repository is configured. */
  childEnv(): NodeJS.ProcessEnv {
    return this.opts.repository ? { ...this.baseEnv, RESTIC_REPOSITORY: this.opts.repository } : this.baseEnv;
  }

  private restic(args: readonly string[], opts: { timeoutMs?: number; signal?: AbortSignal | undefined } = {}): Promise<RunResult> {
    return run(this.argv(args), { env: this.childEnv(), reject: false, timeoutMs: opts.timeoutMs, signal: opts.signal });
  }

  private failed(what: string, r: RunResult): BackupJobError {
    const err = trimOutput(redactUrls(r.stderr), 1000).split('\n').filter((l) => l.trim());
    return new BackupJobError(`${what}: ${formatArgv(r.argv)} exited with status ${r.status ?? r.signal}${err.length ? `: ${err.slice(-2).join(' ')}` : ''}`);
  }

  /** The repository opens with the password (created first when `init` is set). */
  private ensureRepository(signal?: AbortSignal): Promise<void> {
    this.ready ??= (async () => {
      const r = await this.restic(['cat', 'config'], { timeoutMs: this.opts.callTimeoutMs ?? 120_000, signal });
      if (r.status === 0) return;
      if (this.opts.init && /no such file or directory|Is there a repository/i.test(r.stderr)) {
        const i = await this.restic(['init'], { timeoutMs: this.opts.callTimeoutMs ?? 120_000, signal });
        if (i.status !== 0) throw this.failed('creating the restic repository', i);
        return;
      }
      const e = this.failed('the restic repository cannot be opened', r);
      throw new BackupJobError(e.message, { hint: 'check backup.restic.repository and the password (password_file, RESTIC_PASSWORD); set backup.restic.init: true to create it' });
    })();
    const p = this.ready;
    p.catch(() => (this.ready = undefined));
    return p;
  }

  async prepare(job: JobSpec, ctx: JobContext): Promise<void> {
    if (job.engine !== 'restic') throw new Error('ResticEngine given a Duplicati job');
    await this.ensureRepository(ctx.signal);
  }

  async run(job: JobSpec, ctx: JobContext): Promise<JobResult> {
    if (job.engine !== 'restic') throw new Error('ResticEngine given a Duplicati job');
    await this.ensureRepository(ctx.signal);
    const tags = stackTags(ctx.stack, job.tags);
    const args = ['backup', '--json', ...tags.flatMap((t) => ['--tag', t]), ...job.exclude.flatMap((e) => ['--exclude', e]), '--', ...job.paths];
    ctx.log(`running ${formatArgv(this.argv(args))}`);
    let r: RunResult;
    try {
      r = await this.restic(args, { timeoutMs: job.timeoutSec * 1000, signal: ctx.signal });
    } catch (e) {
      if (e instanceof TimeoutError) throw new BackupJobError(`restic backup of ${ctx.stack} did not finish within ${job.timeoutSec}s`, { cause: e });
      throw e;
    }
    throwIfAborted(ctx.signal);
    for (const line of redactUrls(r.stderr).split('\n')) if (line.trim()) ctx.log(`  restic: ${line}`);
    const summary = parseResticSummary(r.stdout);
    if (r.status === 3) {
      throw new BackupJobError(this.failed(`restic backup of ${ctx.stack} is incomplete (some files could not be read)`, r).message, {
        hint: this.opts.prefix?.length
          ? 'check the permissions of the files restic names'
          : 'files written by containers as other users belong to subordinate uids: set backup.restic.unshare: true',
      });
    }
    if (r.status !== 0) throw this.failed(`restic backup of ${ctx.stack} failed`, r);
    if (!summary) throw new BackupJobError(`restic backup of ${ctx.stack} exited 0 but printed no summary message`);
    const text = summarize(summary);
    ctx.log(`restic backup done: ${text}`);

    if (this.opts.forget) {
      const keep = forgetArgs(this.opts.forget);
      if (keep.length) {
        const fargs = ['forget', '--tag', tags.slice(0, 2).join(','), ...keep];
        ctx.log(`running ${formatArgv(this.argv(fargs))}`);
        const f = await this.restic(fargs, { timeoutMs: job.timeoutSec * 1000, signal: ctx.signal });
        throwIfAborted(ctx.signal);
        for (const line of redactUrls(f.stdout + f.stderr).split('\n')) if (line.trim()) ctx.log(`  restic: ${line}`);
        if (f.status !== 0) throw this.failed(`restic forget for ${ctx.stack} failed (the backup itself succeeded)`, f);
      }
    }
    return { engine: 'restic', job: job.paths.join(' '), summary: text, data: { ...summary } };
  }

  /** The stack's snapshots (tags zoopa and stack:<name>), as restic lists them (oldest first). */
  async snapshots(stack: string, opts: { timeoutMs?: number } = {}): Promise<ResticSnapshot[]> {
    const r = await this.restic(['snapshots', '--json', '--tag', stackTags(stack).join(',')], { timeoutMs: opts.timeoutMs ?? this.opts.callTimeoutMs ?? 120_000 });
    if (r.status !== 0) throw this.failed(`listing the snapshots of ${stack}`, r);
    try {
      return JSON.parse(r.stdout || '[]') as ResticSnapshot[];
    } catch (e) {
      throw new BackupJobError(`cannot read the output of ${formatArgv(r.argv)}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Size and file count of one snapshot (restic stats, restore-size mode). */
  async stats(id: string, opts: { timeoutMs?: number } = {}): Promise<{ total_size: number; total_file_count: number }> {
    const r = await this.restic(['stats', '--json', '--', id], { timeoutMs: opts.timeoutMs ?? this.opts.callTimeoutMs ?? 120_000 });
    if (r.status !== 0) throw this.failed(`reading the size of snapshot ${id}`, r);
    return JSON.parse(r.stdout) as { total_size: number; total_file_count: number };
  }

  /** `restic check` (reading `subset` of the data, e.g. "10%", when given): ok, and restic's last lines. */
  async check(opts: { subset?: string | undefined; timeoutMs?: number } = {}): Promise<{ ok: boolean; detail: string }> {
    const r = await this.restic(['check', ...(opts.subset ? ['--read-data-subset', opts.subset] : [])], { timeoutMs: opts.timeoutMs ?? DEFAULT_JOB_TIMEOUT * 1000 });
    const lines = redactUrls(`${r.stdout}\n${r.stderr}`)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^\[\d+:\d\d\]/.test(l));
    if (r.status === 0) return { ok: true, detail: lines.filter((l) => /no errors|read .* of data/.test(l)).join('; ') || 'no errors were found' };
    return { ok: false, detail: `restic check exited with status ${r.status ?? r.signal}: ${lines.slice(-3).join('; ')}` };
  }

  /**
   * Rename `from` to `to` (same filesystem) as restic runs: through the prefix (`podman
   * unshare mv -T`) when there is one, so folders owned by container users move too.
   */
  async rename(from: string, to: string): Promise<void> {
    if (!this.opts.prefix?.length) {
      fs.renameSync(from, to);
      return;
    }
    const r = await run([...this.opts.prefix, 'mv', '-T', '--', from, to], { reject: false, timeoutMs: this.opts.callTimeoutMs ?? 120_000 });
    if (r.status !== 0) throw new BackupJobError(`moving ${from} to ${to}: ${formatArgv(r.argv)} exited with status ${r.status ?? r.signal}: ${trimOutput(r.stderr, 500)}`);
  }

  /** Remove a staging folder of ours (through the prefix, as restic wrote it). Returns an error text, or undefined. */
  async removeStaging(dir: string): Promise<string | undefined> {
    if (!this.opts.prefix?.length) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    }
    const r = await run([...this.opts.prefix, 'rm', '-rf', '--one-file-system', '--', dir], { reject: false, timeoutMs: this.opts.callTimeoutMs ?? 120_000 });
    return r.status === 0 ? undefined : `${formatArgv(r.argv)} exited with status ${r.status ?? r.signal}: ${trimOutput(r.stderr, 300)}`;
  }

  /** Restore snapshot `id` into `target`, only `include` when given (restic restore --include). Throws BackupJobError. */
  async restoreInto(id: string, target: string, opts: { include?: readonly string[]; timeoutMs?: number; signal?: AbortSignal | undefined; log?: (line: string) => void } = {}): Promise<void> {
    const args = ['restore', '--target', target, ...(opts.include ?? []).flatMap((p) => ['--include', p]), '--', id];
    opts.log?.(`running ${formatArgv(this.argv(args))}`);
    const r = await this.restic(args, { timeoutMs: opts.timeoutMs ?? DEFAULT_JOB_TIMEOUT * 1000, signal: opts.signal });
    throwIfAborted(opts.signal);
    for (const line of redactUrls(r.stderr).split('\n')) if (line.trim()) opts.log?.(`  restic: ${line}`);
    if (r.status !== 0) throw this.failed(`restoring snapshot ${id}`, r);
  }

  /** Restore the stack's latest snapshot into `target` (what a user does by hand; used by tests). */
  async restoreLatest(stack: string, target: string): Promise<void> {
    const r = await this.restic(['restore', 'latest', '--tag', stackTags(stack).join(','), '--target', target]);
    if (r.status !== 0) throw this.failed(`restoring ${stack}`, r);
  }
}
