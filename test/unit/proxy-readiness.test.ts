/**
 * The readiness probe over a long wake, with real sockets: it adds nothing to
 * the wake's AbortSignal that it does not remove (the leak is counted with
 * events.getEventListeners, not only the warning), and it backs off (fast for
 * the first seconds, then up to every POLL_MAX_MS), counted at the upstream
 * over a real 60-s wake. A port forwarder with no app behind it that keeps
 * connections open 600 ms before dropping them (rootlessport on a loaded
 * machine) is not taken for the app: held clients, an API request and a
 * browser's page load, are served by the app once it listens, none is dropped.
 * Also the failure backoff's gate.
 */
import assert from 'node:assert/strict';
import { getEventListeners, once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { Failures, FIRST_BACKOFF_MS, WakeFailedError } from '../../src/proxy/failures.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { POLL_MAX_MS, POLL_MS, pollDelayMs, probe } from '../../src/proxy/readiness.js';
import { parseUpstream } from '../../src/proxy/upstream.js';
import { freePort, waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('readiness probe', { timeout: 180_000 }, () => {
  test('probes sharing one AbortSignal leave no abort listener behind', async () => {
    const up = parseUpstream(`127.0.0.1:${await freePort()}`, 'test'); // nobody listens
    const ac = new AbortController();
    for (let i = 0; i < 50; i++) {
      const r = await probe(up, { kind: 'tcp' }, 10, ac.signal);
      assert.equal(r.ok, false);
    }
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    // An aborted probe ends at once and leaves nothing either.
    const pending = probe(parseUpstream('10.255.255.1:9', 'test'), { kind: 'tcp' }, 10, ac.signal);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1, 'one listener while in flight');
    ac.abort();
    assert.deepEqual(await pending, { ok: false, why: 'aborted' });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  test('the pause between probes: fast during the first seconds, then up to POLL_MAX_MS', () => {
    assert.equal(pollDelayMs(0), POLL_MS);
    assert.equal(pollDelayMs(2_900), POLL_MS);
    assert.ok(pollDelayMs(5_000) > POLL_MS && pollDelayMs(5_000) < POLL_MAX_MS);
    assert.equal(pollDelayMs(60_000), POLL_MAX_MS);
    assert.equal(pollDelayMs(600_000), POLL_MAX_MS);
  });

  test('a 60-s wake: the listener count stays constant and the probes are bounded (counted at the upstream)', async () => {
    const port = await freePort();
    const WAKE_MS = 60_000;
    let healthy = false;
    let probes = 0;
    const app = http.createServer((req, res) => {
      if (req.url === '/health') {
        probes++;
        res.statusCode = healthy ? 200 : 503;
        return void res.end();
      }
      res.end('app page');
    });
    cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
    app.listen(port, '127.0.0.1');
    await once(app, 'listening');
    // The app's own start: 60 s until it reports healthy (the scenario, not a synchronisation).
    const loading = setTimeout(() => (healthy = true), WAKE_MS);
    cleanups.push(() => clearTimeout(loading));

    const base = tmpDir('zoopa-proxy-readiness-');
    const env = isolatedEnv(base);
    const sock = path.join(base, 'proxy.sock');
    const settings = resolveProxySettings('long', env, { upstream: `127.0.0.1:${port}`, listen: sock, stackUnit: 'none', ready: 'http:/health', startTimeout: '5m' });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: () => undefined, journal: false }) });
    cleanups.push(async () => {
      process.off('warning', onWarning);
      await proxy.close();
      fs.rmSync(base, { recursive: true, force: true });
    });

    const reply = new Promise<string>((resolve) => {
      let text = '';
      const c = net.connect({ path: sock });
      c.on('connect', () => c.write('GET /page HTTP/1.0\r\nHost: long\r\n\r\n'));
      c.on('data', (b: Buffer) => (text += b.toString()));
      c.on('error', () => undefined);
      c.on('close', () => resolve(text));
    });
    const signal = await waitFor(() => proxy.stack.wakeSignal, { what: 'the wake to start' });
    const counts: number[] = [];
    const sampler = setInterval(() => counts.push(getEventListeners(signal, 'abort').length), 250);
    cleanups.push(() => clearInterval(sampler));
    const text = await reply;
    clearInterval(sampler);
    assert.match(text, /^HTTP\/1\.1 200 OK[\s\S]*app page$/);
    assert.ok(counts.length > 100, `sampled across the wake (${counts.length} samples)`);
    assert.ok(Math.max(...counts) <= 2, `abort listeners during the wake: max ${Math.max(...counts)} (samples ${counts.slice(0, 20).join(',')}...)`);
    assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
    // Polling every 10 ms for 60 s would be ~5000 probes; backing off to 250 ms keeps it to a few hundred.
    console.log(`a ${WAKE_MS / 1000}-s wake: ${probes} readiness probes at the upstream; abort listeners max ${Math.max(...counts)}`);
    assert.ok(probes < 800, `${probes} probes`);
    assert.ok(probes > 60_000 / 1000, 'it kept probing');
  });
});

describe('a slow port forwarder in front of an app that is not listening yet', { timeout: 120_000 }, () => {
  test('held clients are not attached to it: each gets the app, none is dropped', async () => {
    const port = await freePort();
    let appUp = false;
    let dropped = 0;
    const heads: string[] = [];
    // The forwarder: without an app it accepts, holds the connection 600 ms and closes it
    // without a byte; once the app is up it answers as the app (HTTP/1.0, then closes).
    const fwd = net.createServer((sock) => {
      sock.on('error', () => undefined);
      if (!appUp) {
        dropped++;
        if (dropped === 8) appUp = true; // the app comes up after a few dropped attempts (the scenario)
        sock.resume();
        return void setTimeout(() => sock.destroy(), 600);
      }
      let head = '';
      sock.on('data', (b: Buffer) => {
        head += b.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        heads.push(head.split('\r\n')[0]!);
        sock.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\napp ${head.split(' ')[1]}`);
      });
    });
    cleanups.push(() => new Promise<void>((r) => fwd.close(() => r())));
    fwd.listen(port, '127.0.0.1');
    await once(fwd, 'listening');
    const base = tmpDir('zoopa-proxy-forwarder-');
    const env = { ...isolatedEnv(base), ZOOPA_PAGE_AFTER: '100s' }; // the page load is held, not paged
    const sock = path.join(base, 'proxy.sock');
    const settings = resolveProxySettings('fwd', env, { upstream: `127.0.0.1:${port}`, listen: sock, stackUnit: 'none' });
    const logs: string[] = [];
    const proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
    cleanups.push(async () => {
      await proxy.close();
      fs.rmSync(base, { recursive: true, force: true });
    });
    const ask = (raw: string) =>
      new Promise<string>((resolve) => {
        let text = '';
        const c = net.connect({ path: sock });
        c.on('connect', () => c.write(raw));
        c.on('data', (b: Buffer) => (text += b.toString()));
        c.on('error', () => undefined);
        c.on('close', () => resolve(text));
      });
    const [api, page] = await Promise.all([
      ask('GET /api HTTP/1.1\r\nHost: fwd\r\nAccept: application/json\r\n\r\n'),
      ask('GET /page HTTP/1.1\r\nHost: fwd\r\nAccept: text/html\r\n\r\n'),
    ]);
    assert.match(api, /^HTTP\/1\.0 200 OK[\s\S]*app \/api$/, `the API request: ${JSON.stringify(api)}\n${logs.join('\n')}\ndropped ${dropped}, heads ${heads.join(' | ')}`);
    assert.match(page, /^HTTP\/1\.0 200 OK[\s\S]*app \/page$/, `the page load: ${JSON.stringify(page)}`);
    assert.ok(dropped >= 8, `the forwarder dropped ${dropped} connections before the app was up`);
    assert.deepEqual(heads.filter((h) => h.startsWith('GET ')).sort(), ['GET /api HTTP/1.1', 'GET /page HTTP/1.1'], 'each request reached the app once');
  });
});

describe('failure backoff', () => {
  test('after a start known to fail, wakes are refused until the backoff ends or the cause is fixed', async () => {
    const f = new Failures();
    await f.gate('x.service'); // nothing failed yet
    let fixed = false;
    f.failed(new WakeFailedError('x.service started, but service web: image localhost/nope:1 does not exist', { known: true, diagnosis: { cause: 'service web: image localhost/nope:1 does not exist', fixed: async () => fixed } }));
    const until = f.backoffUntil;
    assert.ok(until !== null && until > Date.now() && until <= Date.now() + FIRST_BACKOFF_MS);
    await assert.rejects(f.gate('x.service'), (e: unknown) => e instanceof WakeFailedError && e.backoff && /x\.service failed to start \(service web: image localhost\/nope:1 does not exist\); not trying again for \d+s unless the cause is fixed/.test(e.message));
    fixed = true;
    await f.gate('x.service'); // fixed: a wake may run at once
    f.failed(new WakeFailedError('again', { known: true }));
    assert.ok(f.backoffUntil! - Date.now() > FIRST_BACKOFF_MS, 'the second failure in a row doubles the backoff');
    f.succeeded();
    assert.equal(f.backoffUntil, null);
  });
});
