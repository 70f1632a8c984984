/**
 * Addresses of llama services: paths expanded, listen hosts compared, the
 * on-demand proxy's upstream for a service, loopback ports of stacks' upstreams.
 */
import path from 'node:path';
import { homeDir } from '../paths.js';

/** `~` and `~/x` → home; relative → against the stacks root. */
export function expandPath(p: string, root: string, env: NodeJS.ProcessEnv): string {
  if (p === '~') return homeDir(env);
  if (p.startsWith('~/')) return path.join(homeDir(env), p.slice(2));
  return path.resolve(root, p);
}

/** Hosts a listener binds, normalised for overlap checks: '*' is every address. */
export function hostSet(host: string): string[] {
  return host.split(',').map((h) => {
    const t = h.trim().replace(/^\[(.*)\]$/, '$1');
    if (t === '' || t === '0.0.0.0' || t === '::') return '*';
    if (t === 'localhost') return '127.0.0.1';
    return t;
  });
}

export function isUnixSocketHost(host: string): boolean {
  return host.trim().endsWith('.sock');
}

export function overlaps(a: string[], b: string[]): boolean {
  return a.some((x) => b.some((y) => x === '*' || y === '*' || x === y));
}

/** The address the on-demand proxy dials for a service listening on host:port. */
export function upstreamFor(host: string, port: number): string {
  if (isUnixSocketHost(host)) return host.trim();
  const first = hostSet(host)[0] ?? '127.0.0.1';
  const h = first === '*' ? '127.0.0.1' : first;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** A stack's on-demand upstream as a loopback TCP port, or undefined when it is not one. */
export function loopbackPort(upstream: string): { host: string; port: number } | undefined {
  const t = upstream.trim();
  let m = /^(\d+)$/.exec(t);
  if (m) return { host: '127.0.0.1', port: Number(m[1]) };
  m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(t);
  if (m) return { host: m[1] === '[::1]' ? '::1' : '127.0.0.1', port: Number(m[2]) };
  return undefined;
}

