/**
 * Rendering every unit Zoopa owns from the project. Each feature renders its
 * own units in its own module; this puts them together, checks that names do
 * not collide, and returns them sorted so output is byte-identical run to run.
 */
import { renderBackupUnits } from '../backup/units.js';
import { ConfigError } from '../errors.js';
import { renderLlamaUnits } from '../llama/units.js';
import { renderOndemandEnvFiles, renderOndemandUnits } from '../ondemand/units.js';
import { renderStackUnits } from '../stacks/units.js';
import type { ManagedFile, RenderContext, RenderedUnit } from '../unitfile/types.js';
import { renderWebUnits } from '../web/units.js';

export function renderAll(ctx: RenderContext): RenderedUnit[] {
  const units = [...renderStackUnits(ctx), ...renderOndemandUnits(ctx), ...renderBackupUnits(ctx), ...renderLlamaUnits(ctx), ...renderWebUnits(ctx)];
  const seen = new Map<string, RenderedUnit>();
  for (const u of units) {
    const prev = seen.get(u.name);
    if (prev) {
      throw new ConfigError(`two units would be called ${u.name} (from ${prev.kind} ${prev.stack ?? ''} and ${u.kind} ${u.stack ?? ''})`, {
        file: ctx.project.configFile,
        value: u.name,
        hint: 'rename one of the stacks or services',
      });
    }
    seen.set(u.name, u);
  }
  return units.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every managed non-unit file, sorted by path. */
export function renderManagedFiles(ctx: RenderContext): ManagedFile[] {
  return [...renderOndemandEnvFiles(ctx)].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
