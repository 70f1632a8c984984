/**
 * The readiness probe over a long wake, with real sockets: it adds nothing to
 * the wake's AbortSignal that it does not remove (the leak is counted with
 * events.getEventListeners, not only the warning), and it backs off (fast for
 * the first seconds, then up to every POLL_MAX_MS), counted at the upstream
 * over a real 60-s wake. Also the failure backoff's gate.
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
