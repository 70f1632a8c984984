/**
 * Hooks: argv commands run at fixed points of a stack's backup (pre_stop,
 * post_stop, pre_backup, post_backup, pre_start, post_start, verify). A hook may
 * name its undo (maintenance mode on → off): once the hook has succeeded, its
 * undo is recorded in the journal and runs whatever happens afterwards, success,
 * failure, signal, or the next run's repair after a SIGKILL.
 *
 * A hook runs in the stack folder with a minimal environment (hookEnv): the
 * caller's secrets are not passed on.
 */
import { formatArgv, StateError, TimeoutError } from '../errors.js';
import { ENV_HOOK_PHASE, ENV_HOOK_PROJECT, ENV_HOOK_STACK, ENV_HOOK_STACK_DIR, ENV_HOOK_UNIT } from '../names.js';
import { run } from '../exec.js';
import { DEFAULT_HOOK_TIMEOUT, type HookConfig, type HookPoint } from './config.js';
import { throwIfAborted } from './engine.js';

export interface HookEnvInfo {
  stack: string;
  stackDir: string;
  unit: string;
  project: string;
}

/** An undo waiting to run, as stored in the journal. */
export interface PendingUndo {
  point: HookPoint;
  argv: string[];
  timeoutSec: number;
}

export class HookError extends StateError {
  constructor(message: string, opts: { cause?: unknown; hint?: string } = {}) {
    super('ZOOPA_BACKUP_HOOK_FAILED', message, opts);
  }
}

/**
 * What a hook may see of the caller's environment: where things are and how to
 * reach the user's systemd and podman, nothing else. Secrets the caller holds
 * (RESTIC_PASSWORD, RESTIC_REPOSITORY, cloud keys, tokens) never reach a hook.
 */
export const HOOK_ENV_PASSED = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'TZ',
  'XDG_RUNTIME_DIR',
  'XDG_CONFIG_HOME',
  'XDG_STATE_HOME',
  'XDG_DATA_HOME',
  'DBUS_SESSION_BUS_ADDRESS',
  'CONTAINERS_CONF',
] as const;

/**
 * The environment a hook (and an undo) runs with: HOOK_ENV_PASSED from ours, plus
 * ZOOPA_STACK, ZOOPA_STACK_DIR, ZOOPA_UNIT, ZOOPA_PROJECT and ZOOPA_BACKUP_PHASE
 * (pre_stop, ..., verify, or "undo <point>").
 */
export function hookEnv(base: NodeJS.ProcessEnv, info: HookEnvInfo, phase: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of HOOK_ENV_PASSED) if (base[k] !== undefined) env[k] = base[k];
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  return {
    ...env,
    [ENV_HOOK_STACK]: info.stack,
    [ENV_HOOK_STACK_DIR]: info.stackDir,
    [ENV_HOOK_UNIT]: info.unit,
    [ENV_HOOK_PROJECT]: info.project,
    [ENV_HOOK_PHASE]: phase,
  };
}

export interface RunHookOptions {
  info: HookEnvInfo;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

/** Run one command of a hook (or an undo) in the stack folder; throws HookError when it fails. */
export async function runHookCommand(argv: readonly string[], phase: string, timeoutSec: number, opts: RunHookOptions): Promise<void> {
  opts.log(`${phase}: ${formatArgv(argv)}`);
  let status: number | null;
  let signal: NodeJS.Signals | null;
  let stderr: string;
  try {
    const r = await run(argv, {
      cwd: opts.info.stackDir,
      env: hookEnv(opts.env, opts.info, phase),
      timeoutMs: timeoutSec * 1000,
      reject: false,
      signal: opts.signal,
    });
    for (const line of (r.stdout + r.stderr).split('\n')) if (line.trim()) opts.log(`  ${line}`);
    ({ status, signal, stderr } = r);
  } catch (e) {
    if (e instanceof TimeoutError) throw new HookError(`${phase} hook ${formatArgv(argv)} did not finish within ${timeoutSec}s`, { cause: e });
    throw new HookError(`${phase} hook ${formatArgv(argv)} could not run: ${(e as Error).message}`, { cause: e });
  }
  throwIfAborted(opts.signal);
  if (status !== 0) {
    const last = stderr.split('\n').filter((l) => l.trim()).pop();
    throw new HookError(`${phase} hook ${formatArgv(argv)} exited with status ${status ?? signal}${last ? `: ${last}` : ''}`);
  }
}

/**
 * Run the hooks of one point in order. After each hook that has an undo
 * succeeds, `onUndo` records it (the runner writes it to the journal) before
 * the next hook runs.
 */
export async function runHooks(
  point: HookPoint,
  hooks: readonly HookConfig[],
  opts: RunHookOptions & { onUndo: (u: PendingUndo) => void },
): Promise<void> {
  for (const h of hooks) {
    throwIfAborted(opts.signal);
    const timeoutSec = h.timeout ?? DEFAULT_HOOK_TIMEOUT;
    await runHookCommand(h.run, point, timeoutSec, opts);
    if (h.undo) opts.onUndo({ point, argv: [...h.undo], timeoutSec });
  }
}
