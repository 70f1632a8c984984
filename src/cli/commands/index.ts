/** Every command's registration, in the order `zoopa --help` lists them. */
import type { Command } from 'commander';
import { register as registerBackup } from './backup.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerEnv } from './env.js';
import { register as registerFreeze } from './freeze.js';
import { register as registerLlama } from './llama.js';
import { register as registerLifecycle } from './lifecycle.js';
import { register as registerProxy } from './proxy.js';
import { register as registerOndemand } from './ondemand.js';
import { register as registerStatus } from './status.js';
import { register as registerUnits } from './units.js';

export function registerCommands(program: Command): void {
  registerUnits(program);
  registerLifecycle(program);
  registerStatus(program);
  registerOndemand(program);
  registerFreeze(program);
  registerEnv(program);
  registerBackup(program);
  registerDoctor(program);
  registerProxy(program);
  registerLlama(program);
}
