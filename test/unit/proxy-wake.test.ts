/**
 * Holding connections until the upstream is ready, with real sockets and the
 * plain proxy mode (`--stack-unit none`: no unit to start, the wake is only the
 * readiness wait; the same state machine and hold path the systemd mode uses).
 * Waits have deadlines; nothing asserts on durations.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { resolveProxySettings, type ProxyFlags } from '../../src/proxy/config.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { readProxyState } from '../../src/proxy/state-file.js';
import { freePort, waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';

interface Started {
  proxy: Proxy;
  sock: string;
  logs: string[];
  env: NodeJS.ProcessEnv;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startProxy(port: number, flags: ProxyFlags = {}): Promise<Started> {
  const base = tmpDir('zoopa-proxy-wake-');
  const env = isolatedEnv(base);
  const sock = path.join(base, 'proxy.sock');
  const logs: string[] = [];
  const settings = resolveProxySettings('wake', env, { upstream: `127.0.0.1:${port}`, listen: sock, stackUnit: 'none', ...flags });
  const proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
  cleanups.push(async () => {
    await proxy.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { proxy, sock, logs, env };
}

/** A line-echo app: answers "reply <line>" to each line, on a given port, when told to listen. */
function echoApp(): net.Server {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (b: Buffer) => s.end(`reply ${b.toString()}`));
  });
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return server;
}

async function listen(server: net.Server, port: number): Promise<void> {
  server.listen({ host: '127.0.0.1', port });
  await once(server, 'listening');
}

/** Connect, send `line`, collect everything until the connection ends. */
function ask(sockPath: string, line: string): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    let reply = '';
    const c = net.connect({ path: sockPath });
    c.on('connect', () => c.write(line));
    c.on('data', (b: Buffer) => (reply += b.toString()));
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ reply, error: e.code ?? e.message }));
    c.on('close', () => resolve({ reply }));
  });
}

describe('proxy: connections wait for the upstream', { timeout: 60_000 }, () => {
  test('an upstream that starts listening late serves every held connection', async () => {
    const port = await freePort();
    const { proxy, sock, logs, env } = await startProxy(port);
    const N = 20;
    const answers = Array.from({ length: N }, (_, i) => ask(sock, `req${i}`));
    await waitFor(() => proxy.connectionCount === N, { what: `${N} held connections` });
    assert.equal(proxy.stack.state, 'waking');
    assert.equal(readProxyState('wake', env)?.state, 'waking');
    await listen(echoApp(), port);
    const got = await Promise.all(answers);
    got.forEach((a, i) => assert.deepEqual(a, { reply: `reply req${i}` }));
    assert.equal(proxy.stack.state, 'awake');
    assert.equal(logs.filter((l) => l.startsWith('ready: ')).length, 1, logs.join(''));
    assert.match(logs.find((l) => l.startsWith('ready: '))!, /answered \d+ ms after the wake; serving 20 waiting connection/);
  });

  test('an upstream never ready: held clients are closed after the start timeout, one log line, and the next connection tries again', async () => {
    const port = await freePort();
    const { proxy, sock, logs } = await startProxy(port, { startTimeout: '1s' });
    const held = await Promise.all([ask(sock, 'a'), ask(sock, 'b'), ask(sock, 'c')]);
    for (const h of held) assert.equal(h.reply, '', 'no byte reached a client');
    const failures = logs.filter((l) => l.includes('wake failed'));
    assert.equal(failures.length, 1, logs.join(''));
    assert.match(failures[0]!, /not ready within 1 s .*closed 3 waiting connection\(s\); the next connection tries again/);
    assert.equal(proxy.stack.state, 'sleeping');
    await listen(echoApp(), port);
    assert.deepEqual(await ask(sock, 'again'), { reply: 'reply again' });
  });

  test('an upstream that accepts and drops connections (a port forwarder with no app behind it) is not ready', async () => {
    const port = await freePort();
    let serving = false;
    let dropped = 0;
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      if (!serving) {
        dropped++;
        s.destroy();
        return;
      }
      s.on('data', (b: Buffer) => s.end(`reply ${b.toString()}`));
    });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    await listen(server, port);
    const { proxy, sock } = await startProxy(port);
    const answers = Array.from({ length: 5 }, (_, i) => ask(sock, `r${i}`));
    await waitFor(() => proxy.connectionCount === 5 && dropped >= 3, { what: 'held connections and dropped probes' });
    serving = true;
    const got = await Promise.all(answers);
    got.forEach((a, i) => assert.deepEqual(a, { reply: `reply r${i}` }));
  });

  test('http readiness: clients reach the app only after GET /health answers 2xx', async () => {
    const port = await freePort();
    const seen: string[] = [];
    let healthy = false;
    const app = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.url === '/health' ? (healthy ? 200 : 503) : 200}`);
      if (req.url === '/health') {
        res.statusCode = healthy ? 200 : 503;
        res.end();
        return;
      }
      res.end('app page');
    });
    cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
    app.listen({ host: '127.0.0.1', port });
    await once(app, 'listening');
    const { proxy, sock } = await startProxy(port, { ready: 'http:/health' });
    const page = ask(sock, 'GET /page HTTP/1.0\r\nHost: x\r\n\r\n');
    await waitFor(() => proxy.connectionCount === 1 && seen.length >= 2, { what: 'a held client and unhealthy checks' });
    assert.ok(!seen.some((s) => s !== '/health 503'), seen.join(', '));
    healthy = true;
    const r = await page;
    assert.match(r.reply, /^HTTP\/1\.1 200 OK[\s\S]*app page$/);
    const firstPage = seen.indexOf('/page 200');
    assert.ok(firstPage > 0 && seen[firstPage - 1] === '/health 200', seen.join(', '));
  });

  test('an upstream that goes away while awake: the next client is held, not refused, and served when it is back', async () => {
    const port = await freePort();
    const { proxy, sock, logs } = await startProxy(port);
    let app = echoApp();
    await listen(app, port);
    assert.deepEqual(await ask(sock, 'one'), { reply: 'reply one' });
    assert.equal(proxy.stack.state, 'awake');
    await new Promise<void>((r) => app.close(() => r()));
    const pending = ask(sock, 'two');
    await waitFor(() => proxy.stack.state === 'waking', { what: 'the proxy to wait for the upstream again' });
    assert.ok(logs.some((l) => /refused a connection \(ECONNREFUSED\); checking the stack again/.test(l)), logs.join(''));
    app = echoApp();
    await listen(app, port);
    assert.deepEqual(await pending, { reply: 'reply two' });
  });

  test('behind a port forwarder that accepts before the app listens (like rootlessport): every held client is answered once', async () => {
    const appPort = await freePort();
    const fwdPort = await freePort();
    // The forwarder: accepts at once, then dials the app like rootlesskit's builtin
    // port driver (10 tries, i*5 ms apart); pipes when it gets through, else closes.
    let accepted = 0;
    const forwarder = net.createServer({ allowHalfOpen: true }, (outer) => {
      accepted++;
      outer.on('error', () => undefined);
      outer.pause();
      const dial = (i: number): void => {
        const inner = net.connect({ host: '127.0.0.1', port: appPort, allowHalfOpen: true });
        inner.once('connect', () => {
          inner.on('error', () => outer.destroy());
          outer.pipe(inner);
          inner.pipe(outer);
          outer.resume();
        });
        inner.once('error', () => {
          if (inner.remoteAddress) return;
          if (i >= 9) outer.destroy();
          else setTimeout(() => dial(i + 1), i * 5);
        });
      };
      dial(0);
    });
    cleanups.push(() => new Promise<void>((r) => forwarder.close(() => r())));
    await listen(forwarder, fwdPort);
    const requests: string[] = [];
    const app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (b: Buffer) => {
        requests.push(b.toString());
        s.end(`reply ${b.toString()}`);
      });
    });
    cleanups.push(() => new Promise<void>((r) => app.close(() => r())));

    const { proxy, sock } = await startProxy(fwdPort);
    const N = 20;
    const answers = Array.from({ length: N }, (_, i) => ask(sock, `q${i}`));
    await waitFor(() => proxy.connectionCount === N && proxy.stack.state === 'waking', { what: 'held connections' });
    // Let the scout bounce off the forwarder a few times before the app appears.
    await waitFor(() => proxy.traffic.bytesIn >= 2 && accepted >= 6, { what: 'the scout and the probes to bounce off the forwarder' });
    await listen(app, appPort);
    const got = await Promise.all(answers);
    got.forEach((a, i) => assert.deepEqual(a, { reply: `reply q${i}` }));
    assert.deepEqual([...requests].sort(), Array.from({ length: N }, (_, i) => `q${i}`).sort(), 'each request reached the app exactly once');
  });

  test('an app that closes connections without answering still counts as up (no wait for the start timeout)', async () => {
    const port = await freePort();
    const app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', () => s.end()); // answers nothing, closes; silent connections stay open
    });
    cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
    await listen(app, port);
    const { proxy, sock } = await startProxy(port, { startTimeout: '10m' });
    const got = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(sock, `n${i}`)));
    for (const g of got) assert.deepEqual(g, { reply: '' });
    assert.equal(proxy.stack.state, 'awake');
  });
});
