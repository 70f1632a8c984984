/** Units of the ondemand feature. (Placeholder: the ondemand issue fills this in.) */
import type { RenderContext, RenderedUnit } from '../units/render.js';

export function renderOndemandUnits(_ctx: RenderContext): RenderedUnit[] {
  return [];
}
