/** Facts about processes from /proc. */
import fs from 'node:fs';

/**
 * Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot.
 * With the pid, it names one process uniquely (pids are reused, this pair is not).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
