/**
 * ContainerEngine backed by `podman ps` (rootless), or through `sudo -n` for the rootful
 * stack (rootfulContainerEngine): then exactly these argvs, which the sudo rule allows,
 * and no `podman logs`:
 *   sudo -n <podman> ps --format json --filter label=io.podman.compose.project
 *   sudo -n <podman> ps --all --format json --filter label=io.podman.compose.project
 * A project is picked out of the answer here, never on the command line.
 */
import type { CallOptions, ContainerEngine, ContainerInfo } from '../core/ports.js';
import { run } from '../exec.js';
import { which } from '../unitfile/tools.js';

export const PROJECT_LABEL = 'io.podman.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';

/** Default deadline of one `podman ps` / `podman logs` call. */
export const PODMAN_CALL_TIMEOUT_MS = 30_000;

interface PsEntry {
  Id?: string;
  Names?: string[];
  State?: string;
  Image?: string;
  ExitCode?: number;
  Status?: string;
  Labels?: Record<string, string> | null;
}

/** healthy / unhealthy / starting from podman's Status text ("Up 3 seconds ago (healthy)"). */
export function healthOf(status: string | undefined): string {
  return /\((healthy|unhealthy|starting)\)\s*$/.exec(status ?? '')?.[1] ?? '';
}

function toInfo(c: PsEntry): ContainerInfo | undefined {
  const project = c.Labels?.[PROJECT_LABEL];
  if (!project) return undefined;
  return {
    id: c.Id ?? '',
    name: c.Names?.[0] ?? '',
    project,
    service: c.Labels?.[SERVICE_LABEL] ?? '',
    state: c.State ?? '',
    image: c.Image ?? '',
    exitCode: c.ExitCode ?? 0,
    health: healthOf(c.Status),
  };
}

export class PodmanEngine implements ContainerEngine {
  /**
   * `prefix` runs podman through another command, e.g. ['/usr/bin/sudo', '-n'];
   * `logs: false` when that command may run `podman ps` only (no logs, no health checks).
   */
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly podman = 'podman',
    private readonly prefix: readonly string[] = [],
    private readonly opts: { logs?: boolean } = {},
  ) {}

  private async ps(all: boolean, call: CallOptions): Promise<ContainerInfo[]> {
    const argv = [...this.prefix, this.podman, 'ps', ...(all ? ['--all'] : []), '--format', 'json', '--filter', `label=${PROJECT_LABEL}`];
    const r = await run(argv, { env: this.env, timeoutMs: call.timeoutMs ?? PODMAN_CALL_TIMEOUT_MS, signal: call.signal });
    const list = JSON.parse(r.stdout || '[]') as PsEntry[];
    return list.map(toInfo).filter((c): c is ContainerInfo => !!c);
  }

  async runningByProject(call: CallOptions = {}): Promise<Map<string, ContainerInfo[]>> {
    const out = new Map<string, ContainerInfo[]>();
    for (const info of await this.ps(false, call)) {
      const arr = out.get(info.project) ?? [];
      arr.push(info);
      out.set(info.project, arr);
    }
    return out;
  }

  async projectContainers(project: string, call: CallOptions = {}): Promise<ContainerInfo[]> {
    return (await this.ps(true, call)).filter((c) => c.project === project);
  }

  async logTail(container: string, lines: number, call: CallOptions = {}): Promise<string | undefined> {
    if (this.opts.logs === false) return undefined;
    const r = await run([...this.prefix, this.podman, 'logs', '--tail', String(lines), '--', container], {
      env: this.env,
      reject: false,
      timeoutMs: call.timeoutMs ?? PODMAN_CALL_TIMEOUT_MS,
      signal: call.signal,
      maxOutputBytes: 64 * 1024,
    });
    return r.status === 0 ? `${r.stdout}${r.stderr}` : undefined;
  }

  async runHealthcheck(container: string, call: CallOptions = {}): Promise<void> {
    if (this.opts.logs === false) return; // the rootful engine may run `podman ps` only
    // Exit 1 is "unhealthy": the state then shows in `podman ps`.
    await run([...this.prefix, this.podman, 'healthcheck', 'run', '--', container], {
      env: this.env,
      reject: false,
      timeoutMs: call.timeoutMs ?? PODMAN_CALL_TIMEOUT_MS,
      signal: call.signal,
    });
  }
}

/** The rootless engine: the user's own podman. */
export function rootlessContainerEngine(env: NodeJS.ProcessEnv = process.env): PodmanEngine {
  return new PodmanEngine(env, which('podman', env) ?? 'podman');
}

/** The rootful stack's engine: root's podman through `sudo -n` (the sudo rule allows `podman ps` only; no logs). */
export function rootfulContainerEngine(env: NodeJS.ProcessEnv = process.env): PodmanEngine {
  return new PodmanEngine(env, which('podman', env) ?? '/usr/bin/podman', [which('sudo', env) ?? '/usr/bin/sudo', '-n'], { logs: false });
}
