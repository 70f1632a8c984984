/**
 * Per-stack logs (append-only, one file per stack per day, as the original:
 * `<root>/duplicati/logs/backup-<stack>-YYYY-MM-DD.log`) and the status file
 * `zoopa backup status` reads (`<state>/backup/status.json`: the last run per stack).
 *
 * Both are readable by their owner only (0600; a log folder zoopa creates is 0700;
 * an older log file found readable by others is narrowed to 0600), and every log
 * line has the credentials of URLs redacted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from './journal.js';
import { redactUrls } from './redact.js';
import { formatDuration } from '../config/duration.js';

export class StackLog {
  private failed = false;
  constructor(
    readonly file: string,
    private readonly onError: (msg: string) => void = () => {},
  ) {}

  line(text: string): void {
    if (this.failed) return;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const stamp = new Date().toISOString();
      const fd = fs.openSync(this.file, 'a', 0o600);
      try {
        if ((fs.fstatSync(fd).mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
        fs.writeSync(fd, redactUrls(text).split('\n').map((l) => `${stamp} [${process.pid}] ${l}\n`).join(''));
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      // A log we cannot write must not fail the backup: say so once, keep going.
      this.failed = true;
      this.onError(`cannot write ${this.file}: ${(e as Error).message}`);
    }
  }
}

export interface JobStatus {
  engine: string;
  job: string;
  summary: string;
}

export interface StackStatus {
  stack: string;
  result: 'ok' | 'failed' | 'interrupted';
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  jobs: JobStatus[];
  error?: string | undefined;
  /** How long the stack was down for this backup (stop → running again); 0 when it was not running before. */
  downtimeSec?: number | undefined;
  /** When the last successful run of this stack finished (this one, or an earlier one). */
  lastSuccessAt?: string | undefined;
  /** Problems putting the stack back (its journal is kept for the next run to repair). */
  restoreErrors?: string[] | undefined;
  logFile: string;
}

export interface StatusFile {
  version: 1;
  stacks: Record<string, StackStatus>;
  /** The last HISTORY_KEEP runs of every stack, oldest first (for the status page). */
  history?: StackStatus[];
}

export const HISTORY_KEEP = 50;

export function statusFile(stateDir: string): string {
  return path.join(stateDir, 'status.json');
}

export function readStatus(stateDir: string): StatusFile {
  try {
    const v = JSON.parse(fs.readFileSync(statusFile(stateDir), 'utf8')) as StatusFile;
    if (v && typeof v.stacks === 'object') return v;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  return { version: 1, stacks: {} };
}

export function recordStatus(stateDir: string, s: StackStatus): void {
  const cur = readStatus(stateDir);
  const prev = cur.stacks[s.stack];
  const lastSuccessAt = s.result === 'ok' ? s.finishedAt : (prev?.lastSuccessAt ?? (prev?.result === 'ok' ? prev.finishedAt : undefined));
  cur.stacks[s.stack] = { ...s, lastSuccessAt };
  cur.history = [...(cur.history ?? []), { ...s, lastSuccessAt }].slice(-HISTORY_KEEP);
  writeJsonAtomic(statusFile(stateDir), cur);
}

/** The summary table printed at the end of a run. */
export function summaryTable(outcome: { stacks: Array<StackStatus | { stack: string; result: 'skipped'; error: string }> }): string {
  const rows = outcome.stacks.map((s) => [
    s.stack,
    s.result === 'ok' ? 'ok' : s.result.toUpperCase(),
    'durationSec' in s ? formatDuration(s.durationSec) : '-',
    s.result === 'ok' && 'jobs' in s ? s.jobs.map((j) => j.summary).join('; ') : (s.error ?? ''),
  ]);
  const head = ['STACK', 'RESULT', 'TIME', 'DETAILS'];
  const w = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c)).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n') + '\n';
}
