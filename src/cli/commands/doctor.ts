/**
 * zoopa doctor [--json] [--fix]: checks and explains, each with its fix; only reads.
 * Exit 1 when a check fails. --fix first puts back what a killed backup left
 * (the same repair as `zoopa backup repair`), then checks.
 */
import type { Command } from 'commander';
import { runChecks } from '../../doctor/checks.js';
import type { CheckResult } from '../../doctor/types.js';
import { describeError } from '../../report.js';
import { containerEngine, output, projectFor, returnsStatus, unitManager } from '../context.js';
import { createLogger } from '../../log.js';
import { rootfulContainerEngine } from '../../podman/podman.js';
import type { Project } from '../../stacks/discover.js';

function format(results: CheckResult[]): string {
  const label = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  return (
    results
      .map((r) => `${label[r.verdict]}  ${r.check}: ${r.detail}${r.fix ? `\n      fix: ${r.fix}` : ''}`)
      .join('\n') + '\n'
  );
}

/** --fix: put back the stacks a killed backup run left (src/backup/put-back.ts), saying what was done on stderr. */
async function repairBackups(project: Project | undefined): Promise<void> {
  const { repairFromJournal } = await import('../../backup/put-back.js');
  const { loadFreezer } = await import('../../backup/freeze.js');
  const env = process.env;
  const units = unitManager(env);
  const log = createLogger();
  const report = await repairFromJournal({
    env,
    units,
    containers: containerEngine(env),
    rootfulContainers: rootfulContainerEngine(env),
    freezer: loadFreezer(units, project?.stacks ?? []),
    log: (l) => log.info(l),
  });
  if (report.skipped) log.info(report.skipped);
  if (report.repaired.length) log.notice(`repaired: ${report.repaired.join(', ')}`);
  for (const f of report.failed) log.error(`repair of ${f.stack} failed: ${f.errors.join('; ')}`);
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the setup (user manager, lingering, podman, podman-compose, socket folder, sudo rule, stale units) and explain each fix')
    .option('--json', 'print results as JSON')
    .option('--fix', 'first repair what a killed backup left (as "zoopa backup repair" does), then check')
    .action(returnsStatus(async (opts: { json?: boolean; fix?: boolean }, cmd: Command) => {
      let project: Project | undefined;
      let projectError: string | undefined;
      try {
        project = projectFor(cmd);
      } catch (e) {
        projectError = describeError(e).text;
      }
      if (opts.fix) await repairBackups(project);
      const results = await runChecks({ project, projectError, env: process.env });
      output(opts.json, results, () => format(results));
      return results.some((r) => r.verdict === 'fail') ? 1 : 0;
    }));
}
