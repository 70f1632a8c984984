/**
 * Where the proxy sends connections: `host:port` (IPv4, `[IPv6]:port`, a host
 * name) or an absolute unix socket path. Parsing throws an InputError naming the
 * env var or flag the text came from; `connectOptions` turns a parsed upstream
 * into `net.connect` options.
 */
import net from 'node:net';
import path from 'node:path';
import { InputError } from '../errors.js';

export type Upstream =
  | { kind: 'tcp'; host: string; port: number; text: string }
  | { kind: 'unix'; path: string; text: string };

export const UPSTREAM_HINT = 'write host:port (127.0.0.1:8080, [::1]:8080, app.local:8080) or an absolute unix socket path (/run/user/1000/app.sock)';
/* A bare port (8080) means 127.0.0.1:8080, as in zoopa.yaml (src/ondemand/config.ts). */

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Parse upstream text; `key` names where it came from (ZOOPA_UPSTREAM, --upstream). */
export function parseUpstream(text: string, key: string): Upstream {
  const t = text.trim();
  const bad = (why: string): InputError =>
    new InputError('ZOOPA_BAD_UPSTREAM', `${key}=${JSON.stringify(text)} is not a valid upstream: ${why}`, { key, value: text, hint: UPSTREAM_HINT });
  if (t === '') throw bad('it is empty');
  if (/^\d{1,5}$/.test(t)) return parseUpstream(`127.0.0.1:${t}`, key); // a bare port, as zoopa.yaml allows
  if (t.startsWith('/')) {
    if (t.includes('\0')) throw bad('the path contains a NUL byte');
    return { kind: 'unix', path: path.normalize(t), text: t };
  }
  let host: string;
  let portText: string;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0 || t[close + 1] !== ':') throw bad('an IPv6 address needs the form [address]:port');
    host = t.slice(1, close);
    portText = t.slice(close + 2);
    if (net.isIPv6(host) === false) throw bad(`${host} is not an IPv6 address`);
  } else {
    const colon = t.lastIndexOf(':');
    if (colon < 0) throw bad(t.includes('/') ? 'a unix socket path must be absolute' : 'the port is missing');
    host = t.slice(0, colon);
    portText = t.slice(colon + 1);
    if (host.includes(':')) throw bad('write an IPv6 address in brackets: [address]:port');
    if (!net.isIPv4(host) && !HOSTNAME_RE.test(host)) throw bad(`${JSON.stringify(host)} is neither an IPv4 address nor a host name`);
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad(`the port ${JSON.stringify(portText)} is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(`the port ${port} is outside 1-65535`);
  return { kind: 'tcp', host, port, text: t };
}

/** Options for net.connect (merged with the caller's socket options). */
export function connectOptions(u: Upstream): net.NetConnectOpts {
  return u.kind === 'unix' ? { path: u.path } : { host: u.host, port: u.port };
}

export function describeUpstream(u: Upstream): string {
  return u.text;
}
