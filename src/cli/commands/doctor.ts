/** zoopa doctor [--json]: checks and explains, each with its fix. Exit 1 when a check fails. */
import type { Command } from 'commander';
import { runChecks } from '../../doctor/checks.js';
import type { CheckResult } from '../../doctor/types.js';
import { describeError } from '../../report.js';
import { output, projectFor, returnsStatus } from '../context.js';
import type { Project } from '../../stacks/discover.js';

function format(results: CheckResult[]): string {
  const label = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  return (
    results
      .map((r) => `${label[r.verdict]}  ${r.check}: ${r.detail}${r.fix ? `\n      fix: ${r.fix}` : ''}`)
      .join('\n') + '\n'
  );
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the setup (user manager, lingering, podman, podman-compose, socket folder, sudo rule, stale units) and explain each fix')
    .option('--json', 'print results as JSON')
    .action(returnsStatus(async (opts: { json?: boolean }, cmd: Command) => {
      let project: Project | undefined;
      let projectError: string | undefined;
      try {
        project = projectFor(cmd);
      } catch (e) {
        projectError = describeError(e).text;
      }
      const results = await runChecks({ project, projectError, env: process.env });
      output(opts.json, results, () => format(results));
      return results.some((r) => r.verdict === 'fail') ? 1 : 0;
    }));
}
