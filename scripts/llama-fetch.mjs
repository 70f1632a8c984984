#!/usr/bin/env node
/**
 * A REAL llama.cpp `llama-server` for the test bed, from Debian's unstable suite,
 * run on this (older) Debian with unstable's own loader and libraries, without
 * installing anything or touching the system's apt configuration:
 *
 *   node scripts/llama-fetch.mjs          # prints the wrapper's path (fetches once)
 *
 * 1. `apt-get update` + `apt-get download` of PACKAGES from the unstable suite of the
 *    Debian mirror the machine's apt sources already use, with a private sources list
 *    and private lists/cache folders (`-o Dir::Etc::SourceList=... -o Dir::State::Lists=...
 *    -o Dir::Cache=...`); the system's preferences and sources.list.d are not read.
 * 2. `dpkg -x` of every .deb into one folder.
 * 3. usr/bin/llama-server's ELF interpreter is set to the unpacked loader
 *    (<lib>/ld-linux-x86-64.so.2) with unstable's own `patchelf` (run through that loader
 *    with `--library-path`). Running llama-server *as an argument of* the loader, as in
 *    `<lib>/ld-linux-x86-64.so.2 --library-path ... llama-server`, works for one model but
 *    not for router mode: the router starts each model's instance by re-running
 *    /proc/self/exe, which is then the loader, and the instance dies with
 *    "ld-linux-x86-64.so.2: unrecognized option '--host'".
 * 4. A wrapper `llama-server` (what `llama.binary` points at in tests):
 *      LD_LIBRARY_PATH=<lib>:<lib>/ggml/backends0:<lib>/llama  (inherited by router instances)
 *      GGML_BACKEND_PATH=<lib>/ggml/backends0/libggml-cpu-x64.so  (Debian's ggml looks for its
 *        CPU backends in /usr/lib/x86_64-linux-gnu/ggml/backends0 only)
 *      exec <dir>/usr/bin/llama-server "$@"
 * 5. The capability is proven: `llama-server --version` answers (and `--help` is kept
 *    in help.txt for the flag checks). Everything is made world-readable (the test
 *    user runs it), then renamed into place:
 *
 *   /var/tmp/zoopa-testbed-cache/llama-server-<recipe>/   (root; ...-cache-<uid>/ otherwise)
 *     llama-server      the wrapper (0755)
 *     root/             the unpacked packages
 *     version.txt       `llama-server --version`
 *     help.txt          `llama-server --help`
 *     packages.txt      package versions and the download size
 *
 * A warm cache is used as it is: no apt, no network (the second run is offline).
 * Plain JavaScript: scripts/prereqs.mjs runs it before the TypeScript build exists.
 * Every command is an argv array; nothing goes through a shell.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGES = ['llama.cpp-tools', 'libllama0', 'libggml0', 'libc6', 'libstdc++6', 'libgcc-s1', 'libgomp1', 'libssl3t64', 'zlib1g', 'libzstd1'];
/** Only used while unpacking (to point llama-server at its own loader); not kept. */
const TOOL_PACKAGES = ['patchelf'];
export const SUITE = 'unstable';
const RECIPE = ['v3', SUITE, ...PACKAGES, ...TOOL_PACKAGES].join(' ');
/** The CPU backend the wrapper loads (ggml's baseline x86-64 build: slow but runs anywhere). */
export const BACKEND = 'libggml-cpu-x64.so';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export class LlamaFetchError extends Error {}

function isRoot() {
  return process.getuid?.() === 0;
}

/** The test bed's cache folder (same rule as test/testbed/cache.ts cacheDir()). */
export function cacheDir() {
  const dir = isRoot() ? '/var/tmp/zoopa-testbed-cache' : `/var/tmp/zoopa-testbed-cache-${process.getuid?.() ?? 'u'}`;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** The cache entry's folder (it may not exist yet). */
export function llamaEntryDir() {
  const h = crypto.createHash('sha256').update(RECIPE).digest('hex').slice(0, 12);
  return path.join(cacheDir(), `llama-server-${h}`);
}

/** The wrapper's path in a complete cache entry, or undefined. */
export function cachedLlamaServer() {
  const entry = llamaEntryDir();
  const wrapper = path.join(entry, 'llama-server');
  if (!fs.existsSync(path.join(entry, 'version.txt')) || !fs.existsSync(wrapper)) return undefined;
  const now = new Date();
  try {
    fs.utimesSync(entry, now, now); // keeps it from the test bed's prune
  } catch {
    /* raced with a prune: rebuilt next time */
  }
  return wrapper;
}

/**
 * The Debian mirror (and its keyring) the machine's apt sources already use for Debian
 * itself (not debian-security), from /etc/apt/sources.list and sources.list.d/*.
 */
export function debianMirror(etc = '/etc/apt') {
  const entries = [];
  const files = [path.join(etc, 'sources.list')];
  try {
    for (const f of fs.readdirSync(path.join(etc, 'sources.list.d')).sort()) files.push(path.join(etc, 'sources.list.d', f));
  } catch {
    /* none */
  }
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file.endsWith('.sources')) {
      for (const para of text.split(/\n\s*\n/)) {
        const field = (k) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(para)?.[1]?.trim();
        const types = field('Types') ?? '';
        if (!types.split(/\s+/).includes('deb')) continue;
        for (const uri of (field('URIs') ?? '').split(/\s+/).filter(Boolean)) entries.push({ uri, keyring: field('Signed-By') });
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)/.exec(line);
        if (!m) continue;
        const keyring = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
        entries.push({ uri: m[2], keyring });
      }
    }
  }
  const debian = entries.find((e) => /\/debian\/?$/.test(e.uri));
  const keyring = debian?.keyring && fs.existsSync(debian.keyring) ? debian.keyring : DEFAULT_KEYRING;
  return { uri: (debian?.uri ?? DEFAULT_MIRROR).replace(/\/$/, ''), keyring };
}

function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new LlamaFetchError(`could not run ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new LlamaFetchError(`${argv.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-8).join('\n')}`);
  }
  return r;
}

function makeWorldReadable(p) {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    if ((st.mode & 0o755) !== 0o755) fs.chmodSync(p, st.mode | 0o755);
    for (const e of fs.readdirSync(p)) makeWorldReadable(path.join(p, e));
  } else if ((st.mode & 0o444) !== 0o444) {
    fs.chmodSync(p, st.mode | 0o444);
  }
}

/** The wrapper script's text for an unpacked tree at `root`. */
export function wrapperText(root) {
  const lib = path.join(root, 'usr/lib/x86_64-linux-gnu');
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    "# llama.cpp's llama-server from Debian unstable, run with its own loader (its ELF interpreter)",
    '# and libraries (written by scripts/llama-fetch.mjs; see there). LD_LIBRARY_PATH is inherited',
    '# by the instances router mode starts.',
    `LD_LIBRARY_PATH=${q(libraryPath(lib))}`,
    '# Debian built ggml to look for its CPU backends in /usr/lib/x86_64-linux-gnu/ggml/backends0 only;',
    '# GGML_BACKEND_PATH loads one from here instead: the baseline x86-64 one, which runs on every CPU.',
    `GGML_BACKEND_PATH="\${GGML_BACKEND_PATH:-${path.join(lib, 'ggml/backends0', BACKEND)}}"`,
    'export LD_LIBRARY_PATH GGML_BACKEND_PATH',
    `exec ${q(path.join(root, 'usr/bin/llama-server'))} "$@"`,
    '',
  ].join('\n');
}

function libraryPath(lib) {
  return `${lib}:${lib}/ggml/backends0:${lib}/llama`;
}

/**
 * Makes sure the cache holds a working llama-server and returns the wrapper's path.
 * `log` gets one line per step. Throws LlamaFetchError naming the failed step.
 */
export function ensureLlamaServer(log = (line) => console.error(`llama-fetch: ${line}`)) {
  const cached = cachedLlamaServer();
  if (cached) return cached;
  const entry = llamaEntryDir();
  const tmp = `${entry}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  try {
    const work = path.join(tmp, 'apt');
    for (const d of ['lists/partial', 'cache/archives/partial', 'etc/sources.list.d', 'etc/preferences.d', 'debs']) fs.mkdirSync(path.join(work, d), { recursive: true });
    const mirror = debianMirror();
    fs.writeFileSync(path.join(work, 'etc/sources.list'), `deb [signed-by=${mirror.keyring}] ${mirror.uri} ${SUITE} main\n`);
    const aptOpts = [
      '-o', `Dir::Etc::SourceList=${path.join(work, 'etc/sources.list')}`,
      '-o', `Dir::Etc::SourceParts=${path.join(work, 'etc/sources.list.d')}`,
      '-o', `Dir::Etc::Preferences=${path.join(work, 'etc/preferences')}`,
      '-o', `Dir::Etc::PreferencesParts=${path.join(work, 'etc/preferences.d')}`,
      '-o', `Dir::State::Lists=${path.join(work, 'lists')}`,
      '-o', `Dir::Cache=${path.join(work, 'cache')}`,
      '-o', 'Acquire::Languages=none',
      ...(isRoot() ? ['-o', 'APT::Sandbox::User=root'] : []),
    ];
    log(`fetching ${PACKAGES.join(' ')} from ${mirror.uri} ${SUITE} into ${entry}`);
    run(['apt-get', ...aptOpts, 'update']);
    const listBytes = fs.readdirSync(path.join(work, 'lists')).reduce((n, f) => n + (fs.statSync(path.join(work, 'lists', f)).isFile() ? fs.statSync(path.join(work, 'lists', f)).size : 0), 0);
    run(['apt-get', ...aptOpts, 'download', ...PACKAGES, ...TOOL_PACKAGES], { cwd: path.join(work, 'debs') });
    const debs = fs.readdirSync(path.join(work, 'debs')).filter((f) => f.endsWith('.deb')).sort();
    const wanted = PACKAGES.length + TOOL_PACKAGES.length;
    if (debs.length !== wanted) throw new LlamaFetchError(`apt-get download gave ${debs.length} files for ${wanted} packages: ${debs.join(' ')}`);
    const root = path.join(tmp, 'root');
    fs.mkdirSync(root);
    let debBytes = 0;
    const versions = [];
    for (const d of debs) {
      const file = path.join(work, 'debs', d);
      debBytes += fs.statSync(file).size;
      run(['dpkg-deb', '-x', file, root]);
      versions.push(decodeURIComponent(d.replace(/\.deb$/, '')).replace(/_/g, ' '));
    }
    fs.rmSync(work, { recursive: true, force: true });
    // The wrapper and the interpreter name the final folder: they work once renamed into place.
    const finalRoot = path.join(entry, 'root');
    const lib = path.join(root, 'usr/lib/x86_64-linux-gnu');
    const viaLoader = (bin) => [path.join(lib, 'ld-linux-x86-64.so.2'), '--library-path', libraryPath(lib), bin];
    run([...viaLoader(path.join(root, 'usr/bin/patchelf')), '--set-interpreter', path.join(finalRoot, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'), path.join(root, 'usr/bin/llama-server')]);
    fs.writeFileSync(path.join(tmp, 'llama-server'), wrapperText(finalRoot), { mode: 0o755 });
    // Prove it from the temporary place with the same loader and libraries.
    const direct = viaLoader(path.join(root, 'usr/bin/llama-server'));
    const version = run([...direct, '--version']);
    const versionText = `${version.stdout}${version.stderr}`.trim();
    if (!/^version: /m.test(versionText)) throw new LlamaFetchError(`llama-server --version printed no version: ${versionText}`);
    const help = run([...direct, '--help']);
    fs.writeFileSync(path.join(tmp, 'help.txt'), `${help.stdout}${help.stderr}`);
    fs.writeFileSync(
      path.join(tmp, 'packages.txt'),
      [`# ${SUITE} from ${mirror.uri}; .deb files ${debBytes} bytes, package index ${listBytes} bytes`, ...versions, ''].join('\n'),
    );
    fs.writeFileSync(path.join(tmp, 'version.txt'), `${versionText}\n`);
    makeWorldReadable(tmp);
    fs.chmodSync(tmp, 0o755);
    try {
      fs.renameSync(tmp, entry);
    } catch (e) {
      if (!cachedLlamaServer()) throw e;
      fs.rmSync(tmp, { recursive: true, force: true }); // another process got there first
    }
    log(`${versionText.split('\n')[0]}; downloaded ${(debBytes / 1e6).toFixed(1)} MB of packages (the package index takes ${(listBytes / 1e6).toFixed(1)} MB unpacked)`);
    const wrapper = cachedLlamaServer();
    if (!wrapper) throw new LlamaFetchError(`${entry} is incomplete after unpacking`);
    const check = run([wrapper, '--version']);
    if (!/^version: /m.test(`${check.stdout}${check.stderr}`)) throw new LlamaFetchError(`${wrapper} --version printed no version`);
    return wrapper;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** For scripts/prereqs.mjs: fetch when needed, prove `--version`, exit 1 with the reason otherwise. */
export function llamaPrereq() {
  try {
    const wrapper = ensureLlamaServer();
    const r = spawnSync(wrapper, ['--version'], { encoding: 'utf8' });
    const v = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0];
    if (r.status !== 0 || !/^version: /.test(v)) throw new LlamaFetchError(`${wrapper} --version failed (exit ${r.status}): ${v}`);
    console.log(`prereqs: llama-server ${v.replace(/^version: /, '')} at ${wrapper}`);
  } catch (e) {
    console.error(`prereqs: no working llama-server for the tests: ${e.message}`);
    console.error('  (fetched from Debian unstable by scripts/llama-fetch.mjs; needs apt-get and dpkg-deb, and the Debian mirror)');
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(ensureLlamaServer());
  } catch (e) {
    console.error(`llama-fetch: ${e.message}`);
    process.exit(1);
  }
}
