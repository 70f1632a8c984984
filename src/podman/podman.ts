/** ContainerEngine backed by `podman ps` (rootless, or through `sudo -n` for the rootful stack). */
import type { ContainerEngine, ContainerInfo } from '../core/ports.js';
import { run } from '../exec.js';
import { which } from '../units/tools.js';

export const PROJECT_LABEL = 'io.podman.compose.project';

interface PsEntry {
  Id?: string;
  Names?: string[];
  State?: string;
  Image?: string;
  Labels?: Record<string, string> | null;
}

export class PodmanEngine implements ContainerEngine {
  /** `prefix` runs podman through another command, e.g. ['/usr/bin/sudo', '-n']. */
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly podman = 'podman',
    private readonly prefix: readonly string[] = [],
  ) {}

  async runningByProject(): Promise<Map<string, ContainerInfo[]>> {
    const r = await run([...this.prefix, this.podman, 'ps', '--format', 'json', '--filter', `label=${PROJECT_LABEL}`], { env: this.env });
    const list = JSON.parse(r.stdout || '[]') as PsEntry[];
    const out = new Map<string, ContainerInfo[]>();
    for (const c of list) {
      const project = c.Labels?.[PROJECT_LABEL];
      if (!project) continue;
      const info: ContainerInfo = { id: c.Id ?? '', name: c.Names?.[0] ?? '', project, state: c.State ?? '', image: c.Image ?? '' };
      const arr = out.get(project) ?? [];
      arr.push(info);
      out.set(project, arr);
    }
    return out;
  }
}

/** The rootful stack's containers, seen through `sudo -n podman` (absolute paths when found on PATH). */
export function rootfulContainerEngine(env: NodeJS.ProcessEnv = process.env): PodmanEngine {
  return new PodmanEngine(env, which('podman', env) ?? 'podman', [which('sudo', env) ?? 'sudo', '-n']);
}
