/**
 * A raw exchange over a unix socket: send bytes, collect the reply (as latin1,
 * byte for byte) until the other side closes or resets. Rejects when it is
 * still open after `timeoutMs`.
 */
import net from 'node:net';

export function exchange(sockPath: string, bytes: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(sockPath);
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${sockPath}: still open after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    sock.on('error', () => undefined); // a reset ends it like a close
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    sock.on('connect', () => sock.write(bytes));
  });
}
