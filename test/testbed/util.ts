/**
 * Small helpers shared by the test bed modules: polling, free ports, PATH lookup.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Tests of root-only parts (rootful podman, sudoers) fail, never skip, when not run as
 * root: a missing prerequisite is a failure, in CI and on a developer's machine alike.
 */
export function requireRoot(what: string): void {
  if (!isRoot()) throw new Error(`needs root (${what}): run the integration tests as root, e.g. "sudo npm test"`);
}

export interface WaitForOptions {
  /** Deadline; on expiry waitFor throws "timed out waiting for <what>". Default 30 s. */
  timeoutMs?: number;
  /** Pause between polls. Default 50 ms. */
  intervalMs?: number;
  /** What is being waited for, for the error message. */
  what?: string;
}

/** Thrown from a waitFor callback to stop waiting at once (e.g. the awaited process died). */
export class WaitAborted extends Error {}

/**
 * Polls fn until it returns a truthy value, and returns that value. A throw from fn
 * counts as "not yet" (the last one is quoted on timeout), except WaitAborted, which
 * ends the wait at once. The timeout is a deadline
 * for a hung test, never something to assert on.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      if (e instanceof WaitAborted) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}${why}`, {
        cause: lastError,
      });
    }
    await sleep(intervalMs);
  }
}

export { freePort } from '../../src/podman/probe.js';

/** True when something accepts TCP connections on host:port. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const EXTRA_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable found on PATH (plus the sbin folders), or undefined. */
export function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...EXTRA_PATH];
  for (const dir of dirs) {
    const file = path.join(dir, cmd);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Best-effort recursive removal that retries briefly on EBUSY/ENOTEMPTY. */
export async function removeTree(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
      return;
    } catch (e) {
      if (attempt >= 10) throw e;
      await sleep(100);
    }
  }
}

/** Sanitises a label for use in file names: [a-z0-9-], at most `max` characters. */
export function slug(s: string, max = 16): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max);
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * GET (or another method) over a fresh connection that is closed afterwards (no keep-alive
 * pool to hold the test process open). `socketPath` talks HTTP over a unix socket.
 */
export function httpGet(
  url: string,
  opts: { method?: string; socketPath?: string; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', agent: false, socketPath: opts.socketPath, headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`GET ${url}: no response in time`)));
    req.on('error', reject);
    req.end();
  });
}
