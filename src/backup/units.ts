/** Units of the backup feature. (Placeholder: the backup issue fills this in.) */
import type { RenderContext, RenderedUnit } from '../units/render.js';

export function renderBackupUnits(_ctx: RenderContext): RenderedUnit[] {
  return [];
}
