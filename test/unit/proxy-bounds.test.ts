/**
 * The proxy's bounds, with the real `zoopa proxy` process (plain proxy mode:
 * `--stack-unit none --listen`, the same hold path the systemd mode uses) and
 * real sockets:
 *  - ZOOPA_MAX_HELD: connections beyond the cap are closed with one log line,
 *    the held ones are served once the upstream is up, and the proxy's memory
 *    stays bounded while held clients push 1 MB each (reading is paused: the
 *    bytes wait in the kernel);
 *  - the descriptor limit (prlimit --nofile): the excess is closed with a log
 *    line (not silently by libuv), the held ones are served, and new
 *    connections are accepted again once descriptors are free;
 *  - ZOOPA_CONN_IDLE_TIMEOUT closes an open but silent connection.
 * Waits have deadlines; nothing asserts on durations. Memory is measured
 * (VmRSS / VmHWM of the proxy process) and printed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { freePort, waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir, ZOOPA } from '../helpers/cli.js';

const MB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Child {
  proc: ChildProcess;
  sock: string;
  log: () => string;
}

/** `[prlimit --nofile=N:N] node bin/zoopa.js proxy bounds --listen SOCK --stack-unit none --upstream 127.0.0.1:PORT`. */
async function startChild(port: number, env: Record<string, string>, nofile?: number): Promise<Child> {
  const base = tmpDir('zoopa-proxy-bounds-');
  const sock = path.join(base, 'proxy.sock');
  const argv = [process.execPath, ZOOPA, 'proxy', 'bounds', '--listen', sock, '--stack-unit', 'none', '--upstream', `127.0.0.1:${port}`, '--start-timeout', '5m'];
  const full = nofile ? ['prlimit', `--nofile=${nofile}:${nofile}`, ...argv] : argv;
  const proc = spawn(full[0]!, full.slice(1), { env: { ...isolatedEnv(base), ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  proc.stderr!.on('data', (b: Buffer) => (text += b.toString()));
  cleanups.push(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    }
    fs.rmSync(base, { recursive: true, force: true });
  });
  await waitFor(() => text.includes('proxy for no unit'), { what: `the proxy to listen; stderr: ${text}` });
  return { proc, sock, log: () => text };
}

function memory(pid: number): { rssMb: number; hwmMb: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: Math.round(kb('VmRSS') / 102.4) / 10, hwmMb: Math.round(kb('VmHWM') / 102.4) / 10 };
}

/** An app that reads the whole request body and answers its length. */
function bodyApp(): http.Server {
  const app = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (b: Buffer) => (n += b.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
  return app;
}

interface Client {
  result: Promise<string>;
  closed: () => boolean;
}

/** POST `bodyBytes` over the unix socket; resolves "200 got N", or "closed" when the proxy closed it without an answer. */
function post(sock: string, bodyBytes: number): Client {
  let closed = false;
  const result = new Promise<string>((resolve) => {
    const c = net.connect({ path: sock });
    let reply = '';
    c.on('connect', () => {
      c.write(`POST /up HTTP/1.1\r\nHost: bounds\r\nContent-Length: ${bodyBytes}\r\nConnection: close\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 120);
      let left = bodyBytes;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!c.write(chunk.subarray(0, n))) return void c.once('drain', pump);
        }
      };
      pump();
    });
    c.on('data', (b: Buffer) => (reply += b.toString()));
    c.on('error', () => undefined);
    c.on('close', () => {
      closed = true;
      const m = /^HTTP\/1\.1 (\d{3})[\s\S]*\r\n\r\n([\s\S]*)$/.exec(reply);
      resolve(m ? `${m[1]} ${m[2]}` : 'closed');
    });
  });
  return { result, closed: () => closed };
}

function tally(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

describe('proxy bounds', { timeout: 180_000 }, () => {
  test('ZOOPA_MAX_HELD: the excess is closed with one log line, the held ones are served, memory stays bounded while they push 1 MB each', async () => {
    const port = await freePort();
    const HELD = 50;
    const N = 120;
    const child = await startChild(port, { ZOOPA_MAX_HELD: String(HELD) });
    const pid = child.proc.pid!;
    const before = memory(pid);
    const clients = Array.from({ length: N }, () => post(child.sock, MB));
    // The excess is closed; the held ones stay open, their bodies unread.
    await waitFor(() => clients.filter((c) => c.closed()).length === N - HELD, { timeoutMs: 60_000, what: `${N - HELD} closed connections; stderr: ${child.log()}` });
    const held = memory(pid);
    const lines = child.log().split('\n').filter((l) => l.includes('closed a connection'));
    assert.equal(lines.length, 1, child.log());
    assert.match(lines[0]!, new RegExp(`closed a connection: ${HELD} are already waiting for 127\\.0\\.0\\.1:${port} \\(ZOOPA_MAX_HELD\\)`));
    const app = bodyApp();
    app.listen(port, '127.0.0.1');
    await once(app, 'listening');
    const results = await Promise.all(clients.map((c) => c.result));
    assert.deepEqual(tally(results), { [`200 got ${MB}`]: HELD, closed: N - HELD });
    const after = memory(pid);
    console.log(`proxy memory: ${before.rssMb} MB at start, ${held.rssMb} MB with ${HELD} clients held pushing 1 MB each, peak ${after.hwmMb} MB after serving them`);
    // Unread bodies stay in the kernel: holding adds far less than the 50 MB the clients push.
    assert.ok(held.rssMb - before.rssMb < 25, `held connections cost ${held.rssMb - before.rssMb} MB`);
  });

  test('the descriptor limit: the excess is closed with a log line (not silently), the held ones are served, and accepting goes on', async () => {
    const port = await freePort();
    const N = 150;
    const child = await startChild(port, {}, 128);
    const clients = Array.from({ length: N }, () => post(child.sock, 10));
    await waitFor(() => child.log().includes('the descriptor limit is 128'), { timeoutMs: 60_000, what: `the fd-limit line; stderr: ${child.log()}` });
    const m = /closed a connection: (\d+) connections, the descriptor limit is 128/.exec(child.log());
    const budget = Number(m![1]);
    assert.ok(budget > 0 && budget < N, child.log());
    await waitFor(() => clients.filter((c) => c.closed()).length === N - budget, { timeoutMs: 60_000, what: `${N - budget} closed connections` });
    const app = bodyApp();
    app.listen(port, '127.0.0.1');
    await once(app, 'listening');
    const results = await Promise.all(clients.map((c) => c.result));
    assert.deepEqual(tally(results), { '200 got 10': budget, closed: N - budget });
    // Descriptors are free again: new connections are accepted and served.
    const again = await Promise.all(Array.from({ length: 5 }, () => post(child.sock, 10).result));
    assert.deepEqual(tally(again), { '200 got 10': 5 });
    console.log(`descriptor limit 128: ${budget} connections carried, ${N - budget} closed with a log line`);
  });

  test('ZOOPA_CONN_IDLE_TIMEOUT closes an open but silent connection', async () => {
    const port = await freePort();
    const app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (b: Buffer) => s.write(`reply ${b.toString()}`)); // answers, keeps the connection open
    });
    cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
    app.listen(port, '127.0.0.1');
    await once(app, 'listening');
    const base = tmpDir('zoopa-proxy-connidle-');
    const env = { ...isolatedEnv(base), ZOOPA_CONN_IDLE_TIMEOUT: '1s' };
    const sock = path.join(base, 'proxy.sock');
    const settings = resolveProxySettings('connidle', env, { upstream: `127.0.0.1:${port}`, listen: sock, stackUnit: 'none' });
    assert.equal(settings.connIdleTimeoutMs, 1000);
    const proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: () => undefined, journal: false }) });
    cleanups.push(async () => {
      await proxy.close();
      fs.rmSync(base, { recursive: true, force: true });
    });
    const c = net.connect({ path: sock });
    c.on('error', () => undefined);
    let reply = '';
    c.on('data', (b: Buffer) => (reply += b.toString()));
    c.write('hello');
    await waitFor(() => reply === 'reply hello', { what: 'the reply' });
    await once(c, 'close');
    await waitFor(() => proxy.connectionCount === 0, { what: 'the proxy to release it' });
  });
});
