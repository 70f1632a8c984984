/**
 * Podman for the test beds: the containers.conf these machines need, the locally
 * built busybox image (no registry is reachable), and rootful clean-up.
 */
import fs from 'node:fs';
import path from 'node:path';
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

const BUSYBOX = '/bin/busybox';

/** Bump when buildImageTar changes, so cached tars (cache.ts) are rebuilt. */
export const IMAGE_RECIPE = 'zoopa-busybox-1';

/**
 * Builds the image's root folder and its tar (once per test process), world-readable
 * so the test user can import it. Returns the tar's path.
 */
export async function buildImageTar(dir: string): Promise<string> {
  const tar = path.join(dir, 'zoopa-busybox.tar');
  if (fs.existsSync(tar)) return tar;
  const rootfs = path.join(dir, 'rootfs');
  fs.rmSync(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run([BUSYBOX, '--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (!applet || applet === 'busybox' || applet.includes('/')) continue;
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tmp = `${tar}.${process.pid}.tmp`;
  await run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tmp, '.']);
  fs.chmodSync(tmp, 0o644);
  fs.renameSync(tmp, tar);
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tar;
}

/** `podman import` arguments that turn the tar into IMAGE. */
export function importArgs(tar: string): string[] {
  return ['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin', tar, IMAGE];
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
