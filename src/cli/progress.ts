/**
 * Progress on long work: a spinner (ora) when stderr is a terminal, one plain
 * line at the start and one at the end otherwise (pipes, the journal).
 */
import ora from 'ora';
import { createLogger, journalMode } from '../log.js';

export function interactive(): boolean {
  // A terminal that reports 0 columns (e.g. under `script`) makes spinner redraws run away.
  return Boolean(process.stderr.isTTY) && (process.stderr.columns ?? 0) > 0 && !journalMode() && !process.env.CI;
}

/** Run `fn` while showing `text`; `done` describes the result. */
export async function withProgress<T>(text: string, fn: () => Promise<T>, done?: (r: T) => string): Promise<T> {
  if (!interactive()) {
    const log = createLogger();
    log.info(`${text}...`);
    const r = await fn();
    if (done) log.info(done(r));
    return r;
  }
  const started = Date.now();
  const spinner = ora({ text, stream: process.stderr }).start();
  const tick = setInterval(() => (spinner.text = `${text} (${Math.round((Date.now() - started) / 1000)}s)`), 1000);
  try {
    const r = await fn();
    spinner.succeed(done ? done(r) : text);
    return r;
  } catch (e) {
    spinner.fail(text);
    throw e;
  } finally {
    clearInterval(tick);
  }
}
