/**
 * zoopa status [<stack>] [--json]: one table of stacks, their unit state,
 * running containers, on-demand state and last backup, then the llama services.
 * With `requires:` in zoopa.yaml, what each stack requires and what requires it.
 * The data comes from src/status/collect.ts (the same source as `zoopa web`):
 * two systemctl calls for the stacks whatever their number, one `podman ps`
 * (plus one `sudo -n podman ps` when a rootful stack exists), file reads.
 */
import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.js';
import { formatLlamaList } from '../../llama/list.js';
import { rootfulContainerEngine } from '../../podman/podman.js';
import { collectReport, ondemandStateName, type StackStatus, type StatusReport } from '../../status/collect.js';
import { resolveStack } from '../../stacks/discover.js';
import { containerEngine, output, projectFor, unitManager } from '../context.js';

export type { StackStatus } from '../../status/collect.js';

function ondemandCell(o: StackStatus['ondemand']): string {
  if (!o) return '-';
  const parts: string[] = [ondemandStateName(o)];
  if (o.state === 'awake' || o.state === 'waking') {
    parts.push(`${o.connections} conn`);
    if (o.secondsUntilIdleStop !== null) parts.push(`idle stop in ${Math.max(0, Math.round(o.secondsUntilIdleStop))}s`);
  }
  if (o.state === 'frozen') {
    // "frozen (backup since 2026-12-02 03:00:01Z, about 4m)": what the maintenance page tells visitors.
    const since = o.frozenAt ? ` since ${o.frozenAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}` : '';
    const about = o.frozenExpectedSeconds ? `, about ${formatDuration(o.frozenExpectedSeconds)}` : '';
    parts[0] = `${parts[0]} (${o.frozenFor ?? 'by hand'}${since}${about})`;
  }
  if (o.owned) parts.push('started by zoopa');
  // A failed wake newer than the last wake: its cause (the 502 page sends the admin here).
  if (o.lastFailure && (!o.lastWake || o.lastFailure.at >= o.lastWake.at)) {
    parts.push(`last wake FAILED ${o.lastFailure.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}: ${o.lastFailure.cause}`);
    if (o.backoffSeconds) parts.push(`next try in ${Math.ceil(o.backoffSeconds)}s`);
  }
  if (o.socket !== 'active' && o.state !== 'frozen') parts.push(`socket ${o.socket}`);
  return parts.join(', ');
}

function backupCell(b: StackStatus['backup']): string {
  if (!b) return '-';
  const when = b.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return `${b.result} ${when} (${formatDuration(b.durationSec)})`;
}

export function formatStatus(rows: StackStatus[]): string {
  const needs = rows.some((r) => r.requires.length || r.requiredBy.length);
  const table = [['STACK', 'UNIT STATE', 'CONTAINERS', ...(needs ? ['REQUIRES', 'REQUIRED BY'] : []), 'ON DEMAND', 'LAST BACKUP']];
  for (const r of rows) {
    table.push([
      r.name + (r.rootful ? ' (rootful)' : ''),
      r.installed ? `${r.state}${r.subState && r.subState !== r.state ? ` (${r.subState})` : ''}${r.enabled === 'enabled' ? ', enabled' : ''}` : 'not installed',
      r.containers ? String(r.containers.running) : '?',
      ...(needs ? [r.requires.join(', ') || '-', r.requiredBy.join(', ') || '-'] : []),
      ondemandCell(r.ondemand),
      backupCell(r.backup),
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function formatReport(report: StatusReport, env: NodeJS.ProcessEnv = process.env): string {
  let text = report.stacks.length ? formatStatus(report.stacks) : `no stacks in ${report.root}\n`;
  if (report.llama.length) text += '\n' + formatLlamaList(report.llama, env);
  return text;
}

/** The status sources of this machine: systemctl --user, podman, and root's podman through sudo -n. */
export function statusSources(env: NodeJS.ProcessEnv = process.env) {
  return {
    units: unitManager(env),
    containers: containerEngine(env),
    rootfulContainers: rootfulContainerEngine(env),
    env,
  };
}

export function register(program: Command): void {
  program
    .command('status [stack]')
    .description('show every stack (or one): unit state, running containers, on-demand state, last backup; and the llama services')
    .option('--json', 'print as JSON')
    .action(async (arg: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const stacks = arg ? [resolveStack(project, arg)] : project.stacks.filter((s) => s.config.enabled);
      const report = await collectReport(project, stacks, statusSources());
      if (arg) report.llama = [];
      output(opts.json, report, () => formatReport(report));
    });
}
