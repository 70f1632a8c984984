/**
 * Finding the stacks root and the stacks in it.
 *
 * Root: --root DIR, else $ZOOPA_ROOT, else the nearest folder upward from the
 * working directory holding zoopa.yaml, else ~/podman-compose (the original layout).
 * A stack is every direct subfolder holding a compose file; its name is the folder's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, loadConfig } from '../config/load.js';
import { defaultStackConfig, type StackConfig, type ZoopaConfig } from '../config/schema.js';
import { ConfigError, StackError, UsageError } from '../errors.js';
import { ENV_ROOT, isName, NAME_HINT, stackOfUnitName } from '../names.js';
import { homeDir } from '../paths.js';
import { checkRequires } from './requires.js';

export const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'] as const;

export interface Stack {
  name: string;
  /** Absolute path of the stack folder. */
  dir: string;
  /** Absolute path of the main compose file. */
  composeFile: string;
  /** Absolute paths of extra compose files (zoopa.yaml `files`). */
  extraFiles: string[];
  config: StackConfig;
}

export interface Project {
  root: string;
  /** zoopa.yaml, when the root has one. */
  configFile: string | undefined;
  config: ZoopaConfig;
  /** Every stack found, enabled or not, sorted by name. */
  stacks: Stack[];
}

export interface RootOptions {
  root?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Where the stacks live, and how we decided. */
export function findRoot(opts: RootOptions = {}): { root: string; from: string } {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  let root: string;
  let from: string;
  if (opts.root) {
    root = path.resolve(cwd, opts.root);
    from = '--root';
  } else if (env[ENV_ROOT]) {
    root = path.resolve(cwd, env[ENV_ROOT]);
    from = ENV_ROOT;
  } else {
    const up = findUpward(cwd, CONFIG_FILE);
    if (up) {
      root = up;
      from = `${CONFIG_FILE} in ${up}`;
    } else {
      root = path.join(homeDir(env), 'podman-compose');
      from = 'default ~/podman-compose';
    }
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new UsageError(`stacks root ${root} does not exist (from ${from})`, {
      key: from === '--root' ? '--root' : from === ENV_ROOT ? ENV_ROOT : undefined,
      value: root,
      hint: 'pass --root DIR, set ZOOPA_ROOT, or run zoopa inside a folder holding zoopa.yaml',
    });
  }
  if (!st.isDirectory()) {
    throw new UsageError(`stacks root ${root} is not a folder (from ${from})`, { value: root, hint: 'point --root at the folder that holds your stack folders' });
  }
  return { root, from };
}

function findUpward(start: string, file: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, file))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function composeFileIn(dir: string): string | undefined {
  for (const f of COMPOSE_FILES) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Check a stack name; throws a StackError naming the folder. */
export function checkStackName(name: string, dir: string): void {
  if (!isName(name)) {
    throw new StackError(`stack folder name ${JSON.stringify(name)} cannot be a stack name`, {
      file: dir,
      value: name,
      hint: `rename the folder: ${NAME_HINT} (names become unit names and compose project labels)`,
    });
  }
}

/** Load the root's zoopa.yaml and every stack in it. Throws InputError on bad input. */
export function loadProject(opts: RootOptions = {}): Project {
  const { root } = findRoot(opts);
  const { file: configFile, config } = loadConfig(root);
  const stacks: Stack[] = [];
  const entries = fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const dir = path.join(root, e.name);
    const composeFile = composeFileIn(dir);
    if (!composeFile) continue;
    checkStackName(e.name, dir);
    const stackConfig = config.stacks[e.name] ?? defaultStackConfig();
    const extraFiles = stackConfig.files.map((f) => {
      const p = path.resolve(dir, f);
      if (!fs.existsSync(p)) {
        throw new ConfigError(`stacks.${e.name}.files: ${f} does not exist in ${dir}`, {
          file: configFile,
          key: `stacks.${e.name}.files`,
          value: f,
          hint: 'paths are relative to the stack folder',
        });
      }
      return p;
    });
    stacks.push({ name: e.name, dir, composeFile, extraFiles, config: stackConfig });
  }
  for (const name of Object.keys(config.stacks)) {
    if (!stacks.some((s) => s.name === name)) {
      throw new ConfigError(`stacks.${name}: no folder ${name}/ with a compose file in ${root}`, {
        file: configFile,
        key: `stacks.${name}`,
        value: name,
        hint: `create ${path.join(root, name)}/compose.yaml, or remove the entry`,
      });
    }
  }
  const rootful = stacks.filter((s) => s.config.rootful && s.config.enabled);
  if (rootful.length > 1) {
    throw new ConfigError(`more than one stack is rootful: ${rootful.map((s) => s.name).join(', ')}`, {
      file: configFile,
      key: `stacks.${rootful[1]!.name}.rootful`,
      value: true,
      hint: 'only one stack (like Duplicati) may run as root; keep the others rootless',
    });
  }
  checkRequires(stacks, configFile);
  return { root, configFile, config, stacks };
}

/**
 * Resolve a stack argument as the user typed it: `web`, `web-stack.service`,
 * or a path ending in either. Throws UsageError for an unknown stack.
 */
export function resolveStack(project: Project, arg: string, what = 'stack'): Stack {
  const base = path.basename(arg.replace(/\/+$/, ''));
  const name = stackOfUnitName(base) ?? base;
  const stack = project.stacks.find((s) => s.name === name);
  if (!stack) {
    const known = project.stacks.map((s) => s.name);
    throw new UsageError(`unknown ${what} ${JSON.stringify(arg)}`, {
      key: what,
      value: arg,
      hint: known.length ? `stacks in ${project.root}: ${known.join(', ')}` : `no stack folders with a compose file in ${project.root}`,
    });
  }
  return stack;
}
