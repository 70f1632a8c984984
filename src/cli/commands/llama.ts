/** zoopa llama list [--json]: the llama.cpp services of zoopa.yaml and their state. */
import type { Command } from 'commander';
import { collectLlama, formatLlamaList } from '../../llama/list.js';
import { output, projectFor, unitManager } from '../context.js';

export function register(program: Command): void {
  const llama = program.command('llama').description('llama.cpp model services (the llama: section of zoopa.yaml)');
  llama
    .command('list')
    .description('each llama service: model file and size (or models folder in router mode), listen address, CPUs, unit state')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const entries = await collectLlama(project, unitManager(process.env), process.env);
      output(opts.json, entries, () => formatLlamaList(entries, process.env));
    });
}
