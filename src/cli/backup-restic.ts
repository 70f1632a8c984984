/**
 * The restic side of `zoopa backup`, reading only:
 *   zoopa backup snapshots <stack> [--json]   (restic snapshots; Duplicati jobs' versions)
 *   zoopa backup check [<stack>...] [--read-data-subset N%] [--json]
 */
import { checkBackups, renderCheck } from '../backup/check.js';
import { ResticEngine } from '../backup/engines/restic.js';
import { backupConfig, resticSettings } from '../backup/plan.js';
import { DuplicatiEngine } from '../backup/engines/duplicati.js';
import { duplicatiVersions, renderStackSnapshots, stackSnapshots, type StackSnapshots } from '../backup/snapshots.js';
import { UsageError } from '../errors.js';
import { resolveStack, type Project } from '../stacks/discover.js';
import { output } from './context.js';

function resticEngine(project: Project, env: NodeJS.ProcessEnv): ResticEngine {
  const cfg = backupConfig(project);
  const { repository, passwordFile } = resticSettings(project, env);
  return new ResticEngine({ command: cfg.restic.command, repository, passwordFile, callTimeoutMs: cfg.call_timeout * 1000, env });
}

/** Stacks with a restic job, in name order. */
function resticStacks(project: Project): Project['stacks'] {
  return project.stacks.filter((s) => s.config.backup?.jobs.some((j) => j.engine === 'restic'));
}

export async function backupSnapshots(project: Project, args: readonly string[], json: boolean | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  if (args.length !== 1) {
    throw new UsageError(`backup snapshots takes one stack, got ${args.length}`, {
      key: 'stack',
      value: args.join(' '),
      hint: `e.g. "zoopa backup snapshots ${resticStacks(project)[0]?.name ?? 'web'}"`,
    });
  }
  const stack = resolveStack(project, args[0]!);
  const jobs = stack.config.backup?.jobs ?? [];
  const dupJobs = jobs.flatMap((j) => (j.engine === 'duplicati' ? [j.job] : []));
  // restic is asked when the stack has a restic job, or nothing else to show.
  const withRestic = jobs.some((j) => j.engine === 'restic') || !dupJobs.length;
  const cfg = backupConfig(project);
  const data: StackSnapshots = {
    stack: stack.name,
    restic: withRestic ? await stackSnapshots(resticEngine(project, env), stack.name) : [],
    duplicati: await duplicatiVersions(
      new DuplicatiEngine({ command: cfg.duplicati.command, wait: cfg.duplicati.wait, pollIntervalSec: cfg.duplicati.poll_interval, callTimeoutMs: cfg.call_timeout * 1000, env }),
      dupJobs,
    ),
  };
  output(json, data, () => renderStackSnapshots(data, withRestic));
  return 0;
}

/** `N%` with 0 < N <= 100, as restic's --read-data-subset takes it. */
export function parseSubset(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0 || Number(m[1]) > 100) {
    throw new UsageError(`--read-data-subset: ${JSON.stringify(text)} is not a share of the data`, {
      key: '--read-data-subset',
      value: text,
      hint: 'write a percentage above 0 and at most 100, e.g. --read-data-subset 10%',
    });
  }
  return `${m[1]}%`;
}

export async function backupCheck(project: Project, args: readonly string[], opts: { json?: boolean | undefined; subset?: string | undefined }, env: NodeJS.ProcessEnv): Promise<number> {
  const subset = parseSubset(opts.subset);
  const stacks = args.length ? args.map((a) => resolveStack(project, a)) : resticStacks(project);
  const cfg = backupConfig(project);
  const report = await checkBackups(
    resticEngine(project, env),
    stacks.map((s) => ({ stack: s.name, maxAgeSec: s.config.backup?.max_age ?? cfg.restic.max_age })),
    { subset },
  );
  output(opts.json, report, () => renderCheck(report));
  return report.ok ? 0 : 1;
}
