/**
 * Synchronous /proc helpers, used to find and kill what a test bed left running
 * (also from a process 'exit' handler, where nothing asynchronous runs).
 */
import fs from 'node:fs';
import { processStartTime as startTime } from '../../src/proc.js';

/** Start time of a process (see src/proc.ts): with the pid, a unique process id. */
export { startTime };

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}


/** "<pid>-<starttime>": identifies a live process, immune to pid reuse. */
export function processTag(pid: number): string | undefined {
  const st = startTime(pid);
  return st === undefined ? undefined : `${pid}-${st}`;
}

/** True when the process named by a processTag is still the same running process. */
export function tagAlive(tag: string): boolean {
  const m = /^(\d+)-(\d+)$/.exec(tag);
  if (!m) return false;
  return startTime(Number(m[1])) === m[2];
}

export function listPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function ppid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The value of one environment variable of a process (readable for own processes, or as root). */
export function environVar(pid: number, name: string): string | undefined {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    for (const kv of env.split('\0')) if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
  } catch {
    /* gone or not ours */
  }
  return undefined;
}

/** The real uid of a process. */
export function procUid(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The process's cgroup v2 path (the "0::" line of /proc/<pid>/cgroup). */
export function procCgroup2(pid: number): string | undefined {
  try {
    const m = /^0::(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** The user namespace of a process, as the link text "user:[inode]". */
export function userNamespace(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/user`);
  } catch {
    return undefined;
  }
}

/** True for a process that has exited but was not reaped yet (it holds no resources, cannot be killed). */
export function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true; // gone
  }
}

/** The given pids plus all their descendants (excluding this process and zombies). */
export function withDescendants(roots: Iterable<number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const pid of listPids()) {
    const pp = ppid(pid);
    if (pp === undefined) continue;
    const list = children.get(pp) ?? [];
    list.push(pid);
    children.set(pp, list);
  }
  const out = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (out.has(pid) || pid === process.pid || pid <= 1) continue;
    if (!isZombie(pid)) out.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Sends a signal to each pid, ignoring processes that are already gone. */
export function killAll(pids: Iterable<number>, signal: NodeJS.Signals = 'SIGKILL'): number {
  let n = 0;
  for (const pid of pids) {
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}
