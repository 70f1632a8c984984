#!/usr/bin/env node
/**
 * Checks (and, as root, installs) the system packages Zoopa's tests, demo and
 * benches drive for real: podman + podman-compose (rootless), systemd's user
 * manager and socket proxy, nginx, restic, sudo, wrk, hyperfine, iptables, ...
 * and then PROVES the capabilities they rely on (package names prove nothing:
 * netavark installs without iptables and then cannot publish a port).
 *
 *   node scripts/prereqs.mjs
 *
 * The work is an ordered list of steps (STEPS in main()); each returns true, or prints
 * what is missing with the exact fix and returns false, which ends the run (exit 1).
 *
 *  1. packages: every requirement below present, else installed (root) or named;
 *  2. /run/systemd/system exists (see below);
 *  3. capabilities: dist/scripts/capabilities.js (scripts/capabilities.ts; built first
 *     when missing) starts a test bed and proves a rootless container with a published
 *     port answering HTTP as the test user, the rootful one (as root), and nginx in front
 *     of a unix socket; each with a deadline of seconds and the missing piece named.
 *
 * - Everything present: prints one line, exits 0.
 * - Something missing and we are root: `apt-get update` once, then
 *   `apt-get install -y <packages>` (DEBIAN_FRONTEND=noninteractive), then checks again.
 * - Something missing and we are not root: prints the exact `sudo apt-get install -y ...`
 *   command and exits 1.
 * - Also creates /run/systemd/system when missing (needed by `systemd --user` when
 *   PID 1 is not systemd). It is created *after* installing packages so that
 *   package scripts do not mistake this machine for a systemd-booted one.
 *
 * Plain JavaScript on purpose: it runs before the TypeScript build output exists.
 * Every command is an argv array; nothing goes through a shell.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaPrereq } from './llama-fetch.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * One requirement: `cmd` is looked up on PATH (plus the sbin folders), `file` is an
 * absolute path; `check` is an extra test on the found file. `pkg` is the Debian
 * package that provides it.
 */
const REQUIREMENTS = [
  { pkg: 'podman', cmd: 'podman' },
  { pkg: 'podman-compose', cmd: 'podman-compose' },
  { pkg: 'runc', cmd: 'runc' },
  { pkg: 'uidmap', cmd: 'newuidmap' },
  { pkg: 'uidmap', cmd: 'newgidmap' },
  { pkg: 'slirp4netns', cmd: 'slirp4netns' },
  { pkg: 'fuse-overlayfs', cmd: 'fuse-overlayfs' },
  { pkg: 'catatonit', cmd: 'catatonit' },
  { pkg: 'netavark', file: '/usr/lib/podman/netavark' },
  // netavark runs iptables to publish a port; nothing pulls it in, and without it a
  // container with `ports:` fails while podman-compose 1.0.3 still exits 0.
  { pkg: 'iptables', cmd: 'iptables' },
  // The test image is a folder with /bin/busybox in it: it must be statically linked.
  { pkg: 'busybox-static', file: '/bin/busybox', check: () => dpkgInstalled('busybox-static'), why: 'a statically linked busybox (busybox-static)' },
  { pkg: 'nginx', cmd: 'nginx' },
  { pkg: 'restic', cmd: 'restic' },
  { pkg: 'sudo', cmd: 'sudo' },
  { pkg: 'sudo', cmd: 'visudo' },
  { pkg: 'wrk', cmd: 'wrk' },
  { pkg: 'hyperfine', cmd: 'hyperfine' },
  { pkg: 'curl', cmd: 'curl' },
  { pkg: 'systemd', cmd: 'systemctl' },
  { pkg: 'systemd', file: '/usr/lib/systemd/systemd' },
  { pkg: 'systemd', file: '/usr/lib/systemd/systemd-socket-proxyd' },
  { pkg: 'util-linux', cmd: 'setpriv' },
  { pkg: 'passwd', cmd: 'useradd' },
  { pkg: 'tar', cmd: 'tar' },
  // zoopa web's tests: Debian's Chromium (driven by playwright-core) and promtool (checks /metrics).
  // Without recommends: prometheus would pull in and start prometheus-node-exporter; only promtool is used.
  { pkg: 'chromium', file: '/usr/bin/chromium', noRecommends: true },
  { pkg: 'prometheus', cmd: 'promtool', noRecommends: true },
];

const SEARCH_PATH = [
  ...(process.env.PATH ?? '').split(':').filter(Boolean),
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
];

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function findCommand(cmd) {
  for (const dir of SEARCH_PATH) {
    const file = path.join(dir, cmd);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

/** True when dpkg has the package installed (busybox-static: /bin/busybox must be static; the image is a folder with it in it). */
function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /install ok installed/.test(r.stdout);
}

function describe(req) {
  return req.why ?? req.cmd ?? req.file;
}

function missingRequirements() {
  return REQUIREMENTS.filter((req) => {
    const found = req.cmd ? findCommand(req.cmd) : isExecutable(req.file) ? req.file : undefined;
    return !found || (req.check && !req.check(found));
  });
}

function runOrDie(argv, env) {
  console.error(`prereqs: ${argv.join(' ')}`);
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.error) {
    console.error(`prereqs: could not run ${argv[0]}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`prereqs: ${argv.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function ensureSystemdRunDir(isRoot) {
  const dir = '/run/systemd/system';
  if (fs.existsSync(dir)) return true;
  if (!isRoot) {
    console.error(`prereqs: ${dir} is missing (systemd --user needs it when PID 1 is not systemd). Run:`);
    console.error(`  sudo mkdir -p ${dir}`);
    return false;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  console.error(`prereqs: created ${dir} (PID 1 is not systemd; systemd --user needs it)`);
  return true;
}

/** Step: every requirement present; as root, apt-get installs what is missing. */
function packagesStep() {
  const isRoot = process.getuid?.() === 0;
  let missing = missingRequirements();
  if (missing.length === 0) {
    console.log(`prereqs: all ${REQUIREMENTS.length} system prerequisites present`);
    return true;
  }
  const pkgs = [...new Set(missing.map((r) => r.pkg))];
  const what = missing.map(describe).join(', ');
  if (!isRoot) {
    console.error(`prereqs: missing ${what}. Install them with:`);
    console.error(`  sudo apt-get update && sudo apt-get install -y ${pkgs.join(' ')}`);
    return false;
  }
  console.error(`prereqs: missing ${what}; installing ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  runOrDie(['apt-get', 'update'], env);
  const plain = [...new Set(missing.filter((r) => !r.noRecommends).map((r) => r.pkg))];
  const lean = [...new Set(missing.filter((r) => r.noRecommends).map((r) => r.pkg))];
  if (plain.length) runOrDie(['apt-get', 'install', '-y', ...plain], env);
  if (lean.length) runOrDie(['apt-get', 'install', '-y', '--no-install-recommends', ...lean], env);
  missing = missingRequirements();
  if (missing.length > 0) {
    console.error(`prereqs: still missing after apt-get install: ${missing.map(describe).join(', ')}`);
    return false;
  }
  console.log(`prereqs: installed ${pkgs.join(' ')}; all ${REQUIREMENTS.length} system prerequisites present`);
  return true;
}

/** Step: the capabilities, proved for real (scripts/capabilities.ts, built when missing). */
function capabilitiesStep() {
  const script = path.join(REPO, 'dist', 'scripts', 'capabilities.js');
  if (!fs.existsSync(script)) {
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!fs.existsSync(tsc)) {
      console.error(`prereqs: ${script} is not built and TypeScript is not installed: run "npm ci && npm run build" first`);
      return false;
    }
    runOrDie([process.execPath, tsc, '-p', REPO]);
  }
  const r = spawnSync(process.execPath, [script], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) {
    console.error(`prereqs: could not run ${script}: ${r.error.message}`);
    return false;
  }
  return r.status === 0;
}

/** The steps, in order. Add a step here (a function returning true, or false after saying why). */
const STEPS = [
  ['system packages', packagesStep],
  ['/run/systemd/system', () => ensureSystemdRunDir(process.getuid?.() === 0)],
  ['capabilities', capabilitiesStep],
  // A real llama-server for the tests (scripts/llama-fetch.mjs: Debian unstable's packages, cached, offline when warm).
  ['llama.cpp', () => (llamaPrereq(), true)],
];

function main() {
  for (const [name, step] of STEPS) {
    if (!step()) {
      console.error(`prereqs: step "${name}" failed (see above)`);
      process.exit(1);
    }
  }
}

main();
