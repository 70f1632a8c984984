/**
 * What every feature's renderer takes and returns. Features import these from
 * here (a low layer), never from src/units/render.ts, which sits on top and is the
 * only module that knows all features.
 */
import type { Project } from '../stacks/discover.js';
import type { Tools } from './tools.js';

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
 * (src/unitfile/model.ts); install never overwrites or removes a file without it.
 */
export interface ManagedFile {
  path: string;
  content: string;
  mode: number;
}
