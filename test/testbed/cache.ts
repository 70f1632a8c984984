/**
 * Things shared by all test processes, built once and reused (each test process used to
 * spend most of its first test bed's start copying node_modules and building the image):
 *
 *   /var/tmp/zoopa-testbed-cache/            (root; /var/tmp/zoopa-testbed-cache-<uid> otherwise)
 *     nm-<hash>/node_modules/                production dependencies, keyed by package-lock.json
 *     zoopa-busybox-<hash>.tar               the image tar, keyed by /bin/busybox and the recipe
 *     llama-server-<hash>/                   the real llama-server (scripts/llama-fetch.mjs, keyed by its recipe)
 *     llama-models-<hash>/                   tiny GGUF models (llama.ts, keyed by their options)
 *
 * Entries are created under a temporary name and renamed into place, so concurrent test
 * processes never see half-built ones. Entries not used for a day are pruned.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildImageTar, IMAGE_RECIPE } from './podman.js';
import { isRoot } from './util.js';

const PRUNE_AFTER_MS = 24 * 3600 * 1000;

export function cacheDir(): string {
  const dir = isRoot() ? '/var/tmp/zoopa-testbed-cache' : `/var/tmp/zoopa-testbed-cache-${process.getuid?.() ?? 'u'}`;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

const hash = (...parts: string[]) => crypto.createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);

/** Makes a tree readable (and folders enterable) by everyone. */
export function makeWorldReadable(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    if ((st.mode & 0o755) !== 0o755) fs.chmodSync(p, st.mode | 0o755);
    for (const e of fs.readdirSync(p)) makeWorldReadable(path.join(p, e));
  } else if ((st.mode & 0o444) !== 0o444) {
    fs.chmodSync(p, st.mode | 0o444);
  }
}

function touch(p: string): void {
  const now = new Date();
  try {
    fs.utimesSync(p, now, now);
  } catch {
    /* pruned meanwhile: rebuilt next time */
  }
}

/** Renames tmp to final unless another process got there first (then tmp is dropped). */
function publish(tmp: string, final: string): void {
  try {
    fs.renameSync(tmp, final);
  } catch (e) {
    if (!fs.existsSync(final)) throw e;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Production dependencies of the repo (from package-lock.json), or every top-level package but dev tools. */
function productionPackages(repo: string): string[] {
  const nm = path.join(repo, 'node_modules');
  try {
    const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as {
      packages?: Record<string, { dev?: boolean }>;
    };
    if (lock.packages) {
      return Object.entries(lock.packages)
        .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev)
        .map(([k]) => k.slice('node_modules/'.length))
        .filter((k) => !k.includes('/node_modules/')); // nested ones come with their parent
    }
  } catch {
    /* no lockfile */
  }
  return fs
    .readdirSync(nm)
    .filter((n) => !['.bin', '.cache', '.package-lock.json', 'typescript', '@types'].includes(n))
    .flatMap((n) => (n.startsWith('@') ? fs.readdirSync(path.join(nm, n)).map((s) => `${n}/${s}`) : [n]));
}

/** Path of a world-readable node_modules holding the repo's production dependencies. */
export function cachedNodeModules(repo: string): string | undefined {
  const nm = path.join(repo, 'node_modules');
  if (!fs.existsSync(nm)) return undefined;
  let keySource = '';
  for (const f of ['package-lock.json', 'package.json']) {
    try {
      keySource += fs.readFileSync(path.join(repo, f), 'utf8');
    } catch {
      /* absent */
    }
  }
  const entry = path.join(cacheDir(), `nm-${hash(keySource)}`);
  const final = path.join(entry, 'node_modules');
  if (fs.existsSync(final)) {
    touch(entry);
    return final;
  }
  const tmp = `${entry}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.mkdirSync(path.join(tmp, 'node_modules'), { recursive: true });
  for (const pkg of productionPackages(repo)) {
    const src = path.join(nm, pkg);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(tmp, 'node_modules', pkg), { recursive: true, dereference: true });
  }
  makeWorldReadable(tmp);
  publish(tmp, entry);
  return final;
}

/** The image tar (see podman.ts), built once per busybox binary. */
export async function cachedImageTar(): Promise<string> {
  const st = fs.statSync('/bin/busybox');
  const final = path.join(cacheDir(), `zoopa-busybox-${hash(IMAGE_RECIPE, String(st.size), String(st.mtimeMs), String(st.ino))}.tar`);
  if (fs.existsSync(final)) {
    touch(final);
    return final;
  }
  const tmp = `${final}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const tar = await buildImageTar(tmp);
    publish(tar, final);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return final;
}

/** Removes cache entries unused for a day, and temporary ones of dead builds. */
export function pruneCache(): void {
  const dir = cacheDir();
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    try {
      const st = fs.statSync(p);
      const tmpOf = /\.tmp-(\d+)-/.exec(name);
      const deadTmp = tmpOf && now - st.mtimeMs > 3600_000;
      if (deadTmp || (!tmpOf && now - st.mtimeMs > PRUNE_AFTER_MS)) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* raced with another process */
    }
  }
}
