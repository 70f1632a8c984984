/**
 * zoopa doctor's checks. Each explains what it found and, when something is
 * wrong, the exact fix. Checks only read (a journal left by a killed backup run
 * is repaired by `zoopa doctor --fix` or `zoopa backup repair`, not here).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backupChecks } from '../backup/doctor.js';
import { podmanNetworkChecks } from './capabilities.js';
import { run } from '../exec.js';
import { llamaChecks } from '../llama/doctor.js';
import { readEnvFile } from '../envfile.js';
import { InputError } from '../errors.js';
import { ondemandEnvDir, ondemandRuntimeDir, runtimeDir } from '../paths.js';
import { resolveProxySettings } from '../proxy/config.js';
import { rootfulFilesCheck } from './rootful.js';
import { sudoRuleChecks } from './sudo.js';
import type { Project } from '../stacks/discover.js';
import { planInstall } from '../units/install.js';
import { which } from '../unitfile/tools.js';
import type { CheckResult } from './types.js';


export interface DoctorContext {
  project: Project | undefined;
  /** Why the project could not be loaded, if it could not. */
  projectError?: string;
  env: NodeJS.ProcessEnv;
}

type Check = (ctx: DoctorContext) => Promise<CheckResult | CheckResult[]>;

function userName(env: NodeJS.ProcessEnv): string {
  return env.USER || env.LOGNAME || os.userInfo().username;
}

const lingering: Check = async ({ env }) => {
  const user = userName(env);
  const ok = fs.existsSync(path.join('/var/lib/systemd/linger', user));
  return ok
    ? { check: 'lingering', verdict: 'ok', detail: `enabled for ${user}: stacks keep running when you log out and start at boot` }
    : { check: 'lingering', verdict: 'warn', detail: `not enabled for ${user}: your user manager (and every stack) stops when your last session ends`, fix: `sudo loginctl enable-linger ${user}` };
};

const podman: Check = async ({ env }) => {
  const bin = which('podman', env);
  if (!bin) return { check: 'podman', verdict: 'fail', detail: 'podman is not on PATH', fix: 'sudo apt-get install podman uidmap slirp4netns' };
  const r = await run([bin, 'info', '--format', '{{.Host.Security.Rootless}} {{.Version.Version}}'], { env, reject: false, timeoutMs: 60_000 }).catch((e: Error) => ({ status: 1, stdout: '', stderr: e.message }));
  if (r.status !== 0) {
    return { check: 'podman', verdict: 'fail', detail: `podman info failed: ${r.stderr.trim().split('\n').pop() ?? ''}`, fix: 'run "podman info" and fix what it reports (subuid/subgid ranges: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER)' };
  }
  const [rootless, version] = r.stdout.trim().split(' ');
  return { check: 'podman', verdict: 'ok', detail: `${bin} ${version ?? ''} works${rootless === 'true' ? ' (rootless)' : ''}` };
};

const podmanCompose: Check = async ({ env, project }) => {
  const configured = project?.config.podman_compose;
  const bin = configured ?? which('podman-compose', env);
  if (!bin) return { check: 'podman-compose', verdict: 'fail', detail: 'podman-compose is not on PATH', fix: 'sudo apt-get install podman-compose' };
  const r = await run([bin, 'version'], { env, reject: false, timeoutMs: 30_000 }).catch((e: Error) => ({ status: 1, stdout: '', stderr: e.message }));
  if (r.status !== 0) return { check: 'podman-compose', verdict: 'fail', detail: `${bin} version failed: ${r.stderr.trim()}`, fix: 'reinstall podman-compose' };
  const v = /podman-compose?r? version:?\s+([\d.]+)/i.exec(r.stdout)?.[1] ?? '';
  return { check: 'podman-compose', verdict: 'ok', detail: `${bin} ${v}` };
};

const manager: Check = async ({ env }) => {
  const r = await run(['systemctl', '--user', 'is-system-running'], { env, reject: false, timeoutMs: 15_000 }).catch((e: Error) => ({ status: 1, stdout: '', stderr: e.message }));
  const state = r.stdout.trim();
  if (['running', 'degraded', 'starting'].includes(state)) {
    return { check: 'systemd user manager', verdict: state === 'degraded' ? 'warn' : 'ok', detail: `reachable, ${state}`, ...(state === 'degraded' ? { fix: 'systemctl --user --failed shows which units failed' } : {}) };
  }
  return { check: 'systemd user manager', verdict: 'fail', detail: `not reachable: ${(r.stderr || state).trim()}`, fix: 'log in as this user (or: sudo loginctl enable-linger $USER), and check XDG_RUNTIME_DIR=/run/user/$(id -u)' };
};

const ondemandDir: Check = async ({ env, project }) => {
  const dir = ondemandRuntimeDir(env);
  const wanted = project?.config.ondemand?.directory_mode ?? '0711';
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    const used = project?.stacks.some((s) => s.config.ondemand);
    return { check: 'on-demand socket folder', verdict: used ? 'warn' : 'ok', detail: `${dir} does not exist${used ? '' : ' (no on-demand stacks)'}`, ...(used ? { fix: 'systemctl --user enable --now zoopa-ondemand-dir.service' } : {}) };
  }
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (mode !== wanted.padStart(4, '0')) {
    return { check: 'on-demand socket folder', verdict: 'warn', detail: `${dir} has mode ${mode}, expected ${wanted}: nginx ${Number.parseInt(mode, 8) & 0o001 ? 'can' : 'cannot'} reach the sockets`, fix: `chmod ${wanted} ${dir}` };
  }
  const rt = fs.statSync(runtimeDir(env));
  const rtMode = rt.mode & 0o777;
  return { check: 'on-demand socket folder', verdict: 'ok', detail: `${dir} mode ${mode}${rtMode & 0o001 ? '' : ` (runtime dir ${rtMode.toString(8)}: nginx must run as this user or be granted search access)`}` };
};

/**
 * Every ~/.config/zoopa-ondemand/<stack>.env, read with the proxy's own rules:
 * a bad one would otherwise show only in the proxy's log, each time a
 * connection arrives (the proxy exits 2 until systemd's start limit trips).
 */
const ondemandEnvFiles: Check = async ({ env }) => {
  const dir = ondemandEnvDir(env);
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.env')).sort();
  } catch {
    return [];
  }
  const bad: string[] = [];
  let fix: string | undefined;
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const vars = Object.fromEntries(readEnvFile(file) ?? []);
      resolveProxySettings(f.slice(0, -'.env'.length), vars);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      bad.push(`${file}: ${e.message}`);
      fix ??= e.hint;
    }
  }
  if (!bad.length) return { check: 'on-demand env files', verdict: 'ok', detail: `${files.length} in ${dir}, all valid` };
  return { check: 'on-demand env files', verdict: 'fail', detail: bad.join('; '), fix: fix ?? 'fix the named setting' };
};

/** The sudo rule: every exact argv zoopa runs as root, probed with sudo -n -l (src/doctor/sudo.ts). */
const sudoRule: Check = async ({ env, project }) => sudoRuleChecks(project, env);

/** The rootful stack's compose file, .env and folders are root's alone (src/doctor/rootful.ts). */
const rootfulFiles: Check = async ({ project }) => rootfulFilesCheck(project);

const unitsStale: Check = async ({ env, project }) => {
  if (!project) return [];
  const plan = planInstall(project, { env });
  const stale = plan.items.filter((i) => i.action !== 'unchanged' || i.relink);
  if (!stale.length) return { check: 'installed units', verdict: 'ok', detail: `${plan.items.length} up to date` };
  return {
    check: 'installed units',
    verdict: 'warn',
    detail: `differ from what zoopa would write: ${stale.map((i) => `${i.kind === 'unit' ? i.name : i.path} (${i.action === 'unchanged' ? 'not linked' : i.action})`).join(', ')}`,
    fix: 'zoopa install --dry-run shows the diff; zoopa install applies it',
  };
};

const projectCheck: Check = async ({ project, projectError }) =>
  project
    ? { check: 'stacks root', verdict: 'ok', detail: `${project.root}: ${project.stacks.length} stack(s)${project.configFile ? ', zoopa.yaml valid' : ', no zoopa.yaml (defaults)'}` }
    : { check: 'stacks root', verdict: 'fail', detail: projectError ?? 'not found', fix: 'pass --root DIR or set ZOOPA_ROOT' };

/** Backups: a journal left by a killed run (repaired by "zoopa backup repair" or "zoopa doctor --fix", never here), the restic password file's mode. */
const backupJournal: Check = async ({ project, env }) => backupChecks({ project, env });

const llama: Check = async ({ project, env }) => llamaChecks(project, env);

/** The network backend and a container with a published port answering (capabilities.ts). */
const podmanNetwork: Check = async ({ env }) => podmanNetworkChecks(env);

export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const checks: Check[] = [projectCheck, manager, lingering, podman, podmanNetwork, podmanCompose, ondemandDir, ondemandEnvFiles, sudoRule, rootfulFiles, unitsStale, backupJournal, llama];
  const results = await Promise.all(
    checks.map((c) =>
      c(ctx).catch((e: unknown): CheckResult => ({ check: c.name, verdict: 'fail', detail: `check failed: ${e instanceof Error ? e.message : String(e)}` })),
    ),
  );
  return results.flat();
}
