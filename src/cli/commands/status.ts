/**
 * zoopa status [<stack>] [--json]: one table of stacks, their unit state,
 * running containers and on-demand state. Asks systemd about every unit with one
 * `systemctl --user list-units` and one `list-unit-files` call, and podman with
 * one `podman ps` call (plus one `sudo -n podman ps` when a rootful stack
 * exists), however many stacks there are.
 */
import type { Command } from 'commander';
import type { ContainerInfo } from '../../core/ports.js';
import { rootfulContainerEngine } from '../../podman/podman.js';
import { ONDEMAND_SOCKET_PATTERN, ondemandSocketUnit, STACK_UNIT_PATTERN, stackUnitName } from '../../names.js';
import { resolveStack, type Stack } from '../../stacks/discover.js';
import { requiredBy } from '../../stacks/requires.js';
import { ondemandStatus, type OndemandStatus } from '../../ondemand/status.js';
import { containerEngine, output, projectFor, unitManager } from '../context.js';

export interface StackStatus {
  name: string;
  unit: string;
  rootful: boolean;
  installed: boolean;
  /** systemd ActiveState (active, inactive, activating, deactivating, failed) */
  state: string;
  subState: string;
  /** UnitFileState: enabled, disabled, linked, ... */
  enabled: string;
  containers: { running: number; names: string[] } | null;
  ondemand: (OndemandStatus & { socket: string }) | null;
  /** Stacks this one requires (stacks.<name>.requires), and the stacks requiring it. */
  requires: string[];
  requiredBy: string[];
}

export async function collectStatus(stacks: Stack[], env: NodeJS.ProcessEnv = process.env, all: readonly Stack[] = stacks): Promise<StackStatus[]> {
  const rootful = stacks.some((s) => s.config.rootful);
  const [info, rootless, rootfulContainers] = await Promise.all([
    // Two systemctl calls whatever the number of stacks (show would ask unit by unit).
    unitManager(env).list([STACK_UNIT_PATTERN, ONDEMAND_SOCKET_PATTERN]),
    containerEngine(env).runningByProject().catch(() => undefined),
    rootful ? rootfulContainerEngine(env).runningByProject().catch(() => undefined) : undefined,
  ]);
  const od = ondemandStatus(stacks.map((s) => s.name), env);
  return stacks.map((s) => {
    const unit = stackUnitName(s.name);
    const u = info.get(unit);
    const sock = info.get(ondemandSocketUnit(s.name));
    const source = s.config.rootful ? rootfulContainers : rootless;
    const list: ContainerInfo[] | undefined = source?.get(s.name);
    const installed = !!u && u.loadState !== 'not-found';
    const socketKnown = !!sock && sock.loadState !== 'not-found';
    const odState = od.get(s.name);
    return {
      name: s.name,
      unit,
      rootful: s.config.rootful,
      installed,
      state: installed ? u!.activeState : 'not-installed',
      subState: installed ? u!.subState : '',
      enabled: installed ? u!.unitFileState : '',
      containers: source ? { running: list?.length ?? 0, names: (list ?? []).map((c) => c.name) } : null,
      ondemand: socketKnown || s.config.ondemand || (odState && odState.state !== 'off') ? { socket: socketKnown ? sock!.activeState : 'not-installed', ...(odState ?? emptyOndemand()) } : null,
      requires: [...s.config.requires],
      requiredBy: requiredBy(all, s.name),
    };
  });
}

function emptyOndemand(): OndemandStatus {
  return { state: 'off', connections: 0, bytes: 0, secondsUntilIdleStop: null, lastWake: null, owned: false };
}

function ondemandCell(o: StackStatus['ondemand']): string {
  if (!o) return '-';
  const parts: string[] = [o.state === 'off' && o.socket === 'active' ? 'sleeping' : o.state];
  if (o.state === 'awake' || o.state === 'waking') {
    parts.push(`${o.connections} conn`);
    if (o.secondsUntilIdleStop !== null) parts.push(`idle stop in ${Math.max(0, Math.round(o.secondsUntilIdleStop))}s`);
  }
  if (o.owned) parts.push('started by zoopa');
  if (o.socket !== 'active' && o.state !== 'frozen') parts.push(`socket ${o.socket}`);
  return parts.join(', ');
}

export function formatStatus(rows: StackStatus[]): string {
  const needs = rows.some((r) => r.requires.length || r.requiredBy.length);
  const table = [['STACK', 'UNIT STATE', 'CONTAINERS', ...(needs ? ['REQUIRES', 'REQUIRED BY'] : []), 'ON DEMAND']];
  for (const r of rows) {
    table.push([
      r.name + (r.rootful ? ' (rootful)' : ''),
      r.installed ? `${r.state}${r.subState && r.subState !== r.state ? ` (${r.subState})` : ''}${r.enabled === 'enabled' ? ', enabled' : ''}` : 'not installed',
      r.containers ? String(r.containers.running) : '?',
      ...(needs ? [r.requires.join(', ') || '-', r.requiredBy.join(', ') || '-'] : []),
      ondemandCell(r.ondemand),
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('status [stack]')
    .description('show every stack (or one): unit state, running containers, on-demand state')
    .option('--json', 'print as JSON')
    .action(async (arg: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const stacks = arg ? [resolveStack(project, arg)] : project.stacks.filter((s) => s.config.enabled);
      const rows = await collectStatus(stacks, process.env, project.stacks);
      output(opts.json, { root: project.root, stacks: rows }, () => (rows.length ? formatStatus(rows) : `no stacks in ${project.root}\n`));
    });
}
