/** What every command needs: the project (stacks root + zoopa.yaml), the systemd and podman backends. */
import type { Command } from 'commander';
import { PodmanEngine } from '../podman/podman.js';
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
  return new PodmanEngine(env);
}

/** Print data: JSON when asked, else the text form. */
export function output(json: boolean | undefined, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text());
}
