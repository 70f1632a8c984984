/** zoopa env init <stack>|--all, zoopa env check [--json] */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { resolveStack } from '../../stacks/discover.js';
import { checkFailed, envCheck, envInit } from '../../stacks/env.js';
import { output, projectFor, returnsStatus } from '../context.js';

export function register(program: Command): void {
  const env = program.command('env').description("stacks' .env files: create from .env.example, check against compose files");
  env
    .command('init [stack]')
    .description('copy .env.example to .env where .env is missing (mode 0600, never overwrites)')
    .option('--all', 'every stack')
    .option('--json', 'print results as JSON')
    .action((arg: string | undefined, opts: { all?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      if (!arg && !opts.all) throw new UsageError('name a stack or pass --all', { key: 'stack', hint: 'zoopa env init web, or zoopa env init --all' });
      if (arg && opts.all) throw new UsageError('name a stack or pass --all, not both', { key: '--all', value: arg });
      const stacks = opts.all ? project.stacks : [resolveStack(project, arg!)];
      const results = stacks.map((s) => ({ stack: s.name, result: envInit(s) }));
      const say = { created: 'created .env from .env.example', exists: '.env exists, left alone', 'no-example': 'no .env.example, nothing to do' };
      output(opts.json, results, () => results.map((r) => `${r.stack}: ${say[r.result]}\n`).join(''));
    });
  env
    .command('check [stack]')
    .description('list variables the compose files use that no env file defines, and .env.example keys missing from .env; exit 1 if any')
    .option('--json', 'print results as JSON')
    .action(returnsStatus((arg: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const stacks = arg ? [resolveStack(project, arg)] : project.stacks;
      const checks = stacks.map(envCheck);
      output(opts.json, checks, () =>
        checks
          .map((c) => {
            const lines = [`${c.stack}: ${checkFailed(c) ? 'MISSING' : 'ok'}`];
            if (c.undefinedVars.length) lines.push(`  used but defined in neither .env nor .env.example: ${c.undefinedVars.join(', ')}`);
            if (c.missingFromEnv.length) lines.push(`  in .env.example but not in .env: ${c.missingFromEnv.join(', ')}${c.hasEnv ? '' : ' (no .env yet: zoopa env init ' + c.stack + ')'}`);
            if (c.defaulted.length) lines.push(`  using compose defaults: ${c.defaulted.join(', ')}`);
            return lines.join('\n') + '\n';
          })
          .join(''),
      );
      return checks.some(checkFailed) ? 1 : 0;
    }));
}
