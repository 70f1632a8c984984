/** `<stack>-stack.service`: podman-compose up -d / down for one stack folder. */
import path from 'node:path';
import { readCompose } from './compose.js';
import type { Stack } from './discover.js';
import { stackUnitName } from '../names.js';
import { absPath, exec, generatedHeader, UnitFile } from '../unitfile/model.js';
import type { RenderContext, RenderedUnit } from '../unitfile/types.js';

/** The podman-compose argv for a stack (without the up/down verb). */
export function composeArgv(stack: Stack, ctx: Pick<RenderContext, 'tools'>): string[] {
  const files = stack.extraFiles.length
    ? [stack.composeFile, ...stack.extraFiles].flatMap((f) => ['-f', path.relative(stack.dir, f) || f])
    : [];
  const base = [ctx.tools.podmanCompose, '-p', stack.name, ...files];
  return stack.config.rootful ? [ctx.tools.sudo, '-n', ...base] : base;
}

export function renderStackUnit(stack: Stack, ctx: RenderContext): RenderedUnit {
  // A compose file that does not parse is bad input: stop before anything is written.
  for (const f of [stack.composeFile, ...stack.extraFiles]) readCompose(f);
  const c = stack.config;
  const u = new UnitFile(generatedHeader(path.relative(ctx.project.root, stack.dir) + '/'));
  u.section('Unit')
    .add('Description', c.description ?? `${stack.name} podman-compose stack${c.rootful ? ' (rootful)' : ''}`)
    .add('Documentation', 'man:podman-compose(1)');
  const compose = composeArgv(stack, ctx);
  u.section('Service')
    .add('Type', 'oneshot')
    .add('RemainAfterExit', true)
    .add('WorkingDirectory', absPath(stack.dir))
    .add('ExecStart', exec([...compose, 'up', '-d']))
    .add('ExecStop', exec([...compose, 'down']))
    .add('TimeoutStartSec', Math.ceil(c.start_timeout))
    .add('TimeoutStopSec', Math.ceil(c.stop_timeout));
  u.section('Install').add('WantedBy', 'default.target');
  return { name: stackUnitName(stack.name), content: u.toString(), kind: 'stack', stack: stack.name };
}

export function renderStackUnits(ctx: RenderContext): RenderedUnit[] {
  return ctx.project.stacks.filter((s) => s.config.enabled).map((s) => renderStackUnit(s, ctx));
}
