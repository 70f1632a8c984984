/**
 * Testbed: one isolated world for an integration test. See index.ts for the API overview.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { run, type RunResult } from '../../src/exec.js';
import { TestbedCgroup } from './cgroup.js';
import { startManager, prepareManagerConfig, type Manager } from './manager.js';
import { startNginx, type Nginx, type NginxLocation, type NginxOptions } from './nginx.js';
import { CONTAINERS_CONF, importArgs, importImageRootful, removeRootfulContainers } from './podman.js';
import { environVar, killAll, listPids, procUid, userNamespace, withDescendants } from './procs.js';
import { renderTestbedDefaults, SUDOERS_DIR, SUDOERS_PREFIX, writeSudoers, writeSudoersText } from './sudo.js';
import { isRoot, removeTree, slug, waitFor, which, type WaitForOptions } from './util.js';
import { markRootful, MARKER, registerLive, RUNTIME_OWNER_FILE, unregisterLive, world, type ExitCleaner, type World } from './world.js';

export interface TestbedOptions {
  /** A label for the test bed's folder (and error messages). */
  name?: string;
  /** Start a systemd user manager (default true). */
  manager?: boolean;
  /** Import IMAGE into the test bed's rootless storage (default true). */
  image?: boolean;
}

export interface TbRunOptions {
  /** Extra environment variables on top of tb.env. */
  env?: Record<string, string | undefined>;
  /** Working directory (default tb.home: the test process's cwd may not be enterable by the user). */
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Deadline (default 120 s): the command is killed and the call rejects with TimeoutError. */
  timeoutMs?: number;
  /** Throw CommandError on a non-zero exit (default false: return the result). */
  reject?: boolean;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface TbSpawnOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Where stdout and stderr go (appended); default <tb.dir>/logs/<command>-<n>.log. */
  logFile?: string;
}

/** A long-running process started with tb.spawn(); killed by tb.stop() at the latest. */
export interface Spawned {
  child: ChildProcess;
  pid: number;
  logFile: string;
  log(): string;
  /** Resolves with the exit status once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM), waits for the exit (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

let counter = 0;

export class Testbed implements ExitCleaner {
  /** "tb<n>", unique within the test process. */
  readonly id: string;
  readonly name: string;
  /** The test bed's folder: everything below is removed by stop(). */
  readonly dir: string;
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /**
   * $XDG_RUNTIME_DIR, mode 0700, owned by the user: the manager's %t. Outside tb.dir and
   * short (/run/ztb/<pid>-<id>; podman limits its runroot to 50 characters).
   */
  readonly runtimeDir: string;
  readonly configHome: string;
  readonly stateHome: string;
  /** A stacks root folder (owned by the user), for fixtures and zoopa.yaml. */
  readonly root: string;
  /** containers.conf of this test bed (also in the manager's environment). */
  readonly containersConf: string;
  /** The manager's stdout/stderr: units' output lands here. */
  readonly managerLogFile: string;
  /** World-readable copy of the built app that tb.zoopa() runs. */
  readonly appDir: string;
  /** Environment for processes run as the user (HOME, XDG_*, PATH, CONTAINERS_CONF, LANG, USER, ZOOPA_TESTBED). */
  readonly env: Readonly<Record<string, string>>;

  private readonly world: World;
  private readonly marker: string;
  private cgroup: TestbedCgroup | undefined;
  private manager: Manager | undefined;
  private readonly nginxes: Nginx[] = [];
  private readonly children = new Set<ChildProcess>();
  private sudoFile: string | undefined;
  /** Files installSudoers() wrote: the rule as given, and the test bed's Defaults. */
  private readonly sudoRuleFiles: string[] = [];
  private readonly sudoCommands = new Set<string>();
  private rootfulUsed = false;
  private stopping: Promise<void> | undefined;
  private spawnCount = 0;

  private constructor(w: World, opts: TestbedOptions) {
    this.world = w;
    this.id = `tb${++counter}`;
    this.name = opts.name ?? this.id;
    const label = opts.name ? slug(opts.name) : '';
    this.dir = path.join(w.dir, label ? `${this.id}-${label}` : this.id);
    this.user = w.user.name;
    this.uid = w.user.uid;
    this.gid = w.user.gid;
    this.home = path.join(this.dir, 'home');
    this.runtimeDir = path.join(w.runtimeParent, `${process.pid}-${this.id}`);
    this.configHome = path.join(this.home, '.config');
    this.stateHome = path.join(this.home, '.local', 'state');
    this.root = path.join(this.dir, 'stacks');
    this.containersConf = path.join(this.dir, 'containers.conf');
    this.managerLogFile = path.join(this.dir, 'manager.log');
    this.appDir = w.appDir;
    this.marker = `${w.ownerTag}/${this.id}`;
    const nodeDir = path.dirname(process.execPath);
    const pathDirs = [nodeDir, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
    this.env = Object.freeze({
      HOME: this.home,
      USER: this.user,
      LOGNAME: this.user,
      LANG: 'C.UTF-8',
      PATH: [...new Set(pathDirs)].join(':'),
      XDG_RUNTIME_DIR: this.runtimeDir,
      XDG_CONFIG_HOME: this.configHome,
      XDG_STATE_HOME: this.stateHome,
      CONTAINERS_CONF: this.containersConf,
      [MARKER]: this.marker,
    });
  }

  /** Creates the folders, the user manager and the image; cleans up after itself when that fails. */
  static async start(opts: TestbedOptions = {}): Promise<Testbed> {
    const w = await world();
    const tb = new Testbed(w, opts);
    registerLive(tb);
    try {
      await tb.init(opts);
    } catch (e) {
      await tb.stop().catch(() => undefined);
      throw new Error(`testbed ${tb.name}: start failed: ${(e as Error).message}`, { cause: e });
    }
    return tb;
  }

  private async init(opts: TestbedOptions): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    for (const d of [this.home, this.configHome, this.stateHome, this.root, path.join(this.dir, 'logs')]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    }
    fs.mkdirSync(this.runtimeDir, { mode: 0o700 });
    fs.writeFileSync(path.join(this.runtimeDir, RUNTIME_OWNER_FILE), this.world.ownerTag);
    if (`${this.runtimeDir}/containers`.length > 50) {
      throw new Error(`XDG_RUNTIME_DIR ${this.runtimeDir} is too long for rootless podman's runroot (50 characters)`);
    }
    fs.writeFileSync(this.containersConf, CONTAINERS_CONF, { mode: 0o644 });
    fs.writeFileSync(this.managerLogFile, '', { mode: 0o644 });
    if (this.world.cgroupDir) {
      this.cgroup = TestbedCgroup.create(path.join(this.world.cgroupDir, this.id), this.uid, this.gid);
    }
    if (opts.manager !== false) {
      prepareManagerConfig(this.managerContext(), {
        PATH: this.env.PATH!,
        CONTAINERS_CONF: this.containersConf,
        LANG: this.env.LANG!,
        [MARKER]: this.marker,
      });
    }
    this.chown(this.dir);
    this.chown(this.runtimeDir);
    await Promise.all([
      opts.manager !== false ? this.startManager() : undefined,
      opts.image !== false ? this.importImage() : undefined,
    ]);
  }

  private managerContext() {
    return {
      env: { ...this.env },
      configHome: this.configHome,
      runtimeDir: this.runtimeDir,
      logFile: this.managerLogFile,
      uid: this.uid,
      gid: this.gid,
      wrap: (argv: readonly string[]) => this.asUser(argv, 'manager'),
      run: (argv: readonly string[], o?: { timeoutMs?: number }) => this.run(argv, o),
    };
  }

  private async startManager(): Promise<void> {
    this.manager = await startManager(this.managerContext());
  }

  private async importImage(): Promise<void> {
    const r = await this.podman(importArgs(this.world.imageTar), { timeoutMs: 120_000 });
    if (r.status !== 0) throw new Error(`podman import failed: ${r.stderr.trim()}`);
  }

  /** argv that runs `argv` as the test user (and inside the test bed's cgroup when root). */
  asUser(argv: readonly string[], sub: 'run' | 'manager' = 'run'): string[] {
    const base = isRoot()
      ? [which('setpriv') ?? '/usr/bin/setpriv', `--reuid=${this.uid}`, `--regid=${this.gid}`, '--init-groups', '--', ...argv]
      : [...argv];
    return this.cgroup ? this.cgroup.wrap(sub, base) : base;
  }

  private assertLive(): void {
    if (this.stopping) throw new Error(`testbed ${this.name} is stopped`);
  }

  /** Runs argv as the user with tb.env (+ opts.env); resolves with {status, stdout, stderr, ...}. */
  async run(argv: readonly string[], opts: TbRunOptions = {}): Promise<RunResult> {
    this.assertLive();
    return run(this.asUser(argv), {
      env: { ...this.env, ...opts.env },
      cwd: opts.cwd ?? this.home,
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
      reject: opts.reject ?? false,
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
    });
  }

  /** `node <appDir>/bin/zoopa.js ...args` as the user. */
  zoopa(args: readonly string[], opts: TbRunOptions = {}): Promise<RunResult> {
    return this.run([process.execPath, path.join(this.appDir, 'bin', 'zoopa.js'), ...args], opts);
  }

  /** `systemctl --user ...args` as the user, against this test bed's manager. */
  systemctl(args: readonly string[], opts: TbRunOptions = {}): Promise<RunResult> {
    return this.run(['systemctl', '--user', ...args], opts);
  }

  /** Rootless `podman ...args` as the user. */
  podman(args: readonly string[], opts: TbRunOptions = {}): Promise<RunResult> {
    return this.run(['podman', ...args], opts);
  }

  /** `podman-compose ...args` as the user, in the stack folder `dir`. */
  compose(dir: string, args: readonly string[], opts: TbRunOptions = {}): Promise<RunResult> {
    return this.run(['podman-compose', ...args], { ...opts, cwd: dir });
  }

  /** Text of the user manager's log (its own messages and every unit's output). */
  managerLog(): string {
    try {
      return fs.readFileSync(this.managerLogFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Polls fn until truthy; see util.waitFor. */
  waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<NonNullable<T>> {
    return waitFor(fn, opts);
  }

  /** Starts a long-running process as the user; its output goes to a log file. */
  spawn(argv: readonly string[], opts: TbSpawnOptions = {}): Spawned {
    this.assertLive();
    const logFile =
      opts.logFile ?? path.join(this.dir, 'logs', `${slug(path.basename(argv[0] ?? 'cmd'), 24) || 'cmd'}-${++this.spawnCount}.log`);
    const child = this.spawnChild(argv, { ...opts, logFile });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    return {
      child,
      pid: child.pid ?? 0,
      logFile,
      log: () => {
        try {
          return fs.readFileSync(logFile, 'utf8');
        } catch {
          return '';
        }
      },
      exited,
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      },
    };
  }

  private spawnChild(argv: readonly string[], opts: TbSpawnOptions & { logFile: string }): ChildProcess {
    const full = this.asUser(argv);
    const fd = fs.openSync(opts.logFile, 'a', 0o644);
    let child: ChildProcess;
    try {
      child = spawn(full[0]!, full.slice(1), {
        env: { ...this.env, ...opts.env },
        cwd: opts.cwd ?? this.home,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      fs.closeSync(fd);
    }
    if (isRoot()) fs.chownSync(opts.logFile, this.uid, this.gid);
    child.unref();
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /**
   * A real nginx as the user on 127.0.0.1:<free port> with its own config, pid file and
   * logs in the test bed. locations: [{ path: '/', upstream: 'unix:/abs.sock' | '127.0.0.1:PORT' }].
   */
  async startNginx(locations: readonly NginxLocation[], opts: NginxOptions = {}): Promise<Nginx> {
    this.assertLive();
    const dir = path.join(this.dir, `nginx-${this.nginxes.length + 1}`);
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    this.chown(dir);
    const web = await startNginx(dir, (argv, o) => this.spawnChild(argv, { cwd: o.cwd, logFile: o.logFile ?? path.join(dir, 'stdout.log') }), locations, opts);
    this.nginxes.push(web);
    return web;
  }

  /** Imports IMAGE into root's podman storage (rootful stacks), with this test bed's containers.conf. Root only. */
  async importImageRootful(): Promise<void> {
    this.requireRoot('importImageRootful');
    this.noteRootful();
    await importImageRootful(this.world.imageTar, this.containersConf);
  }

  /** Rootful `podman ...args` as root with this test bed's containers.conf. Root only. */
  podmanRootful(args: readonly string[], opts: Omit<TbRunOptions, 'env'> = {}): Promise<RunResult> {
    this.requireRoot('podmanRootful');
    return run(['podman', ...args], {
      env: { ...process.env, CONTAINERS_CONF: this.containersConf },
      cwd: opts.cwd,
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
      reject: opts.reject ?? false,
    });
  }

  /**
   * Lets the user run these commands (absolute paths) with sudo, without a password,
   * keeping CONTAINERS_CONF. The rule lives in /etc/sudoers.d until stop(). Root only.
   */
  async allowSudo(commands: readonly string[]): Promise<void> {
    this.requireRoot('allowSudo');
    this.assertLive();
    this.noteRootful();
    for (const c of commands) this.sudoCommands.add(c);
    this.sudoFile ??= path.join(SUDOERS_DIR, `${SUDOERS_PREFIX}${this.user}-${this.world.ownerTag}-${this.id}`);
    await writeSudoers(this.sudoFile, this.user, [...this.sudoCommands]);
  }

  /**
   * Installs `text` (e.g. the output of `zoopa sudoers --user <tb.user>`) verbatim as a
   * scratch sudoers file, checked by visudo, plus a second file with the test bed's own
   * Defaults (keep CONTAINERS_CONF, no lecture). Both are removed by stop(). Root only.
   */
  async installSudoers(text: string): Promise<string> {
    this.requireRoot('installSudoers');
    this.assertLive();
    this.noteRootful();
    const rule = path.join(SUDOERS_DIR, `${SUDOERS_PREFIX}${this.user}-rule-${this.world.ownerTag}-${this.id}`);
    const defaults = path.join(SUDOERS_DIR, `${SUDOERS_PREFIX}${this.user}-defaults-${this.world.ownerTag}-${this.id}`);
    for (const f of [rule, defaults]) if (!this.sudoRuleFiles.includes(f)) this.sudoRuleFiles.push(f);
    await writeSudoersText(defaults, renderTestbedDefaults(this.user));
    await writeSudoersText(rule, text);
    return rule;
  }

  /** Removes what installSudoers() wrote (the user then has no sudo rights from this test bed). */
  removeSudoers(): void {
    for (const f of this.sudoRuleFiles) fs.rmSync(f, { force: true });
  }

  /** Writes a file (parents created) owned by the user. Relative paths are relative to tb.dir. */
  writeFile(file: string, content: string | Buffer, mode = 0o644): string {
    const abs = path.resolve(this.dir, file);
    const parent = path.dirname(abs);
    if (!fs.existsSync(parent)) {
      fs.mkdirSync(parent, { recursive: true });
      this.chownUp(parent);
    }
    fs.writeFileSync(abs, content, { mode });
    fs.chmodSync(abs, mode);
    if (isRoot()) fs.chownSync(abs, this.uid, this.gid);
    return abs;
  }

  /** Gives a file or folder tree (inside the test bed) to the user. No-op when not root. */
  chown(p: string): void {
    if (!isRoot()) return;
    const walk = (q: string) => {
      fs.lchownSync(q, this.uid, this.gid);
      const st = fs.lstatSync(q);
      if (st.isDirectory()) for (const e of fs.readdirSync(q)) walk(path.join(q, e));
    };
    walk(p);
  }

  /** chown folders from `dir` up to (not including) tb.dir. */
  private chownUp(dir: string): void {
    if (!isRoot()) return;
    for (let d = dir; d.startsWith(this.dir + path.sep); d = path.dirname(d)) fs.lchownSync(d, this.uid, this.gid);
  }

  private requireRoot(what: string): void {
    if (!isRoot()) throw new Error(`testbed: ${what} needs the test process to run as root`);
  }

  private noteRootful(): void {
    this.rootfulUsed = true;
    markRootful(this.world);
  }

  /** All processes of this test bed (cgroup members, marked processes, the rootless user namespace), with descendants. */
  private findProcesses(): Set<number> {
    const pids = new Set<number>(this.cgroup?.pids() ?? []);
    if (this.manager && !this.manager.hasExited()) pids.add(this.manager.pid);
    for (const c of this.children) if (c.pid && c.exitCode === null && c.signalCode === null) pids.add(c.pid);
    let pauseNs: string | undefined;
    try {
      const pause = Number(fs.readFileSync(path.join(this.runtimeDir, 'libpod', 'tmp', 'pause.pid'), 'utf8'));
      if (procUid(pause) === this.uid) pauseNs = userNamespace(pause);
    } catch {
      /* no rootless podman ran */
    }
    if (!this.cgroup || pauseNs) {
      for (const pid of listPids()) {
        if (environVar(pid, MARKER) === this.marker) pids.add(pid);
        else if (pauseNs && procUid(pid) === this.uid && userNamespace(pid) === pauseNs) pids.add(pid);
      }
    }
    return withDescendants(pids);
  }

  /**
   * Stops everything this test bed started and removes its folders. Idempotent; safe after
   * a failed start. Order: nginx and spawned processes, `systemctl --user exit` (the manager
   * stops its units), `podman rm -af -t 0`, root's containers of this test bed, kill whatever
   * remains (cgroup.kill), the sudoers rule, the folders.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const problems: string[] = [];
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    const asUser = (argv: readonly string[], timeoutMs: number) =>
      run(this.asUser(argv), { env: { ...this.env }, cwd: this.home, timeoutMs, reject: false });

    await step('nginx', () => Promise.all(this.nginxes.map((n) => n.stop())));
    await step('spawned processes', () => {
      for (const c of this.children) c.kill('SIGTERM');
    });
    const manager = this.manager;
    if (manager && !manager.hasExited()) {
      await step('manager exit', async () => {
        await asUser(['systemctl', '--user', 'exit'], 10_000).catch(() => undefined);
        const t = setTimeout(() => manager.child.kill('SIGKILL'), 30_000);
        await manager.exited;
        clearTimeout(t);
      });
    }
    if (fs.existsSync(path.join(this.home, '.local', 'share', 'containers'))) {
      await step('podman rm', () => asUser(['podman', 'rm', '-af', '-t', '0'], 60_000));
    }
    // Before the kill: root's conmon processes started through sudo live in this test bed's cgroup,
    // and podman cannot remove containers whose conmon was killed under it.
    if (this.rootfulUsed) {
      await step('rootful containers', () => removeRootfulContainers(`${this.dir}/`, this.containersConf));
    }
    await step('kill processes', async () => {
      for (let i = 0; i < 5; i++) {
        const pids = this.findProcesses();
        if (pids.size === 0) break;
        killAll(pids);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (this.cgroup) await this.cgroup.destroy();
      const left = this.findProcesses();
      if (left.size > 0) throw new Error(`still running: ${[...left].join(' ')}`);
    });
    if (this.sudoFile) {
      const f = this.sudoFile;
      await step('sudoers', () => fs.rmSync(f, { force: true }));
    }
    await step('sudoers rules', () => this.removeSudoers());
    await step('folders', async () => {
      await removeTree(this.runtimeDir);
      await removeTree(this.dir);
    });
    unregisterLive(this);
    if (problems.length > 0) throw new Error(`testbed ${this.name}: stop: ${problems.join('; ')}`);
  }

  /** Exit-hook clean-up (synchronous, best effort). Returns true when rootful containers may remain. */
  cleanupSync(): boolean {
    for (const n of this.nginxes) killAll([n.pid]);
    for (const c of this.children) c.kill('SIGKILL');
    if (this.manager && !this.manager.hasExited()) this.manager.child.kill('SIGKILL');
    killAll(this.findProcesses());
    this.cgroup?.killSync(); // the world's exit hook then empties and removes the cgroups
    if (this.sudoFile) fs.rmSync(this.sudoFile, { force: true });
    this.removeSudoers();
    try {
      fs.rmSync(this.runtimeDir, { recursive: true, force: true });
    } catch {
      /* retried by the next run */
    }
    if (!this.rootfulUsed) {
      try {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } catch {
        /* retried by the next run */
      }
    }
    return this.rootfulUsed;
  }
}
