/**
 * The proxy's listening sockets: taken from systemd (socket activation, the
 * sd_listen_fds protocol) or bound by the proxy itself (`--listen`).
 *
 * systemd passes LISTEN_PID (must be our pid), LISTEN_FDS (count, starting at
 * fd 3) and LISTEN_FDNAMES (colon-separated names; FileDescriptorName= in the
 * .socket unit, else the socket unit's name). The vars are removed from the
 * environment once read so that children (systemctl, the veto command) do not
 * inherit them.
 */
import fs from 'node:fs';
import net from 'node:net';
import { InputError, StateError } from '../errors.js';
import type { ListenSpec } from './config.js';

export const SD_LISTEN_FDS_START = 3;

export interface ListenFd {
  fd: number;
  /** LISTEN_FDNAMES entry, or 'unknown' as sd_listen_fds_with_names() reports a missing one. */
  name: string;
}

/** Read and remove LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES. Empty when they are not for us. */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ListenFd[] {
  const pidText = env.LISTEN_PID;
  const countText = env.LISTEN_FDS;
  const namesText = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pidText === undefined || countText === undefined) return [];
  if (!/^\d+$/.test(pidText) || Number(pidText) !== pid) return [];
  if (!/^\d+$/.test(countText)) {
    throw new InputError('ZOOPA_BAD_LISTEN_FDS', `LISTEN_FDS=${JSON.stringify(countText)} is not a number`, {
      key: 'LISTEN_FDS',
      value: countText,
      hint: 'start zoopa proxy from a .socket unit, or pass --listen',
    });
  }
  const count = Number(countText);
  const names = namesText === undefined ? [] : namesText.split(':');
  const out: ListenFd[] = [];
  for (let i = 0; i < count; i++) out.push({ fd: SD_LISTEN_FDS_START + i, name: names[i] || 'unknown' });
  return out;
}

function listening(server: net.Server, arg: net.ListenOptions | { fd: number }): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(arg, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/** Start listening on a socket systemd passed us. */
export async function listenOnFd(server: net.Server, lfd: ListenFd): Promise<net.Server> {
  try {
    return await listening(server, { fd: lfd.fd });
  } catch (e) {
    throw new StateError('ZOOPA_LISTEN_FD', `cannot listen on fd ${lfd.fd} (${lfd.name}) passed by systemd: ${(e as Error).message}`, {
      cause: e,
      hint: 'the .socket unit must use ListenStream= (a stream socket) with Accept=no',
    });
  }
}

/** `--listen`: bind a unix socket path (replacing a stale socket file) or HOST:PORT. */
export async function listenOnSpec(server: net.Server, spec: ListenSpec): Promise<net.Server> {
  try {
    if (spec.kind === 'unix') {
      await removeStaleSocket(spec.path);
      return await listening(server, { path: spec.path });
    }
    return await listening(server, { host: spec.host, port: spec.port });
  } catch (e) {
    const where = spec.kind === 'unix' ? spec.path : `${spec.host}:${spec.port}`;
    throw new StateError('ZOOPA_LISTEN', `cannot listen on ${where}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A leftover socket file from an earlier run makes bind() fail: remove it, unless
 * something still listens there. Anything that is not a socket is left alone.
 */
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect({ path: p });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error('another process is listening on it');
  fs.unlinkSync(p);
}
