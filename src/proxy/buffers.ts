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

export const smallPool = new BufferPool(SMALL_BUFFER, 256);
export const bigPool = new BufferPool(BIG_BUFFER, 8);

export function giveBuffer(b: Buffer): void {
  (b.length === BIG_BUFFER ? bigPool : smallPool).give(b);
}

/** Buffers of one connection whose writes to the client may be in flight at once. */
export const MAX_IN_FLIGHT = 2;
