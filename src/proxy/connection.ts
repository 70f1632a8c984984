/**
 * The data path: one client connection and its upstream connection, with one
 * release path (like systemd's socket-proxyd.c `struct Connection` and
 * connection_free()).
 *
 * upstream → client (responses, downloads: the bulk direction) reads with
 * `onread` into a buffer owned by the connection and writes a view of it to the
 * client without copying. A write that completes at once (the usual case) leaves
 * the buffer free for the next read. One still in flight (the client's socket
 * buffer was full) keeps its buffer: reading goes on into another one, up to
 * MAX_IN_FLIGHT buffers, then stops until writes complete (their callbacks
 * resume it). No allocation per chunk, a bounded amount of memory per
 * connection: backpressure is the kernel's socket buffers.
 *
 * client → upstream (requests, uploads) uses 'data' events with pause()/'drain'
 * (Node offers `onread` only for sockets it connects, not for accepted ones).
 * The client is accepted paused (pauseOnConnect) and resumed only once the
 * upstream is connected, so a held client's request waits in the kernel, not here.
 *
 * Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other once
 * everything read before it was written; the connection is released when both
 * sockets have closed, or at once on an error on either (which never reaches
 * another connection).
 *
 * Scout mode (while a stack wakes, see proxy.ts): a port forwarder such as
 * rootless podman's rootlessport accepts connections before the app inside
 * listens, then closes them (after ~190 ms of retrying). A scout connection
 * keeps what the client sent; if the upstream closes it before answering a
 * single byte, it connects again and sends the same bytes again, until the
 * upstream answers (or survives SCOUT_CONFIRM_MS without closing), which
 * confirms the stack is up. At most one attempt is ever in flight, so the app
 * sees the request once.
 */
import net from 'node:net';
import { connectOptions, type Upstream } from './upstream.js';

/** Counters shared by every connection of one proxy; read by the idle timer and the state file. */
export class Traffic {
  bytesIn = 0;
  bytesOut = 0;
  /** Date.now() of the last byte moved or connection opened/closed. */
  lastActivity = Date.now();
}

/**
 * upstream → client buffers. A connection starts with a small one and moves to
 * a big one when a read fills the small one (a response larger than 16 KiB,
 * a download), so many small connections cost little memory and bulk transfers
 * few syscalls. Buffers are pooled between connections.
 */
export const SMALL_BUFFER = 16 * 1024;
export const BIG_BUFFER = 256 * 1024;
/** Buffers of one connection whose writes to the client may be in flight at once. */
export const MAX_IN_FLIGHT = 2;

class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly max: number,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (this.free.length < this.max) this.free.push(b);
  }
}

const smallPool = new BufferPool(SMALL_BUFFER, 256);
const bigPool = new BufferPool(BIG_BUFFER, 8);

function giveBuffer(b: Buffer): void {
  (b.length === BIG_BUFFER ? bigPool : smallPool).give(b);
}

/** Errors from connect() that mean "nobody listens there (now)". */
const REFUSED = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/**
 * A scout attempt (or a silent probe, proxy.ts) still open after this long
 * counts as an answer: rootlessport without an app closes after ~190 ms.
 */
export const SCOUT_CONFIRM_MS = 300;
/** Pause before a scout connects again. */
export const SCOUT_RETRY_MS = 5;
/** A scout keeps at most this much of the client's data for sending again; beyond it, no retry. */
export const SCOUT_MAX_BYTES = 256 * 1024;

export interface ConnectionEvents {
  /** Released (both sockets closed); called exactly once. */
  onClose(c: Connection): void;
  /**
   * The upstream refused the connection before any byte moved. When given,
   * the client is left untouched (still paused) for another attach(); when
   * absent, the connection closes.
   */
  onRefused?(c: Connection, err: NodeJS.ErrnoException): void;
  /** A scout's upstream answered (or stayed open for SCOUT_CONFIRM_MS). */
  onConfirmed?(c: Connection): void;
}

export interface AttachOptions {
  /** Scout mode until this Date.now() deadline. */
  scoutUntil?: number;
}

interface Scout {
  until: number;
  /** Everything the client sent so far, for sending again. */
  chunks: Buffer[];
  bytes: number;
  /** The client's data outgrew SCOUT_MAX_BYTES: no more retries. */
  overflow: boolean;
  clientEnded: boolean;
  timer: NodeJS.Timeout | null;
  /** The next attempt is the last: after sending the kept bytes, a normal connection. */
  final: boolean;
}

export class Connection {
  readonly client: net.Socket;
  /** "addr:port" of a TCP client; undefined for unix socket clients. */
  readonly peer: string | undefined;
  /** The upstream of the last attach(). */
  target: Upstream | null = null;
  private upstream: net.Socket | null = null;
  private buf: Buffer | null = null;
  /** Handed to the upstream socket as its next read buffer (onread's buffer function), once. */
  private nextBuf: Buffer | undefined;
  /** Buffers whose writes to the client are in flight (oldest first), and the bytes written from each. */
  private inFlight: Buffer[] = [];
  private inFlightLen: number[] = [];
  /** Upstream reading stopped: MAX_IN_FLIGHT writes in flight. */
  private downPaused = false;
  /** Reads filled a small buffer: big buffers from now on. */
  private big = false;
  private connected = false;
  private clientWired = false;
  private released = false;
  private clientClosed = false;
  private upstreamClosed = false;
  private gotByte = false;
  private scout: Scout | null = null;
  private attempts = 0;

  constructor(
    client: net.Socket,
    private readonly traffic: Traffic,
    private readonly events: ConnectionEvents,
  ) {
    this.client = client;
    this.peer = client.remoteAddress ? `${client.remoteFamily === 'IPv6' ? `[${client.remoteAddress}]` : client.remoteAddress}:${client.remotePort}` : undefined;
    client.on('error', this.onError);
    client.once('close', this.onClientClose);
  }

  get closed(): boolean {
    return this.released;
  }

  /** Upstream connection attempts made as a scout (0 when never one). */
  get scoutAttempts(): number {
    return this.attempts;
  }

  /** Connect to the upstream and start moving bytes both ways. */
  attach(up: Upstream, opts: AttachOptions = {}): void {
    if (this.released) return;
    if (this.client.destroyed) {
      this.release();
      return;
    }
    this.target = up;
    if (opts.scoutUntil !== undefined && !this.gotByte) {
      this.scout = { until: opts.scoutUntil, chunks: [], bytes: 0, overflow: false, clientEnded: false, timer: null, final: false };
    }
    this.connectUpstream();
  }

  private connectUpstream(): void {
    const up = this.target!;
    this.buf ??= smallPool.take();
    this.nextBuf = this.buf;
    this.connected = false;
    this.upstreamClosed = false;
    if (this.scout) this.attempts++;
    const upstream = net.connect({
      ...connectOptions(up),
      allowHalfOpen: true,
      noDelay: true,
      // Returning undefined from the buffer function keeps the current buffer (net.js onStreamRead).
      onread: { buffer: this.bufferFor as () => Uint8Array, callback: this.onUpstreamRead },
    });
    this.upstream = upstream;
    upstream.on('error', this.onUpstreamError);
    upstream.once('connect', this.onConnect);
    upstream.once('close', this.onUpstreamClose);
    upstream.on('end', this.onUpstreamEnd);
    upstream.on('drain', this.onUpstreamDrain);
  }

  /** The one release path: destroy both sides, give back the buffer, tell the owner. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.scout?.timer) clearTimeout(this.scout.timer);
    this.scout = null;
    this.client.destroy();
    this.upstream?.destroy();
    // Buffers still referenced by in-flight writes are left to the GC.
    if (this.buf) giveBuffer(this.buf);
    this.buf = null;
    this.inFlight = [];
    this.inFlightLen = [];
    this.events.onClose(this);
  }

  private readonly onConnect = (): void => {
    if (this.released) return;
    this.connected = true;
    this.traffic.lastActivity = Date.now();
    const scout = this.scout;
    if (scout) {
      // Sending again: everything the client sent before, and its FIN.
      for (const chunk of scout.chunks) this.upstream!.write(chunk);
      if (scout.clientEnded) this.upstream!.end();
      if (scout.final) this.scout = null;
      else scout.timer = setTimeout(this.confirmScout, SCOUT_CONFIRM_MS);
    }
    const client = this.client;
    if (!this.clientWired) {
      this.clientWired = true;
      client.on('data', this.onClientData);
      client.on('end', this.onClientEnd);
      client.on('drain', this.onClientDrain);
    }
    client.resume();
  };

  // client → upstream
  private readonly onClientData = (chunk: Buffer): void => {
    const t = this.traffic;
    t.bytesIn += chunk.length;
    t.lastActivity = Date.now();
    const scout = this.scout;
    if (scout && !scout.overflow) {
      scout.bytes += chunk.length;
      if (scout.bytes > SCOUT_MAX_BYTES) {
        scout.overflow = true;
        scout.chunks = [];
      } else {
        scout.chunks.push(chunk);
      }
    }
    if (!this.connected) {
      // Between two scout attempts: kept above, sent on the next connect.
      this.client.pause();
      return;
    }
    if (!this.upstream!.write(chunk)) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    if (!this.released) this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    // The client shut its write side: pass the FIN on once everything before it is written.
    if (this.scout) this.scout.clientEnded = true;
    if (this.connected) this.upstream?.end();
  };

  // upstream → client
  /** onread's buffer function: called at connect and after every read; undefined keeps the current buffer. */
  private readonly bufferFor = (): Buffer | undefined => {
    const b = this.nextBuf;
    this.nextBuf = undefined;
    return b;
  };

  private readonly onUpstreamRead = (n: number, buf: Uint8Array): boolean => {
    if (this.released) return false;
    if (!this.gotByte) {
      this.gotByte = true;
      if (this.scout) this.confirmScout();
    }
    const t = this.traffic;
    t.bytesOut += n;
    t.lastActivity = Date.now();
    const client = this.client;
    const b = buf as Buffer;
    client.write(b.subarray(0, n), this.onDownWritten);
    const upgrade = !this.big && n === b.length; // filled the small buffer: more is coming
    if (upgrade) this.big = true;
    if (client.writableLength === 0) {
      // Written to the kernel already: b is free again.
      if (upgrade) {
        smallPool.give(b);
        this.buf = this.nextBuf = bigPool.take();
      }
      return true;
    }
    // b is in flight: read on into another buffer.
    this.inFlight.push(b);
    this.inFlightLen.push(n);
    this.buf = this.nextBuf = this.big ? bigPool.take() : smallPool.take();
    if (this.inFlight.length < MAX_IN_FLIGHT) return true;
    this.downPaused = true;
    return false; // stop reading until a write completes
  };

  /** After each write to the client: give back the buffers whose bytes are all written; resume reading. */
  private readonly onDownWritten = (err?: Error | null): void => {
    if (this.released || err || this.inFlight.length === 0) return;
    // Writes complete in order: the newest buffers hold the bytes still pending.
    const pending = this.client.writableLength;
    let keep = 0;
    for (let i = this.inFlight.length - 1, sum = 0; i >= 0 && sum < pending; i--, keep++) sum += this.inFlightLen[i]!;
    const done = this.inFlight.length - keep;
    if (done === 0) return;
    for (let i = 0; i < done; i++) giveBuffer(this.inFlight[i]!);
    this.inFlight.splice(0, done);
    this.inFlightLen.splice(0, done);
    if (this.downPaused) {
      this.downPaused = false;
      this.upstream?.resume();
    }
  };

  private readonly onClientDrain = (): void => {
    // writableLength reached 0; normally onDownWritten has seen it already.
    this.onDownWritten();
  };

  /** Stop scouting (the stack was confirmed some other way): a normal connection from now on. */
  endScout(): void {
    const scout = this.scout;
    if (!scout) return;
    if (scout.timer) clearTimeout(scout.timer);
    scout.timer = null;
    if (this.connected) this.scout = null;
    else scout.final = true; // between two attempts: the next one still sends the kept bytes, then is final
  }

  /** The scout's upstream answered, or stayed open long enough: a normal connection from now on. */
  private readonly confirmScout = (): void => {
    const scout = this.scout;
    if (!scout || this.released) return;
    if (scout.timer) clearTimeout(scout.timer);
    this.scout = null;
    this.events.onConfirmed?.(this);
  };

  /** A scout's upstream closed or failed before answering: connect again (or give up). */
  private scoutRetry(): void {
    const scout = this.scout!;
    if (scout.timer) clearTimeout(scout.timer);
    scout.timer = null;
    const old = this.upstream;
    if (old) {
      old.off('error', this.onUpstreamError);
      old.off('connect', this.onConnect);
      old.off('close', this.onUpstreamClose);
      old.off('end', this.onUpstreamEnd);
      old.off('drain', this.onUpstreamDrain);
      old.on('error', () => undefined);
      old.destroy();
    }
    this.upstream = null;
    this.connected = false;
    const nothingToSend = scout.clientEnded && scout.bytes === 0; // the client left without a word
    if (scout.overflow || nothingToSend || Date.now() >= scout.until || this.client.destroyed) {
      this.release();
      return;
    }
    this.client.pause();
    setTimeout(() => {
      if (!this.released) this.connectUpstream();
    }, SCOUT_RETRY_MS);
  }

  private readonly onUpstreamEnd = (): void => {
    if (this.scout && !this.gotByte) {
      this.scoutRetry();
      return;
    }
    this.client.end();
  };

  private readonly onUpstreamError = (err: NodeJS.ErrnoException): void => {
    if (this.scout && !this.gotByte && !this.released) {
      this.scoutRetry();
      return;
    }
    if (!this.connected && !this.released && this.events.onRefused && err.code && REFUSED.has(err.code)) {
      const up = this.upstream!;
      up.off('close', this.onUpstreamClose);
      up.destroy();
      this.upstream = null;
      this.events.onRefused(this, err);
      return;
    }
    this.release();
  };

  private readonly onError = (): void => {
    this.release();
  };

  private readonly onClientClose = (): void => {
    this.clientClosed = true;
    if (!this.connected || this.upstreamClosed) this.release();
  };

  private readonly onUpstreamClose = (): void => {
    this.upstreamClosed = true;
    if (this.scout && !this.gotByte && !this.released) {
      this.scoutRetry();
      return;
    }
    if (this.clientClosed) this.release();
    else if (!this.connected) this.release();
  };
}
