/**
 * The backup journal, the store only: before a stack is touched, its prior state
 * (unit active, containers running, on-demand socket) is written to
 * `<state>/backup/journal/<stack>.json`; as the run goes on, the journal records
 * what has been changed (socket frozen, unit stopped, undo hooks pending). The
 * file is removed only once the stack is back as it was.
 *
 * Putting a stack back from its journal (after a failure, a signal, or a SIGKILL
 * seen by the next run or `zoopa backup repair`) is src/backup/put-back.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { zoopaStateDir } from '../paths.js';
import type { RestorePolicy } from './config.js';
import type { PendingUndo } from './hooks.js';
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
  /** The on-demand socket (unless the stack opts out with `freeze: false`). */
  socket: { unit: string; active: boolean; enabled?: boolean } | null;
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

