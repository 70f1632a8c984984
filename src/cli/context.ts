/** What every command needs: the project (stacks root + zoopa.yaml), the systemd and podman backends. */
import type { Command } from 'commander';
import { rootlessContainerEngine, type PodmanEngine } from '../podman/podman.js';
import { loadProject, type Project } from '../stacks/discover.js';
import { SystemctlUserManager } from '../systemd/systemctl.js';

export interface GlobalOptions {
  root?: string;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export function projectFor(cmd: Command): Project {
  return loadProject({ root: globalOptions(cmd).root });
}

export function unitManager(env: NodeJS.ProcessEnv = process.env): SystemctlUserManager {
  return new SystemctlUserManager(env);
}

export function containerEngine(env: NodeJS.ProcessEnv = process.env): PodmanEngine {
  return rootlessContainerEngine(env);
}

/** Print data: JSON when asked, else the text form. */
export function output(json: boolean | undefined, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text());
}

/**
 * A command's action returns its exit status (nothing: 0) instead of setting
 * process.exitCode; main.ts exits with it (takeExitStatus). Wrap actions with this:
 *
 *   .action(returnsStatus(async (opts) => (failed ? 1 : 0)))
 */
let exitStatus: number | undefined;

export function returnsStatus<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const s = await fn(...args);
    if (typeof s === 'number') exitStatus = s;
  };
}

/** The status the command's action returned (undefined when it returned nothing). */
export function takeExitStatus(): number | undefined {
  const s = exitStatus;
  exitStatus = undefined;
  return s;
}
