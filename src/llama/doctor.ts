/**
 * zoopa doctor's checks for the llama section (read only). Exported for
 * src/doctor/checks.ts: `...llamaChecks(project, env)`.
 *
 *  - llama.binary exists and is executable (render does not require it: units
 *    may be rendered before llama.cpp is built; systemd would fail the start), and
 *    answers `--version` (a binary whose libraries are missing does not);
 *  - every flag of every rendered command line is listed by that binary's `--help`
 *    (llama.cpp renames flags: --mmap/--no-mmap/--mlock became --load-mode); a flag it
 *    does not list is named with the service, since that service would crash-loop
 *    with "error: invalid argument";
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
import { run } from '../exec.js';
import { formatCpus } from './cpus.js';
import { parseHelpFlags, unknownFlags } from './help.js';
import { resolveLlama, type LlamaService } from './resolve.js';
import { isExecutableFile } from '../fsutil.js';

/** How long `llama-server --version` / `--help` may take (they print and exit). */
const BINARY_QUERY_TIMEOUT_MS = 30_000;

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

export async function llamaChecks(project: Project | undefined, env: NodeJS.ProcessEnv = process.env, opts: { cpuCount?: number; isRoot?: boolean } = {}): Promise<CheckResult[]> {
  if (!project?.config.llama || Object.keys(project.config.llama.services).length === 0) return [];
  let services: LlamaService[];
  try {
    services = resolveLlama(project, { env, checkFiles: false });
  } catch (e) {
    return [{ check: 'llama', verdict: 'fail', detail: (e as Error).message, fix: 'fix zoopa.yaml (zoopa render shows the same error)' }];
  }
  const out: CheckResult[] = [];
  const binary = services[0]!.binary;
  if (isExecutableFile(binary)) out.push(...(await binaryChecks(binary, services, env)));
  else {
    out.push({
      check: 'llama binary',
      verdict: 'fail',
      detail: `${binary} ${fs.existsSync(binary) ? 'is not executable' : 'does not exist'}: every llama service would fail to start`,
      fix: 'build llama.cpp (in ~/llama.cpp: cmake -B build && cmake --build build --config Release -t llama-server), or set llama.binary in zoopa.yaml',
    });
  }
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

/** The first line of a command's output, for messages. */
function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/**
 * `binary --version` answers, and `binary --help` lists every flag of every service's
 * command line. Run with the services' working directory's environment (env), never
 * through a shell.
 */
export async function binaryChecks(binary: string, services: readonly LlamaService[], env: NodeJS.ProcessEnv = process.env): Promise<CheckResult[]> {
  const query = (flag: string) => run([binary, flag], { env, reject: false, timeoutMs: BINARY_QUERY_TIMEOUT_MS }).catch((e: Error) => ({ status: null, stdout: '', stderr: e.message }));
  const version = await query('--version');
  // llama-server prints its version on stderr (older builds) or stdout.
  const versionText = firstLine(`${version.stdout}\n${version.stderr}`.split('\n').find((l) => /^version: /.test(l)) ?? '');
  if (version.status !== 0 || !versionText) {
    return [
      {
        check: 'llama binary',
        verdict: 'fail',
        detail: `${binary} --version failed (exit ${version.status ?? 'none'}): ${firstLine(version.stderr || version.stdout) || 'no output'}`,
        fix: 'run it by hand to see why (missing shared libraries?); rebuild llama.cpp, or set llama.binary in zoopa.yaml',
      },
    ];
  }
  const out: CheckResult[] = [{ check: 'llama binary', verdict: 'ok', detail: `${binary}: ${versionText}` }];
  const help = await query('--help');
  const flags = parseHelpFlags(`${help.stdout}\n${help.stderr}`);
  if (help.status !== 0 || flags.size === 0) {
    out.push({ check: 'llama flags', verdict: 'warn', detail: `${binary} --help listed no flags (exit ${help.status ?? 'none'}): the rendered flags cannot be checked`, fix: 'run it by hand: llama-server --help' });
    return out;
  }
  const unknown = services.map((s) => ({ s, flags: unknownFlags(s.argv, flags) })).filter((x) => x.flags.length > 0);
  if (unknown.length === 0) {
    out.push({ check: 'llama flags', verdict: 'ok', detail: `every flag of ${services.length} service${services.length === 1 ? '' : 's'} is in ${binary} --help (${versionText})` });
    return out;
  }
  for (const { s, flags: bad } of unknown) {
    out.push({
      check: `llama flags (${s.name})`,
      verdict: 'warn',
      detail: `service ${s.name}: ${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not listed by ${binary} --help (${versionText}); llama-server refuses an unknown flag ("error: invalid argument"), so ${s.unit} would fail to start`,
      fix: `check the spelling in llama-server --help; remove or rename ${bad.join(', ')} in llama.services.${s.name}.extra_args (or llama.defaults.extra_args), or update llama.cpp`,
    });
  }
  return out;
}
