/**
 * One backup run at a time. The lock is a file created with O_EXCL holding the
 * holder's pid, its kernel start time (so a reused pid is not mistaken for the
 * holder) and when it started. A second run fails at once naming the holder;
 * the lock of a process that no longer exists is taken over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StateError } from '../errors.js';
import { processStartTime } from '../proc.js';

export interface LockInfo {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), when readable. */
  procStart?: string | undefined;
  /** ISO time the run started. */
  startedAt: string;
  argv: string[];
}

export class BackupLockedError extends StateError {
  constructor(
    readonly holder: LockInfo,
    readonly file: string,
  ) {
    super('ZOOPA_BACKUP_LOCKED', `another backup is running: pid ${holder.pid}, started ${holder.startedAt}`, {
      hint: `wait for it to finish (lock file ${file}); "zoopa backup status" shows the last results`,
    });
  }
}

/** Start time of a process from /proc, or undefined (kept under this name for the lock's callers). */
export const procStartTime = processStartTime;

/** Is the process that wrote `info` still running? */
export function holderAlive(info: Pick<LockInfo, 'pid' | 'procStart'>): boolean {
  if (!Number.isInteger(info.pid) || info.pid <= 0) return false;
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (info.procStart) {
    const now = procStartTime(info.pid);
    if (now !== undefined && now !== info.procStart) return false; // the pid was reused
  }
  return true;
}

export function readLock(file: string): LockInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text) as LockInfo;
    if (typeof v.pid === 'number') return v;
  } catch {
    /* torn or foreign content: treated as stale below */
  }
  return { pid: 0, startedAt: 'unknown', argv: [] };
}

export interface BackupLock {
  file: string;
  info: LockInfo;
  /** Remove the lock if it is still ours. */
  release(): void;
  /** The lock that was taken over, if its holder had died. */
  tookOverFrom: LockInfo | undefined;
}

export function acquireLock(file: string, opts: { argv?: string[]; now?: Date } = {}): BackupLock {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const info: LockInfo = {
    pid: process.pid,
    procStart: procStartTime(process.pid),
    startedAt: (opts.now ?? new Date()).toISOString(),
    argv: opts.argv ?? process.argv.slice(2),
  };
  const text = JSON.stringify(info) + '\n';
  let tookOverFrom: LockInfo | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Write the content fully before the name appears, so readers never see a torn lock.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    try {
      fs.linkSync(tmp, file);
      fs.unlinkSync(tmp);
      const lock: BackupLock = {
        file,
        info,
        tookOverFrom,
        release() {
          const cur = readLock(file);
          if (cur && cur.pid === info.pid && cur.startedAt === info.startedAt) fs.rmSync(file, { force: true });
        },
      };
      return lock;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readLock(file);
    if (!holder) continue; // released meanwhile: try again
    if (holderAlive(holder)) throw new BackupLockedError(holder, file);
    // Stale: move it aside atomically; only one contender's rename wins for this file.
    const aside = `${file}.stale.${process.pid}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readLock(aside);
    if (moved && moved.pid !== holder.pid && holderAlive(moved)) {
      // We moved a fresh lock someone else took in between: put it back and give up.
      try {
        fs.linkSync(aside, file);
      } catch {
        /* the name is taken again; the other holder keeps its lock file either way */
      }
      fs.rmSync(aside, { force: true });
      throw new BackupLockedError(moved, file);
    }
    fs.rmSync(aside, { force: true });
    tookOverFrom = holder;
  }
  throw new StateError('ZOOPA_BACKUP_LOCK', `cannot take the backup lock ${file}`, { hint: 'remove it if no zoopa backup is running' });
}
