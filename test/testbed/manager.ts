/**
 * A real systemd user manager per test bed: `/usr/lib/systemd/systemd --user` running
 * as the test user with the test bed's HOME, XDG_RUNTIME_DIR and XDG_CONFIG_HOME, so
 * `%h`, `%t` and the unit search path all point into the test bed. `systemctl --user`
 * reaches it through $XDG_RUNTIME_DIR/systemd/private (no D-Bus needed).
 *
 * $XDG_CONFIG_HOME/systemd/user.conf:
 *   [Manager]
 *   DefaultStandardOutput=inherit      no journald here: units' output goes to the
 *   DefaultStandardError=inherit       manager's stdout/stderr = the log file
 *   DefaultEnvironment="PATH=..." "CONTAINERS_CONF=..." ...   (a user manager resets PATH)
 *
 * Units the host's admin enabled for every user in /etc/systemd/user/*.wants/ (gpg-agent
 * and dirmngr sockets, pk-debconf-helper...) fail here and only add noise and a
 * "degraded" state: they are masked in $XDG_RUNTIME_DIR/systemd/user/ (runtime unit
 * folder; $XDG_CONFIG_HOME/systemd/user stays empty for zoopa to fill).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RunResult } from '../../src/exec.js';
import { isRoot, WaitAborted, waitFor } from './util.js';

export const SYSTEMD = '/usr/lib/systemd/systemd';

export interface ManagerContext {
  env: Record<string, string>;
  configHome: string;
  runtimeDir: string;
  logFile: string;
  uid: number;
  gid: number;
  /** argv that starts `argv` as the test user (inside the test bed's manager cgroup when root). */
  wrap: (argv: readonly string[]) => string[];
  /** Runs a command as the test user. */
  run: (argv: readonly string[], opts?: { timeoutMs?: number }) => Promise<RunResult>;
}

export interface Manager {
  pid: number;
  child: ChildProcess;
  /** Resolves when the manager process has exited. */
  exited: Promise<void>;
  hasExited(): boolean;
}

const quote = (kv: string) => {
  if (/["\\\n]/.test(kv)) throw new Error(`manager: cannot put ${JSON.stringify(kv)} into DefaultEnvironment=`);
  return `"${kv}"`;
};

export function renderUserConf(defaultEnv: Record<string, string>): string {
  const env = Object.entries(defaultEnv).map(([k, v]) => quote(`${k}=${v}`));
  return [
    '# Written by the Zoopa test bed.',
    '[Manager]',
    'DefaultStandardOutput=inherit',
    'DefaultStandardError=inherit',
    `DefaultEnvironment=${env.join(' ')}`,
    '',
  ].join('\n');
}

/** Units enabled machine-wide by the admin in /etc/systemd/user/*.wants/. */
function adminEnabledUnits(): string[] {
  const base = '/etc/systemd/user';
  const out = new Set<string>();
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync(base).filter((d) => d.endsWith('.wants'));
  } catch {
    return [];
  }
  for (const d of dirs) {
    try {
      for (const u of fs.readdirSync(path.join(base, d))) out.add(u);
    } catch {
      /* not a folder */
    }
  }
  return [...out];
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

/** Writes user.conf and the masks (files owned by the test user). */
export function prepareManagerConfig(ctx: ManagerContext, defaultEnv: Record<string, string>): void {
  const sysdConf = path.join(ctx.configHome, 'systemd');
  fs.mkdirSync(path.join(sysdConf, 'user'), { recursive: true });
  fs.writeFileSync(path.join(sysdConf, 'user.conf'), renderUserConf(defaultEnv));
  const runtimeUnits = path.join(ctx.runtimeDir, 'systemd', 'user');
  fs.mkdirSync(runtimeUnits, { recursive: true });
  for (const unit of adminEnabledUnits()) {
    if (unit.startsWith('dbus.')) continue; // the session bus is part of a normal user session
    fs.symlinkSync('/dev/null', path.join(runtimeUnits, unit));
  }
  if (process.getuid?.() === 0) {
    chownTree(sysdConf, ctx.uid, ctx.gid);
    chownTree(path.join(ctx.runtimeDir, 'systemd'), ctx.uid, ctx.gid);
  }
}

/** Starts the manager and waits until `systemctl --user is-system-running` says running/degraded. */
export async function startManager(ctx: ManagerContext, timeoutMs = 60_000): Promise<Manager> {
  const logFd = fs.openSync(ctx.logFile, 'a');
  let child: ChildProcess;
  try {
    const argv = ctx.wrap([SYSTEMD, '--user']);
    child = spawn(argv[0]!, argv.slice(1), {
      env: ctx.env,
      cwd: ctx.env.HOME,
      stdio: ['ignore', logFd, logFd],
      detached: true, // own process group: a Ctrl-C at the terminal is handled by the test bed, not by systemd
    });
  } finally {
    fs.closeSync(logFd);
  }
  child.unref(); // a forgotten stop() must not keep the test process alive (the exit hook kills it)
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', () => {
      done = true;
      resolve();
    });
  });
  const log = () => {
    try {
      return fs.readFileSync(ctx.logFile, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const privateSocket = path.join(ctx.runtimeDir, 'systemd', 'private');
  try {
    await waitFor(
      async () => {
        if (done) {
          const hint = isRoot()
            ? ''
            : ' (not root: systemd --user exits at once when it cannot write its cgroup; run the tests as root,' +
              ' or from a delegated cgroup, e.g. `systemd-run --user --scope -p Delegate=yes npm test`)';
          throw new WaitAborted(`systemd --user exited (${child.exitCode ?? child.signalCode}); its log: ${log() || '(empty)'}${hint}`);
        }
        if (!fs.existsSync(privateSocket)) return false;
        const r = await ctx.run(['systemctl', '--user', 'is-system-running'], { timeoutMs: 10_000 });
        const state = r.stdout.trim();
        return state === 'running' || state === 'degraded';
      },
      { timeoutMs, intervalMs: 20, what: 'the systemd user manager to be running' },
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const manager: Manager = {
    pid: child.pid ?? 0,
    child,
    exited,
    hasExited: () => done,
  };
  return manager;
}
