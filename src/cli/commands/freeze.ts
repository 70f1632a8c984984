/**
 * zoopa freeze <stack> / zoopa thaw <stack> [--json]
 *
 * freeze stops the stack's on-demand proxy and records what was running in
 * $XDG_RUNTIME_DIR/ondemand/<stack>.frozen.json; thaw restores exactly that.
 * While frozen the sockets keep listening: HTTP clients get a 503 maintenance page
 * (Retry-After from --for), others are closed; nothing wakes the stack. Both are
 * idempotent. See src/ondemand/freeze.ts and src/proxy/maintenance.ts.
 */
import type { Command } from 'commander';
import { DURATION_HINT, parseDuration } from '../../config/duration.js';
import { UsageError } from '../../errors.js';
import { freeze, thaw } from '../../ondemand/freeze.js';
import { resolveStack } from '../../stacks/discover.js';
import { output, projectFor, unitManager } from '../context.js';

export function register(program: Command): void {
  program
    .command('freeze <stack>')
    .description('put a stack\'s on-demand activation in maintenance: nothing wakes it, browsers get a maintenance page, until "zoopa thaw"')
    .option('--for <duration>', 'about how long (the maintenance page\'s Retry-After and text), e.g. 20m')
    .option('--json', 'print the result as JSON')
    .action(async (arg: string, opts: { json?: boolean; for?: string }, cmd: Command) => {
      const expected = opts.for === undefined ? undefined : parseDuration(opts.for);
      if (opts.for !== undefined && (expected === undefined || expected <= 0)) throw new UsageError(`--for ${JSON.stringify(opts.for)} is not a duration above 0`, { hint: DURATION_HINT });
      const project = projectFor(cmd);
      const stack = resolveStack(project, arg);
      const listeners = (stack.config.ondemand?.listeners ?? []).map((l) => l.name);
      const r = await freeze(stack.name, { units: unitManager(), listeners }, { reason: 'by hand', expectedSeconds: expected });
      output(opts.json, r, () =>
        r.already
          ? `${stack.name} is already frozen (since ${r.record.frozenAt || 'an unknown time'})\n`
          : `${stack.name} frozen: ${r.stopped.length ? `stopped ${r.stopped.join(', ')}` : 'no proxy was running'}; ` +
            (r.record.sockets.some((s) => s.activeState === 'active')
              ? `its sockets answer with a maintenance page (nothing wakes it) until "zoopa thaw ${stack.name}"\n`
              : `its sockets were not listening, nothing changes until "zoopa thaw ${stack.name}"\n`),
      );
    });

  program
    .command('thaw <stack>')
    .description('undo "zoopa freeze": start again exactly what was running before')
    .option('--json', 'print the result as JSON')
    .action(async (arg: string, opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const stack = resolveStack(project, arg);
      const r = await thaw(stack.name, { units: unitManager() });
      output(opts.json, r, () =>
        !r.wasFrozen
          ? `${stack.name} is not frozen: nothing to do\n`
          : `${stack.name} thawed: ${[...(r.stopped.length ? [`stopped ${r.stopped.join(', ')} (the maintenance proxy)`] : []), ...(r.started.length ? [`started ${r.started.join(', ')}`] : [])].join('; ') || 'as before the freeze'}; the next connection wakes it as usual\n`,
      );
    });
}
