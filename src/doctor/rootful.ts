/**
 * zoopa doctor: the rootful stack's files must be root's. Its unit runs
 * `sudo -n podman-compose -p <stack> -f <compose file> up -d` as root, and
 * podman-compose 1.0.3 reads, besides the `-f` files, `.env` from the folder of
 * the first one (symlinks resolved: it chdirs there). Whoever can change any of
 * them, or rename a folder on their path, can make root run a container of
 * their choosing (`privileged: true`, `/:/host`). So each `-f` file, its `.env`,
 * and every folder from theirs up to `/` (both as named and with symlinks
 * resolved) must be owned by root and not writable by group or others. A
 * world-writable folder with the sticky bit (like /tmp) is accepted above the
 * stack's own folder: nobody else may rename root's entries in it. The services'
 * `env_file:` files (read relative to that folder) are checked too: they set the
 * environment of root's containers.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Project, Stack } from '../stacks/discover.js';
import type { CheckResult } from './types.js';

export interface Unsafe {
  path: string;
  why: string;
}

/** The files podman-compose reads for the rootful stack (that exist). */
export function rootfulInputs(stack: Stack): string[] {
  const files = [stack.composeFile, ...stack.extraFiles];
  let realFirst = stack.composeFile;
  try {
    realFirst = fs.realpathSync(stack.composeFile);
  } catch {
    /* reported below as missing */
  }
  const dir = path.dirname(realFirst);
  const dotenv = path.join(dir, '.env');
  const envFiles = files.flatMap((f) => envFilesOf(f)).map((e) => path.resolve(dir, e));
  return [...new Set([...files, ...(fs.existsSync(dotenv) || isDanglingLink(dotenv) ? [dotenv] : []), ...envFiles])];
}

/** `env_file:` entries of a compose file's services, as written (podman-compose reads them relative to the first file's folder). */
function envFilesOf(file: string): string[] {
  let data: unknown;
  try {
    data = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  const services = (data as { services?: Record<string, { env_file?: unknown }> } | null)?.services;
  if (!services || typeof services !== 'object') return [];
  return Object.values(services).flatMap((s) => {
    const e = s?.env_file;
    return (typeof e === 'string' ? [e] : Array.isArray(e) ? e : []).filter((x): x is string => typeof x === 'string');
  });
}

function isDanglingLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function chain(p: string): string[] {
  const out: string[] = [];
  for (let d = p; ; d = path.dirname(d)) {
    out.push(d);
    if (path.dirname(d) === d) break;
  }
  return out;
}

/** Every path on which the files depend, and what is wrong with each (empty when all are root's). */
export function unsafePaths(files: readonly string[]): Unsafe[] {
  const own = new Set<string>();
  const all: string[] = [];
  for (const f of files) {
    let real: string | undefined;
    try {
      real = fs.realpathSync(f);
    } catch {
      /* a dangling link: its own chain is checked */
    }
    for (const p of [f, ...(real && real !== f ? [real] : [])]) {
      own.add(path.dirname(p));
      for (const q of chain(p)) if (!all.includes(q)) all.push(q);
    }
  }
  const bad: Unsafe[] = [];
  for (const p of all) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (e) {
      bad.push({ path: p, why: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
      continue;
    }
    const problems: string[] = [];
    if (st.uid !== 0) problems.push(`owned by uid ${st.uid}, not root`);
    if (!st.isSymbolicLink()) {
      const writable = st.mode & 0o022;
      const stickyParent = st.isDirectory() && (st.mode & 0o1000) !== 0 && !own.has(p);
      if (writable && !stickyParent) problems.push(`writable by ${[st.mode & 0o020 ? 'its group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ')} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`);
    }
    if (problems.length) bad.push({ path: p, why: problems.join(', ') });
  }
  return bad;
}

/** `rootful stack files (<stack>)`: fails naming each path anyone but root can change, with the exact fix. */
export function rootfulFilesCheck(project: Project | undefined): CheckResult[] {
  const stack = project?.stacks.find((s) => s.config.rootful && s.config.enabled);
  if (!stack) return [];
  const name = `rootful stack files (${stack.name})`;
  const files = rootfulInputs(stack);
  const bad = unsafePaths(files);
  if (!bad.length) return [{ check: name, verdict: 'ok', detail: `${files.join(', ')} and every folder above them are root's alone` }];
  const paths = bad.map((b) => b.path);
  const unreadable = bad.filter((b) => b.why.startsWith('cannot be read'));
  return [
    {
      check: name,
      verdict: 'fail',
      detail: `podman-compose runs as root with files that others can change: ${bad.map((b) => `${b.path} ${b.why}`).join('; ')} (whoever can change them can make root run any container)`,
      fix: unreadable.length
        ? `create or fix ${unreadable.map((b) => b.path).join(', ')}, then run zoopa doctor again`
        : `sudo chown root:root ${paths.join(' ')} && sudo chmod go-w ${paths.join(' ')}  (a folder you own on that path, e.g. your home, cannot be given to root: keep the stacks root in a folder root owns, see README "A rootful stack")`,
    },
  ];
}
