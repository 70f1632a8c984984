/**
 * What `zoopa doctor` can ask the backup feature: is there a journal left by an
 * interrupted run (read only; the fix is `zoopa backup repair`, which calls
 * repairFromJournal(), as every `zoopa backup` does first)?
 */
import { backupStateDir, journalDir, JournalStore, lockFile } from './journal.js';
import { holderAlive, readLock } from './lock.js';

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
    fix: 'zoopa backup repair (the next "zoopa backup" also repairs it first)',
  };
}
