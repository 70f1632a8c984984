/** zoopa init [--dry-run] [--json]: a first, commented zoopa.yaml from what is in the stacks root. */
import type { Command } from 'commander';
import { applyInit, planInit, type InitPlan } from '../../init/init.js';
import { findRoot } from '../../stacks/discover.js';
import { globalOptions, output } from '../context.js';

function summary(plan: InitPlan, written: boolean, dryRun: boolean): string {
  const lines: string[] = [];
  if (!plan.exists) {
    if (dryRun) lines.push(`would write ${plan.file}:`, '', plan.text.replace(/\n$/, ''), '');
    else lines.push(`wrote ${plan.file}`);
  } else if (plan.added.length) {
    lines.push(`${plan.file} exists and is left alone; zoopa init would add ${plan.added.join(', ')}:`);
    for (const d of plan.diff!.split('\n')) lines.push(`  ${d}`);
  } else {
    lines.push(`${plan.file} exists and already has everything zoopa init finds: nothing to add`);
  }
  lines.push(`stacks: ${plan.stacks.join(', ') || '(none)'}`);
  if (plan.migrated.length) lines.push(`carried over from the original setup: ${plan.migrated.join(', ')}`);
  for (const b of plan.badNames) lines.push(`not a stack name: folder ${JSON.stringify(b.folder)}; rename it (e.g. to ${b.suggested}) and run zoopa init again`);
  for (const n of plan.notes) lines.push(`note: ${n}`);
  if (written || (dryRun && !plan.exists)) lines.push('next: zoopa install --dry-run' + (plan.migrated.length ? ' --adopt (hand-written units are replaced only with --adopt)' : ''));
  if (dryRun) lines.push('dry run: nothing written');
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('init')
    .description('write a commented zoopa.yaml from the stack folders and the original hand-written units and env files (never overwrites one: prints what it would add instead)')
    .option('--dry-run', 'print the zoopa.yaml it would write, write nothing')
    .option('--json', 'print the result as JSON')
    .action((opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const { root } = findRoot({ root: globalOptions(cmd).root });
      const plan = planInit(root, process.env);
      const written = !opts.dryRun && applyInit(plan);
      output(opts.json, { ...plan, written }, () => summary(plan, written, opts.dryRun ?? false));
    });
}
