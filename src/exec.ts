/**
 * Running external commands. Every command is an argv array handed to spawn()
 * without a shell, so no stack name or config value ever reaches a shell.
 *
 * Each command runs in its own process group (`detached`): a timeout or an abort
 * kills the whole group (SIGTERM, then SIGKILL after KILL_GRACE_MS), so a child's
 * own children cannot keep it alive, and the call settles at most a moment after
 * the SIGKILL even if something outside the group still holds its output pipes.
 * Collected output is capped (the tail is kept, with a note of what was cut).
 */
import { spawn } from 'node:child_process';
import { AbortError, CommandError, TimeoutError, ZoopaError } from './errors.js';

/** SIGTERM → SIGKILL. */
export const KILL_GRACE_MS = 2000;
/** After the SIGKILL, settle even if the pipes are still held open. */
const SETTLE_GRACE_MS = 500;
/** Default cap on collected stdout and on stderr, each. */
export const DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024;

export interface RunOptions {
  cwd?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer | undefined;
  /** Kill the command's process group (SIGTERM, then SIGKILL) after this many ms; rejects with TimeoutError. */
  timeoutMs?: number | undefined;
  /** Return a non-zero exit instead of throwing CommandError. */
  reject?: boolean | undefined;
  /** Called with each chunk of stdout/stderr as it arrives (progress, logs). */
  onStdout?: ((chunk: string) => void) | undefined;
  onStderr?: ((chunk: string) => void) | undefined;
  /**
   * Kill the command's process group when this signal fires (also when it already has):
   * rejects with the signal's reason when that is a ZoopaError, else with AbortError.
   */
  signal?: AbortSignal | undefined;
  /** 'inherit': the command writes straight to our stdout / stderr (nothing collected). Default 'pipe'. */
  stdout?: 'pipe' | 'inherit' | undefined;
  stderr?: 'pipe' | 'inherit' | undefined;
  /** Cap on collected bytes of stdout and of stderr, each (default 8 MiB): the tail is kept. */
  maxOutputBytes?: number | undefined;
}

export interface RunResult {
  argv: readonly string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Keeps the last `max` bytes of a stream and counts what it dropped. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private cut = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length) {
      const first = this.chunks[0]!;
      const over = this.size - this.max;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
        this.cut += first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
        this.cut += over;
      }
    }
  }
  text(): string {
    const t = Buffer.concat(this.chunks).toString();
    return this.cut ? `[… ${this.cut} bytes of output cut …]\n${t}` : t;
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* the group is gone */
  }
}

/** Run argv to completion and collect its output. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0 || !argv[0]) throw new Error('run: empty argv');
  const abortReason = (): Error => {
    const r: unknown = opts.signal?.reason;
    return r instanceof ZoopaError ? r : new AbortError(argv, { cause: r });
  };
  if (opts.signal?.aborted) return Promise.reject(abortReason());
  return new Promise((resolve, reject) => {
    let settled = false;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe'],
      detached: true,
    });
    const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const out = new Tail(max);
    const err = new Tail(max);
    child.stdout?.on('data', (b: Buffer) => {
      out.push(b);
      opts.onStdout?.(b.toString());
    });
    child.stderr?.on('data', (b: Buffer) => {
      err.push(b);
      opts.onStderr?.(b.toString());
    });
    child.stdin!.on('error', () => {
      /* the command may exit without reading its input */
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();

    let stopped: 'timeout' | 'abort' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settleTimer: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'abort') => {
      if (stopped || settled) return;
      stopped = why;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => {
        killGroup(child.pid, 'SIGKILL');
        // Something outside the group may hold the pipes: do not wait for 'close' forever.
        settleTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish(child.exitCode, child.signalCode ?? 'SIGKILL');
        }, SETTLE_GRACE_MS);
      }, KILL_GRACE_MS);
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (status: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (settleTimer) clearTimeout(settleTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Whatever the command left in its group goes with it.
      if (stopped) killGroup(child.pid, 'SIGKILL');
      const result: RunResult = { argv, status, signal, stdout: out.text(), stderr: err.text() };
      if (spawnError) {
        const enoent = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new CommandError(argv, { ...result, stderr: spawnError.message }, {
            code: enoent ? 'ZOOPA_COMMAND_NOT_FOUND' : 'ZOOPA_COMMAND_FAILED',
            cause: spawnError,
            hint: enoent ? `Is ${argv[0]} installed? Run "zoopa doctor".` : undefined,
          }),
        );
        return;
      }
      if (stopped === 'timeout') {
        reject(
          new TimeoutError(`${argv.join(' ')} did not finish within ${opts.timeoutMs} ms`, opts.timeoutMs!, {
            argv,
            cause: new CommandError(argv, result),
          }),
        );
        return;
      }
      if (stopped === 'abort') {
        reject(abortReason());
        return;
      }
      if (status !== 0 && opts.reject !== false) {
        reject(new CommandError(argv, result));
        return;
      }
      resolve(result);
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (status, signal) => finish(status, signal));
  });
}
