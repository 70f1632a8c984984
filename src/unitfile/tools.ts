/**
 * Absolute paths of the programs units run, resolved once at render time so the
 * rendered units do not depend on the user manager's PATH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { isExecutableFile } from '../fsutil.js';

export interface Tools {
  /** podman-compose */
  podmanCompose: string;
  /** sudo, for the rootful stack */
  sudo: string;
  /** node running zoopa */
  node: string;
  /** zoopa's entry script (bin/zoopa.js) */
  zoopa: string;
}

/** Find an executable on PATH; undefined when absent. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? path.resolve(name) : undefined;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** bin/zoopa.js of this installation (dist/src/unitfile/tools.js → ../../../bin/zoopa.js). */
export function zoopaEntry(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'zoopa.js');
}

export function resolveTools(opts: { podmanCompose?: string | undefined; configFile?: string | undefined; env?: NodeJS.ProcessEnv }): Tools {
  const env = opts.env ?? process.env;
  let podmanCompose: string;
  if (opts.podmanCompose) {
    if (!path.isAbsolute(opts.podmanCompose) || !isExecutableFile(opts.podmanCompose)) {
      throw new ConfigError(`podman_compose: ${opts.podmanCompose} is not an executable absolute path`, {
        file: opts.configFile,
        key: 'podman_compose',
        value: opts.podmanCompose,
        hint: 'write the absolute path, e.g. /usr/bin/podman-compose, or remove the key to find it on PATH',
      });
    }
    podmanCompose = opts.podmanCompose;
  } else {
    // Not finding it is not fatal for rendering: doctor reports it; units name the usual path.
    podmanCompose = which('podman-compose', env) ?? '/usr/bin/podman-compose';
  }
  return {
    podmanCompose,
    sudo: which('sudo', env) ?? '/usr/bin/sudo',
    node: fs.realpathSync(process.execPath),
    zoopa: zoopaEntry(),
  };
}
