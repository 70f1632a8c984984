/**
 * zoopa backup <stack|unit|path>... | all      back up stacks (stop, job, put back)
 * zoopa backup                                 the stacks in backup.stacks (what the timer runs)
 * zoopa backup list                            stacks with backup jobs
 * zoopa backup status                          the last run per stack
 * zoopa backup repair                          put back what a killed run left (also done first by every run)
 * zoopa backup snapshots <stack>               the stack's restic snapshots, newest first
 * zoopa backup check [<stack>...]              restic check, and each stack's latest snapshot within max_age
 * zoopa backup restore <stack> [--snapshot ID] [--path P]... [--to DIR] [--yes]   put a restic snapshot back
 * --dry-run prints the plan and changes nothing; --json for data output.
 */
import path from 'node:path';
import readline from 'node:readline/promises';
import { Command } from 'commander';
import { formatDuration } from '../../config/duration.js';
import { CommandError, UsageError } from '../../errors.js';
import { DuplicatiEngine } from '../../backup/engines/duplicati.js';
import { ResticEngine } from '../../backup/engines/restic.js';
import type { BackupEngine } from '../../backup/engine.js';
import { loadFreezer } from '../../backup/freeze.js';
import { backupStateDir, journalDir, JournalStore, lockFile, type PriorState } from '../../backup/journal.js';
import { holderAlive, readLock } from '../../backup/lock.js';
import { freezeMode } from '../../backup/freeze.js';
import { backupConfig, buildPlan, planJson, renderPlan, resolveTargets, stacksWithJobs, type BackupPlan } from '../../backup/plan.js';
import { repairFromJournal } from '../../backup/put-back.js';
import { callTimeouts } from '../../backup/bounded.js';
import { readPrior } from '../../backup/prior.js';
import { runBackup, summaryTable } from '../../backup/run.js';
import { readStatus } from '../../backup/status.js';
import { planRestore, renderRestorePlan, runRestore } from '../../backup/restore.js';
import { resolveStack } from '../../stacks/discover.js';
import { createLogger } from '../../log.js';
import { rootfulContainerEngine } from '../../podman/podman.js';
import type { Project } from '../../stacks/discover.js';
import { which } from '../../unitfile/tools.js';
import { chooseProgress } from '../backup-progress.js';
import { backupCheck, backupSnapshots } from '../backup-restic.js';
import { containerEngine, output, projectFor, returnsStatus, unitManager } from '../context.js';

interface BackupOptions {
  dryRun?: boolean;
  json?: boolean;
  readDataSubset?: string;
  snapshot?: string;
  path?: string[];
  to?: string;
  yes?: boolean;
}

const HELP_AFTER = `
Targets: stack names as the original took them (cryptpad, cryptpad-stack.service,
or a path ending in either), "all" (every stack with backup jobs), or nothing
(the stacks in backup.stacks of zoopa.yaml, as duplicati-backup.service runs it).

Per stack, in order: the prior state goes to a journal; on-demand activation is
frozen; pre_stop hooks; the unit stops and zoopa waits until no container of the
project runs; post_stop, pre_backup; each job runs to its end and its result is
checked; post_backup; the stack starts again per its restore policy (previous:
only if its containers were running; always) and zoopa waits for its containers;
undo hooks; thaw; verify. On failure or SIGINT/SIGTERM the stack and socket are
put back as they were. A run killed with SIGKILL is repaired by the next run.

zoopa.yaml:
  backup:
    stacks: [cryptpad]
    on_calendar: "*-*-* 03:30:00"
    ping_url: https://hc-ping.com/<uuid>
    duplicati: { command: sudo -n podman exec duplicati duplicati-server-util }
    restic: { repository: /srv/restic, password_file: /root/.restic-pw, forget: { keep_daily: 7 } }
  stacks:
    cryptpad:
      backup:
        jobs: [cryptpad, { restic: { paths: [data] } }]
        restore: previous
        hooks: { pre_stop: { run: [touch, maint], undo: [rm, maint] }, verify: "curl -fsS http://127.0.0.1:3000/" }

Restic, reading only: "zoopa backup snapshots <stack>" lists the stack's snapshots
(newest first: id, time, size, files, tags, paths); "zoopa backup check [<stack>...]
[--read-data-subset 10%]" runs restic check and fails when a stack's latest snapshot
is older than its max_age (backup.restic.max_age, default 2d; per stack backup.max_age).

Restore (restic): "zoopa backup restore <stack> [--snapshot ID|latest] [--path P]...
[--to DIR] [--dry-run] [--yes]". The plan first (--dry-run prints it and changes
nothing). In place, as for a backup: journal, freeze, pre_stop, stop, wait for no
containers, post_stop; per path the snapshot's copy is restored next to it, the
current data moved aside to <path>.zoopa-before-restore-<time> (never deleted,
named at the end) and the copy renamed into place; then the stack starts per its
restore policy, post_start and verify run. A failure puts the previous data and
the stack back. --to DIR restores into a folder and touches nothing of the stack.
Without a terminal, --yes is required.

Exit status: 0 all stacks backed up; 1 a stack failed (summary table); 2 bad input,
nothing touched; 130/143 interrupted by SIGINT/SIGTERM (the stack was put back).
`;

function engineFor(plan: BackupPlan, env: NodeJS.ProcessEnv): Partial<Record<'duplicati' | 'restic', BackupEngine>> {
  const cfg = plan.config;
  const engines: Partial<Record<'duplicati' | 'restic', BackupEngine>> = {};
  if (plan.engines.includes('duplicati')) {
    engines.duplicati = new DuplicatiEngine({
      command: cfg.duplicati.command,
      wait: cfg.duplicati.wait,
      pollIntervalSec: cfg.duplicati.poll_interval,
      callTimeoutMs: cfg.call_timeout * 1000,
      env,
    });
  }
  if (plan.engines.includes('restic')) {
    engines.restic = new ResticEngine({
      command: cfg.restic.command,
      prefix: cfg.restic.unshare ? [which('podman', env) ?? 'podman', 'unshare'] : [],
      repository: plan.restic?.repository,
      passwordFile: plan.restic?.passwordFile,
      init: cfg.restic.init,
      forget: cfg.restic.forget,
      callTimeoutMs: cfg.call_timeout * 1000,
      env,
    });
  }
  return engines;
}

async function currentState(plan: BackupPlan, env: NodeJS.ProcessEnv): Promise<{ prior?: Map<string, PriorState>; note?: string }> {
  try {
    const units = unitManager(env);
    const prior = new Map<string, PriorState>();
    for (const sp of plan.stacks) {
      prior.set(sp.name, await readPrior(sp, { units, containers: sp.rootful ? rootfulContainerEngine(env) : containerEngine(env) }));
    }
    return { prior };
  } catch (e) {
    const why = e instanceof CommandError && e.stderr ? e.stderr.split('\n').filter(Boolean).pop() : (e as Error).message.split('\n')[0];
    return { note: `  (current state unknown: ${why})` };
  }
}

async function backupList(project: Project, json: boolean | undefined, env: NodeJS.ProcessEnv): Promise<void> {
  const cfg = backupConfig(project);
  const timer = new Set(cfg.stacks.includes('all') ? stacksWithJobs(project).map((s) => s.name) : cfg.stacks);
  const rows = stacksWithJobs(project).map((s) => {
    const b = s.config.backup!;
    return {
      stack: s.name,
      jobs: b.jobs.map((j) => (j.engine === 'duplicati' ? `duplicati:${j.job}` : `restic:${j.paths?.join(',') ?? '(bind mounts)'}`)),
      restore: b.restore,
      freeze: freezeMode(s, env).mode,
      timer: timer.has(s.name),
    };
  });
  output(json, rows, () => {
    if (!rows.length) return 'no stack has backup jobs (stacks.<name>.backup.jobs in zoopa.yaml)\n';
    const w = Math.max(5, ...rows.map((r) => r.stack.length));
    return (
      [`${'STACK'.padEnd(w)}  TIMER  RESTORE   FREEZE  JOBS`]
        .concat(rows.map((r) => `${r.stack.padEnd(w)}  ${(r.timer ? 'yes' : 'no').padEnd(5)}  ${r.restore.padEnd(8)}  ${r.freeze.padEnd(6)}  ${r.jobs.join(' ')}`))
        .join('\n') + '\n'
    );
  });
}

function backupStatus(project: Project, json: boolean | undefined, env: NodeJS.ProcessEnv): void {
  const stateDir = backupStateDir(env);
  const status = readStatus(stateDir);
  const lock = readLock(lockFile(stateDir));
  const running = lock && holderAlive(lock) ? lock : undefined;
  const { entries } = new JournalStore(journalDir(stateDir)).list();
  const names = [...new Set([...stacksWithJobs(project).map((s) => s.name), ...Object.keys(status.stacks)])].sort();
  const rows = names.map((n) => ({ stack: n, last: status.stacks[n] ?? null, journal: entries.some((e) => e.stack === n) }));
  const data = { running: running ? { pid: running.pid, startedAt: running.startedAt } : null, stacks: rows };
  output(json, data, () => {
    const out: string[] = [];
    if (running) out.push(`a backup is running: pid ${running.pid}, started ${running.startedAt}`);
    const w = Math.max(5, ...rows.map((r) => r.stack.length));
    out.push(`${'STACK'.padEnd(w)}  LAST RUN                  RESULT       TIME      SUMMARY`);
    for (const r of rows) {
      const l = r.last;
      const result = l ? (l.result === 'ok' ? 'ok' : l.result.toUpperCase()) : 'never';
      const summary = l ? (l.result === 'ok' ? l.jobs.map((j) => j.summary).join('; ') : (l.error ?? '')) : '';
      out.push(
        `${r.stack.padEnd(w)}  ${(l ? l.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-').padEnd(24)}  ${result.padEnd(11)}  ${(l ? formatDuration(l.durationSec) : '-').padEnd(8)}  ${summary}${r.journal ? '  [journal left: run "zoopa backup repair"]' : ''}`,
      );
    }
    return out.join('\n') + '\n';
  });
}

async function backupRepair(project: Project, json: boolean | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const units = unitManager(env);
  const logger = createLogger();
  const report = await repairFromJournal({
    env,
    units,
    containers: containerEngine(env),
    rootfulContainers: rootfulContainerEngine(env),
    freezer: loadFreezer(units, project.stacks),
    calls: callTimeouts(backupConfig(project).call_timeout),
    log: (l) => logger.info(l),
  });
  output(json, report, () => {
    if (report.skipped) return `${report.skipped}\n`;
    const lines = [
      report.repaired.length ? `repaired: ${report.repaired.join(', ')}` : report.failed.length ? '' : 'nothing to repair',
      ...report.failed.map((f) => `FAILED ${f.stack}: ${f.errors.join('; ')}`),
      ...report.unreadable.map((u) => `unreadable journal ${u.file}: ${u.error}`),
    ].filter(Boolean);
    return lines.join('\n') + '\n';
  });
  return report.failed.length || report.unreadable.length ? 1 : 0;
}

/** Ask on the terminal; true when the answer is yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

async function backupRestore(project: Project, args: readonly string[], opts: BackupOptions, env: NodeJS.ProcessEnv): Promise<number> {
  if (args.length !== 1) {
    throw new UsageError(`backup restore takes one stack, got ${args.length}`, { key: 'stack', value: args.join(' '), hint: 'e.g. "zoopa backup restore web --dry-run"' });
  }
  const stack = resolveStack(project, args[0]!);
  if (!stack.config.backup?.jobs.some((j) => j.engine === 'restic')) {
    throw new UsageError(`${stack.name} has no restic job to restore from`, { key: `stacks.${stack.name}.backup.jobs`, value: args[0], hint: 'restore works for restic jobs; for Duplicati use its own restore' });
  }
  const plan = buildPlan(project, [stack], { env });
  const sp = plan.stacks[0]!;
  const engine = engineFor(plan, env).restic as ResticEngine;
  const rp = await planRestore(engine, sp, { snapshot: opts.snapshot, paths: opts.path ?? [], to: opts.to });
  if (opts.dryRun) {
    const { prior, note } = rp.to ? { prior: undefined, note: undefined } : await currentState(plan, env);
    const p = prior?.get(sp.name);
    output(opts.json, { plan: rp, state: p ?? null }, () => renderRestorePlan(rp, p, note));
    return 0;
  }
  if (!opts.yes) {
    if (!process.stdin.isTTY) {
      throw new UsageError('backup restore replaces data: --yes is required when stdin is not a terminal', {
        key: '--yes',
        hint: `look first with "zoopa backup restore ${stack.name} --dry-run", then add --yes`,
      });
    }
    process.stderr.write(renderRestorePlan(rp));
    if (!(await confirm(`restore ${stack.name} from snapshot ${rp.snapshot.shortId}? [y/N] `))) {
      process.stderr.write('nothing changed\n');
      return 1;
    }
  }
  if (rp.to) {
    await engine.restoreInto(rp.snapshot.id, rp.to, { include: rp.paths, log: (l) => createLogger().info(l) });
    output(opts.json, { plan: rp }, () => `restored snapshot ${rp.snapshot.shortId} of ${stack.name} into ${rp.to} (${rp.paths.map((p) => path.join(rp.to!, p)).join(', ')}); the stack was not touched\n`);
    return 0;
  }
  const logger = createLogger();
  const units = unitManager(env);
  const progress = chooseProgress(env, logger);
  let r;
  try {
    r = await runRestore(sp, rp, engine, {
      env,
      units,
      containers: containerEngine(env),
      rootfulContainers: rootfulContainerEngine(env),
      freezer: loadFreezer(units, project.stacks),
      engines: {},
      progress,
      logger,
      stateDir: backupStateDir(env),
    }, { argv: process.argv.slice(2), callTimeoutSec: plan.config.call_timeout });
  } finally {
    progress.stop();
  }
  const res = r;
  output(opts.json, { plan: rp, outcome: res.outcome, kept: res.kept }, () => {
    const lines = [summaryTable({ stacks: [res.outcome] }).trimEnd()];
    if (res.kept.length) lines.push('the data it replaced is kept (nothing was deleted):', ...res.kept.map((k) => `  ${k}`));
    else if (res.outcome.result !== 'ok') lines.push(`the previous data and the stack were put back${res.outcome.restoreErrors?.length ? ', except: ' + res.outcome.restoreErrors.join('; ') : ''}`);
    return lines.join('\n') + '\n';
  });
  return res.exitCode;
}

export function register(program: Command): void {
  program
    .command('backup')
    .argument('[targets...]', 'stacks (name, <name>-stack.service, or a path), "all", or one of: list, status, repair, snapshots <stack>, check [<stack>...], restore <stack>')
    .description('back up stacks: stop each, run its Duplicati or restic jobs, put it back exactly as it was')
    .option('--dry-run', 'print the plan (with the current state) and change nothing')
    .option('--json', 'print data (plan, list, status, results, snapshots, check) as JSON')
    .option('--snapshot <id>', 'with restore: the snapshot (an id, a prefix of one, or latest)')
    .option('--path <path>', 'with restore: only this path of the snapshot (repeatable; relative to the stack folder)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--to <dir>', 'with restore: restore into this new or empty folder, touching nothing of the stack')
    .option('--yes', 'with restore: do not ask (required when stdin is not a terminal)')
    .option('--read-data-subset <N%>', 'with check: also read this share of the repository\'s data (restic check --read-data-subset)')
    .addHelpText('after', HELP_AFTER)
    .action(returnsStatus(async (targets: string[], opts: BackupOptions, cmd: Command): Promise<number> => {
      const env = process.env;
      const project = projectFor(cmd);
      if (opts.readDataSubset !== undefined && targets[0] !== 'check') {
        throw new UsageError('--read-data-subset goes with "zoopa backup check"', { key: '--read-data-subset', value: opts.readDataSubset, hint: 'zoopa backup check --read-data-subset 10%' });
      }
      if (targets[0] === 'snapshots') return backupSnapshots(project, targets.slice(1), opts.json, env);
      if (targets[0] === 'check') return backupCheck(project, targets.slice(1), { json: opts.json, subset: opts.readDataSubset }, env);
      if (targets[0] === 'restore') return backupRestore(project, targets.slice(1), opts, env);
      for (const [flag, v] of [['--snapshot', opts.snapshot], ['--path', opts.path], ['--to', opts.to], ['--yes', opts.yes]] as const) {
        if (v !== undefined) throw new UsageError(`${flag} goes with "zoopa backup restore"`, { key: flag, value: String(v), hint: 'zoopa backup restore <stack> --snapshot latest --yes' });
      }
      const verb = targets.length === 1 ? targets[0] : undefined;
      if (verb === 'list') {
        await backupList(project, opts.json, env);
        return 0;
      }
      if (verb === 'status') {
        backupStatus(project, opts.json, env);
        return 0;
      }
      if (verb === 'repair') {
        if (opts.dryRun) {
          const { entries } = new JournalStore(journalDir(backupStateDir(env))).list();
          output(opts.json, entries, () => (entries.length ? entries.map((e) => `would repair ${e.stack}: ${JSON.stringify(e.prior)}`).join('\n') + '\n' : 'nothing to repair\n'));
          return 0;
        }
        return backupRepair(project, opts.json, env);
      }

      // Everything the user must fix is an InputError here, before anything is touched.
      const plan = buildPlan(project, resolveTargets(project, targets), { env });
      if (opts.dryRun) {
        const { prior, note } = await currentState(plan, env);
        output(opts.json, planJson(plan, prior), () => renderPlan(plan, prior, note));
        return 0;
      }
      const logger = createLogger();
      const units = unitManager(env);
      const progress = chooseProgress(env, logger);
      let outcome;
      try {
        outcome = await runBackup(
          plan,
          {
            env,
            units,
            containers: containerEngine(env),
            rootfulContainers: rootfulContainerEngine(env),
            freezer: loadFreezer(units, project.stacks),
            engines: engineFor(plan, env),
            progress,
            logger,
            stateDir: backupStateDir(env),
          },
          { argv: process.argv.slice(2) },
        );
      } finally {
        progress.stop();
      }
      output(opts.json, outcome, () => summaryTable(outcome));
      return outcome.exitCode;
    }));
}
