/**
 * Where things live, per the XDG base directory spec and the original setup.
 * Everything takes the environment explicitly so tests can point it at a test bed.
 */
import os from 'node:os';
import path from 'node:path';

export type Env = NodeJS.ProcessEnv;

export function homeDir(env: Env = process.env): string {
  return env.HOME || os.homedir();
}

export function configHome(env: Env = process.env): string {
  return env.XDG_CONFIG_HOME || path.join(homeDir(env), '.config');
}

export function stateHome(env: Env = process.env): string {
  return env.XDG_STATE_HOME || path.join(homeDir(env), '.local', 'state');
}

/** $XDG_RUNTIME_DIR, or /run/user/<uid> like systemd's %t for a user manager. */
export function runtimeDir(env: Env = process.env): string {
  return env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
}

/** Where user units are linked: $XDG_CONFIG_HOME/systemd/user. */
export function userUnitDir(env: Env = process.env): string {
  return path.join(configHome(env), 'systemd', 'user');
}

/** %t/ondemand: the sockets nginx connects to, and the proxy's state markers. */
export function ondemandRuntimeDir(env: Env = process.env): string {
  return path.join(runtimeDir(env), 'ondemand');
}

/** ~/.config/zoopa-ondemand: the per-stack env files (contract with the original). */
export function ondemandEnvDir(env: Env = process.env): string {
  return path.join(configHome(env), 'zoopa-ondemand');
}

export function ondemandEnvFile(stack: string, env: Env = process.env): string {
  return path.join(ondemandEnvDir(env), `${stack}.env`);
}

/** Zoopa's own state (installed-unit manifest, backup journal and status). */
export function zoopaStateDir(env: Env = process.env): string {
  return path.join(stateHome(env), 'zoopa');
}
