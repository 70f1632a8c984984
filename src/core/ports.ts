/**
 * The interfaces Zoopa's core needs from the outside world. The core (on-demand
 * proxy, backup runner, status) is written against these; backends implement
 * them (src/systemd/systemctl.ts, src/podman/podman.ts, src/backup/engines/*).
 */

/**
 * Bounds for one call to the outside world: every UnitManager / ContainerEngine method
 * takes these last. Backends apply a default timeout when none is given (see each
 * backend); a start or stop gets the deadline of the caller that waits for it.
 */
export interface CallOptions {
  /** Kill the call (its whole process group) after this many ms: TimeoutError. */
  timeoutMs?: number | undefined;
  /** Abort the call: AbortError (or the signal's reason). */
  signal?: AbortSignal | undefined;
}

/** systemd's view of one unit, from `systemctl --user show`. */
export interface UnitInfo {
  name: string;
  /** e.g. loaded, not-found, masked */
  loadState: string;
  /** active, inactive, activating, deactivating, failed, reloading */
  activeState: string;
  subState: string;
  /** enabled, disabled, static, linked, ... ('' when not found) */
  unitFileState: string;
  fragmentPath: string;
  /** Every property asked for, raw. */
  props: Record<string, string>;
}

export interface UnitManager {
  /** Properties of many units in one call. Unknown units come back with loadState 'not-found'. */
  show(units: readonly string[], extraProps?: readonly string[], call?: CallOptions): Promise<Map<string, UnitInfo>>;
  /**
   * Every unit matching the glob patterns, from one list-units and one
   * list-unit-files call whatever their number (show() asks unit by unit).
   * Units that match no installed file and are not loaded are absent.
   */
  list(patterns: readonly string[], call?: CallOptions): Promise<Map<string, UnitInfo>>;
  /** Start and wait for the job to finish (systemctl start semantics). Pass the deadline you wait for. */
  start(unit: string, call?: CallOptions): Promise<void>;
  /** Stop and wait for the job to finish. Pass the deadline you wait for. */
  stop(unit: string, call?: CallOptions): Promise<void>;
  restart(unit: string, call?: CallOptions): Promise<void>;
  enable(units: readonly string[], opts?: { now?: boolean }, call?: CallOptions): Promise<void>;
  disable(units: readonly string[], opts?: { now?: boolean }, call?: CallOptions): Promise<void>;
  daemonReload(call?: CallOptions): Promise<void>;
  /** Forget a unit's failed state and its start-limit counter (systemctl reset-failed). No error when it has none. */
  resetFailed(unit: string, call?: CallOptions): Promise<void>;
  /** Lines of the unit's log (journalctl --user -u), following if asked; an abort ends it quietly. */
  logs(unit: string, opts: { follow?: boolean; lines?: number }, call?: CallOptions): Promise<void>;
}

export interface ContainerInfo {
  id: string;
  name: string;
  /** compose project (label io.podman.compose.project) */
  project: string;
  /** compose service (label com.docker.compose.service), '' when absent */
  service: string;
  /** running, exited, created, paused, ... */
  state: string;
  image: string;
  /** Exit code of an exited container (0 otherwise). */
  exitCode: number;
  /** healthy, unhealthy, starting; '' without a health check. */
  health: string;
}

export interface ContainerEngine {
  /** Running containers grouped by compose project, from one `podman ps` call. */
  runningByProject(call?: CallOptions): Promise<Map<string, ContainerInfo[]>>;
  /** Every container of one compose project, exited ones included, from one `podman ps --all` call. */
  projectContainers(project: string, call?: CallOptions): Promise<ContainerInfo[]>;
  /**
   * The last lines of a container's log, or undefined where the engine may not read logs
   * (the rootful engine: its sudo rule allows `podman ps` only).
   */
  logTail(container: string, lines: number, call?: CallOptions): Promise<string | undefined>;
  /**
   * Run a container's health check now (`podman healthcheck run`), where podman's own
   * timers may not (no systemd connection). A no-op where the engine may not (rootful).
   */
  runHealthcheck(container: string, call?: CallOptions): Promise<void>;
}
