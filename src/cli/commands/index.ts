/**
 * Every command, and the module that registers it, in the order `zoopa --help`
 * lists them. Modules are imported lazily: `zoopa status` loads only status.ts
 * and what it needs, which keeps start-up short (it matters most for
 * `zoopa proxy`, whose start-up delays the first connection of a cold start).
 */
import type { Command } from 'commander';

type Loader = () => Promise<{ register(program: Command): void }>;

const units: Loader = () => import('./units.js');
const lifecycle: Loader = () => import('./lifecycle.js');

/** Top-level command word → the module registering it. */
export const COMMANDS: ReadonlyArray<[string[], Loader]> = [
  [['init'], () => import('./init.js')],
  [['render', 'install', 'uninstall'], units],
  [['up', 'down', 'restart', 'enable', 'disable', 'logs'], lifecycle],
  [['status'], () => import('./status.js')],
  [['ondemand'], () => import('./ondemand.js')],
  [['freeze', 'thaw'], () => import('./freeze.js')],
  [['env'], () => import('./env.js')],
  [['backup'], () => import('./backup.js')],
  [['doctor'], () => import('./doctor.js')],
  [['sudoers'], () => import('./sudoers.js')],
  [['proxy'], () => import('./proxy.js')],
  [['check-stack'], () => import('./check-stack.js')],
  [['llama'], () => import('./llama.js')],
  [['web', 'metrics'], () => import('./web.js')],
];

/**
 * Register the command named `word`, or every command when `word` is not one
 * of them (for --help, and for commander's "unknown command" message).
 */
export async function registerCommands(program: Command, word?: string): Promise<void> {
  const one = COMMANDS.find(([names]) => word !== undefined && names.includes(word));
  for (const [, load] of one ? [one] : COMMANDS) (await load()).register(program);
}
