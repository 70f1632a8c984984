/**
 * Everything `zoopa status --json`, `zoopa web`'s `/api/status`, its page and
 * `/metrics` show, gathered in one place:
 *
 *  - every stack: unit state, running containers, on-demand state (from files:
 *    src/ondemand/status.ts), on-demand counters (src/ondemand/stats.ts) and its last
 *    backup (the backup status file);
 *  - every llama service: model, port, unit state.
 *
 * Cost, whatever the number of stacks: two systemctl calls for stacks and sockets
 * (list-units, list-unit-files), one `systemctl show` for the llama units, one
 * `podman ps` (plus one `sudo -n podman ps` when a rootful stack exists), file reads.
 */
import type { ContainerInfo, ContainerEngine, UnitManager } from '../core/ports.js';
import { backupStateDir } from '../backup/journal.js';
import { readStatus, type StackStatus as BackupRun, type StatusFile } from '../backup/status.js';
import { collectLlama, type LlamaListEntry } from '../llama/list.js';
import { ondemandStatus, type OndemandStatus } from '../ondemand/status.js';
import { readStats, type OndemandStats } from '../ondemand/stats.js';
import { readProxyState } from '../proxy/state-file.js';
import { ONDEMAND_SOCKET_PATTERN, ondemandSocketUnit, STACK_UNIT_PATTERN, stackUnitName } from '../names.js';
import type { Project, Stack } from '../stacks/discover.js';
import { requiredBy } from '../stacks/requires.js';

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
  ondemand: (OndemandStatus & { socket: string; stats: OndemandStats; bytesTotal: { in: number; out: number } }) | null;
  /** The stack's last backup run (null when it was never backed up). */
  backup: BackupSummary | null;
  /** Stacks this one requires (stacks.<name>.requires), and the stacks requiring it. */
  requires: string[];
  requiredBy: string[];
}

export interface BackupSummary {
  result: BackupRun['result'];
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  /** How long the stack was down for it (stop → running again); null when unknown. */
  downtimeSec: number | null;
  /** When the last successful run finished (null when none succeeded). */
  lastSuccessAt: string | null;
  /** One line per job: restic's files/bytes summary, Duplicati's result. */
  jobs: string[];
  error: string | null;
}

/** The whole picture: what `zoopa status --json` prints and `/api/status` serves. */
export interface StatusReport {
  root: string;
  generatedAt: string;
  stacks: StackStatus[];
  llama: LlamaListEntry[];
  /** Recent backup runs of every stack, newest first. */
  backups: Array<BackupRun>;
}

export interface StatusSources {
  units: UnitManager;
  containers: ContainerEngine;
  /** Root's podman, for the rootful stack (through sudo -n). */
  rootfulContainers?: ContainerEngine | undefined;
  env?: NodeJS.ProcessEnv;
}

function backupSummary(run: (BackupRun & { downtimeSec?: number; lastSuccessAt?: string }) | undefined): BackupSummary | null {
  if (!run) return null;
  return {
    result: run.result,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationSec: run.durationSec,
    downtimeSec: typeof run.downtimeSec === 'number' ? run.downtimeSec : null,
    lastSuccessAt: run.lastSuccessAt ?? (run.result === 'ok' ? run.finishedAt : null),
    jobs: run.jobs.map((j) => `${j.engine} ${j.job}: ${j.summary}`),
    error: run.error ?? null,
  };
}

/** `all`: every stack of the project, to find what requires each of `stacks`. */
/** `backups`: the backup status file, when the caller has read it already. */
export async function collectStatus(stacks: readonly Stack[], src: StatusSources, all: readonly Stack[] = stacks, backups: StatusFile = readStatus(backupStateDir(src.env ?? process.env))): Promise<StackStatus[]> {
  const env = src.env ?? process.env;
  const rootful = stacks.some((s) => s.config.rootful);
  const [info, rootless, rootfulContainers] = await Promise.all([
    // Two systemctl calls whatever the number of stacks (show would ask unit by unit).
    src.units.list([STACK_UNIT_PATTERN, ONDEMAND_SOCKET_PATTERN]),
    src.containers.runningByProject().catch(() => undefined),
    rootful && src.rootfulContainers ? src.rootfulContainers.runningByProject().catch(() => undefined) : undefined,
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
    const onDemand = socketKnown || !!s.config.ondemand || (!!odState && odState.state !== 'off');
    return {
      name: s.name,
      unit,
      rootful: s.config.rootful,
      installed,
      state: installed ? u!.activeState : 'not-installed',
      subState: installed ? u!.subState : '',
      enabled: installed ? u!.unitFileState : '',
      containers: source ? { running: list?.length ?? 0, names: (list ?? []).map((c) => c.name) } : null,
      ondemand: onDemand
        ? { socket: socketKnown ? sock!.activeState : 'not-installed', ...(odState ?? emptyOndemand()), ...counters(s.name, env) }
        : null,
      backup: backupSummary(backups.stacks[s.name]),
      requires: [...s.config.requires],
      requiredBy: requiredBy(all, s.name),
    };
  });
}

/** The persisted counters, plus the bytes of a proxy running now (added to the totals when it exits). */
function counters(stack: string, env: NodeJS.ProcessEnv): { stats: OndemandStats; bytesTotal: { in: number; out: number } } {
  const stats = readStats(stack, env);
  const live = readProxyState(stack, env);
  const running = live !== null && live.pid !== null;
  return { stats, bytesTotal: { in: stats.bytesIn + (running ? live.bytesIn : 0), out: stats.bytesOut + (running ? live.bytesOut : 0) } };
}

function emptyOndemand(): OndemandStatus {
  return { state: 'off', connections: 0, bytes: 0, secondsUntilIdleStop: null, lastWake: null, owned: false };
}

/** The on-demand state as a person reads it: a listening socket with no proxy is "sleeping". */
export function ondemandStateName(o: NonNullable<StackStatus['ondemand']>): OndemandStatus['state'] {
  return o.state === 'off' && o.socket === 'active' ? 'sleeping' : o.state;
}

export async function collectReport(project: Project, stacks: readonly Stack[], src: StatusSources): Promise<StatusReport> {
  const env = src.env ?? process.env;
  const status = readStatus(backupStateDir(env));
  const [rows, llama] = await Promise.all([collectStatus(stacks, src, project.stacks, status), collectLlama(project, src.units, env).catch(() => [])]);
  const backups = (status.history ?? Object.values(status.stacks)).slice().sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1));
  return { root: project.root, generatedAt: new Date().toISOString(), stacks: rows, llama, backups: backups.slice(0, 20) };
}
