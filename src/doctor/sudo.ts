/**
 * zoopa doctor's sudo checks: every exact argv of the rule `zoopa sudoers` prints
 * is probed with `sudo -n -l <argv>` (the command with all its arguments, not a
 * prefix), and a rule broader than that (one that would also run another compose
 * file, or `podman run`) is reported: it yields root.
 */
import os from 'node:os';
import { run } from '../exec.js';
import { ZoopaError } from '../errors.js';
import type { Project } from '../stacks/discover.js';
import { rootCommands, type RootCommand } from '../sudoers/rule.js';
import { which } from '../unitfile/tools.js';
import type { CheckResult } from './types.js';

type SudoCheckResult = CheckResult;

export const SUDOERS_FIX = 'zoopa sudoers > zoopa.sudoers && sudo visudo -c -f zoopa.sudoers && sudo install -m 0440 -o root -g root zoopa.sudoers /etc/sudoers.d/zoopa';

function userName(env: NodeJS.ProcessEnv): string {
  return env.USER || env.LOGNAME || os.userInfo().username;
}

/** May this user run exactly `argv` through `sudo -n`? (`sudo -n -l argv...`: exit 0 when allowed.) */
export async function sudoAllows(sudo: string, argv: readonly string[], env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await run([sudo, '-n', '-l', ...argv], { env, reject: false, timeoutMs: 15_000 });
  return r.status === 0;
}

/** Commands a rule must not allow: with any of them, the rule is root. */
function hostileArgvs(cmds: readonly RootCommand[]): string[][] {
  const out: string[][] = [];
  const compose = cmds.find((c) => c.argv.includes('up'))?.argv;
  if (compose) out.push([compose[0]!, '-p', compose[2] ?? 'x', '-f', '/nonexistent/zoopa-doctor-probe.yaml', 'up', '-d']);
  const podman = cmds.find((c) => /(^|\/)podman$/.test(c.argv[0] ?? ''))?.argv[0];
  if (podman) out.push([podman, 'run', '--rm', '--privileged', 'zoopa-doctor-probe']);
  return out;
}

async function probe(name: string, cmds: RootCommand[], env: NodeJS.ProcessEnv): Promise<SudoCheckResult> {
  const sudo = which('sudo', env);
  if (!sudo) return { check: name, verdict: 'fail', detail: 'sudo is not installed', fix: 'sudo apt-get install sudo (as root: apt-get install sudo)' };
  const refused: string[] = [];
  for (const c of cmds) if (!(await sudoAllows(sudo, c.argv, env))) refused.push(c.argv.join(' '));
  if (refused.length) {
    return {
      check: name,
      verdict: 'fail',
      detail: `sudo -n refuses ${refused.length} of the ${cmds.length} command(s) zoopa runs as root: ${refused.join('; ')}`,
      fix: `install the rule for exactly these commands (${userName(env)}): ${SUDOERS_FIX}`,
    };
  }
  if (process.getuid?.() === 0) return { check: name, verdict: 'ok', detail: `running as root: sudo -n allows the ${cmds.length} command(s) zoopa runs as root` };
  const broad: string[] = [];
  for (const argv of hostileArgvs(cmds)) if (await sudoAllows(sudo, argv, env)) broad.push(argv.join(' '));
  if (broad.length) {
    return {
      check: name,
      verdict: 'warn',
      detail: `sudo -n allows the ${cmds.length} command(s) zoopa runs, but also ${broad.join('; ')}: a rule that broad lets this user become root`,
      fix: `replace the broad rule (e.g. "NOPASSWD: /usr/bin/podman-compose" or "/usr/bin/podman") with exactly: ${SUDOERS_FIX}`,
    };
  }
  return { check: name, verdict: 'ok', detail: `sudo -n allows each of the ${cmds.length} exact command(s) zoopa runs as root (probed with sudo -n -l)` };
}

/** `sudo rule (<rootful stack>)` and `sudo rule (Duplicati)`, when the setup uses them. */
export async function sudoRuleChecks(project: Project | undefined, env: NodeJS.ProcessEnv): Promise<SudoCheckResult[]> {
  if (!project) return [];
  const rootful = project.stacks.find((s) => s.config.rootful && s.config.enabled);
  const usesDuplicati = project.stacks.some((s) => s.config.backup?.jobs.some((j) => j.engine === 'duplicati'));
  if (!rootful && !usesDuplicati) return [];
  let cmds: RootCommand[];
  try {
    cmds = rootCommands(project, env);
  } catch (e) {
    if (!(e instanceof ZoopaError)) throw e;
    return [{ check: `sudo rule${rootful ? ` (rootful stack ${rootful.name})` : ''}`, verdict: 'fail', detail: `no sudoers rule can be written: ${e.message}`, fix: e.hint ?? 'fix the named setting' }];
  }
  const out: SudoCheckResult[] = [];
  const duplicati = cmds.filter((c) => c.group === 'duplicati');
  const stack = cmds.filter((c) => c.group === 'rootful');
  if (rootful && stack.length) out.push(await probe(`sudo rule (rootful stack ${rootful.name})`, stack, env));
  if (usesDuplicati) {
    if (duplicati.length) out.push(await probe('sudo rule (Duplicati)', duplicati, env));
    else out.push({ check: 'sudo rule (Duplicati)', verdict: 'ok', detail: `Duplicati is reached without sudo: ${(project.config.backup?.duplicati.command ?? []).join(' ')}` });
  }
  return out;
}
