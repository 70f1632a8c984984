/** Units of the ondemand feature. (Placeholder: the ondemand issue fills this in.) */
import type { ManagedFile, RenderContext, RenderedUnit } from '../units/render.js';

export function renderOndemandUnits(_ctx: RenderContext): RenderedUnit[] {
  return [];
}

/** Env files written from zoopa.yaml's `stacks.<name>.ondemand`. (Placeholder.) */
export function renderOndemandEnvFiles(_ctx: RenderContext): ManagedFile[] {
  return [];
}
