/** Units of the llama feature. (Placeholder: the llama issue fills this in.) */
import type { RenderContext, RenderedUnit } from '../units/render.js';

export function renderLlamaUnits(_ctx: RenderContext): RenderedUnit[] {
  return [];
}
