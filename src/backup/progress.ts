/**
 * What the backup runner reports as it goes (the interface), and its plain form:
 * log lines, with priority prefixes when JOURNAL_STREAM is set (src/log.ts).
 * The terminal's spinner is the CLI's (src/cli/backup-progress.ts).
 */
import { createLogger, type Logger } from '../log.js';

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
