/**
 * `zoopa proxy <stack>` put together: listeners (systemd's or `--listen`), one
 * StackState for all of them, connections, the idle timer and the state file.
 *
 * A connection arriving while the stack is awake goes straight to its upstream.
 * Otherwise it is held (accepted, not read) while the stack wakes, then
 * attached; if the wake fails every held connection is closed with one log line
 * and the proxy goes back to sleeping. At idle: veto, close the remaining
 * connections, stop the stack if Zoopa started it, then exit (socket
 * activation: systemd starts a fresh proxy on the next connection). A
 * connection arriving during the stop is held and served after a new start.
 */
import net from 'node:net';
import { formatDuration } from '../config/duration.js';
import type { UnitManager } from '../core/ports.js';
import { InputError, TimeoutError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { envKey, type ProxySettings } from './config.js';
import { Connection, SCOUT_CONFIRM_MS, Traffic } from './connection.js';
import { POLL_MS, probe } from './readiness.js';
import { IdleTimer, runStopCheck } from './idle.js';
import { listenOnFd, listenOnSpec, type ListenFd } from './listen-fds.js';
import { ensureOndemandDir } from './owned-marker.js';
import { StackState } from './stack-state.js';
import { writeProxyState, type ProxyState } from './state-file.js';
import type { Upstream } from './upstream.js';
import { freezeRecordExists } from '../ondemand/freeze-record.js';
import { recordIdleStop, recordProxyBytes, recordWake } from '../ondemand/stats.js';

export interface ProxyDeps {
  env: NodeJS.ProcessEnv;
  /** Required unless settings.stackUnit is null. */
  units: UnitManager | null;
  logger?: Logger;
  /** Sockets passed by systemd; used when settings.listen is null. */
  listenFds?: readonly ListenFd[];
  /** Exit after an idle stop. Default: when the sockets came from systemd. */
  exitOnIdle?: boolean;
  /** Write %t/ondemand/<stack>.state.json. Default true. */
  stateFile?: boolean;
}

export type ExitReason = 'idle' | 'signal' | 'closed';

/** How many times one connection may be re-held after its upstream refused it. */
const MAX_REFUSALS = 3;
const STATE_INTERVAL_MS = 1000;
/** The veto command gets this long at most (or the idle timeout, when shorter). */
const STOP_CHECK_TIMEOUT_MS = 120_000;

interface Listener {
  server: net.Server;
  /** LISTEN_FDNAMES entry, or "listen". */
  name: string;
  upstream: Upstream;
}

/** Which upstream a listening fd named `name` forwards to. */
export function upstreamForFd(settings: ProxySettings, name: string): Upstream {
  return settings.namedUpstreams.get(envKey(name)) ?? settings.upstream;
}

export class Proxy {
  readonly traffic = new Traffic();
  readonly stack: StackState;
  readonly done: Promise<ExitReason>;
  private resolveDone!: (r: ExitReason) => void;
  private readonly log: Logger;
  private readonly listeners: Listener[] = [];
  private readonly conns = new Set<Connection>();
  /** Connections waiting for the stack, with their upstream. */
  private readonly held = new Map<Connection, Upstream>();
  private readonly refusals = new WeakMap<Connection, number>();
  private readonly idle: IdleTimer;
  private wakeRunning = false;
  /** The wake's scout connection (confirm()). */
  private scout: { conn: Connection; confirmed: () => void; lost: () => void } | null = null;
  private scoutServed = 0;
  /** Ends a confirm() in progress (close()). */
  private cancelConfirm: (() => void) | null = null;
  private idleRunning = false;
  private closing = false;
  private stateTimer: NodeJS.Timeout | null = null;
  private written = { bytesIn: -1, bytesOut: -1, connections: -1 };
  private readonly exitOnIdle: boolean;
  private finalStateWritten = false;
  private readonly idleTimeoutMs: number | null;

  private constructor(
    readonly settings: ProxySettings,
    private readonly deps: ProxyDeps,
  ) {
    this.log = deps.logger ?? createLogger({ prefix: `${settings.stack}: ` });
    this.exitOnIdle = deps.exitOnIdle ?? settings.listen === null;
    this.done = new Promise((r) => (this.resolveDone = r));
    const upstreams = [settings.upstream];
    for (const fd of settings.listen ? [] : (deps.listenFds ?? [])) {
      const u = upstreamForFd(settings, fd.name);
      if (!upstreams.some((x) => x.text === u.text)) upstreams.push(u);
    }
    this.stack = new StackState({
      stack: settings.stack,
      unit: settings.stackUnit,
      units: deps.units,
      upstreams,
      ready: settings.ready,
      startTimeoutMs: settings.startTimeoutMs,
      env: deps.env,
      logger: this.log,
      onChange: () => this.writeState(),
      confirm: (deadline) => this.confirm(deadline),
    });
    // A plain proxy that nobody restarts has nothing to do at idle.
    this.idleTimeoutMs = settings.stackUnit === null && !this.exitOnIdle ? null : settings.idleTimeoutMs;
    this.idle = new IdleTimer({
      timeoutMs: this.idleTimeoutMs,
      mode: settings.idleMode,
      traffic: this.traffic,
      connections: () => this.conns.size,
      onIdle: () => void this.onIdle(),
    });
  }

  /**
   * Check everything, look at the unit, then listen. Throws InputError (nothing
   * started) for a missing socket or an unknown unit.
   */
  static async start(settings: ProxySettings, deps: ProxyDeps): Promise<Proxy> {
    const fds = deps.listenFds ?? [];
    if (settings.listen === null && fds.length === 0) {
      throw new InputError('ZOOPA_NO_SOCKET', `no socket to listen on for stack ${settings.stack}: systemd passed none (LISTEN_FDS) and --listen is not given`, {
        key: '--listen',
        hint: `start it through zoopa-ondemand@${settings.stack}.socket (systemd passes the socket), or pass --listen PATH|HOST:PORT`,
      });
    }
    if (settings.stackUnit !== null && !deps.units) throw new Error('Proxy.start: a stack unit needs a UnitManager');
    const p = new Proxy(settings, deps);
    await p.stack.init();
    if (deps.stateFile !== false) {
      try {
        ensureOndemandDir(deps.env);
      } catch {
        /* state is best effort */
      }
    }
    try {
      if (settings.listen) {
        p.listeners.push({ server: await listenOnSpec(p.newServer(), settings.listen), name: 'listen', upstream: settings.upstream });
      } else {
        for (const fd of fds) {
          const upstream = upstreamForFd(settings, fd.name);
          p.listeners.push({ server: await listenOnFd(p.newServer(), fd), name: fd.name, upstream });
        }
      }
    } catch (e) {
      for (const l of p.listeners) l.server.close();
      throw e;
    }
    for (const l of p.listeners) l.server.on('connection', (sock: net.Socket) => p.onConnection(sock, l.upstream));
    const where = p.listeners.map((l) => `${l.name === 'listen' ? describeAddress(l.server) : `fd ${l.name}`} → ${l.upstream.text}`).join(', ');
    const unit = settings.stackUnit ?? 'no unit';
    p.log.info(
      `proxy for ${unit} (${p.stack.state}${p.stack.owned ? ', started by zoopa' : ''}): ${where}; idle ${p.idleTimeoutMs === null ? 'never' : `${formatDuration(p.idleTimeoutMs / 1000)} (${settings.idleMode})`}`,
    );
    p.writeState();
    p.stateTimer = setInterval(() => p.tick(), STATE_INTERVAL_MS);
    p.stateTimer.unref();
    p.idle.arm();
    return p;
  }

  private newServer(): net.Server {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    server.on('error', (e) => this.log.warn(`listener: ${e.message}`));
    return server;
  }

  /** Listening addresses (for --listen with port 0, tests, the bench). */
  addresses(): (string | net.AddressInfo | null)[] {
    return this.listeners.map((l) => l.server.address());
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private onConnection(sock: net.Socket, upstream: Upstream): void {
    if (this.closing) {
      sock.destroy();
      return;
    }
    const c = new Connection(sock, this.traffic, { onClose: this.onConnClose, onRefused: this.onRefused, onConfirmed: this.onConfirmed });
    this.conns.add(c);
    this.traffic.lastActivity = Date.now();
    if (this.stack.state === 'awake') c.attach(upstream);
    else this.hold(c, upstream);
  }

  private hold(c: Connection, upstream: Upstream): void {
    if (!this.wakeRunning && this.settings.stackUnit && freezeRecordExists(this.settings.stack, this.deps.env)) {
      // Frozen (zoopa freeze, e.g. during a backup) yet activated, by a socket
      // started by hand: waking would break the freeze's promise. Close, as a
      // frozen stack's missing socket would have refused.
      this.log.warn(`not waking ${this.settings.stackUnit}: ${this.settings.stack} is frozen ("zoopa thaw ${this.settings.stack}" ends it); closed a connection`);
      c.release();
      return;
    }
    this.held.set(c, upstream);
    if (this.wakeRunning) return;
    this.wakeRunning = true;
    this.writeState();
    this.stack.ensureAwake(c.peer).then(
      (info) => {
        this.wakeRunning = false;
        if (info.started || info.readyMs > 0) {
          const n = this.held.size + this.scoutServed;
          this.log.notice(`ready: ${this.settings.upstream.text} answered ${info.readyMs} ms after the wake; serving ${n} waiting connection(s)`);
          if (info.started) this.stat(recordWake(this.settings.stack, { seconds: info.readyMs / 1000, ready: true, peer: this.stack.lastWake?.peer }));
        }
        this.scoutServed = 0;
        const waiting = [...this.held];
        this.held.clear();
        for (const [conn, up] of waiting) conn.attach(up);
        // The idle clock starts when the stack is ready: a start (a model loading)
        // longer than the idle timeout must not be taken for idleness.
        this.traffic.lastActivity = Date.now();
        this.writeState();
        this.idle.arm();
      },
      (err: unknown) => {
        this.wakeRunning = false;
        if (this.closing) return; // closed while waking: close() released everything
        const waiting = [...this.held.keys()];
        this.held.clear();
        const what = this.settings.stackUnit ?? this.settings.upstream.text;
        const why = err instanceof Error ? err.message : String(err);
        this.log.error(`wake failed: ${what}: ${why}; closed ${waiting.length} waiting connection(s); the next connection tries again`);
        const since = this.stack.lastWake ? Date.parse(this.stack.lastWake.at) : Date.now();
        this.stat(recordWake(this.settings.stack, { seconds: (Date.now() - since) / 1000, ready: false, reason: why, peer: this.stack.lastWake?.peer }));
        for (const conn of waiting) conn.release();
        this.traffic.lastActivity = Date.now(); // the idle clock starts again too
        this.writeState();
        this.idle.arm();
      },
    );
  }

  private readonly onRefused = (c: Connection, err: NodeJS.ErrnoException): void => {
    const n = (this.refusals.get(c) ?? 0) + 1;
    this.refusals.set(c, n);
    const up = c.target;
    if (n > MAX_REFUSALS || this.closing || !up) {
      c.release();
      return;
    }
    if (this.stack.state === 'awake') {
      this.log.warn(`${up.text} refused a connection (${err.code}); checking the stack again`);
      this.stack.markGone();
    }
    this.hold(c, up);
  };

  /**
   * The wake's last step with a tcp check: the upstream accepted a probe, but a
   * port forwarder (rootless podman's rootlessport) accepts before the app
   * listens. Two ways to prove the app is there, whichever is first:
   *  - one held connection goes ahead as a scout (connection.ts): its bytes are
   *    sent again until the upstream answers one byte (the fast proof, within
   *    ms of the app listening);
   *  - silent probes, one after another, until one stays open SCOUT_CONFIRM_MS
   *    (a forwarder without an app closes sooner): the proof for apps that
   *    close a connection without answering.
   * The other connections stay held until then. With no held connection the
   * probes alone decide.
   */
  private confirm(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const stopProbes = new AbortController();
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        this.cancelConfirm = null;
        stopProbes.abort();
        const scout = this.scout;
        this.scout = null;
        if (err) {
          reject(err);
          return;
        }
        if (scout) {
          scout.conn.endScout();
          if (scout.conn.scoutAttempts > 1) {
            this.log.info(`${scout.conn.target?.text} answered attempt ${scout.conn.scoutAttempts} (a port forwarder accepted connections before the app listened)`);
          }
          this.scoutServed++;
        }
        resolve();
      };
      const timeout = (): Error =>
        new TimeoutError(`${this.settings.upstream.text} accepted connections but did not answer within ${Math.round(this.settings.startTimeoutMs / 1000)} s`, this.settings.startTimeoutMs);
      const nextScout = (): void => {
        this.scout = null;
        if (settled) return;
        if (Date.now() >= deadline) return finish(timeout());
        const first = this.held.entries().next();
        if (first.done) return; // the probes decide
        const [c, up] = first.value;
        this.held.delete(c);
        this.scout = { conn: c, confirmed: () => finish(), lost: nextScout };
        c.attach(up, { scoutUntil: deadline });
      };
      const probeLoop = async (): Promise<void> => {
        while (!settled) {
          const r = await probe(this.settings.upstream, { kind: 'tcp' }, SCOUT_CONFIRM_MS, stopProbes.signal);
          if (settled) return;
          if (r.ok) return finish();
          if (Date.now() >= deadline) return finish(timeout());
          await new Promise((res) => setTimeout(res, POLL_MS));
        }
      };
      this.cancelConfirm = () => finish(new Error('the proxy is closing'));
      nextScout();
      void probeLoop();
    });
  }

  private readonly onConfirmed = (c: Connection): void => {
    if (this.scout?.conn === c) this.scout.confirmed();
  };

  private readonly onConnClose = (c: Connection): void => {
    if (this.scout?.conn === c) {
      const lost = this.scout.lost;
      this.scout = null;
      lost();
    }
    this.conns.delete(c);
    this.held.delete(c);
    this.traffic.lastActivity = Date.now();
    if (this.conns.size === 0) this.idle.arm();
  };

  private async onIdle(): Promise<void> {
    if (this.closing || this.idleRunning || this.stack.busy || this.wakeRunning) return;
    this.idleRunning = true;
    try {
      const unit = this.settings.stackUnit;
      const owned = this.stack.refreshOwned();
      const idleFor = formatDuration((Date.now() - this.traffic.lastActivity) / 1000);
      if (unit !== null && owned && this.settings.stopCheck) {
        const timeoutMs = Math.min(STOP_CHECK_TIMEOUT_MS, this.settings.idleTimeoutMs ?? STOP_CHECK_TIMEOUT_MS);
        const r = await runStopCheck(this.settings.stopCheck, { ...this.deps.env, ZOOPA_STACK: this.settings.stack, ZOOPA_STACK_UNIT: unit }, timeoutMs);
        if (!r.allow) {
          this.idle.postpone();
          this.log.notice(`veto: ${r.why}; the stop of ${unit} is postponed by ${formatDuration((this.settings.idleTimeoutMs ?? 0) / 1000)}`);
          this.writeState();
          return;
        }
        if (!this.idle.isDue() || this.stack.busy || this.closing) return; // traffic moved while the check ran
      }
      const silent = this.conns.size;
      for (const c of [...this.conns]) if (!this.held.has(c)) c.release();
      const closed = silent > 0 ? `; closed ${silent} silent connection(s)` : '';
      if (unit === null) {
        this.log.notice(`idle for ${idleFor}${closed}; exiting`);
      } else if (owned) {
        this.log.notice(`idle stop: nothing moved for ${idleFor}; stopping ${unit} (started by zoopa)${closed}`);
      } else {
        this.log.notice(`idle: nothing moved for ${idleFor}; leaving ${unit} running (not started by zoopa)${closed}`);
      }
      try {
        if (await this.stack.stopForIdle()) this.stat(recordIdleStop(this.settings.stack));
      } catch (e) {
        this.log.error(`idle stop of ${unit} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (this.held.size > 0 || this.stack.busy || this.wakeRunning) return; // a client came during the stop: keep serving
      if (this.exitOnIdle) await this.close('idle');
    } finally {
      this.idleRunning = false;
      if (!this.closing) this.idle.arm();
    }
  }

  /** Counters for zoopa web are best effort: a failed write is one warning, never a failed wake. */
  private stat(err: Error | null): void {
    if (err) this.log.warn(`cannot record on-demand counters: ${err.message}`);
  }

  /** Stop listening, close every connection, write the last state. Leaves the stack as it is. */
  async close(reason: ExitReason = 'closed'): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.cancelConfirm?.();
    this.stack.cancelWake();
    this.idle.stop();
    if (this.stateTimer) clearInterval(this.stateTimer);
    for (const l of this.listeners) l.server.close();
    for (const c of [...this.conns]) c.release();
    this.held.clear();
    if (reason === 'idle' && this.stack.state !== 'sleeping') this.stack.state = 'sleeping';
    this.writeState();
    this.stat(recordProxyBytes(this.settings.stack, this.traffic.bytesIn, this.traffic.bytesOut));
    this.finalStateWritten = true; // a wake still finishing in the background writes no more
    this.resolveDone(reason);
  }

  snapshot(): ProxyState {
    return {
      stack: this.settings.stack,
      pid: process.pid,
      state: this.stack.state,
      owned: this.stack.owned,
      connections: this.conns.size,
      bytesIn: this.traffic.bytesIn,
      bytesOut: this.traffic.bytesOut,
      idleDeadline: this.stack.state === 'awake' ? this.idle.deadline() : null,
      lastWake: this.stack.lastWake,
      updatedAt: Date.now(),
    };
  }

  private writeState(): void {
    if (this.deps.stateFile === false || this.finalStateWritten) return;
    const s = this.snapshot();
    this.written = { bytesIn: s.bytesIn, bytesOut: s.bytesOut, connections: s.connections };
    writeProxyState(s, this.deps.env);
  }

  /** Once a second: write the state when something moved. */
  private tick(): void {
    const w = this.written;
    if (w.bytesIn !== this.traffic.bytesIn || w.bytesOut !== this.traffic.bytesOut || w.connections !== this.conns.size) this.writeState();
  }
}

function describeAddress(server: net.Server): string {
  const a = server.address();
  if (a === null) return '?';
  if (typeof a === 'string') return a;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
