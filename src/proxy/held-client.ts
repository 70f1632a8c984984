/**
 * What the proxy may do with a held client before it is proxied (the waiting
 * page, waitpage.ts): peek at its first bytes without consuming them, or answer
 * it with the proxy's own page. Owned by its Connection (connection.ts), which
 * decides when either is allowed.
 */
import type net from 'node:net';

export class HeldClient {
  /** peek()'s data listener while it waits for the first chunk. */
  private peeking: ((chunk: Buffer) => void) | null = null;
  /** peek()'s end listener: the client shut its side before sending anything. */
  private ending: (() => void) | null = null;

  constructor(private readonly client: net.Socket) {}

  /**
   * Read the first chunk and put it back (unshift) for whoever reads next: a
   * connection that goes on to be proxied sends exactly the bytes the client sent.
   * `gone`: the client shut its side without sending a byte (it left; nobody
   * would see that end later, the stream has emitted it).
   */
  peek(cb: (first: Buffer) => void, gone: () => void): void {
    if (this.peeking) return;
    const onData = (chunk: Buffer): void => {
      this.endPeek();
      this.client.unshift(chunk);
      cb(chunk);
    };
    const onEnd = (): void => {
      this.endPeek();
      gone();
    };
    this.peeking = onData;
    this.ending = onEnd;
    this.client.on('data', onData);
    this.client.once('end', onEnd);
    this.client.resume();
  }

  /** End a peek still waiting for the first chunk (nothing was read). */
  endPeek(): void {
    if (!this.peeking) return;
    this.client.off('data', this.peeking);
    if (this.ending) this.client.off('end', this.ending);
    this.peeking = null;
    this.ending = null;
    // Paused before anything is put back: a flowing stream would emit it to nobody.
    this.client.pause();
  }

  /** The connection is being released (its socket destroyed): nothing to undo. */
  forget(): void {
    this.peeking = null;
    this.ending = null;
  }

  /** Answer with `response`, read and drop the rest of the request, call `done` once it is written. */
  answer(response: string, done: () => void): void {
    this.endPeek();
    this.client.on('data', () => undefined);
    this.client.resume();
    this.client.once('finish', done);
    this.client.end(response);
  }
}
