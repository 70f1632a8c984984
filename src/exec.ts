/**
 * Running external commands. Every command is an argv array handed to spawn()
 * without a shell, so no stack name or config value ever reaches a shell.
 */
import { spawn } from 'node:child_process';
import { CommandError, TimeoutError } from './errors.js';

export interface RunOptions {
  cwd?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer | undefined;
  /** Kill the command (SIGTERM, then SIGKILL after 2 s) after this many ms. */
  timeoutMs?: number | undefined;
  /** Return a non-zero exit instead of throwing CommandError. */
  reject?: boolean | undefined;
  /** Called with each chunk of stdout/stderr as it arrives (progress, logs). */
  onStdout?: ((chunk: string) => void) | undefined;
  onStderr?: ((chunk: string) => void) | undefined;
  /** Abort the command (SIGTERM) when this signal fires. */
  signal?: AbortSignal | undefined;
}

export interface RunResult {
  argv: readonly string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run argv to completion and collect its output. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0 || !argv[0]) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    let settled = false;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      opts.onStdout?.(b.toString());
    });
    child.stderr.on('data', (b: Buffer) => {
      err.push(b);
      opts.onStderr?.(b.toString());
    });
    child.stdin.on('error', () => {
      /* the command may exit without reading its input */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();

    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
      killTimer.unref();
    };
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, opts.timeoutMs)
        : undefined;
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (status: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const result: RunResult = {
        argv,
        status,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      if (spawnError) {
        reject(
          new CommandError(argv, { ...result, stderr: spawnError.message }, {
            code: (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? 'ZOOPA_COMMAND_NOT_FOUND' : 'ZOOPA_COMMAND_FAILED',
            cause: spawnError,
            hint:
              (spawnError as NodeJS.ErrnoException).code === 'ENOENT'
                ? `Is ${argv[0]} installed? Run "zoopa doctor".`
                : undefined,
          }),
        );
        return;
      }
      if (timedOut) {
        reject(
          new TimeoutError(`${argv.join(' ')} did not finish within ${opts.timeoutMs} ms`, opts.timeoutMs!, {
            cause: new CommandError(argv, result),
          }),
        );
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
