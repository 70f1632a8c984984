#!/usr/bin/env node
/**
 * Checks (and, as root, installs) the system packages Zoopa's tests, demo and
 * benches drive for real: podman + podman-compose (rootless), systemd's user
 * manager and socket proxy, nginx, restic, sudo, wrk, hyperfine, ...
 *
 *   node scripts/prereqs.mjs
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
import { llamaPrereq } from './llama-fetch.mjs';

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
  // The test image is a folder with /bin/busybox in it: it must be statically linked.
  { pkg: 'busybox-static', file: '/bin/busybox', check: isStaticElf, why: 'a statically linked busybox' },
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

/** True when an ELF executable has no PT_INTERP program header (no dynamic loader). */
function isStaticElf(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64);
    fs.readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) return false; // "\x7fELF"
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b, o) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b, o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      fs.readSync(fd, ph, 0, phentsize, phoff + i * phentsize);
      if (u32(ph, 0) === 3) return false; // PT_INTERP
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
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

function main() {
  const isRoot = process.getuid?.() === 0;
  let missing = missingRequirements();
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((r) => r.pkg))];
    const what = missing.map(describe).join(', ');
    if (!isRoot) {
      console.error(`prereqs: missing ${what}. Install them with:`);
      console.error(`  sudo apt-get update && sudo apt-get install -y ${pkgs.join(' ')}`);
      process.exit(1);
    }
    console.error(`prereqs: missing ${what}; installing ${pkgs.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    runOrDie(['apt-get', 'update'], env);
    runOrDie(['apt-get', 'install', '-y', ...pkgs], env);
    missing = missingRequirements();
    if (missing.length > 0) {
      console.error(`prereqs: still missing after apt-get install: ${missing.map(describe).join(', ')}`);
      process.exit(1);
    }
  }
  if (!ensureSystemdRunDir(isRoot)) process.exit(1);

  // --- llama.cpp: a real llama-server for the tests (scripts/llama-fetch.mjs; cached, offline when warm) ---
  llamaPrereq();

  console.log(`prereqs: all ${REQUIREMENTS.length} system prerequisites present`);
}

main();
