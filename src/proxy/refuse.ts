/**
 * Giving up on a held connection (its stack failed to wake, or is known to
 * fail): an HTTP client (its first bytes a request line) gets `502 Bad Gateway`
 * with a short text naming the stack (a browser's page load, with `errorPage`
 * set, gets waitpage.ts's error page: the stack and `zoopa status`, never the
 * cause); anything else is closed. Only the first chunk is read, which nothing
 * else will read: the connection is not proxied.
 */
import type { Connection } from './connection.js';
import { classify } from './http-peek.js';
import { errorPage, pageResponse } from './waitpage.js';

/** The error page for browsers (wait style auto/page): its title and the stack it names; `served` logs it. */
export interface ErrorPageOptions {
  title: string;
  stack: string;
  served: () => void;
}

/** A request line: the first bytes of an HTTP/1 client. */
const HTTP_REQUEST = /^[A-Z]{3,10} \S+ HTTP\/1\.[01]\r?\n/;
/** How long to wait for a held client's first bytes (nginx sends them at once). */
const PEEK_MS = 500;

/** `first`: the client's first bytes when they were read already (a scout's, Connection.dropScout()). */
export function refuse(c: Connection, text: string, first?: Buffer | null, page?: ErrorPageOptions | null): void {
  c.held = false;
  c.pagePending = false;
  c.endPeek();
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
    const peeked = page ? classify(chunk) : null;
    if (page && peeked?.kind === 'navigation') {
      page.served();
      client.once('finish', () => c.release());
      return void client.end(pageResponse('error', errorPage(page.title, page.stack), peeked.head));
    }
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
export function refuseScout(c: Connection, text: string, page?: ErrorPageOptions | null): void {
  const first = c.dropScout();
  if (first) refuse(c, text, first, page);
  else c.release();
}
