/**
 * Which connections the proxy takes on, each refusal with a (rate-limited) log
 * line: none beyond the descriptor budget (fd-budget.ts), and none held beyond
 * ZOOPA_MAX_HELD while the stack wakes. `frozen()` says when none may wake the
 * stack at all (maintenance.ts answers them).
 */
import type { Logger } from '../log.js';
import { freezeRecordExists } from '../ondemand/freeze-record.js';
import type { ProxySettings } from './config.js';
import type { FdBudget } from './fd-budget.js';
import { LogLimiter } from './log-limit.js';

export class Admission {
  readonly limits = new LogLimiter();

  constructor(
    private readonly settings: ProxySettings,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
    private readonly fds: FdBudget,
  ) {}

  /** One more connection, with `open` open now? */
  accept(open: number): boolean {
    if (this.fds.allows(open)) return true;
    const at = `${open} connections, the descriptor limit is ${this.fds.limit}`;
    this.limits.line('fds', (n) => this.log.warn(`closed a connection: ${at}${n ? ` (and ${n} more since the last line)` : ''}; raise LimitNOFILE= of zoopa-ondemand@.service`));
    return false;
  }

  /** Frozen (zoopa freeze) and not waking already: nothing may wake the stack. */
  frozen(waking: boolean): boolean {
    return !waking && this.settings.stackUnit !== null && freezeRecordExists(this.settings.stack, this.env);
  }

  /** Hold one more connection for the wake? `held` counts the held ones (asked only near the cap). */
  hold(open: number, held: () => number): boolean {
    const { stackUnit: unit, maxHeld } = this.settings;
    if (open <= maxHeld || held() < maxHeld) return true;
    const what = unit ?? this.settings.upstream.text;
    this.limits.line('held', (n) => this.log.warn(`closed a connection: ${maxHeld} are already waiting for ${what} (ZOOPA_MAX_HELD)${n ? `; ${n} more since the last line` : ''}`));
    return false;
  }
}
