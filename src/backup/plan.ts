/**
 * The backup plan: which stacks, and what will happen to each, in order.
 * Building it validates everything a run needs from the user (stack names,
 * jobs, restic paths and repository, the Duplicati stack), so bad input is an
 * InputError before anything is stopped. `zoopa backup --dry-run` prints it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatDuration } from '../config/duration.js';
import { ConfigError, UsageError } from '../errors.js';
import { PROJECT_LABEL } from '../podman/podman.js';
import { readCompose } from '../stacks/compose.js';
import { stackUnitName } from '../names.js';
import { resolveStack, type Project, type Stack } from '../stacks/discover.js';
import { defaultGlobalBackupConfig, HOOK_POINTS, type GlobalBackupConfig, type HookConfig, type HooksConfig, type RestorePolicy } from './config.js';
import { dependentPlans, dependentSteps, type DependentPlan } from './dependents.js';
import { describeJob, type JobSpec } from './engine.js';
import { freezeMode, willFreeze, type FreezeMode } from './freeze.js';
import { ondemandSocketUnit } from '../names.js';
import { redactPingUrl, redactUrls } from './redact.js';
import type { PriorState } from './journal.js';

export interface StackPlan {
  name: string;
  dir: string;
  unit: string;
  project: string;
  /** The stack runs as root (its containers are seen through sudo -n podman). */
  rootful: boolean;
  stopTimeoutSec: number;
  startTimeoutSec: number;
  restore: RestorePolicy;
  /**
   * Freeze on-demand activation during the run: `yes` (zoopa.yaml says so, the
   * stack has an `ondemand:` section, or its env file exists), `no` (`freeze:
   * false`), or `auto`: when its socket unit is enabled or active as the run starts.
   */
  freeze: FreezeMode;
  /** Why, for the plan. */
  freezeReason: string;
  socketUnit: string;
  hooks: HooksConfig;
  jobs: JobSpec[];
  /** Today's log file for this stack. */
  logFile: string;
  /** Stacks requiring this one (stacks.<name>.requires), in stop order: stopped first, put back with it. */
  dependents: DependentPlan[];
}

export interface BackupPlan {
  root: string;
  configFile: string | undefined;
  config: GlobalBackupConfig;
  logDir: string;
  stacks: StackPlan[];
  /** Engines the plan uses. */
  engines: Array<'duplicati' | 'restic'>;
  /** restic repository and password file, resolved (absolute), when restic is used. */
  restic?: { repository: string | undefined; passwordFile: string | undefined };
}

export function backupConfig(project: Project): GlobalBackupConfig {
  return project.config.backup ?? defaultGlobalBackupConfig();
}

/** Stacks with backup jobs, in name order. */
export function stacksWithJobs(project: Project): Stack[] {
  return project.stacks.filter((s) => (s.config.backup?.jobs.length ?? 0) > 0);
}

/** The stacks `backup.stacks` in zoopa.yaml lists (what the timer's service backs up). */
export function configuredStacks(project: Project): Stack[] {
  return backupConfig(project).stacks.flatMap((name, i) => {
    if (name === 'all') return stacksWithJobs(project);
    try {
      return [resolveStack(project, name)];
    } catch (e) {
      throw new ConfigError(`backup.stacks.${i}: unknown stack ${JSON.stringify(name)}`, {
        file: project.configFile,
        key: `backup.stacks.${i}`,
        value: name,
        hint: (e as UsageError).hint,
      });
    }
  });
}

/**
 * The stacks a command line names: `all`, stack names/units/paths, or nothing
 * (then `backup.stacks` from zoopa.yaml, as the timer's service runs it).
 */
export function resolveTargets(project: Project, args: readonly string[]): Stack[] {
  const cfg = backupConfig(project);
  let stacks: Stack[];
  if (args.length === 1 && args[0] === 'all') {
    stacks = stacksWithJobs(project);
    if (!stacks.length) {
      throw new ConfigError('no stack has backup jobs', {
        file: project.configFile,
        key: 'stacks.<name>.backup.jobs',
        hint: 'add jobs under stacks.<name>.backup in zoopa.yaml ("zoopa backup --help" shows the format)',
      });
    }
  } else if (args.length === 0) {
    if (!cfg.stacks.length) {
      throw new UsageError('no stacks to back up', {
        key: 'stacks',
        hint: 'name them ("zoopa backup web db"), use "all", or list them under backup.stacks in zoopa.yaml',
      });
    }
    stacks = configuredStacks(project);
  } else {
    stacks = args.map((a) => {
      if (a === 'all') throw new UsageError('"all" cannot be combined with stack names', { key: 'stacks', value: args.join(' ') });
      return resolveStack(project, a);
    });
  }
  const seen = new Set<string>();
  return stacks.filter((s) => (seen.has(s.name) ? false : (seen.add(s.name), true)));
}

function localDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function logFileFor(logDir: string, stack: string, now: Date = new Date()): string {
  return path.join(logDir, `backup-${stack}-${localDate(now)}.log`);
}

function stackPlan(project: Project, stack: Stack, cfg: GlobalBackupConfig, logDir: string, now: Date, env: NodeJS.ProcessEnv): StackPlan {
  const b = stack.config.backup;
  const key = `stacks.${stack.name}.backup`;
  if (!b || b.jobs.length === 0) {
    throw new ConfigError(`${key}.jobs: stack ${stack.name} has no backup jobs`, {
      file: project.configFile,
      key: `${key}.jobs`,
      hint: `add e.g. "jobs: [${stack.name}]" (a Duplicati job name or ID) or "jobs: [{ restic: {} }]" under ${key}`,
    });
  }
  if (!stack.config.enabled && !b.unit) {
    throw new ConfigError(`stacks.${stack.name}.enabled is false: it has no unit to stop and start`, {
      file: project.configFile,
      key: `stacks.${stack.name}.enabled`,
      value: false,
      hint: `enable the stack, or name the unit to stop in ${key}.unit`,
    });
  }
  const jobs: JobSpec[] = b.jobs.map((j, i) => {
    if (j.engine === 'duplicati') return { engine: 'duplicati', job: j.job, timeoutSec: j.timeout ?? cfg.duplicati.job_timeout };
    let paths: string[];
    let pathsFrom: string;
    if (j.paths?.length) {
      paths = j.paths.map((p) => path.resolve(stack.dir, p));
      pathsFrom = 'zoopa.yaml';
    } else {
      const compose = readCompose(stack.composeFile);
      paths = [...new Set(compose.bindMounts.map((m) => m.source))].sort();
      pathsFrom = `bind mounts of ${path.basename(stack.composeFile)}`;
      if (!paths.length) {
        throw new ConfigError(`${key}.jobs.${i}.restic.paths: no paths given and ${path.basename(stack.composeFile)} has no bind mounts`, {
          file: project.configFile,
          key: `${key}.jobs.${i}.restic.paths`,
          hint: 'list the folders to back up, relative to the stack folder',
        });
      }
    }
    for (const p of paths) {
      if (!fs.existsSync(p)) {
        throw new ConfigError(`${key}.jobs.${i}.restic: ${p} does not exist (from ${pathsFrom})`, {
          file: project.configFile,
          key: `${key}.jobs.${i}.restic.paths`,
          value: p,
          hint: 'paths are relative to the stack folder; create the folder or fix the path',
        });
      }
    }
    return { engine: 'restic', paths, tags: j.tags, exclude: j.exclude, timeoutSec: j.timeout ?? cfg.restic.job_timeout, pathsFrom };
  });
  return {
    name: stack.name,
    dir: stack.dir,
    unit: b.unit ?? stackUnitName(stack.name),
    project: b.project ?? stack.name,
    rootful: stack.config.rootful,
    stopTimeoutSec: b.stop_timeout ?? stack.config.stop_timeout,
    startTimeoutSec: b.start_timeout ?? stack.config.start_timeout,
    restore: b.restore,
    ...(() => {
      const f = freezeMode(stack, env);
      return { freeze: f.mode, freezeReason: f.reason };
    })(),
    socketUnit: ondemandSocketUnit(stack.name),
    // A hook without its own timeout gets backup.hook_timeout.
    hooks: Object.fromEntries(HOOK_POINTS.map((pt) => [pt, b.hooks[pt].map((h) => ({ ...h, timeout: h.timeout ?? cfg.hook_timeout }))])) as HooksConfig,
    jobs,
    logFile: logFileFor(logDir, stack.name, now),
    dependents: dependentPlans(project.stacks, stack, env),
  };
}

/** Build and validate the plan. Throws InputError on anything the user must fix. */
export function buildPlan(project: Project, targets: readonly Stack[], opts: { env?: NodeJS.ProcessEnv; now?: Date } = {}): BackupPlan {
  const env = opts.env ?? process.env;
  const cfg = backupConfig(project);
  const logDir = path.resolve(project.root, cfg.log_dir);
  const stacks = targets.map((s) => stackPlan(project, s, cfg, logDir, opts.now ?? new Date(), env));
  const engines = [...new Set(stacks.flatMap((s) => s.jobs.map((j) => j.engine)))].sort();
  const plan: BackupPlan = { root: project.root, configFile: project.configFile, config: cfg, logDir, stacks, engines };
  if (engines.includes('restic')) plan.restic = resticSettings(project, env);
  return plan;
}

/**
 * The restic repository and password file from zoopa.yaml, resolved (absolute),
 * or the environment's. Throws ConfigError when restic could not open anything.
 */
export function resticSettings(project: Project, env: NodeJS.ProcessEnv): { repository: string | undefined; passwordFile: string | undefined } {
  const cfg = backupConfig(project);
  const repository = cfg.restic.repository ? resolveRepo(project.root, cfg.restic.repository) : undefined;
  if (!repository && !env.RESTIC_REPOSITORY && !env.RESTIC_REPOSITORY_FILE) {
    throw new ConfigError('backup.restic.repository: a restic job needs a repository', {
      file: project.configFile,
      key: 'backup.restic.repository',
      hint: 'set backup.restic.repository in zoopa.yaml (or RESTIC_REPOSITORY in the environment)',
    });
  }
  const passwordFile = cfg.restic.password_file ? path.resolve(project.root, cfg.restic.password_file) : undefined;
  if (passwordFile && !fs.existsSync(passwordFile)) {
    throw new ConfigError(`backup.restic.password_file: ${passwordFile} does not exist`, {
      file: project.configFile,
      key: 'backup.restic.password_file',
      value: cfg.restic.password_file,
      hint: 'create it with the repository password on one line (mode 0600)',
    });
  }
  if (!passwordFile && !env.RESTIC_PASSWORD && !env.RESTIC_PASSWORD_FILE && !env.RESTIC_PASSWORD_COMMAND) {
    throw new ConfigError('backup.restic.password_file: a restic job needs the repository password', {
      file: project.configFile,
      key: 'backup.restic.password_file',
      hint: 'set backup.restic.password_file in zoopa.yaml (or RESTIC_PASSWORD / RESTIC_PASSWORD_FILE in the environment)',
    });
  }
  return { repository, passwordFile };
}

/** A local repository path is made absolute against the root; URLs like sftp:..., s3:... stay. */
function resolveRepo(root: string, repo: string): string {
  return /^[a-z0-9]+:/i.test(repo) && !repo.startsWith('local:') ? repo : path.resolve(root, repo.replace(/^local:/, ''));
}

function hookText(h: HookConfig): string {
  const q = (argv: readonly string[]) => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return `${q(h.run)}${h.undo ? `   (undo afterwards: ${q(h.undo)})` : ''}`;
}

/** What will happen to one stack, step by step. `prior` (read-only queries) makes the restore step concrete. */
export function planSteps(sp: StackPlan, prior?: PriorState): string[] {
  const steps: string[] = [];
  const hooks = (point: (typeof HOOK_POINTS)[number]) => {
    for (const h of sp.hooks[point]) steps.push(`${point}: ${hookText(h)}`);
  };
  steps.push('write the prior state (unit, containers, socket) to the journal');
  const freeze = prior ? willFreeze(sp, prior) : sp.freeze !== 'no';
  if (freeze) {
    const now = prior?.socket ? ` (${prior.socket.active ? 'active' : 'inactive'}${prior.socket.enabled ? ', enabled' : ''} now)` : '';
    const why = sp.freeze === 'auto' ? (prior ? `on demand: ${sp.socketUnit} is ${prior.socket?.active ? 'active' : 'enabled'}` : sp.freezeReason) : sp.freezeReason;
    steps.push(`freeze on-demand activation (${why}): record the state of ${sp.socketUnit}${now} and its proxy, stop the proxy; the socket answers with the maintenance page and wakes nothing (a stack frozen already stays frozen)`);
  }
  hooks('pre_stop');
  const chain = sp.dependents.length ? dependentSteps(sp.name, sp.unit, sp.dependents) : undefined;
  if (chain) steps.push(...chain.beforeStop);
  steps.push(
    `stop ${sp.unit}; wait up to ${formatDuration(sp.stopTimeoutSec)} until no container labelled ${PROJECT_LABEL}=${sp.project} runs (on timeout: warn and go on)`,
  );
  hooks('post_stop');
  hooks('pre_backup');
  sp.jobs.forEach((j) => {
    const from = j.engine === 'restic' ? ` (paths from ${j.pathsFrom})` : '';
    steps.push(`${describeJob(j)}${from}; wait until it has finished and check its result (timeout ${formatDuration(j.timeoutSec)})`);
  });
  hooks('post_backup');
  let restore: string;
  if (sp.restore === 'always') restore = `start ${sp.unit} (restore: always)`;
  else if (!prior) restore = `start ${sp.unit} again if its containers were running (or it was starting) before (restore: previous)`;
  else if (prior.containers.length) restore = `start ${sp.unit} again: running now ${prior.containers.join(', ')} (restore: previous)`;
  else if (prior.unitState === 'activating') restore = `start ${sp.unit} again: it is starting now (restore: previous)`;
  else restore = `leave ${sp.unit} stopped: no container of it runs now (restore: previous)`;
  steps.push(`${restore}; wait up to ${formatDuration(sp.startTimeoutSec)} for the containers, with pre_start/post_start hooks around it`);
  if (chain) steps.push(chain.restore);
  for (const h of sp.hooks.pre_start) steps.push(`  pre_start: ${hookText(h)}`);
  for (const h of sp.hooks.post_start) steps.push(`  post_start: ${hookText(h)}`);
  const undos = HOOK_POINTS.flatMap((p) => sp.hooks[p].filter((h) => h.undo));
  if (undos.length) steps.push(`run the undo of every hook that succeeded, newest first (${undos.length} defined)`);
  if (freeze) steps.push(`thaw: stop the maintenance proxy, then restore exactly the on-demand units' recorded state`);
  hooks('verify');
  steps.push('log DONE; remove the journal; record the result for "zoopa backup status"');
  return steps;
}

export function renderPlan(plan: BackupPlan, prior?: Map<string, PriorState>, note?: string): string {
  const out: string[] = [];
  out.push(`Backup plan for ${plan.stacks.length} stack${plan.stacks.length === 1 ? '' : 's'} in ${plan.root} (dry run: nothing is changed)`);
  if (note) out.push(note);
  out.push(`  logs: ${plan.logDir}/backup-<stack>-YYYY-MM-DD.log`);
  if (plan.config.ping_url) out.push(`  ping: ${redactPingUrl(plan.config.ping_url)} (/start, success, /fail)`);
  for (const t of plan.config.notify) out.push(`  notify: ${'ntfy' in t ? `ntfy ${redactPingUrl(t.ntfy)}` : `webhook ${redactPingUrl(t.webhook)}`} (on ${t.on.join(', ')}; timeout ${t.timeout}s)`);
  if (plan.engines.includes('duplicati')) out.push(`  duplicati: ${plan.config.duplicati.command.join(' ')} (wait: ${plan.config.duplicati.wait})`);
  if (plan.restic) out.push(`  restic: repository ${plan.restic.repository ? redactUrls(plan.restic.repository) : '$RESTIC_REPOSITORY'}${plan.config.restic.forget ? ', then forget per policy' : ''}`);
  plan.stacks.forEach((sp, i) => {
    out.push('');
    const p = prior?.get(sp.name);
    out.push(`${i + 1}. ${sp.name}  (${sp.unit}, project ${sp.project})`);
    if (p) {
      const sock = p.socket ? `; socket ${p.socket.active ? 'active' : 'inactive'}` : '';
      out.push(`   now: unit ${p.unitState}, ${p.containers.length ? `running ${p.containers.join(', ')}` : 'no container running'}${sock}`);
    }
    planSteps(sp, p).forEach((s, j) => out.push(`   ${String(j + 1).padStart(2)}. ${s}`));
    out.push(`   log: ${sp.logFile}`);
  });
  out.push('');
  out.push('On failure or SIGINT/SIGTERM: the stack and socket are put back as they were, pending undo hooks run, the stack is marked failed and the next one goes on.');
  return out.join('\n') + '\n';
}

/** The plan as data, for --dry-run --json. */
export function planJson(plan: BackupPlan, prior?: Map<string, PriorState>): unknown {
  return {
    root: plan.root,
    logDir: plan.logDir,
    engines: plan.engines,
    stacks: plan.stacks.map((sp) => ({
      name: sp.name,
      unit: sp.unit,
      project: sp.project,
      restore: sp.restore,
      // true/false; 'auto' when the socket's state could not be read (decided when the run starts).
      freeze: prior?.get(sp.name) ? willFreeze(sp, prior.get(sp.name)) : sp.freeze === 'auto' ? 'auto' : sp.freeze === 'yes',
      freezeReason: sp.freezeReason,
      stopTimeoutSec: sp.stopTimeoutSec,
      startTimeoutSec: sp.startTimeoutSec,
      jobs: sp.jobs,
      logFile: sp.logFile,
      dependents: sp.dependents,
      now: prior?.get(sp.name) ?? null,
      steps: planSteps(sp, prior?.get(sp.name)),
    })),
  };
}
