/**
 * The data path: one client connection and its upstream connection, with one
 * release path, carrying everything about itself (held, refusals, scout mode),
 * like systemd's socket-proxyd.c `struct Connection` and connection_free(). Scout
 * mode (while a stack wakes): see scout.ts.
 *
 * upstream → client (the bulk direction) reads with `onread` into a buffer
 * owned by the connection and writes a view of it to the client without
 * copying. A write still in flight keeps its buffer: reading goes on into
 * another one, up to MAX_IN_FLIGHT, then stops until writes complete. No
 * allocation per chunk; backpressure is the kernel's socket buffers.
 *
 * client → upstream uses 'data' events with pause()/'drain'. The client is
 * accepted paused (pauseOnConnect) and resumed only once the upstream is
 * connected, so a held client's bytes wait in the kernel, not here.
 *
 * Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other once
 * everything read before it was written; released when both sockets closed, or
 * at once on an error on either.
 */
import net from 'node:net';
import { bigPool, giveBuffer, MAX_IN_FLIGHT, smallPool } from './buffers.js';
import { REFUSED, type ConnectionEvents } from './connection-events.js';
import { HeldClient } from './held-client.js';
import { SCOUT_CONFIRM_MS, SCOUT_MAX_BYTES, SCOUT_RETRY_MS, type ScoutState } from './scout.js';
import type { Traffic } from './traffic.js';
import { connectOptions, type Upstream } from './upstream.js';

export class Connection {
  readonly client: net.Socket;
  /** "addr:port" of a TCP client; undefined for unix socket clients. */
  readonly peer: string | undefined;
  /** The upstream of the last attach() or hold(). */
  target: Upstream | null = null;
  /** Held: accepted, not read, waiting for the stack to wake (then attach(target)). */
  held = false;
  /** Times the upstream refused this connection before any byte moved. */
  refusals = 0;
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
  private scout: ScoutState | null = null;
  private attempts = 0;
  /** Peeking at and answering a held client (the waiting page). */
  private readonly heldClient: HeldClient;
  /** When hold() was called (Date.now()). */
  heldAt = 0;
  /** Marked for the waiting page (waitpage.ts): not taken as a scout. */
  pagePending = false;

  constructor(
    client: net.Socket,
    private readonly traffic: Traffic,
    private readonly events: ConnectionEvents<Connection>,
    /** Close an attached connection silent (no byte either way) this long; null: never. */
    private readonly idleTimeoutMs: number | null = null,
  ) {
    this.client = client;
    this.heldClient = new HeldClient(client);
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

  /** Wait for the stack: nothing is read (the client's bytes stay in the kernel) until attach(). */
  hold(up: Upstream): void {
    this.target = up;
    if (!this.held) this.heldAt = Date.now();
    this.held = true;
  }

  /** Peek at a held client's first bytes without consuming them (held-client.ts); attach() and release() end it. */
  peek(cb: (first: Buffer) => void): void {
    if (!this.released && !this.clientWired) this.heldClient.peek(cb, () => this.release()); // it left without a word
  }

  endPeek(): void {
    this.heldClient.endPeek();
  }

  /** Answer a held client with `response` (the proxy's own page), then close. */
  answer(response: string): void {
    if (this.released || this.clientWired) return;
    this.held = false;
    this.pagePending = false;
    this.heldClient.answer(response, () => this.release());
  }

  /** Connect to the upstream and start moving bytes both ways; `scoutUntil`: scout mode until this Date.now() deadline. */
  attach(up: Upstream, opts: { scoutUntil?: number } = {}): void {
    this.held = false;
    this.pagePending = false;
    this.endPeek();
    if (this.released) return;
    if (this.client.destroyed) {
      this.release();
      return;
    }
    this.target = up;
    if (opts.scoutUntil !== undefined && !this.gotByte) {
      this.scout = { until: opts.scoutUntil, chunks: [], bytes: 0, full: false, clientEnded: false, timer: null, final: false };
    }
    this.connectUpstream();
  }

  /** The client's socket is being read (an attach happened). */
  get reading(): boolean {
    return this.clientWired;
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
    this.held = false;
    this.heldClient.forget();
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
    this.traffic.touch();
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
      if (this.idleTimeoutMs !== null) client.setTimeout(this.idleTimeoutMs, this.onIdleTimeout);
      client.on('data', this.onClientData);
      client.on('end', this.onClientEnd);
      client.on('drain', this.onClientDrain);
    }
    if (!this.scout?.full) client.resume();
  };

  // client → upstream
  private readonly onClientData = (chunk: Buffer): void => {
    const t = this.traffic;
    t.bytesIn += chunk.length;
    t.touch();
    const scout = this.scout;
    if (scout) {
      // Kept for sending again; read no more than SCOUT_MAX_BYTES until confirmed.
      scout.chunks.push(chunk);
      scout.bytes += chunk.length;
      if (scout.bytes >= SCOUT_MAX_BYTES) scout.full = true;
    }
    if (!this.connected) {
      // Between two scout attempts: kept above, sent on the next connect.
      this.client.pause();
      return;
    }
    if (!this.upstream!.write(chunk) || scout?.full) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    if (!this.released && !this.scout?.full) this.client.resume();
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
    t.touch();
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

  /**
   * The stack was confirmed some other way. The current attempt may still be a
   * forwarder's without the app: it stays a scout until that attempt answers or
   * stays open (confirmScout), or closes: then one more, final attempt.
   */
  endScout(): void {
    if (this.scout) this.scout.final = true;
  }

  /** The scout's upstream answered, or stayed open long enough: a normal connection from now on. */
  private readonly confirmScout = (): void => {
    const scout = this.scout;
    if (!scout || this.released) return;
    if (scout.timer) clearTimeout(scout.timer);
    this.scout = null;
    if (scout.full && this.connected) this.client.resume(); // read on (a full upstream pauses it again)
    this.events.onConfirmed?.(this);
  };

  /** A scout's upstream closed or failed before answering: connect again (or give up). */
  private scoutRetry(): void {
    const scout = this.scout!;
    this.dropUpstream();
    const nothingToSend = scout.clientEnded && scout.bytes === 0; // the client left without a word
    if (nothingToSend || Date.now() >= scout.until || this.client.destroyed) {
      this.release();
      return;
    }
    this.client.pause();
    setTimeout(() => {
      if (!this.released && this.scout) this.connectUpstream();
    }, SCOUT_RETRY_MS);
  }

  /** Detach and destroy the upstream attempt of a scout (no event of it reaches this connection any more). */
  private dropUpstream(): void {
    if (this.scout?.timer) clearTimeout(this.scout.timer);
    if (this.scout) this.scout.timer = null;
    const old = this.upstream;
    if (old) {
      for (const [ev, fn] of [['error', this.onUpstreamError], ['connect', this.onConnect], ['close', this.onUpstreamClose], ['end', this.onUpstreamEnd], ['drain', this.onUpstreamDrain]] as const) old.off(ev, fn);
      old.on('error', () => undefined);
      old.destroy();
    }
    this.upstream = null;
    this.connected = false;
  }

  /**
   * The wake failed while this connection scouted and nothing came back: stop,
   * and return what the client sent (for refuse.ts's answer). null when it is
   * not scouting or the upstream already answered.
   */
  dropScout(): Buffer | null {
    const scout = this.scout;
    if (!scout || this.gotByte || this.released) return null;
    this.dropUpstream();
    this.scout = null;
    this.client.pause();
    return Buffer.concat(scout.chunks);
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
      this.refusals++;
      this.events.onRefused(this, err);
      return;
    }
    this.release();
  };

  private readonly onIdleTimeout = (): void => {
    if (!this.scout) this.release();
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
    if (this.clientClosed || !this.connected) this.release();
  };
}
