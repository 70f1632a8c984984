/**
 * Giving up on a held connection (its stack failed to wake, or is known to
 * fail): an HTTP client (its first bytes a request line) gets `502 Bad Gateway`
 * with a short text naming the stack; anything else is closed. Only the first
 * chunk is read, which nothing else will read: the connection is not proxied.
 */
import type { Connection } from './connection.js';

/** A request line: the first bytes of an HTTP/1 client. */
const HTTP_REQUEST = /^[A-Z]{3,10} \S+ HTTP\/1\.[01]\r?\n/;
/** How long to wait for a held client's first bytes (nginx sends them at once). */
const PEEK_MS = 500;

/** `first`: the client's first bytes when they were read already (a scout's, Connection.dropScout()). */
export function refuse(c: Connection, text: string, first?: Buffer | null): void {
  c.held = false;
  const client = c.client;
  if (c.closed) return;
  if (client.destroyed || (c.reading && !first)) return c.release();
  let timer: NodeJS.Timeout | undefined;
  const answer = (chunk?: Buffer): void => {
    clearTimeout(timer);
    client.off('data', answer);
    client.pause();
    if (c.closed) return;
    if (!chunk || !HTTP_REQUEST.test(chunk.subarray(0, 512).toString('latin1'))) return c.release();
    const body = `${text}\n`;
    client.once('finish', () => c.release());
    client.end(
      `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  };
  if (first) return answer(first);
  timer = setTimeout(answer, PEEK_MS);
  client.on('data', answer);
  client.resume();
}

/** The scout of a failed wake: answered like a held connection when nothing came back to it yet, else closed. */
export function refuseScout(c: Connection, text: string): void {
  const first = c.dropScout();
  if (first) refuse(c, text, first);
  else c.release();
}
