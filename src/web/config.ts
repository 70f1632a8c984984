/**
 * The `web` section of zoopa.yaml: where `zoopa web` (status page, /metrics,
 * /api/status) listens. Nothing listens unless the section is there.
 *
 *   web:
 *     listen: 127.0.0.1:9330        # host:port, [v6]:port, or an absolute unix socket path (for nginx)
 *     idle_exit: 60s                # the socket-activated service exits after this long without a request (0: never)
 */
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { duration } from '../config/types.js';

export const DEFAULT_WEB_LISTEN = '127.0.0.1:9330';
export const DEFAULT_WEB_IDLE_EXIT = 60;
export const WEB_LISTEN_HINT = 'write host:port (127.0.0.1:9330, [::1]:9330, 0.0.0.0:9330) or an absolute unix socket path (/run/user/1000/zoopa-web.sock)';

export type WebListen = { kind: 'tcp'; host: string; port: number; text: string } | { kind: 'unix'; path: string; text: string };

/** Parses web.listen; returns a reason string when it is not valid. */
export function parseWebListen(text: string): WebListen | string {
  const t = text.trim();
  if (t.startsWith('/')) {
    if (path.normalize(t) !== t || t.endsWith('/')) return 'a socket path must be normalised and name a file';
    if (/[\s\0]/.test(t)) return 'a socket path must not contain white space';
    if (Buffer.byteLength(t) > 107) return 'a unix socket path is at most 107 bytes';
    return { kind: 'unix', path: t, text: t };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(t);
  if (!m) return 'not host:port or an absolute path';
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && net.isIPv6(host) === false) return `${host} is not an IPv6 address`;
  if (m[2] !== undefined && !net.isIPv4(host) && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) return `${host} is not an address or host name`;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is out of range 1-65535`;
  return { kind: 'tcp', host, port, text: m[1] !== undefined ? `[${host}]:${port}` : `${host}:${port}` };
}

export const webListen = z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().min(1)).transform((v, ctx) => {
  const r = parseWebListen(v);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: `${r}; ${WEB_LISTEN_HINT}` });
    return z.NEVER;
  }
  return r.text;
});

export const webSchema = z.strictObject({
  listen: webListen.default(DEFAULT_WEB_LISTEN),
  idle_exit: duration.default(DEFAULT_WEB_IDLE_EXIT),
});
export type WebConfig = z.output<typeof webSchema>;
