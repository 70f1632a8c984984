/**
 * The data path: one client connection and its upstream connection, with one
 * release path (like systemd's socket-proxyd.c `struct Connection` and
 * connection_free()).
 *
 * upstream → client (responses, downloads: the bulk direction) reads with
 * `onread` into one buffer owned by the connection and writes a view of it to
 * the client without copying. While that write is still in flight (the client's
 * socket buffer was full) the buffer must not be read into again, so the
 * callback returns false, which stops reading; the write's callback resumes it.
 * No allocation per chunk, no queue growing in our memory: backpressure is the
 * kernel's socket buffers.
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

export interface ConnectionEvents {
  /** Released (both sockets closed); called exactly once. */
  onClose(c: Connection): void;
  /**
   * The upstream refused the connection before any byte moved. When given,
   * the client is left untouched (still paused) for another attach(); when
   * absent, the connection closes.
   */
  onRefused?(c: Connection, err: NodeJS.ErrnoException): void;
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
  /** A buffer whose write to the client is in flight; upstream reading is stopped until it completes. */
  private inFlight: Buffer | null = null;
  private connected = false;
  private released = false;
  private clientClosed = false;
  private upstreamClosed = false;

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

  /** Connect to the upstream and start moving bytes both ways. */
  attach(up: Upstream): void {
    if (this.released) return;
    if (this.client.destroyed) {
      this.release();
      return;
    }
    this.target = up;
    this.buf ??= smallPool.take();
    this.nextBuf = this.buf;
    this.connected = false;
    this.upstreamClosed = false;
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
    this.client.destroy();
    this.upstream?.destroy();
    // A buffer still referenced by an in-flight write is left to the GC.
    if (this.buf && this.buf !== this.inFlight) giveBuffer(this.buf);
    this.buf = null;
    this.events.onClose(this);
  }

  private readonly onConnect = (): void => {
    if (this.released) return;
    this.connected = true;
    this.traffic.lastActivity = Date.now();
    const client = this.client;
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('drain', this.onClientDrain);
    client.resume();
  };

  // client → upstream
  private readonly onClientData = (chunk: Buffer): void => {
    const t = this.traffic;
    t.bytesIn += chunk.length;
    t.lastActivity = Date.now();
    if (!this.upstream!.write(chunk)) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    if (!this.released) this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    // The client shut its write side: pass the FIN on once everything before it is written.
    this.upstream?.end();
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
    const t = this.traffic;
    t.bytesOut += n;
    t.lastActivity = Date.now();
    const client = this.client;
    client.write((buf as Buffer).subarray(0, n), this.onDownWritten);
    const busy = client.writableLength !== 0; // not yet all in the kernel: buf is still in use
    if (n === buf.length && buf.length === SMALL_BUFFER) {
      // Filled the small buffer: more is coming. Read into a big one from now on.
      if (!busy) smallPool.give(buf as Buffer);
      this.buf = this.nextBuf = bigPool.take();
    }
    if (!busy) return true;
    this.inFlight = buf as Buffer;
    return false; // stop reading until the write completes
  };

  private readonly onDownWritten = (err?: Error | null): void => {
    if (this.inFlight === null || this.released || err) return;
    if (this.client.writableLength !== 0) return;
    this.inFlight = null;
    this.upstream?.resume();
  };

  private readonly onClientDrain = (): void => {
    // writableLength reached 0; normally onDownWritten already resumed.
    this.onDownWritten();
  };

  private readonly onUpstreamEnd = (): void => {
    this.client.end();
  };

  private readonly onUpstreamError = (err: NodeJS.ErrnoException): void => {
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
    if (this.clientClosed) this.release();
    else if (!this.connected) this.release();
  };
}
