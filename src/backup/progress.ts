/**
 * Progress of a backup run. In a terminal (stderr is a TTY and JOURNAL_STREAM
 * is unset): a spinner showing the current step, one persisted line per
 * finished step. Otherwise (the journal, a pipe): plain log lines, with
 * priority prefixes when JOURNAL_STREAM is set (src/log.ts).
 */
import ora, { type Ora } from 'ora';
import { createLogger, journalMode, type Logger } from '../log.js';

export interface Progress {
  /** A step begins. */
  step(stack: string, text: string): void;
  /** A detail line (command output); terminal mode keeps these in the log file only. */
  detail(stack: string, text: string): void;
  warn(stack: string, text: string): void;
  /** The stack finished. */
  done(stack: string, ok: boolean, text: string): void;
  /** A line not tied to one stack. */
  note(text: string, level?: 'info' | 'warn' | 'error'): void;
  stop(): void;
}

export function plainProgress(logger: Logger = createLogger()): Progress {
  return {
    step: (stack, text) => logger.info(`${stack}: ${text}`),
    detail: (stack, text) => logger.debug(`${stack}: ${text}`),
    warn: (stack, text) => logger.warn(`${stack}: ${text}`),
    done: (stack, ok, text) => (ok ? logger.notice(`${stack}: ${text}`) : logger.error(`${stack}: ${text}`)),
    note: (text, level = 'info') => (level === 'error' ? logger.error(text) : level === 'warn' ? logger.warn(text) : logger.info(text)),
    stop: () => {},
  };
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  let spinner: Ora | undefined;
  const ensure = (text: string) => {
    if (!spinner) spinner = ora({ text, stream, discardStdin: false, hideCursor: false }).start();
    else spinner.text = text;
  };
  const above = (line: string) => {
    if (spinner?.isSpinning) {
      spinner.clear();
      stream.write(line + '\n');
      spinner.render();
    } else stream.write(line + '\n');
  };
  return {
    step: (stack, text) => ensure(`${stack}: ${text}`),
    detail: () => {},
    warn: (stack, text) => above(`warning: ${stack}: ${text}`),
    done: (stack, ok, text) => {
      ensure(stack);
      if (ok) spinner!.succeed(`${stack}: ${text}`);
      else spinner!.fail(`${stack}: ${text}`);
      spinner = undefined;
    },
    note: (text, level = 'info') => above(level === 'info' ? text : `${level === 'warn' ? 'warning' : 'error'}: ${text}`),
    stop: () => {
      spinner?.stop();
      spinner = undefined;
    },
  };
}

/**
 * The spinner only when stderr is a terminal with a known width (a pty reporting 0
 * columns would make the spinner's line arithmetic divide by zero) and we are not
 * writing to the journal.
 */
export function chooseProgress(env: NodeJS.ProcessEnv = process.env, logger?: Logger): Progress {
  return process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !journalMode(env) ? terminalProgress() : plainProgress(logger);
}
