/**
 * What `zoopa doctor` asks the backup feature. It only reads:
 *  - is there a journal left by an interrupted run? The fix is `zoopa backup
 *    repair` (or `zoopa doctor --fix`), which calls repairFromJournal(), as every
 *    `zoopa backup` does first;
 *  - is the restic password file readable by anyone but its owner?
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Project } from '../stacks/discover.js';
import { backupStateDir, journalDir, JournalStore, lockFile } from './journal.js';
import { holderAlive, readLock } from './lock.js';
import { backupConfig } from './plan.js';

export interface BackupCheckResult {
  check: string;
  verdict: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

export async function backupJournalCheck({ env }: { env: NodeJS.ProcessEnv }): Promise<BackupCheckResult> {
  const stateDir = backupStateDir(env);
  const { entries, unreadable } = new JournalStore(journalDir(stateDir)).list();
  const lock = readLock(lockFile(stateDir));
  if (lock && holderAlive(lock)) return { check: 'backup journal', verdict: 'ok', detail: `a backup is running (pid ${lock.pid}, started ${lock.startedAt})` };
  if (!entries.length && !unreadable.length) return { check: 'backup journal', verdict: 'ok', detail: 'no interrupted backup left anything behind' };
  const what = entries.map((e) => {
    const parts = [e.stopped ? 'unit stopped' : 'unit untouched'];
    if (e.frozen) parts.push('on-demand frozen');
    if (e.pendingUndo.length) parts.push(`${e.pendingUndo.length} undo hook(s) pending`);
    return `${e.stack} (${parts.join(', ')}; pid ${e.pid}, started ${e.startedAt})`;
  });
  return {
    check: 'backup journal',
    verdict: 'fail',
    detail: `an interrupted backup left ${[...what, ...unreadable.map((u) => `unreadable ${u.file}`)].join(', ')}`,
    fix: 'zoopa backup repair, or zoopa doctor --fix (the next "zoopa backup" also repairs it first)',
  };
}

/** The restic password file (backup.restic.password_file, else $RESTIC_PASSWORD_FILE) is readable by its owner only. */
export async function resticPasswordFileCheck({ project, env }: { project: Project | undefined; env: NodeJS.ProcessEnv }): Promise<BackupCheckResult[]> {
  const configured = project ? backupConfig(project).restic.password_file : undefined;
  const file = configured && project ? path.resolve(project.root, configured) : env.RESTIC_PASSWORD_FILE;
  if (!file) return [];
  const check = 'restic password file';
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return [{ check, verdict: 'fail', detail: `${file}: ${(e as Error).message}`, fix: 'create it with the repository password on one line, mode 0600' }];
  }
  const mode = st.mode & 0o777;
  if (mode & 0o077) {
    const who = [mode & 0o070 ? 'its group' : '', mode & 0o007 ? 'other users' : ''].filter(Boolean).join(' and ');
    return [{ check, verdict: 'warn', detail: `${file} (mode ${mode.toString(8).padStart(4, '0')}) can be read or changed by ${who}`, fix: `chmod 600 ${file}` }];
  }
  return [{ check, verdict: 'ok', detail: `${file} is readable by its owner only` }];
}

/** The backup feature's checks, for `zoopa doctor`. */
export async function backupChecks(ctx: { project: Project | undefined; env: NodeJS.ProcessEnv }): Promise<BackupCheckResult[]> {
  return [await backupJournalCheck(ctx), ...(await resticPasswordFileCheck(ctx))];
}
