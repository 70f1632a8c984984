/** zoopa up | down | restart | enable | disable | logs <stack>: thin over systemd. */
import type { Command } from 'commander';
import { StateError, UsageError } from '../../errors.js';
import { stackUnitName } from '../../names.js';
import { resolveStack } from '../../stacks/discover.js';
import { projectFor, unitManager } from '../context.js';
import { withProgress } from '../progress.js';

async function installedUnit(cmd: Command, arg: string): Promise<string> {
  const stack = resolveStack(projectFor(cmd), arg);
  const unit = stackUnitName(stack.name);
  const info = (await unitManager().show([unit])).get(unit);
  if (!info || info.loadState === 'not-found') {
    throw new StateError('ZOOPA_NOT_INSTALLED', `${unit} is not installed`, { hint: 'run "zoopa install" first (see "zoopa install --dry-run")' });
  }
  return unit;
}

export function register(program: Command): void {
  const verbs: Array<[string, string, string, (unit: string) => Promise<void>]> = [
    ['up', 'start a stack (systemctl --user start <stack>-stack.service) and wait for it', 'starting', (u) => unitManager().start(u)],
    ['down', 'stop a stack and wait until its containers are gone', 'stopping', (u) => unitManager().stop(u)],
    ['restart', 'restart a stack', 'restarting', (u) => unitManager().restart(u)],
    ['enable', 'start a stack at login/boot (systemctl --user enable)', 'enabling', (u) => unitManager().enable([u])],
    ['disable', 'do not start a stack at login/boot', 'disabling', (u) => unitManager().disable([u])],
  ];
  for (const [name, description, doing, act] of verbs) {
    program
      .command(`${name} <stack>`)
      .description(description)
      .action(async (arg: string, _opts: unknown, cmd: Command) => {
        const unit = await installedUnit(cmd, arg);
        await withProgress(`${doing} ${unit}`, () => act(unit), () => `${name}: ${unit}`);
      });
  }
  program
    .command('logs <stack>')
    .description("show a stack unit's journal")
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <n>', 'how many lines', (v) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`--lines takes a whole number, got ${JSON.stringify(v)}`, { key: '--lines', value: v, hint: 'e.g. -n 100' });
      return Number(v);
    })
    .action(async (arg: string, opts: { follow?: boolean; lines?: number }, cmd: Command) => {
      const unit = await installedUnit(cmd, arg);
      await unitManager().logs(unit, { follow: opts.follow ?? false, lines: opts.lines });
    });
}
