/** Every command's registration, in the order `zoopa --help` lists them. */
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {
  // Each command module adds itself here: registerX(program).
}
