/**
 * What all test beds of one test process share, set up once (lazily, on the first
 * Testbed.start()):
 *
 *  - prerequisite check (a missing command is an error naming `node scripts/prereqs.mjs`,
 *    never a silent skip), machine preparation and the test user (user.ts);
 *  - clean-up of leftovers of killed runs: their cgroups (and so their processes),
 *    stray processes of the dedicated test user, folders, sudoers files, rootful containers;
 *  - the process folder /var/tmp/zoopa-testbed-<pid>-<starttime>/ (0755), holding
 *      app/              a world-readable copy of the built app (package.json, bin/,
 *                        dist/src/, assets/; node_modules/ links to the shared cache, see
 *                        cache.ts): the checkout may sit where the test user cannot enter
 *                        (CI clones under /root)
 *      tb-<n>-<name>/    one folder per test bed
 *    The image tar (imported into each test bed's storage) also comes from the cache.
 *  - exit/signal hooks that kill and remove what is left when the process ends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { destroySubtreeSync, ownerCgroupDir, removeStaleCgroups } from './cgroup.js';
import { cachedImageTar, cachedNodeModules, makeWorldReadable, pruneCache } from './cache.js';
import { removeRootfulContainers, CONTAINERS_CONF } from './podman.js';
import { environVar, killAll, listPids, pidAlive, procCgroup2, procUid, processTag, tagAlive, withDescendants } from './procs.js';
import { SUDOERS_DIR, SUDOERS_PREFIX } from './sudo.js';
import { ensureTestUser, prepareMachine, type TestUser } from './user.js';
import { isRoot, which } from './util.js';

export const WORLD_PREFIX = 'zoopa-testbed-';
export const WORLD_PARENT = '/var/tmp';
/** File in each runtime folder naming the test process that made it ("<pid>-<starttime>"). */
export const RUNTIME_OWNER_FILE = '.zoopa-testbed-owner';

/**
 * Parent of the test beds' XDG_RUNTIME_DIRs, kept short on purpose: rootless podman keeps
 * its runroot in $XDG_RUNTIME_DIR/containers and rejects a runroot longer than 50
 * characters ("the specified runroot is longer than 50 characters" from the exit command
 * conmon runs, after which `podman run` and `podman wait` hang 20 s per container).
 * Root: /run/ztb (like /run/user). Not root: /tmp/ztb-<uid>.
 */
export function runtimeParent(): string {
  return isRoot() ? '/run/ztb' : path.join('/tmp', `ztb-${process.getuid?.() ?? 'u'}`);
}
/** Environment marker carried by the test bed's processes: "<owner tag>/<tb id>". */
export const MARKER = 'ZOOPA_TESTBED';
/** Marker file left while root's podman holds containers of a test process. */
const ROOTFUL_MARK = 'rootful-used';

export interface World {
  /** "<pid>-<starttime>" of this test process. */
  ownerTag: string;
  /** /var/tmp/zoopa-testbed-<ownerTag> */
  dir: string;
  user: TestUser;
  /** World-readable copy of the built app. */
  appDir: string;
  /** The image tar (see podman.ts). */
  imageTar: string;
  /** cgroup folder for this process's test beds (root only). */
  cgroupDir: string | undefined;
  /** The repo checkout the app was copied from. */
  repoDir: string;
  /** Shared containers.conf for rootful podman. */
  rootfulConf: string;
  /** Parent of the test beds' runtime folders (see runtimeParent). */
  runtimeParent: string;
}

/** Called synchronously from the exit hook for every live test bed. */
export interface ExitCleaner {
  /** Kills and removes synchronously; returns true when rootful containers may remain. */
  cleanupSync(): boolean;
}

const live = new Set<ExitCleaner>();
let worldPromise: Promise<World> | undefined;

export function registerLive(tb: ExitCleaner): void {
  live.add(tb);
}
export function unregisterLive(tb: ExitCleaner): void {
  live.delete(tb);
}

export function world(): Promise<World> {
  worldPromise ??= createWorld().catch((e) => {
    worldPromise = undefined;
    throw e;
  });
  return worldPromise;
}

/** The repo root: the folder above dist/ holding the package.json this module was built from. */
export function findRepoDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'bin'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('testbed: cannot find the repo (package.json + bin/) above the test bed module');
    dir = up;
  }
}

const REQUIRED: Array<[string, string]> = [
  ['podman', 'podman'],
  ['podman-compose', 'podman-compose'],
  ['runc', 'runc'],
  ['newuidmap', 'uidmap'],
  ['slirp4netns', 'slirp4netns'],
  ['nginx', 'nginx'],
  ['setpriv', 'util-linux'],
  ['systemctl', 'systemd'],
  ['/usr/lib/systemd/systemd', 'systemd'],
  ['/usr/lib/systemd/systemd-socket-proxyd', 'systemd'],
  ['/bin/busybox', 'busybox-static'],
  ['tar', 'tar'],
];

function checkPrerequisites(): void {
  const missing = REQUIRED.filter(([cmd]) => !which(cmd));
  if (missing.length > 0) {
    throw new Error(
      `testbed: missing ${missing.map(([c, p]) => `${c} (${p})`).join(', ')}. Run "node scripts/prereqs.mjs" (npm test does).`,
    );
  }
  if (!isRoot() && !fs.existsSync('/run/systemd/system')) {
    throw new Error('testbed: /run/systemd/system is missing; run "node scripts/prereqs.mjs"');
  }
}

/** Copies what the app needs at run time into `dest`, world-readable; node_modules links to the cache. */
function copyApp(repo: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { files?: string[] };
  const entries = new Set(['package.json', 'bin', 'dist/src', 'assets', ...(pkg.files ?? [])]);
  for (const e of entries) {
    const src = path.join(repo, e);
    if (!fs.existsSync(src)) continue;
    fs.cpSync(src, path.join(dest, e), { recursive: true, dereference: true });
  }
  makeWorldReadable(dest);
  const nm = cachedNodeModules(repo);
  if (nm) fs.symlinkSync(nm, path.join(dest, 'node_modules'));
}

/** Tag of the test process that made a world folder, from its name; undefined if not ours. */
function tagOfWorldDir(name: string): string | undefined {
  const m = new RegExp(`^${WORLD_PREFIX}(\\d+-\\d+)$`).exec(name);
  return m?.[1];
}

/**
 * Cleans up after test processes that died without cleaning (SIGKILL, crash, CI timeout).
 * Everything is keyed by the owner tag, so live test processes (running in parallel) are left alone.
 */
async function removeLeftovers(user: TestUser): Promise<void> {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(WORLD_PARENT);
  } catch {
    /* nothing */
  }
  const staleDirs = entries
    .filter((name) => {
      const tag = tagOfWorldDir(name);
      return tag !== undefined && !tagAlive(tag);
    })
    .map((name) => path.join(WORLD_PARENT, name));

  // Root's containers first, while their conmon processes are still alive (podman cannot
  // cleanly remove a container whose conmon was killed under it).
  if (isRoot()) {
    for (const dir of staleDirs) {
      if (fs.existsSync(path.join(dir, ROOTFUL_MARK))) {
        await removeRootfulContainers(`${dir}/`, path.join(dir, 'containers.conf')).catch(() => undefined);
      }
    }
  }

  await removeStaleCgroups();
  // Processes outside any cgroup (non-root runs) carry the marker in their environment.
  const stalePids: number[] = [];
  for (const pid of listPids()) {
    const marker = environVar(pid, MARKER);
    if (marker) {
      const tag = marker.split('/')[0] ?? '';
      if (!tagAlive(tag)) stalePids.push(pid);
      continue;
    }
    // Stray processes of the dedicated test user that no live test process owns
    // (e.g. a conmon or pause process of a killed run on a machine without cgroup v2).
    if (user.dedicated && procUid(pid) === user.uid) {
      const cg = procCgroup2(pid) ?? '';
      const m = /\/zoopa-testbed\/(\d+-\d+)\//.exec(cg);
      if (!m || !tagAlive(m[1]!)) stalePids.push(pid);
    }
  }
  if (stalePids.length > 0) killAll(withDescendants(stalePids));

  const rtParent = runtimeParent();
  let runtimeDirs: string[] = [];
  try {
    runtimeDirs = fs.readdirSync(rtParent).map((n) => path.join(rtParent, n));
  } catch {
    /* none yet */
  }
  for (const dir of runtimeDirs) {
    let tag = '';
    try {
      tag = fs.readFileSync(path.join(dir, RUNTIME_OWNER_FILE), 'utf8').trim();
    } catch {
      tag = '';
    }
    if (tag && tagAlive(tag)) continue;
    if (!tag) {
      // No owner file (a start killed very early): judge by the pid in the name.
      const pid = Number(/^(\d+)-/.exec(path.basename(dir))?.[1] ?? 0);
      if (pid && pidAlive(pid)) continue;
    }
    staleDirs.push(dir);
  }
  for (const dir of staleDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      // e.g. another user's leftovers on a non-root run: their owner's next run removes them
      process.emitWarning(`zoopa testbed: cannot remove stale ${dir}: ${(e as Error).message}`);
    }
  }
  if (isRoot()) {
    try {
      for (const f of fs.readdirSync(SUDOERS_DIR)) {
        const m = new RegExp(`^${SUDOERS_PREFIX}.*?-(\\d+-\\d+)-tb\\d+$`).exec(f);
        if (m && !tagAlive(m[1]!)) fs.rmSync(path.join(SUDOERS_DIR, f), { force: true });
      }
    } catch {
      /* no sudoers.d */
    }
  }
}

async function createWorld(): Promise<World> {
  checkPrerequisites();
  prepareMachine();
  const user = await ensureTestUser();
  await removeLeftovers(user);

  const ownerTag = processTag(process.pid);
  if (!ownerTag) throw new Error('testbed: cannot read /proc/self/stat');
  const dir = path.join(WORLD_PARENT, `${WORLD_PREFIX}${ownerTag}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  const cgroupDir = isRoot() ? ownerCgroupDir(ownerTag) : undefined;
  installExitHooks(dir, cgroupDir);

  const repoDir = findRepoDir();
  const appDir = path.join(dir, 'app');
  copyApp(repoDir, appDir);
  const imageTar = await cachedImageTar();
  pruneCache();
  const rootfulConf = path.join(dir, 'containers.conf');
  fs.writeFileSync(rootfulConf, CONTAINERS_CONF, { mode: 0o644 });
  const rtParent = runtimeParent();
  fs.mkdirSync(rtParent, { recursive: true, mode: isRoot() ? 0o755 : 0o700 });

  return {
    ownerTag,
    dir,
    user,
    appDir,
    imageTar,
    cgroupDir,
    repoDir,
    rootfulConf,
    runtimeParent: rtParent,
  };
}

/** Marks the world as having rootful containers, so a killed run's leftovers get removed. */
export function markRootful(w: World): void {
  fs.writeFileSync(path.join(w.dir, ROOTFUL_MARK), '');
}

let hooksInstalled = false;

/**
 * On exit (or SIGINT/SIGTERM/SIGHUP): kill and remove every test bed still live,
 * then the process folder and cgroup. A folder is kept when a live test bed had
 * rootful containers, so that the next run's leftover clean-up removes them.
 */
function installExitHooks(dir: string, cgroupDir: string | undefined): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  let cleaned = false;
  const cleanupSync = () => {
    if (cleaned) return;
    cleaned = true;
    let keep = false;
    for (const tb of [...live]) {
      try {
        if (tb.cleanupSync()) keep = true;
      } catch {
        /* best effort */
      }
    }
    if (cgroupDir) destroySubtreeSync(cgroupDir);
    if (!keep) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        /* the next run's leftover clean-up retries */
      }
    }
  };
  process.once('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupSync();
      process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[sig]);
    });
  }
}
