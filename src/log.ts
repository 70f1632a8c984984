/**
 * Log lines for people and for the journal. When stderr is the journal
 * (JOURNAL_STREAM is set, as systemd does for units), each line carries a
 * sd-daemon priority prefix (<3> error, <4> warning, <5> notice, <6> info,
 * <7> debug) so journald files it at the right level.
 */
export type Level = 'error' | 'warning' | 'notice' | 'info' | 'debug';

const PRIORITY: Record<Level, number> = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  notice(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

export interface LoggerOptions {
  /** Defaults to process.stderr. */
  write?: (line: string) => void;
  /** Prefix lines with <N>; default: when JOURNAL_STREAM is set. */
  journal?: boolean;
  /** Text before each message, e.g. "web: ". */
  prefix?: string;
  debug?: boolean;
}

export function journalMode(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.JOURNAL_STREAM);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const journal = opts.journal ?? journalMode();
  const prefix = opts.prefix ?? '';
  const emit = (level: Level, msg: string) => {
    if (level === 'debug' && !opts.debug) return;
    const label = level === 'error' ? 'error: ' : level === 'warning' ? 'warning: ' : '';
    msg.split('\n').forEach((line, i) => {
      // The journal gets a priority on every line; a terminal gets the label once.
      const head = journal ? `<${PRIORITY[level]}>` : i === 0 ? label : ' '.repeat(label.length);
      write(`${head}${prefix}${line}\n`);
    });
  };
  return {
    error: (m) => emit('error', m),
    warn: (m) => emit('warning', m),
    notice: (m) => emit('notice', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
  };
}
