/**
 * zoopa llama list [--json]                          the llama services of zoopa.yaml and their state
 * zoopa llama enable <service>... [--now] [--dry-run] [--json]
 * zoopa llama disable <service>... [--now] [--dry-run] [--json]
 *
 * enable/disable act on <name>.service, or for an on-demand service on its socket
 * zoopa-ondemand@<name>.socket (and zoopa-ondemand-dir.service): see src/llama/enable.ts.
 */
import type { Command } from 'commander';
import { checkInstalled, pickServices, planLlamaEnable } from '../../llama/enable.js';
import { collectLlama, formatLlamaList } from '../../llama/list.js';
import { output, projectFor, unitManager } from '../context.js';

interface ToggleOptions {
  now?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

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

  llama
    .command('enable <service...>')
    .description('start the services at login/boot (on-demand ones: enable their socket instead); run "zoopa install" first')
    .option('--now', 'also start them now (on-demand: start listening)')
    .option('--dry-run', 'print the systemctl command, change nothing')
    .option('--json', 'print the plan as JSON')
    .action(async (names: string[], opts: ToggleOptions, cmd: Command) => {
      const plan = planLlamaEnable(pickServices(projectFor(cmd), names, process.env));
      const argv = `systemctl --user enable${opts.now ? ' --now' : ''} ${plan.enable.join(' ')}`;
      if (!opts.dryRun) {
        const m = unitManager(process.env);
        await checkInstalled(plan.enable, m);
        await m.enable(plan.enable, { now: opts.now ?? false });
      }
      output(opts.json, { ...plan, now: opts.now ?? false, dryRun: opts.dryRun ?? false }, () => (opts.dryRun ? `would run: ${argv}\ndry run: nothing changed\n` : `ran: ${argv}\n`));
    });

  llama
    .command('disable <service...>')
    .description('do not start the services at login/boot (on-demand ones: disable their socket)')
    .option('--now', 'also stop them now')
    .option('--dry-run', 'print the systemctl command, change nothing')
    .option('--json', 'print the plan as JSON')
    .action(async (names: string[], opts: ToggleOptions, cmd: Command) => {
      const plan = planLlamaEnable(pickServices(projectFor(cmd), names, process.env));
      const argv = `systemctl --user disable${opts.now ? ' --now' : ''} ${plan.disable.join(' ')}`;
      if (!opts.dryRun) await unitManager(process.env).disable(plan.disable, { now: opts.now ?? false });
      output(opts.json, { ...plan, now: opts.now ?? false, dryRun: opts.dryRun ?? false }, () => (opts.dryRun ? `would run: ${argv}\ndry run: nothing changed\n` : `ran: ${argv}\n`));
    });
}
