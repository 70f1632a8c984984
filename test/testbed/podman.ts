/**
 * Podman for the test beds: the containers.conf these machines need, the locally
 * built busybox image (no registry is reachable), and rootful clean-up.
 */
import { buildBusyboxTar, importArgs as busyboxImportArgs } from '../../src/podman/busybox-image.js';
import { run } from '../../src/exec.js';

/** The test image: busybox-static plus applet symlinks, imported into each test bed's storage. */
export const IMAGE = 'localhost/zoopa-busybox:latest';

/**
 * Default podman settings fail here (setrlimit EPERM, crun cannot do hybrid cgroups);
 * these work, rootless and rootful. Pointed at with CONTAINERS_CONF, /etc stays untouched.
 */
export const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
`;

/** Bump when the image recipe (src/podman/busybox-image.ts) changes, so cached tars (cache.ts) are rebuilt. */
export const IMAGE_RECIPE = 'zoopa-busybox-1';

/**
 * Builds the image's tar (once per test process), world-readable so the test user
 * can import it. Returns the tar's path. The recipe is zoopa's own (doctor builds its
 * probe image the same way).
 */
export function buildImageTar(dir: string): Promise<string> {
  return buildBusyboxTar(dir, 'zoopa-busybox');
}

/** `podman import` arguments that turn the tar into IMAGE. */
export function importArgs(tar: string): string[] {
  return busyboxImportArgs(tar, IMAGE);
}

/** Imports the image into root's storage (rootful podman), unless it is already there. */
export async function importImageRootful(tar: string, containersConf: string): Promise<void> {
  const env = { ...process.env, CONTAINERS_CONF: containersConf };
  const exists = await run(['podman', 'image', 'exists', IMAGE], { env, reject: false });
  if (exists.status === 0) return;
  await run(['podman', ...importArgs(tar)], { env, timeoutMs: 120_000 });
}

interface PsEntry {
  Id: string;
  Labels?: Record<string, string> | null;
}

/**
 * Removes root's containers whose compose working dir lies under `prefix` (a test
 * bed's folder), and then the compose networks of their projects. Returns what was removed.
 */
export async function removeRootfulContainers(prefix: string, containersConf: string): Promise<string[]> {
  const env = { ...process.env, CONTAINERS_CONF: containersConf };
  const ps = await run(['podman', 'ps', '-a', '--format', 'json'], { env, reject: false, timeoutMs: 60_000 });
  if (ps.status !== 0) return [];
  let list: PsEntry[] = [];
  try {
    list = JSON.parse(ps.stdout || '[]') as PsEntry[];
  } catch {
    return [];
  }
  const mine = list.filter((c) => (c.Labels?.['com.docker.compose.project.working_dir'] ?? '').startsWith(prefix));
  if (mine.length === 0) return [];
  await run(['podman', 'rm', '-f', '-t', '0', ...mine.map((c) => c.Id)], { env, reject: false, timeoutMs: 60_000 });
  const projects = new Set(mine.map((c) => c.Labels?.['io.podman.compose.project']).filter((p): p is string => !!p));
  for (const p of projects) {
    // Fails (and is left alone) while another user of that network remains.
    await run(['podman', 'network', 'rm', `${p}_default`], { env, reject: false, timeoutMs: 30_000 });
  }
  return mine.map((c) => c.Id);
}
