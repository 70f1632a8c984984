/** zoopa up | down | restart | enable | disable | logs <stack>: thin over systemd. */
import type { Command } from 'commander';
import { StateError } from '../../errors.js';
import { resolveStack, stackUnitName } from '../../stacks/discover.js';
import { projectFor, unitManager } from '../context.js';

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
  const verbs: Array<[string, string, (unit: string) => Promise<void>]> = [
    ['up', 'start a stack (systemctl --user start <stack>-stack.service) and wait for it', (u) => unitManager().start(u)],
    ['down', 'stop a stack and wait until its containers are gone', (u) => unitManager().stop(u)],
    ['restart', 'restart a stack', (u) => unitManager().restart(u)],
    ['enable', 'start a stack at login/boot (systemctl --user enable)', (u) => unitManager().enable([u])],
    ['disable', 'do not start a stack at login/boot', (u) => unitManager().disable([u])],
  ];
  for (const [name, description, act] of verbs) {
    program
      .command(`${name} <stack>`)
      .description(description)
      .action(async (arg: string, _opts: unknown, cmd: Command) => {
        const unit = await installedUnit(cmd, arg);
        await act(unit);
        process.stdout.write(`${name}: ${unit}\n`);
      });
  }
  program
    .command('logs <stack>')
    .description("show a stack unit's journal")
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <n>', 'how many lines', (v) => Number(v))
    .action(async (arg: string, opts: { follow?: boolean; lines?: number }, cmd: Command) => {
      const unit = await installedUnit(cmd, arg);
      await unitManager().logs(unit, { follow: opts.follow ?? false, lines: opts.lines });
    });
}
