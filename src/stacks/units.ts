/** `<stack>-stack.service`: podman-compose up -d / down for one stack folder. */
import path from 'node:path';
import { readCompose } from './compose.js';
import type { Stack } from './discover.js';
import { stackUnitName } from '../names.js';
import { absPath, exec, generatedHeader, UnitFile } from '../unitfile/model.js';
import type { RenderContext, RenderedUnit } from '../unitfile/types.js';

/**
 * The podman-compose argv for a stack (without the up/down verb).
 *
 * The rootful stack runs as root through `sudo -n`, so nothing the user can
 * change may steer it: it names its compose file(s) by absolute path (`-f`), and
 * does not depend on the working directory. podman-compose 1.0.3 has no
 * `--env-file`: it reads `.env` from the folder of the first `-f` file (after
 * resolving symlinks), which `zoopa doctor` checks is root's (src/doctor/rootful.ts).
 * The sudoers rule (src/sudoers/rule.ts) allows exactly these argvs.
 */
export function composeArgv(stack: Stack, ctx: Pick<RenderContext, 'tools'>): string[] {
  if (stack.config.rootful) {
    const files = [stack.composeFile, ...stack.extraFiles].flatMap((f) => ['-f', f]);
    return [ctx.tools.sudo, '-n', ctx.tools.podmanCompose, '-p', stack.name, ...files];
  }
  const files = stack.extraFiles.length
    ? [stack.composeFile, ...stack.extraFiles].flatMap((f) => ['-f', path.relative(stack.dir, f) || f])
    : [];
  return [ctx.tools.podmanCompose, '-p', stack.name, ...files];
}

/** The argvs the stack unit runs: ExecStart= and ExecStop=. */
export function stackUnitArgvs(stack: Stack, ctx: Pick<RenderContext, 'tools'>): { start: string[]; stop: string[] } {
  const compose = composeArgv(stack, ctx);
  return { start: [...compose, 'up', '-d'], stop: [...compose, 'down'] };
}

export function renderStackUnit(stack: Stack, ctx: RenderContext): RenderedUnit {
  // A compose file that does not parse is bad input: stop before anything is written.
  for (const f of [stack.composeFile, ...stack.extraFiles]) readCompose(f);
  const c = stack.config;
  const u = new UnitFile(generatedHeader(path.relative(ctx.project.root, stack.dir) + '/'), `${stackUnitName(stack.name)} (stack folder ${JSON.stringify(stack.dir)})`);
  u.section('Unit')
    .add('Description', c.description ?? `${stack.name} podman-compose stack${c.rootful ? ' (rootful)' : ''}`)
    .add('Documentation', 'man:podman-compose(1)');
  // Stacks this one needs (src/stacks/requires.ts): started first, and stopping one stops this one.
  for (const r of c.requires) u.section('Unit').add('Requires', stackUnitName(r)).add('After', stackUnitName(r));
  if (c.stop_when_unneeded) u.section('Unit').add('StopWhenUnneeded', true);
  const argv = stackUnitArgvs(stack, ctx);
  // podman-compose 1.0.3 exits 0 when a container cannot be created or started:
  // the start fails here instead, naming each container (src/stacks/verify.ts).
  // The rootful stack's files go by absolute path, so check-stack's clean-up
  // (`sudo -n podman-compose -p <stack> -f <file> down`) is exactly ExecStop=,
  // which the sudo rule allows.
  const check = [
    ctx.tools.node,
    ctx.tools.zoopa,
    'check-stack',
    stack.name,
    // The rootful stack's files by absolute path, as in its ExecStop= (check-stack's clean-up runs exactly that, which the sudo rule allows).
    ...[stack.composeFile, ...stack.extraFiles].flatMap((f) => ['--file', c.rootful ? f : path.relative(stack.dir, f) || f]),
    '--timeout',
    String(Math.ceil(c.start_timeout)),
    ...(c.rootful ? ['--rootful'] : []),
    '--compose',
    ctx.tools.podmanCompose,
  ];
  u.section('Service')
    .add('Type', 'oneshot')
    .add('RemainAfterExit', true)
    .add('WorkingDirectory', absPath(stack.dir))
    .add('ExecStart', exec(argv.start))
    .add('ExecStartPost', exec(check))
    .add('ExecStop', exec(argv.stop))
    .add('TimeoutStartSec', Math.ceil(c.start_timeout))
    .add('TimeoutStopSec', Math.ceil(c.stop_timeout));
  u.section('Install').add('WantedBy', 'default.target');
  return { name: stackUnitName(stack.name), content: u.toString(), kind: 'stack', stack: stack.name };
}

export function renderStackUnits(ctx: RenderContext): RenderedUnit[] {
  return ctx.project.stacks.filter((s) => s.config.enabled).map((s) => renderStackUnit(s, ctx));
}
