/**
 * Zoopa's error classes. Every error the core throws is a ZoopaError with a
 * stable `code`; only the edge (src/report.ts, used by the CLI and the proxy) turns them into text and
 * exit statuses. The original error, when there is one, is kept as `cause`.
 *
 *  - InputError (exit 2): bad config, env file, stack name or CLI argument.
 *    Names the file, key and value, and carries a hint. Thrown before anything
 *    is changed on disk or in systemd.
 *  - CommandError: an external command failed (argv, exit status, trimmed stderr).
 *  - TimeoutError: something did not happen in time.
 *  - StateError: the system is not in a state that allows the operation.
 */

/**
 * Every error code Zoopa throws, in one place: a script or test may match on them, so
 * they are stable. Add a new one here (the compiler refuses a code not listed).
 */
export type ErrorCode =
  // bad input (InputError, exit 2)
  | 'ZOOPA_CONFIG'
  | 'ZOOPA_USAGE'
  | 'ZOOPA_ENV_FILE'
  | 'ZOOPA_STACK'
  | 'ZOOPA_READ'
  | 'ZOOPA_BAD_DURATION'
  | 'ZOOPA_BAD_READY'
  | 'ZOOPA_BAD_UNIT'
  | 'ZOOPA_NO_UPSTREAM'
  | 'ZOOPA_BAD_IDLE_MODE'
  | 'ZOOPA_BAD_WAIT'
  | 'ZOOPA_BAD_PAGE_TEMPLATE'
  | 'ZOOPA_BAD_UPSTREAM'
  | 'ZOOPA_BAD_LISTEN_FDS'
  | 'ZOOPA_BAD_NUMBER'
  | 'ZOOPA_UNIT_VALUE'
  | 'ZOOPA_INIT_INVALID'
  | 'ZOOPA_INIT_EXISTS'
  // external commands and time
  | 'ZOOPA_COMMAND_FAILED'
  | 'ZOOPA_COMMAND_NOT_FOUND'
  | 'ZOOPA_TIMEOUT'
  | 'ZOOPA_ABORTED'
  // state
  | 'ZOOPA_NOT_INSTALLED'
  | 'ZOOPA_STACK_NOT_RUNNING'
  | 'ZOOPA_UNINSTALL'
  | 'ZOOPA_FROZEN'
  | 'ZOOPA_FREEZE_FAILED'
  | 'ZOOPA_THAW_FAILED'
  // the proxy
  | 'ZOOPA_LISTEN_FD'
  | 'ZOOPA_LISTEN'
  | 'ZOOPA_NO_SOCKET'
  | 'ZOOPA_UNKNOWN_UNIT'
  | 'ZOOPA_WAKE_FAILED'
  | 'ZOOPA_WAKE_BACKOFF'
  // backups
  | 'ZOOPA_BACKUP_JOB_FAILED'
  | 'ZOOPA_BACKUP_INTERRUPTED'
  | 'ZOOPA_BACKUP_HOOK_FAILED'
  | 'ZOOPA_BACKUP_LOCK'
  | 'ZOOPA_BACKUP_LOCKED';

export interface ZoopaErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
}

export class ZoopaError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Exit status the CLI uses for this error. */
  readonly exitStatus: number;

  constructor(code: ErrorCode, message: string, opts: ZoopaErrorOptions & { exitStatus?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
    this.exitStatus = opts.exitStatus ?? 1;
  }
}

export interface InputLocation {
  /** File the bad input came from (config, env file, compose file), if any. */
  file?: string | undefined;
  /** Key (dotted path) or argument name within that file or command line. */
  key?: string | undefined;
  /** The offending value, as the user wrote it. */
  value?: unknown;
}

/** Bad input from the user. Always exit status 2; nothing has been changed. */
export class InputError extends ZoopaError {
  readonly file: string | undefined;
  readonly key: string | undefined;
  readonly value: unknown;

  constructor(code: ErrorCode, message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super(code, message, { hint: loc.hint, cause: loc.cause, exitStatus: 2 });
    this.file = loc.file;
    this.key = loc.key;
    this.value = loc.value;
  }
}

/** zoopa.yaml, or a section of it, is invalid. */
export class ConfigError extends InputError {
  constructor(message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super('ZOOPA_CONFIG', message, loc);
  }
}

/** A command-line argument is invalid (unknown stack, bad duration, ...). */
export class UsageError extends InputError {
  constructor(message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super('ZOOPA_USAGE', message, loc);
  }
}

/** An env file (.env, ~/.config/zoopa-ondemand/<stack>.env) is invalid. */
export class EnvFileError extends InputError {
  constructor(message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super('ZOOPA_ENV_FILE', message, loc);
  }
}

/** A stack folder or compose file is unusable. */
export class StackError extends InputError {
  constructor(message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super('ZOOPA_STACK', message, loc);
  }
}

const STDERR_LIMIT = 2000;

export function trimOutput(text: string, limit = STDERR_LIMIT): string {
  const t = text.trim();
  return t.length <= limit ? t : '…' + t.slice(t.length - limit);
}

/** An external command exited non-zero, was killed, or could not be spawned. */
export class CommandError extends ZoopaError {
  readonly argv: readonly string[];
  /** Exit status, or null if killed by a signal or never started. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Trimmed stderr of the command. */
  readonly stderr: string;
  readonly stdout: string;

  constructor(
    argv: readonly string[],
    result: { status: number | null; signal: NodeJS.Signals | null; stdout?: string; stderr?: string },
    opts: ZoopaErrorOptions & { code?: ErrorCode; message?: string } = {},
  ) {
    const stderr = trimOutput(result.stderr ?? '');
    const how =
      result.status !== null
        ? `exited with status ${result.status}`
        : result.signal
          ? `was killed by ${result.signal}`
          : 'could not be started';
    const lastLine = stderr.split('\n').filter(Boolean).pop();
    const message = opts.message ?? `${formatArgv(argv)} ${how}${lastLine ? `: ${lastLine}` : ''}`;
    super(opts.code ?? 'ZOOPA_COMMAND_FAILED', message, opts);
    this.argv = argv;
    this.status = result.status;
    this.signal = result.signal;
    this.stderr = stderr;
    this.stdout = trimOutput(result.stdout ?? '');
  }
}

export class TimeoutError extends ZoopaError {
  readonly timeoutMs: number;
  /** The command that did not finish in time, when it was one. */
  readonly argv: readonly string[] | undefined;
  constructor(message: string, timeoutMs: number, opts: ZoopaErrorOptions & { argv?: readonly string[] } = {}) {
    super('ZOOPA_TIMEOUT', message, opts);
    this.timeoutMs = timeoutMs;
    this.argv = opts.argv;
  }
}

/** A command was stopped because its caller aborted (AbortSignal); `cause` is the signal's reason. */
export class AbortError extends ZoopaError {
  readonly argv: readonly string[];
  constructor(argv: readonly string[], opts: ZoopaErrorOptions = {}) {
    super('ZOOPA_ABORTED', `${formatArgv(argv)} was aborted`, opts);
    this.argv = argv;
  }
}

export class StateError extends ZoopaError {
  constructor(code: ErrorCode, message: string, opts: ZoopaErrorOptions = {}) {
    super(code, message, opts);
  }
}

/** Quote an argv for display only (never for execution). */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function isZoopaError(e: unknown): e is ZoopaError {
  return e instanceof ZoopaError;
}
