/**
 * What a held connection's first bytes are (read once and put back by
 * Connection.peek(), so a proxied connection sees them unchanged): an HTTP/1
 * request, a browser's navigation, a poll of the waiting page's readiness
 * endpoint, or something else. Anything not complete and plain in the first
 * chunk is `other`: it is held, as every connection was before.
 */

/** The reserved path of the proxy's own readiness answer (the waiting page polls it). */
export const READY_PATH = '/.zoopa/ready';

export type PeekKind =
  /** GET/HEAD asking for text/html, no Upgrade, no body: a browser's page load. */
  | 'navigation'
  /** GET of READY_PATH. */
  | 'ready-poll'
  /** Any other complete HTTP/1 request head. */
  | 'http'
  /** Not HTTP, or not complete in the first chunk. */
  | 'other';

export interface Peeked {
  kind: PeekKind;
  /** HEAD: answers carry no body. */
  head: boolean;
}

const REQUEST_LINE = /^([A-Z]{3,10}) (\S+) HTTP\/1\.[01]$/;
/** Only this much of the first chunk is looked at. */
const PEEK_LIMIT = 16 * 1024;

export function classify(first: Buffer): Peeked {
  const text = first.subarray(0, PEEK_LIMIT).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const other: Peeked = { kind: 'other', head: false };
  if (end < 0) return other;
  const lines = text.slice(0, end).split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m) return other;
  const method = m[1]!;
  const target = m[2]!;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return other;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const head = method === 'HEAD';
  const bodyless = !headers.has('transfer-encoding') && (headers.get('content-length') ?? '0').trim() === '0';
  const plain = (method === 'GET' || head) && bodyless && !headers.has('upgrade');
  if (plain && method === 'GET' && target.split('?')[0] === READY_PATH) return { kind: 'ready-poll', head };
  if (plain && /\btext\/html\b/i.test(headers.get('accept') ?? '')) return { kind: 'navigation', head };
  return { kind: 'http', head };
}
