/**
 * File descriptors: at the limit (RLIMIT_NOFILE), accept() fails with EMFILE
 * and libuv, to keep the listening socket from spinning, accepts the pending
 * connections with a spare descriptor and closes them at once (uv__emfile_trick):
 * net.Server emits nothing, the clients see a reset, and nothing is logged.
 * Accepting goes on by itself once descriptors are free. Checked here: a
 * server with `ulimit -n 60` and 100 clients accepted 40 and libuv closed 60
 * silently; after 30 were closed, the next 10 were accepted.
 *
 * So the proxy never lets it come to that: it counts its descriptors (a client
 * socket and, once attached, its upstream: two per connection, plus what the
 * process had at the start and a reserve for probes and systemctl's pipes) and
 * closes a connection over the budget itself, with a log line. As connections
 * close, new ones are accepted again.
 */
import fs from 'node:fs';

/** Descriptors kept free for readiness probes, systemctl/podman pipes, the state file. */
export const FD_RESERVE = 64;

/** The soft RLIMIT_NOFILE of this process (from /proc/self/limits), or null when unknown/unlimited. */
export function openFilesLimit(): number | null {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    return Number.isFinite(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function openFiles(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return 16;
  }
}

export class FdBudget {
  /** Connections the proxy can carry with both sockets open; Infinity when the limit is unknown. */
  readonly maxConnections: number;

  constructor(readonly limit: number | null = openFilesLimit()) {
    this.maxConnections = limit === null ? Infinity : Math.max(1, Math.floor((limit - openFiles() - FD_RESERVE) / 2));
  }

  /** May one more connection be accepted with `open` connections already? */
  allows(open: number): boolean {
    return open < this.maxConnections;
  }
}
