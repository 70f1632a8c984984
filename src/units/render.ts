/**
 * Rendering every unit Zoopa owns from the project. Each feature renders its
 * own units in its own module; this puts them together, checks that names do
 * not collide, and returns them sorted so output is byte-identical run to run.
 */
import { renderBackupUnits } from '../backup/units.js';
import { ConfigError } from '../errors.js';
import { renderLlamaUnits } from '../llama/units.js';
import { renderOndemandEnvFiles, renderOndemandUnits } from '../ondemand/units.js';
import type { Project } from '../stacks/discover.js';
import { renderStackUnits } from './stack.js';
import type { Tools } from './tools.js';
import { renderWebUnits } from '../web/units.js';

export interface RenderContext {
  project: Project;
  tools: Tools;
  env: NodeJS.ProcessEnv;
}

export interface RenderedUnit {
  /** Unit file name, e.g. web-stack.service */
  name: string;
  content: string;
  /** Which feature rendered it. */
  kind: 'stack' | 'ondemand' | 'backup' | 'llama' | 'web';
  /** The stack or service it belongs to, if any. */
  stack?: string;
}

/**
 * A config file install writes besides units (e.g. ~/.config/zoopa-ondemand/<stack>.env
 * from zoopa.yaml). Its content starts with a comment holding GENERATED_MARKER
 * (src/units/model.ts); install never overwrites or removes a file without it.
 */
export interface ManagedFile {
  path: string;
  content: string;
  mode: number;
}

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
