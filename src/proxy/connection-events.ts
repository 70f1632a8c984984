/** What a Connection (connection.ts) tells its owner, and which connect errors count as a refusal. */
/** Errors from connect() that mean "nobody listens there (now)". */
export const REFUSED: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** C: the connection class (connection.ts), a parameter so this file imports nothing. */
export interface ConnectionEvents<C> {
  /** Released (both sockets closed); called exactly once. */
  onClose(c: C): void;
  /** The upstream refused before any byte moved: the client is left paused for another attach() (absent: it closes). */
  onRefused?(c: C, err: NodeJS.ErrnoException): void;
  /** A scout's upstream answered (or stayed open for SCOUT_CONFIRM_MS). */
  onConfirmed?(c: C): void;
}
