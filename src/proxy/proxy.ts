/**
 * `zoopa proxy <stack>` put together: listeners (systemd's or `--listen`), one
 * StackState for all of them, the connections, the scout, the idle timer and
 * the state file. Each part owns its job; this file only wires them.
 *
 * A connection arriving while the stack is awake goes straight to its
 * upstream. Otherwise it is held (accepted, not read) and the stack wakes; once
 * awake every held connection is attached; if the wake fails they are refused
 * (refuse.ts) with one log line. Bounds: at most `maxHeld` held connections and
 * what the descriptor limit allows (fd-budget.ts); the excess is closed with a
 * rate-limited log line. While waking (wait style auto/page) a held
 * connection's first bytes are peeked (http-peek.ts): a browser's page load
 * gets the waiting page after page_after, a poll of the readiness path gets the
 * proxy's own answer (waitpage.ts). At idle: idle-stop.ts, then exit (socket activation
 * starts a fresh proxy on the next connection). While the stack is frozen (zoopa
 * freeze, a backup) nothing wakes it: connections get maintenance.ts's answers; a
 * proxy started while frozen does nothing else and exits once the freeze ends.
 */
import type net from 'node:net';
import { formatDuration } from '../config/duration.js';
import { createLogger, type Logger } from '../log.js';
import type { ProxySettings } from './config.js';
import { Admission } from './admission.js';
import { Connection } from './connection.js';
import { Connections } from './connections.js';
import { podmanDiagnose, type Diagnose } from './diagnose.js';
import { failureLine, refusalText, type WakeFailedError } from './failures.js';
import { FdBudget } from './fd-budget.js';
import { IdleTimer } from './idle.js';
import { httpGreeting } from './readiness.js';
import { idleStop } from './idle-stop.js';
import type { ListenFd } from './listen-fds.js';
import { allUpstreams, describeListener, openListeners, requireSockets, type Listener } from './listeners.js';
import { ensureOndemandDir } from './owned-marker.js';
import { classify, type Peeked } from './http-peek.js';
import { refuse, refuseScout, type ErrorPageOptions } from './refuse.js';
import { Maintenance, MAINTENANCE_PEEK_MS } from './maintenance.js';
import { pageResponse, readyResponse, templatePage, typicalWakeSeconds, waitingPage, type PageKind } from './waitpage.js';
import { Scout } from './scout.js';
import { StackState, type WakeInfo } from './stack-state.js';
import type { ProxyState } from './state-file.js';
import { snapshotOf, StateWriter } from './state-writer.js';
import { Traffic } from './traffic.js';
import type { ProxyUnits } from './units.js';
import type { Upstream } from './upstream.js';
import { freezeRecordExists } from '../ondemand/freeze-record.js';
import { recordProxyBytes } from '../ondemand/stats.js';

export { upstreamForFd } from './listeners.js';

export interface ProxyDeps {
  env: NodeJS.ProcessEnv;
  /** Required unless settings.stackUnit is null. */
  units: ProxyUnits | null;
  logger?: Logger;
  /** Sockets passed by systemd; used when settings.listen is null. */
  listenFds?: readonly ListenFd[];
  /** Exit after an idle stop. Default: when the sockets came from systemd. */
  exitOnIdle?: boolean;
  /** Write %t/ondemand/<stack>.state.json. Default true. */
  stateFile?: boolean;
  /** Why a started stack is not running. Default: podman's view (diagnose.ts); null: none. */
  diagnose?: Diagnose | null;
  /** Descriptor accounting (tests pass a small one). */
  fdBudget?: FdBudget;
}

export type ExitReason = 'idle' | 'signal' | 'closed';

/** How many times one connection may be re-held after its upstream refused it. */
const MAX_REFUSALS = 3;

export class Proxy {
  readonly traffic = new Traffic();
  readonly stack: StackState;
  readonly done: Promise<ExitReason>;
  private resolveDone!: (r: ExitReason) => void;
  private readonly log: Logger;
  private listeners: Listener[] = [];
  private readonly conns = new Connections();
  private readonly scout: Scout;
  private readonly idle: IdleTimer;
  private readonly state: StateWriter;
  private readonly admission: Admission;
  private readonly maintenance: Maintenance;
  private closing = false;
  private readonly exitOnIdle: boolean;
  private readonly idleTimeoutMs: number | null;

  private constructor(
    readonly settings: ProxySettings,
    private readonly deps: ProxyDeps,
    /** Started while the stack was frozen: it only answers with the maintenance page (maintenance.ts). */
    private readonly maintenanceOnly: boolean,
  ) {
    this.log = deps.logger ?? createLogger({ prefix: `${settings.stack}: ` });
    this.exitOnIdle = deps.exitOnIdle ?? settings.listen === null;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.admission = new Admission(settings, deps.env, this.log, deps.fdBudget ?? new FdBudget());
    this.state = new StateWriter(() => this.snapshot(), deps.env, deps.stateFile !== false && !maintenanceOnly);
    this.maintenance = new Maintenance({ stack: settings.stack, title: settings.stack, env: deps.env, template: settings.maintenanceTemplate, served: (c) => this.pageServed('maintenance', c) });
    this.scout = new Scout({ upstream: settings.upstream, startTimeoutMs: settings.startTimeoutMs, logger: this.log, takeHeld: () => this.conns.firstHeld(), greeting: () => (this.conns.pagePending() ? httpGreeting(settings.upstream) : null), abandon: (c) => (this.closing ? (c as Connection).release() : refuseScout(c as Connection, refusalText(settings.stack), this.errorPage())) });
    const diagnose = deps.diagnose === undefined && deps.units ? podmanDiagnose(deps.units, deps.env) : (deps.diagnose ?? null);
    this.stack = new StackState({
      stack: settings.stack,
      unit: settings.stackUnit,
      units: deps.units,
      upstreams: allUpstreams(settings, deps.listenFds ?? []),
      ready: settings.ready,
      startTimeoutMs: settings.startTimeoutMs,
      env: deps.env,
      logger: this.log,
      diagnose,
      onChange: () => this.state.write(),
      onAwake: (info) => this.onAwake(info),
      onWakeFailed: (err) => this.onWakeFailed(err),
      confirm: (deadline, since) => this.scout.confirm(deadline, since),
    });
    // A plain proxy that nobody restarts has nothing to do at idle.
    this.idleTimeoutMs = settings.stackUnit === null && !this.exitOnIdle ? null : settings.idleTimeoutMs;
    this.idle = new IdleTimer({ timeoutMs: this.idleTimeoutMs, mode: settings.idleMode, traffic: this.traffic, connections: () => this.conns.size, onIdle: () => this.onIdle() });
  }

  /** Check everything, look at the unit, then listen. Throws InputError (nothing started) for a missing socket or an unknown unit. */
  static async start(settings: ProxySettings, deps: ProxyDeps): Promise<Proxy> {
    const fds = deps.listenFds ?? [];
    requireSockets(settings, fds);
    if (settings.stackUnit !== null && !deps.units) throw new Error('Proxy.start: a stack unit needs a unit manager');
    const frozen = settings.stackUnit !== null && freezeRecordExists(settings.stack, deps.env);
    const p = new Proxy(settings, deps, frozen);
    if (!frozen) await p.stack.init(); // frozen: the stack is the freeze's business, not looked at
    if (deps.stateFile !== false) {
      try {
        ensureOndemandDir(deps.env);
      } catch {} // state is best effort
    }
    p.listeners = await openListeners(settings, fds, p.log);
    for (const l of p.listeners) l.server.on('connection', (sock: net.Socket) => p.onConnection(sock, l.upstream));
    const where = p.listeners.map((l) => `${describeListener(l)} → ${l.upstream.text}`).join(', ');
    const idle = p.idleTimeoutMs === null ? 'never' : `${formatDuration(p.idleTimeoutMs / 1000)} (${settings.idleMode})`;
    if (frozen) p.log.info(`${settings.stack} is frozen: answering with the maintenance page until "zoopa thaw ${settings.stack}", waking nothing: ${where}`);
    else p.log.info(`proxy for ${settings.stackUnit ?? 'no unit'} (${p.stack.state}${p.stack.owned ? ', started by zoopa' : ''}): ${where}; idle ${idle}`);
    p.state.start();
    p.idle.arm();
    return p;
  }

  /** Listening addresses (for --listen with port 0, tests, the bench). */
  addresses(): (string | net.AddressInfo | null)[] {
    return this.listeners.map((l) => l.server.address());
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private onConnection(sock: net.Socket, upstream: Upstream): void {
    if (this.closing) return void sock.destroy();
    if (!this.admission.accept(this.conns.size)) return void sock.destroy();
    const c = new Connection(sock, this.traffic, { onClose: this.onConnClose, onRefused: this.onRefused, onConfirmed: (x) => this.scout.confirmed(x) }, this.settings.connIdleTimeoutMs);
    this.conns.add(c);
    this.traffic.touch();
    if (this.maintenanceOnly) return this.serveFrozen(c);
    if (this.stack.state === 'awake') c.attach(upstream);
    else this.hold(c, upstream);
  }

  private hold(c: Connection, upstream: Upstream): void {
    if (this.admission.frozen(this.stack.isWaking)) return this.maintenance.serve(c);
    if (!this.admission.hold(this.conns.size, () => this.conns.heldCount())) return c.release();
    c.hold(upstream);
    this.stack.wake(c.peer);
    if (this.settings.wait !== 'hold') c.peek((first) => this.onPeeked(c, first));
  }

  /** A held connection's first bytes: the readiness poll is answered, a browser's page load (every HTTP request in `page`) gets the waiting page. */
  private onPeeked(c: Connection, first: Buffer): void {
    if (c.closed || !c.held || this.closing) return;
    const p = classify(first);
    if (p.kind === 'ready-poll') return c.answer(readyResponse(this.stack.state === 'awake', p.head));
    const page = this.settings.wait === 'page' ? p.kind !== 'other' : p.kind === 'navigation';
    if (!page) return;
    c.pagePending = true;
    const delay = this.settings.wait === 'page' ? 0 : Math.max(0, c.heldAt + this.settings.pageAfterMs - Date.now());
    setTimeout(() => this.serveWaitingPage(c, p), delay).unref();
  }

  /** A maintenance proxy's connection: answered; once the freeze has ended (zoopa thaw), the proxy makes way for a normal one. */
  private serveFrozen(c: Connection): void {
    this.maintenance.serve(c); // first: close() waits for the answers being written
    if (!freezeRecordExists(this.settings.stack, this.deps.env) && !this.closing) {
      this.log.info(`the freeze ended: exiting, so that the next connection starts a proxy that wakes ${this.settings.stackUnit}`);
      void this.close('closed');
    }
  }

  private serveWaitingPage(c: Connection, p: Peeked): void {
    if (c.closed || !c.held || !c.pagePending || this.closing || this.stack.state === 'awake') return;
    const since = this.stack.lastWake ? Date.parse(this.stack.lastWake.at) : c.heldAt;
    const vars = { title: this.settings.stack, elapsedS: (Date.now() - since) / 1000, typicalS: typicalWakeSeconds(this.settings.stack, this.deps.env) };
    const html = this.settings.pageTemplate === null ? waitingPage(vars) : templatePage(this.settings.pageTemplate, vars);
    this.pageServed('waiting', c);
    c.answer(pageResponse('waiting', html, p.head));
  }

  /** The one (rate-limited) log line per page served. */
  private pageServed(kind: PageKind, c: Connection | null): void {
    this.admission.limits.line(`page-${kind}`, (n) => this.log.info(`served the ${kind} page to ${c?.peer ?? 'a client'}${n ? ` (and ${n} more since the last line)` : ''}`));
  }

  /** The error page of a failed wake, for browsers (wait style auto/page), or null (hold). */
  private errorPage(): ErrorPageOptions | null {
    if (this.settings.wait === 'hold') return null;
    return { title: this.settings.stack, stack: this.settings.stack, served: () => this.pageServed('error', null) };
  }

  private onAwake(info: WakeInfo): void {
    const waiting = this.conns.held();
    if (info.started || info.readyMs > 0) {
      this.log.notice(`ready: ${this.settings.upstream.text} answered ${info.readyMs} ms after the wake; serving ${waiting.length + this.scout.takeServed()} waiting connection(s)`);
    }
    for (const c of waiting) c.attach(c.target!);
    // The idle clock starts when the stack is ready: a start longer than the idle timeout is not idleness.
    this.traffic.touch();
  }

  private onWakeFailed(err: WakeFailedError): void {
    if (this.closing) return; // closed while waking: close() released everything
    this.scout.cancel('the wake failed');
    this.scout.takeServed();
    const waiting = this.conns.held();
    const page = this.errorPage();
    for (const c of waiting) refuse(c, refusalText(this.settings.stack), undefined, page);
    const line = () => failureLine(err, this.settings.stackUnit ?? this.settings.upstream.text, waiting.length, this.stack.failures.nextBackoff);
    if (err.backoff) this.admission.limits.line('backoff', (n) => this.log.warn(line() + (n ? ` (${n} more times since the last line)` : '')));
    else this.log.error(line());
  }

  private readonly onRefused = (c: Connection, err: NodeJS.ErrnoException): void => {
    const up = c.target;
    if (c.refusals > MAX_REFUSALS || this.closing || !up) return c.release();
    if (this.stack.state === 'awake') {
      this.log.warn(`${up.text} refused a connection (${err.code}); checking the stack again`);
      this.stack.markGone();
    }
    this.hold(c, up);
  };

  private readonly onConnClose = (c: Connection): void => {
    this.scout.closed(c);
    this.maintenance.closed(c);
    this.conns.delete(c);
    this.traffic.touch();
    if (this.conns.size === 0) this.idle.arm(); // the one place: the last connection went
  };

  private async onIdle(): Promise<void> {
    if (this.maintenanceOnly) return void (this.exitOnIdle && (await this.close('closed')));
    const { settings, log, stack, idle, traffic, conns } = this;
    const ctx = { settings, env: this.deps.env, log, stack, idle, traffic, conns, closing: () => this.closing, onChange: () => this.state.write() };
    if ((await idleStop(ctx)) && this.exitOnIdle) await this.close('idle');
  }

  /** Stop listening, close every connection, write the last state. Leaves the stack as it is. */
  async close(reason: ExitReason = 'closed'): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.scout.cancel();
    this.stack.cancelWake();
    this.idle.stop();
    for (const l of this.listeners) l.server.close();
    // Stopped by a freeze (zoopa freeze stops the proxy): the held clients get the
    // maintenance page rather than a closed connection. Answers being written finish.
    if (reason === 'signal' && !this.maintenanceOnly && this.admission.frozen(false)) for (const c of this.conns.held()) this.maintenance.serve(c);
    await this.maintenance.drained(2 * MAINTENANCE_PEEK_MS);
    this.conns.releaseAll();
    if (reason === 'idle') this.stack.markAsleep();
    this.state.finish();
    // The bytes this proxy moved join the stack's totals (src/ondemand/stats.ts), once, at exit.
    const kept = this.maintenanceOnly ? null : recordProxyBytes(this.settings.stack, this.traffic.bytesIn, this.traffic.bytesOut, this.deps.env);
    if (kept) this.log.warn(`cannot record on-demand counters: ${kept.message}`);
    this.resolveDone(reason);
  }

  snapshot(): ProxyState {
    return snapshotOf(this.settings.stack, this.stack, this.conns.size, this.traffic, this.idle);
  }
}
