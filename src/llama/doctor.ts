/**
 * zoopa doctor's checks for the llama section (read only). Exported for
 * src/doctor/checks.ts: `...llamaChecks(project, env)`.
 *
 *  - llama.binary exists and is executable (render does not require it: units
 *    may be rendered before llama.cpp is built; systemd would fail the start);
 *  - the working directory exists (systemd fails the start with status 200/CHDIR);
 *  - every model / mmproj file and the router's models folder exist;
 *  - cpus name CPUs this machine has (CPUAffinity= with none of them online fails
 *    the start; with some, threads outnumber the usable CPUs);
 *  - a negative nice is allowed by RLIMIT_NICE (otherwise systemd silently uses
 *    the closest allowed value, 0 for an ordinary user).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { CheckResult } from '../doctor/types.js';
import type { Project } from '../stacks/discover.js';
import { formatCpus } from './cpus.js';
import { resolveLlama, type LlamaService } from './resolve.js';
import { isExecutableFile } from '../fsutil.js';

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The lowest nice value RLIMIT_NICE allows this process (20 - soft limit), from /proc/self/limits. */
export function lowestAllowedNice(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max nice priority\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  if (m[1] === 'unlimited') return -20;
  const soft = Number(m[1]);
  if (!Number.isFinite(soft)) return undefined;
  // RLIMIT_NICE r lets an unprivileged process lower its nice value down to 20 - r (setrlimit(2));
  // it can always keep the nice it has (0 for a login session). An approximation: the user
  // manager gets its limits from PAM and DefaultLimitNICE=, which usually match a login shell's.
  return Math.min(0, 20 - soft);
}

export function llamaChecks(project: Project | undefined, env: NodeJS.ProcessEnv = process.env, opts: { cpuCount?: number; isRoot?: boolean } = {}): CheckResult[] {
  if (!project?.config.llama || Object.keys(project.config.llama.services).length === 0) return [];
  let services: LlamaService[];
  try {
    services = resolveLlama(project, { env, checkFiles: false });
  } catch (e) {
    return [{ check: 'llama', verdict: 'fail', detail: (e as Error).message, fix: 'fix zoopa.yaml (zoopa render shows the same error)' }];
  }
  const out: CheckResult[] = [];
  const binary = services[0]!.binary;
  out.push(
    isExecutableFile(binary)
      ? { check: 'llama binary', verdict: 'ok', detail: `${binary} is executable` }
      : {
          check: 'llama binary',
          verdict: 'fail',
          detail: `${binary} ${fs.existsSync(binary) ? 'is not executable' : 'does not exist'}: every llama service would fail to start`,
          fix: 'build llama.cpp (in ~/llama.cpp: cmake -B build && cmake --build build --config Release -t llama-server), or set llama.binary in zoopa.yaml',
        },
  );
  const wd = services[0]!.workingDirectory;
  if (!isDir(wd)) {
    out.push({ check: 'llama working directory', verdict: 'fail', detail: `${wd} does not exist: systemd fails the start (status 200/CHDIR)`, fix: `mkdir -p ${wd}, or set llama.working_directory` });
  }
  const missing: string[] = [];
  for (const s of services) {
    if (s.mode === 'router' && !isDir(s.modelsDir)) missing.push(`${s.name}: models folder ${s.modelsDir}`);
    if (s.modelPath && !isFile(s.modelPath)) missing.push(`${s.name}: ${s.modelPath}`);
    if (s.mmprojPath && !isFile(s.mmprojPath)) missing.push(`${s.name}: ${s.mmprojPath}`);
  }
  out.push(
    missing.length
      ? { check: 'llama models', verdict: 'fail', detail: `missing: ${missing.join('; ')}`, fix: 'download the files into llama.models_dir, or fix the names in zoopa.yaml' }
      : { check: 'llama models', verdict: 'ok', detail: `every model file of ${services.length} service${services.length === 1 ? '' : 's'} exists` },
  );
  const ncpu = opts.cpuCount ?? os.cpus().length;
  for (const s of services) {
    if (!s.cpus) continue;
    const absent = s.cpus.filter((c) => c >= ncpu);
    if (absent.length === 0) continue;
    const none = absent.length === s.cpus.length;
    out.push({
      check: `llama cpus (${s.name})`,
      verdict: none ? 'fail' : 'warn',
      detail: `cpus ${formatCpus(s.cpus)}: this machine has CPUs 0-${ncpu - 1}; ${none ? 'none is present, the start fails' : `${formatCpus(absent)} are absent, and ${s.threads ?? s.cpus.length} threads share ${s.cpus.length - absent.length} CPUs`}`,
      fix: `list CPUs 0-${ncpu - 1} in llama.services.${s.name}.cpus (or llama.defaults.cpus)`,
    });
  }
  const negative = services.filter((s) => s.nice < 0);
  if (negative.length && !(opts.isRoot ?? process.getuid?.() === 0)) {
    const lowest = lowestAllowedNice();
    if (lowest !== undefined && negative.some((s) => s.nice < lowest)) {
      out.push({
        check: 'llama nice',
        verdict: 'warn',
        detail: `${negative.map((s) => `${s.name} (nice ${s.nice})`).join(', ')}: your RLIMIT_NICE allows nothing below ${lowest}, so systemd quietly runs them at ${lowest}`,
        fix: 'allow it in /etc/security/limits.conf ("youruser - nice -5"; log in again and restart the user manager), or set nice: 0',
      });
    }
  }
  return out;
}
