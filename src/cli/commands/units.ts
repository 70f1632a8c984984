/** zoopa render | install | uninstall */
import type { Command } from 'commander';
import { applyInstall, applyUninstall, checkConflicts, planInstall, planUninstall } from '../../units/install.js';
import { formatPlan, planJson } from '../plan-output.js';
import { output, projectFor, unitManager } from '../context.js';

export function register(program: Command): void {
  program
    .command('render')
    .description('render every unit into the units folder (default <root>/systemd) without linking or reloading')
    .option('--out <dir>', 'write the units here instead')
    .option('--dry-run', 'print what would be written, write nothing')
    .option('--adopt', 'replace hand-written units of the same name (each kept as <name>.zoopa-orig)')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: { out?: string; dryRun?: boolean; adopt?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const plan = planInstall(project, { outDir: opts.out, renderOnly: true });
      checkConflicts(plan, opts.adopt ?? false);
      if (!opts.dryRun) await applyInstall(plan, undefined, { adopt: opts.adopt ?? false });
      output(opts.json, planJson(plan), () => formatPlan(plan) + (opts.dryRun ? 'dry run: nothing written\n' : ''));
    });

  program
    .command('install')
    .description('render units, link them into ~/.config/systemd/user and reload systemd; prints the plan first')
    .option('--dry-run', 'print the plan (with diffs), change nothing')
    .option('--adopt', 'replace hand-written units or env files of the same name (each kept as <name>.zoopa-orig)')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: { dryRun?: boolean; adopt?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const plan = planInstall(project);
      checkConflicts(plan, opts.adopt ?? false);
      if (!plan.changes) {
        output(opts.json, planJson(plan), () => 'nothing to do: every unit is installed and up to date\n');
        return;
      }
      if (!opts.dryRun) await applyInstall(plan, unitManager(), { adopt: opts.adopt ?? false });
      output(opts.json, planJson(plan), () => formatPlan(plan) + (opts.dryRun ? 'dry run: nothing changed\n' : 'installed; systemd reloaded\n'));
    });

  program
    .command('uninstall')
    .description('remove exactly the units and files zoopa installed (never one it did not write)')
    .option('--stop', 'stop running zoopa units first (default: leave them running)')
    .option('--dry-run', 'print what would be removed, change nothing')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: { stop?: boolean; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const plan = planUninstall(project);
      if (!opts.dryRun) await applyUninstall(plan, unitManager(), { stop: opts.stop ?? false });
      output(opts.json, plan, () =>
        plan.units.length + plan.files.length === 0
          ? 'nothing to do: no zoopa units installed\n'
          : [...plan.units.map((u) => `  - ${u.name}`), ...plan.files.map((f) => `  - ${f}`), opts.dryRun ? 'dry run: nothing changed' : `removed${opts.stop ? '' : ' (running units keep running until stopped)'}`].join('\n') + '\n',
      );
    });
}
