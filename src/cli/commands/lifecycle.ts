/** zoopa up | down | restart | enable | disable | logs <stack>: thin over systemd. */
import type { Command } from 'commander';
import { CommandError, StateError, UsageError } from '../../errors.js';
import { stackUnitName } from '../../names.js';
import { rootfulContainerEngine, rootlessContainerEngine } from '../../podman/podman.js';
import { resolveStack, type Stack } from '../../stacks/discover.js';
import { composeServices, describeProblem, lastCheck, verifyStack } from '../../stacks/verify.js';
import { projectFor, unitManager } from '../context.js';
import { withProgress } from '../progress.js';

/** Beyond the unit's own start/stop timeout, for systemctl to report back. */
const JOB_MARGIN_MS = 30_000;

async function installedStack(cmd: Command, arg: string): Promise<{ stack: Stack; unit: string }> {
  const stack = resolveStack(projectFor(cmd), arg);
  const unit = stackUnitName(stack.name);
  const info = (await unitManager().show([unit])).get(unit);
  if (!info || info.loadState === 'not-found') {
    throw new StateError('ZOOPA_NOT_INSTALLED', `${unit} is not installed`, { hint: 'run "zoopa install" first (see "zoopa install --dry-run")' });
  }
  return { stack, unit };
}

/**
 * Starts (or restarts) the unit; when that fails, reads the stack's containers again so
 * the error names each one that does not run (the unit's ExecStartPost= check failed).
 */
async function startStack(stack: Stack, unit: string, verb: 'start' | 'restart'): Promise<void> {
  const call = { timeoutMs: stack.config.start_timeout * 1000 + JOB_MARGIN_MS };
  const began = Date.now();
  try {
    await (verb === 'start' ? unitManager().start(unit, call) : unitManager().restart(unit, call));
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    // The unit's check saved what it found (and removed the containers); else look now.
    const saved = lastCheck(stack.name);
    const engine = stack.config.rootful ? rootfulContainerEngine() : rootlessContainerEngine();
    const problems =
      saved && saved.at >= began - 1000
        ? saved.problems
        : await verifyStack(engine, stack.name, composeServices([stack.composeFile, ...stack.extraFiles]), { timeoutMs: 0 }).catch(() => []);
    if (!problems.length) throw e;
    throw new StateError('ZOOPA_STACK_NOT_RUNNING', `${unit} failed: ${problems.length} container(s) of ${stack.name} do not run:\n${problems.map((p) => `- ${describeProblem(p)}`).join('\n')}`, {
      cause: e,
      hint: `fix the cause, then "zoopa up ${stack.name}" again; "zoopa logs ${stack.name}" shows the unit's log`,
    });
  }
}

export function register(program: Command): void {
  const verbs: Array<[string, string, string, (s: Stack, unit: string) => Promise<void>]> = [
    ['up', 'start a stack (systemctl --user start <stack>-stack.service) and wait until every container runs', 'starting', (s, u) => startStack(s, u, 'start')],
    ['down', 'stop a stack and wait until its containers are gone', 'stopping', (s, u) => unitManager().stop(u, { timeoutMs: s.config.stop_timeout * 1000 + JOB_MARGIN_MS })],
    ['restart', 'restart a stack', 'restarting', (s, u) => startStack(s, u, 'restart')],
    ['enable', 'start a stack at login/boot (systemctl --user enable)', 'enabling', (_s, u) => unitManager().enable([u])],
    ['disable', 'do not start a stack at login/boot', 'disabling', (_s, u) => unitManager().disable([u])],
  ];
  for (const [name, description, doing, act] of verbs) {
    program
      .command(`${name} <stack>`)
      .description(description)
      .action(async (arg: string, _opts: unknown, cmd: Command) => {
        const { stack, unit } = await installedStack(cmd, arg);
        await withProgress(`${doing} ${unit}`, () => act(stack, unit), () => `${name}: ${unit}`);
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
      const { unit } = await installedStack(cmd, arg);
      // journalctl runs in its own process group (exec.run): Ctrl-C reaches only us, so pass it on.
      const ac = new AbortController();
      const onInt = () => ac.abort();
      process.once('SIGINT', onInt);
      try {
        await unitManager().logs(unit, { follow: opts.follow ?? false, lines: opts.lines }, { signal: ac.signal });
      } finally {
        process.off('SIGINT', onInt);
      }
    });
}
