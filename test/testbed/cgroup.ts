/**
 * One cgroup v2 subtree per test bed, when the test process is root.
 *
 * Why: `systemd --user` wants to move itself into `init.scope` below its own cgroup.
 * On these machines every process sits in the cgroup v2 root, which an unprivileged
 * manager cannot write, so it exits at once (status 1, no message); as root it would
 * instead move *every process of the machine* into /init.scope. So each test bed gets
 *
 *   <cgroup2 mount>/zoopa-testbed/<owner tag>/<tb>/manager   delegated to the test user (systemd --user)
 *   <cgroup2 mount>/zoopa-testbed/<owner tag>/<tb>/run       everything tb.run/tb.spawn start
 *
 * and, as a bonus, a complete list of the test bed's processes (conmon, the rootless
 * pause process, slirp4netns, containers, nginx workers... all stay inside): stop()
 * kills the subtree with cgroup.kill and removes it. `<owner tag>` is
 * "<pid>-<starttime>" of the test process, so leftovers of a killed run are recognised.
 *
 * Processes are placed with a tiny constant shell script (`echo $$ > cgroup.procs; exec "$@"`):
 * all variable data is passed as positional arguments, never interpolated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { killAll, tagAlive } from './procs.js';
import { sleep } from './util.js';

export const CGROUP_BASE = 'zoopa-testbed';

/** The script that joins a cgroup and execs the command: sh -c SCRIPT argv0 <cgroup.procs> cmd args... */
export const JOIN_CGROUP_SCRIPT = 'echo $$ > "$1" || exit 125; shift; exec "$@"';

/** Mount point of the cgroup v2 hierarchy (/sys/fs/cgroup/unified or /sys/fs/cgroup), if any. */
export function cgroup2Mount(): string | undefined {
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) continue;
      if (post.split(' ')[0] === 'cgroup2') return pre.split(' ')[4];
    }
  } catch {
    /* no /proc? */
  }
  return undefined;
}

/** The cgroup folder that holds all test beds of one test process, or undefined when unusable. */
export function ownerCgroupDir(ownerTag: string): string | undefined {
  const mount = cgroup2Mount();
  if (!mount) return undefined;
  try {
    fs.accessSync(mount, fs.constants.W_OK);
  } catch {
    return undefined;
  }
  return path.join(mount, CGROUP_BASE, ownerTag);
}

export class TestbedCgroup {
  constructor(readonly dir: string) {}

  /** Creates <dir>/manager (owned by uid:gid, i.e. delegated) and <dir>/run. */
  static create(dir: string, uid: number, gid: number): TestbedCgroup {
    fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
    const manager = path.join(dir, 'manager');
    fs.mkdirSync(manager, { recursive: true });
    // Delegation as in the kernel's cgroup-v2 docs: the folder and its interface files.
    fs.chownSync(manager, uid, gid);
    for (const f of fs.readdirSync(manager)) {
      try {
        fs.chownSync(path.join(manager, f), uid, gid);
      } catch {
        /* read-only interface file */
      }
    }
    return new TestbedCgroup(dir);
  }

  procsFile(sub: 'manager' | 'run'): string {
    return path.join(this.dir, sub, 'cgroup.procs');
  }

  /** Wraps argv so that it starts inside <dir>/<sub>. */
  wrap(sub: 'manager' | 'run', argv: readonly string[]): string[] {
    return ['/bin/sh', '-c', JOIN_CGROUP_SCRIPT, 'zoopa-testbed-cgroup', this.procsFile(sub), ...argv];
  }

  /** All pids in the subtree. */
  pids(): number[] {
    return subtreePids(this.dir);
  }

  /** SIGKILLs everything in the subtree (synchronous). */
  killSync(): void {
    killSubtreeSync(this.dir);
  }

  /** Kills everything, waits (bounded) until the subtree is empty, removes it. */
  async destroy(): Promise<void> {
    await destroySubtree(this.dir);
  }
}

function subtreeDirs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d); // children before parents
  };
  walk(dir);
  return out;
}

export function subtreePids(dir: string): number[] {
  const pids: number[] = [];
  for (const d of subtreeDirs(dir)) {
    try {
      for (const l of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.push(Number(l));
    } catch {
      /* removed meanwhile */
    }
  }
  return pids;
}

function killSubtreeSync(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1'); // kernel >= 5.14
  } catch {
    /* fall back to signalling each process */
  }
  killAll(subtreePids(dir));
}

function removeSubtreeSync(dir: string): boolean {
  let ok = true;
  for (const d of subtreeDirs(dir)) {
    try {
      fs.rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
    }
  }
  return ok;
}

/** Kill + wait until empty (at most ~10 s) + rmdir. Throws when something survives. */
export async function destroySubtree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (let i = 0; i < 200; i++) {
    killSubtreeSync(dir);
    if (subtreePids(dir).length === 0 && removeSubtreeSync(dir)) return;
    await sleep(50);
  }
  const left = subtreePids(dir);
  throw new Error(`could not empty cgroup ${dir}: processes left: ${left.join(' ') || '(none; rmdir failed)'}`);
}

/** Synchronous variant for exit handlers: kill, brief wait, rmdir (best effort). */
export function destroySubtreeSync(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (let i = 0; i < 50; i++) {
    killSubtreeSync(dir);
    if (subtreePids(dir).length === 0 && removeSubtreeSync(dir)) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/** Removes the cgroups of test processes that are gone (killed runs). Returns the stale tags found. */
export async function removeStaleCgroups(): Promise<string[]> {
  const mount = cgroup2Mount();
  if (!mount) return [];
  const base = path.join(mount, CGROUP_BASE);
  let tags: string[];
  try {
    tags = fs.readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  const stale = tags.filter((t) => !tagAlive(t));
  for (const tag of stale) {
    try {
      await destroySubtree(path.join(base, tag));
    } catch (e) {
      process.emitWarning(`zoopa testbed: stale cgroup cleanup: ${(e as Error).message}`);
    }
  }
  return stale;
}
