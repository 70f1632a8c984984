/**
 * Progress of a backup run in a terminal (stderr is a TTY and JOURNAL_STREAM is
 * unset): a spinner showing the current step, one persisted line per finished
 * step. Otherwise (the journal, a pipe): the core's plain log lines.
 */
import ora, { type Ora } from 'ora';
import { plainProgress, type Progress } from '../backup/progress.js';
import { journalMode, type Logger } from '../log.js';

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
