/**
 * The proxy's listening sockets: systemd's (LISTEN_FDS, each mapped to its
 * upstream by its FileDescriptorName) or one it binds itself (`--listen`).
 * Accepted sockets arrive paused (pauseOnConnect): nothing is read before the
 * connection knows where it goes.
 */
import net from 'node:net';
import { InputError } from '../errors.js';
import type { Logger } from '../log.js';
import { listenerEnvKey, ondemandSocketUnit } from '../names.js';
import type { ProxySettings } from './config.js';
import { listenOnFd, listenOnSpec, type ListenFd } from './listen-fds.js';
import type { Upstream } from './upstream.js';

export interface Listener {
  server: net.Server;
  /** LISTEN_FDNAMES entry, or "listen". */
  name: string;
  upstream: Upstream;
}

/** No socket from systemd and no --listen: an InputError before anything starts. */
export function requireSockets(settings: ProxySettings, fds: readonly ListenFd[]): void {
  if (settings.listen !== null || fds.length > 0) return;
  throw new InputError('ZOOPA_NO_SOCKET', `no socket to listen on for stack ${settings.stack}: systemd passed none (LISTEN_FDS) and --listen is not given`, {
    key: '--listen',
    hint: `start it through ${ondemandSocketUnit(settings.stack)} (systemd passes the socket), or pass --listen PATH|HOST:PORT`,
  });
}

/** Which upstream a listening fd named `name` forwards to. */
export function upstreamForFd(settings: ProxySettings, name: string): Upstream {
  return settings.namedUpstreams.get(listenerEnvKey(name)) ?? settings.upstream;
}

/** Every upstream the proxy may forward to, the main one first (the readiness targets). */
export function allUpstreams(settings: ProxySettings, fds: readonly ListenFd[]): Upstream[] {
  const upstreams = [settings.upstream];
  for (const fd of settings.listen ? [] : fds) {
    const u = upstreamForFd(settings, fd.name);
    if (!upstreams.some((x) => x.text === u.text)) upstreams.push(u);
  }
  return upstreams;
}

function newServer(log: Logger): net.Server {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
  server.on('error', (e: NodeJS.ErrnoException) => log.warn(`listener: ${e.message}${e.code === 'EMFILE' || e.code === 'ENFILE' ? ' (out of file descriptors; accepting again as connections close)' : ''}`));
  return server;
}

/** Listen on everything, or close what was opened and throw. */
export async function openListeners(settings: ProxySettings, fds: readonly ListenFd[], log: Logger): Promise<Listener[]> {
  const out: Listener[] = [];
  try {
    if (settings.listen) {
      out.push({ server: await listenOnSpec(newServer(log), settings.listen), name: 'listen', upstream: settings.upstream });
    } else {
      for (const fd of fds) out.push({ server: await listenOnFd(newServer(log), fd), name: fd.name, upstream: upstreamForFd(settings, fd.name) });
    }
  } catch (e) {
    for (const l of out) l.server.close();
    throw e;
  }
  return out;
}

export function describeListener(l: Listener): string {
  if (l.name !== 'listen') return `fd ${l.name}`;
  const a = l.server.address();
  if (a === null) return '?';
  if (typeof a === 'string') return a;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
