/**
 * The waiting page (ZOOPA_WAIT), with real sockets and the plain proxy mode
 * (`--stack-unit none`: the wake is the readiness wait): a held browser page
 * load gets the 503 page, the readiness path is answered by the proxy, API
 * requests and bodies are held and reach the app unchanged, `hold` pages nobody.
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
import { stackOndemandSchema } from '../../src/ondemand/config.js';
import { ondemandEnvVars } from '../../src/ondemand/units.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { classify } from '../../src/proxy/http-peek.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { errorPage, escapeHtml, templatePage, waitingPage } from '../../src/proxy/waitpage.js';
import { freePort, waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';
import { exchange } from '../helpers/exchange.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const NAV = 'GET /some/page?x=1 HTTP/1.1\r\nHost: app\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n';
const JSON_REQ = 'GET /api HTTP/1.1\r\nHost: app\r\nAccept: application/json\r\n\r\n';

async function startProxy(port: number, env0: Record<string, string>, flags: { startTimeout?: string } = {}): Promise<{ proxy: Proxy; sock: string; logs: string[] }> {
  const base = tmpDir('zoopa-waitpage-');
  const env = { ...isolatedEnv(base), ...env0 };
  const sock = path.join(base, 'proxy.sock');
  const logs: string[] = [];
  const settings = resolveProxySettings('wiki', env, { upstream: `127.0.0.1:${port}`, listen: sock, stackUnit: 'none', ...flags });
  const proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
  cleanups.push(async () => {
    await proxy.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { proxy, sock, logs };
}

/** An HTTP app answering "app <method> <url> <body>"; it records every body it got. */
function app(bodies: string[]): http.Server {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      bodies.push(body);
      res.setHeader('Connection', 'close');
      res.end(`app ${req.method} ${req.url} ${body}`);
    });
  });
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return server;
}


describe('waiting page: classification and rendering', () => {
  test('navigation, readiness poll, API, body, upgrade, partial, non-HTTP', () => {
    assert.equal(classify(Buffer.from(NAV)).kind, 'navigation');
    assert.deepEqual(classify(Buffer.from(NAV.replace('GET', 'HEAD'))), { kind: 'navigation', head: true });
    assert.equal(classify(Buffer.from('GET /.zoopa/ready?t=1 HTTP/1.1\r\nHost: a\r\n\r\n')).kind, 'ready-poll');
    assert.equal(classify(Buffer.from(JSON_REQ)).kind, 'http');
    assert.equal(classify(Buffer.from('POST /f HTTP/1.1\r\nAccept: text/html\r\nContent-Length: 3\r\n\r\nabc')).kind, 'http');
    assert.equal(classify(Buffer.from('GET /ws HTTP/1.1\r\nAccept: text/html\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).kind, 'http');
    assert.equal(classify(Buffer.from('GET / HTTP/1.1\r\nAccept: text/html\r\n')).kind, 'other');
    assert.equal(classify(Buffer.from('\x16\x03\x01\x02\x00')).kind, 'other');
    assert.equal(classify(Buffer.from('SSH-2.0-OpenSSH_9\r\n')).kind, 'other');
  });

  test('every variable is escaped; the error page names no cause', () => {
    const html = waitingPage({ title: '<script>x</script>', elapsedS: 3.4, typicalS: 12.6 });
    assert.ok(!html.includes('<script>x'));
    assert.ok(html.includes(escapeHtml('<script>x</script>')));
    assert.match(html, /about 13 s/);
    assert.match(html, /\/\.zoopa\/ready/);
    assert.match(html, /http-equiv="refresh"/);
    assert.ok(!/(src|href)=/.test(html), 'no external asset');
    assert.match(errorPage('wiki', 'wiki'), /zoopa status wiki/);
  });
});

describe('waiting page: a held browser gets it, everything else is held', { timeout: 60_000 }, () => {
  test('auto: the page after page_after, the poll answered, then the app; JSON and a POST body held and served once', async () => {
    const port = await freePort();
    const { proxy, sock, logs } = await startProxy(port, { ZOOPA_PAGE_AFTER: '0.2' });
    const page = await exchange(sock, NAV);
    assert.match(page, /^HTTP\/1\.1 503 /);
    assert.match(page, /\r\nRetry-After: \d+\r\n/);
    assert.match(page, /\r\nContent-Type: text\/html/);
    assert.match(page, /\r\nCache-Control: no-store\r\n/);
    assert.match(page, /\r\nConnection: close\r\n/);
    assert.match(page, /wiki is starting/);
    const poll = await exchange(sock, 'GET /.zoopa/ready HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n');
    assert.match(poll, /\r\nX-Zoopa-Ready: 0\r\n[\s\S]*\{"ready":false\}/);
    // Held: an API request and a POST with a body.
    const bodies: string[] = [];
    const api = exchange(sock, JSON_REQ);
    const post = exchange(sock, 'POST /form HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nContent-Length: 11\r\n\r\nhello=world');
    await waitFor(() => proxy.connectionCount === 2, { what: 'two held connections' });
    await waitFor(() => logs.some((l) => l.includes('served the waiting page')), { what: 'the page log line' });
    const server = app(bodies);
    server.listen({ host: '127.0.0.1', port });
    await once(server, 'listening');
    assert.match(await api, /^HTTP\/1\.1 200 [\s\S]*app GET \/api $/);
    assert.match(await post, /^HTTP\/1\.1 200 [\s\S]*app POST \/form hello=world$/);
    assert.deepEqual(bodies.filter((b) => b === 'hello=world'), ['hello=world']);
    await waitFor(() => proxy.stack.state === 'awake', { what: 'awake' });
    assert.match(await exchange(sock, NAV), /^HTTP\/1\.1 200 [\s\S]*app GET \/some\/page\?x=1 $/);
  });

  test('auto: a client that shuts its side without a word while held is let go (it would scout with nothing to send)', async () => {
    const port = await freePort();
    const { proxy, sock } = await startProxy(port, {});
    const c = net.connect({ path: sock });
    await once(c, 'connect');
    await waitFor(() => proxy.connectionCount === 1, { what: 'one held connection' });
    c.end(); // a connection check: connect, then FIN without a byte
    await waitFor(() => proxy.connectionCount === 0, { what: 'the silent client to be let go' });
    c.destroy();
  });

  test('hold: a browser is held and served by the app, no page', async () => {
    const port = await freePort();
    const { proxy, sock, logs } = await startProxy(port, { ZOOPA_WAIT: 'hold', ZOOPA_PAGE_AFTER: '0' });
    const nav = exchange(sock, NAV);
    await waitFor(() => proxy.connectionCount === 1, { what: 'one held connection' });
    const server = app([]);
    server.listen({ host: '127.0.0.1', port });
    await once(server, 'listening');
    assert.match(await nav, /^HTTP\/1\.1 200 [\s\S]*app GET \/some\/page\?x=1 $/);
    assert.ok(!logs.some((l) => l.includes('served the')), logs.join('\n'));
  });

  test('page: an API request gets the page at once; non-HTTP is held', async () => {
    const port = await freePort();
    const { proxy, sock } = await startProxy(port, { ZOOPA_WAIT: 'page' });
    assert.match(await exchange(sock, JSON_REQ), /^HTTP\/1\.1 503 /);
    const raw = exchange(sock, 'hello\n');
    await waitFor(() => proxy.connectionCount === 1, { what: 'one held connection' });
    const server = net.createServer((s) => s.on('data', (b: Buffer) => s.end(`reply ${b.toString()}`)));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    server.listen({ host: '127.0.0.1', port });
    await once(server, 'listening');
    assert.equal(await raw, 'reply hello\n');
  });

  test('a failed wake: a browser gets the HTML error page (no cause), an API client the short text', async () => {
    const port = await freePort();
    const { sock, logs } = await startProxy(port, { ZOOPA_PAGE_AFTER: '1m' }, { startTimeout: '1s' });
    const [nav, api] = await Promise.all([exchange(sock, NAV), exchange(sock, JSON_REQ)]);
    assert.match(nav, /^HTTP\/1\.1 502 [\s\S]*Content-Type: text\/html[\s\S]*wiki could not be started[\s\S]*zoopa status wiki/);
    assert.ok(!nav.includes('127.0.0.1'), 'no detail of the cause');
    assert.match(api, /^HTTP\/1\.1 502 [\s\S]*Content-Type: text\/plain/);
    await waitFor(() => logs.some((l) => l.includes('served the error page')), { what: 'the error page log line' });
  });

  test('auto: a WebSocket upgrade is held and upgraded', async () => {
    const port = await freePort();
    const { proxy, sock } = await startProxy(port, { ZOOPA_PAGE_AFTER: '0' });
    const got = new Promise<string>((resolve) => {
      let reply = '';
      const c = net.connect({ path: sock });
      c.on('connect', () => c.write('GET /ws HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
      c.on('data', (b: Buffer) => {
        reply += b.toString('latin1');
        if (reply.includes('\r\n\r\n') && !reply.includes('echo:')) c.write('ping');
        if (reply.includes('echo:ping')) c.end();
      });
      c.on('close', () => resolve(reply));
    });
    await waitFor(() => proxy.connectionCount === 1, { what: 'one held connection' });
    const server = http.createServer();
    server.on('upgrade', (_req, s: net.Socket) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      s.on('data', (b: Buffer) => s.write(`echo:${b.toString()}`));
      s.on('end', () => s.end());
    });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    server.listen({ host: '127.0.0.1', port });
    await once(server, 'listening');
    assert.match(await got, /^HTTP\/1\.1 101 [\s\S]*echo:ping$/);
  });

  test('zoopa.yaml wait/page_after become ZOOPA_WAIT/ZOOPA_PAGE_AFTER; a bad wait is refused', () => {
    const c = stackOndemandSchema.parse({ upstream: '127.0.0.1:8080', wait: 'page', page_after: '2s' });
    const vars = new Map(ondemandEnvVars(c));
    assert.equal(vars.get('ZOOPA_WAIT'), 'page');
    assert.equal(vars.get('ZOOPA_PAGE_AFTER'), '2');
    assert.equal(resolveProxySettings('wiki', Object.fromEntries(vars), { stackUnit: 'none' }).pageAfterMs, 2000);
    assert.equal(stackOndemandSchema.safeParse({ upstream: '127.0.0.1:8080', wait: 'soon' }).success, false);
  });

  test('ZOOPA_PAGE_TEMPLATE: the variables are replaced and escaped; the page is served; a missing file is an InputError', async () => {
    assert.equal(templatePage('<h1>{{stack}}</h1>{{ elapsed }}|{{typical}}|{{ready_path}}|{{other}}', { title: 'a<b', elapsedS: 2, typicalS: null }), '<h1>a&lt;b</h1>2||/.zoopa/ready|{{other}}');
    const dir = tmpDir('zoopa-waitpage-tpl-');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tpl = path.join(dir, 'wait.html');
    fs.writeFileSync(tpl, '<p>custom {{stack}} page</p>');
    const port = await freePort();
    const { sock } = await startProxy(port, { ZOOPA_PAGE_AFTER: '0', ZOOPA_PAGE_TEMPLATE: tpl });
    assert.match(await exchange(sock, NAV), /^HTTP\/1\.1 503 [\s\S]*<p>custom wiki page<\/p>$/);
    assert.throws(
      () => resolveProxySettings('wiki', { ZOOPA_PAGE_TEMPLATE: path.join(dir, 'none.html') }, { upstream: '127.0.0.1:1', stackUnit: 'none' }),
      /ZOOPA_PAGE_TEMPLATE=".*none\.html": cannot be read \(ENOENT\)/,
    );
    assert.throws(() => resolveProxySettings('wiki', { ZOOPA_PAGE_TEMPLATE: 'wait.html' }, { upstream: '127.0.0.1:1', stackUnit: 'none' }), /not an absolute path/);
  });

  test('a bad ZOOPA_WAIT is an InputError naming it', () => {
    assert.throws(() => resolveProxySettings('wiki', { ZOOPA_WAIT: 'soon' }, { upstream: '127.0.0.1:1', stackUnit: 'none' }), /ZOOPA_WAIT="soon" is not a wait style/);
  });
});
