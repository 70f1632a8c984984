/**
 * zoopa freeze <stack> / zoopa thaw <stack> [--json]
 *
 * freeze stops the stack's on-demand sockets and proxy and records what was running
 * in $XDG_RUNTIME_DIR/ondemand/<stack>.frozen.json; thaw starts exactly that again.
 * While frozen the socket file is gone: a client gets "no such file" at once and nginx
 * answers 502; nothing wakes the stack. Both are idempotent. See src/ondemand/freeze.ts.
 */
import type { Command } from 'commander';
import { freeze, thaw } from '../../ondemand/freeze.js';
import { resolveStack } from '../../stacks/discover.js';
import { output, projectFor, unitManager } from '../context.js';

export function register(program: Command): void {
  program
    .command('freeze <stack>')
    .description('stop on-demand activation of a stack (socket and proxy), remembering its state for "zoopa thaw"')
    .option('--json', 'print the result as JSON')
    .action(async (arg: string, opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const stack = resolveStack(project, arg);
      const listeners = (stack.config.ondemand?.listeners ?? []).map((l) => l.name);
      const r = await freeze(stack.name, { units: unitManager(), listeners });
      output(opts.json, r, () =>
        r.already
          ? `${stack.name} is already frozen (since ${r.record.frozenAt || 'an unknown time'})\n`
          : `${stack.name} frozen: ${r.stopped.length ? `stopped ${r.stopped.join(', ')}` : 'nothing was running'}; connections are refused until "zoopa thaw ${stack.name}"\n`,
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
          : `${stack.name} thawed: ${r.started.length ? `started ${r.started.join(', ')}` : 'nothing was running before the freeze, nothing started'}\n`,
      );
    });
}
