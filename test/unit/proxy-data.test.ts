/**
 * The proxy's data path, through real sockets: a real in-process upstream, the
 * proxy listening on a unix socket (`--listen`, `--stack-unit none`: the plain
 * proxy mode, production code), real clients. Integrity (256 MB of random
 * bytes each way at once, sha256), half-close both ways, backpressure from a
 * slow reader, and one connection's error never touching another.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';

const MB = 1024 * 1024;

/** Write `total` random bytes (1 MiB chunks, honouring backpressure), hashing them; then end(). */
async function sendRandom(sock: net.Socket, total: number, opts: { end?: boolean; onBackpressure?: () => void } = {}): Promise<string> {
  const h = crypto.createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const chunk = crypto.randomBytes(Math.min(MB, total - sent));
    h.update(chunk);
    sent += chunk.length;
    if (!sock.write(chunk)) {
      opts.onBackpressure?.();
      await drainOrClose(sock);
      if (sock.destroyed) throw new Error(`socket closed after ${sent} bytes`);
    }
  }
  if (opts.end !== false) sock.end();
  return h.digest('hex');
}

function drainOrClose(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    sock.on('drain', done);
    sock.on('close', done);
  });
}

/** Hash everything read until EOF. */
function receiveAll(sock: net.Socket): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    sock.on('data', (b: Buffer) => {
      h.update(b);
      bytes += b.length;
    });
    sock.once('end', () => resolve({ sha: h.digest('hex'), bytes }));
    sock.once('error', reject);
  });
}

function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: p, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

interface Upstream {
  server: net.Server;
  port: number;
  /** Called for each connection the proxy makes. */
  handler: (s: net.Socket) => void;
}

async function startUpstream(): Promise<Upstream> {
  const u: Upstream = { server: net.createServer({ allowHalfOpen: true }), port: 0, handler: () => undefined };
  u.server.on('connection', (s) => u.handler(s));
  u.server.listen({ host: '127.0.0.1', port: 0 });
  await once(u.server, 'listening');
  u.port = (u.server.address() as net.AddressInfo).port;
  return u;
}

describe('proxy data path', { timeout: 120_000 }, () => {
  let up: Upstream;
  let proxy: Proxy;
  let sock: string;
  let base: string;
  const logs: string[] = [];

  before(async () => {
    up = await startUpstream();
    base = tmpDir('zoopa-proxy-data-');
    const env = isolatedEnv(base);
    sock = path.join(base, 'proxy.sock');
    const settings = resolveProxySettings('data', env, { upstream: `127.0.0.1:${up.port}`, listen: sock, stackUnit: 'none' });
    proxy = await Proxy.start(settings, { env, units: null, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
    // Wake it (a plain proxy starts asleep and checks the upstream once), so that
    // every upstream connection the tests see carries a client.
    up.handler = (s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end('welcome')); // the readiness probe sends nothing and is left open
    };
    const c = await connect(sock);
    c.resume();
    c.end('hello');
    await once(c, 'close');
    assert.equal(proxy.stack.state, 'awake');
  });

  after(async () => {
    await proxy.close();
    up.server.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  test('256 MB of random bytes each way at once arrive intact (sha256)', async () => {
    const SIZE = 256 * MB;
    const upstreamSide = new Promise<{ received: { sha: string; bytes: number }; sent: string }>((resolve, reject) => {
      up.handler = (s) => {
        s.on('error', reject);
        const received = receiveAll(s);
        const sent = sendRandom(s, SIZE);
        Promise.all([received, sent]).then(([r, se]) => resolve({ received: r, sent: se }), reject);
      };
    });
    const c = await connect(sock);
    const clientReceived = receiveAll(c);
    const clientSent = await sendRandom(c, SIZE);
    const [down, upSide] = await Promise.all([clientReceived, upstreamSide]);
    assert.equal(upSide.received.bytes, SIZE);
    assert.equal(upSide.received.sha, clientSent, 'client → upstream intact');
    assert.equal(down.bytes, SIZE);
    assert.equal(down.sha, upSide.sent, 'upstream → client intact');
    await waitFor(() => proxy.connectionCount === 0, { what: 'the connection to be released' });
    assert.ok(proxy.traffic.bytesIn >= SIZE && proxy.traffic.bytesOut >= SIZE, 'bytes counted');
  });

  test('half-close by the client: the upstream sees EOF and the whole response still arrives', async () => {
    const RESPONSE = 8 * MB;
    let responseSha: Promise<string> | undefined;
    let requestSeen = '';
    up.handler = (s) => {
      s.on('data', (b: Buffer) => (requestSeen += b.toString()));
      s.once('end', () => {
        responseSha = sendRandom(s, RESPONSE);
      });
    };
    const c = await connect(sock);
    const got = receiveAll(c);
    c.end('GET /everything\n'); // shut the write side right away
    const r = await got;
    assert.equal(requestSeen, 'GET /everything\n');
    assert.equal(r.bytes, RESPONSE);
    assert.equal(r.sha, await responseSha!);
  });

  test('half-close by the upstream: the client still sends, the upstream still receives all of it', async () => {
    const UPLOAD = 8 * MB;
    let upstreamGot: Promise<{ sha: string; bytes: number }> | undefined;
    up.handler = (s) => {
      upstreamGot = receiveAll(s);
      s.end('ready for the upload\n'); // upstream FIN first
    };
    const c = await connect(sock);
    const greeting = await receiveAll(c); // resolves at the upstream's EOF
    assert.equal(greeting.bytes, 'ready for the upload\n'.length);
    const sent = await sendRandom(c, UPLOAD);
    const got = await upstreamGot!;
    assert.equal(got.bytes, UPLOAD);
    assert.equal(got.sha, sent);
    await waitFor(() => proxy.connectionCount === 0, { what: 'the connection to be released' });
  });

  test('a slow reader pushes back to the upstream, and nothing is lost', async () => {
    const SIZE = 64 * MB;
    let sawBackpressure = false;
    let sent: Promise<string> | undefined;
    up.handler = (s) => {
      sent = sendRandom(s, SIZE, { onBackpressure: () => (sawBackpressure = true) });
    };
    const before = proxy.traffic.bytesOut;
    const c = await connect(sock);
    c.pause();
    await waitFor(() => sawBackpressure, { what: 'the upstream to be held back by the paused client' });
    assert.ok(proxy.traffic.bytesOut - before < SIZE, 'the proxy did not swallow the whole download while the client was paused');
    const r = receiveAll(c);
    c.resume();
    const got = await r;
    assert.equal(got.bytes, SIZE);
    assert.equal(got.sha, await sent!);
    c.end();
  });

  test('an upstream reset on one connection does not touch another', async () => {
    const SIZE = 32 * MB;
    let victimReset = false;
    let sent: Promise<string> | undefined;
    up.handler = (s) => {
      s.on('error', () => undefined);
      s.once('data', (b: Buffer) => {
        if (b.toString() === 'victim') {
          // Some bytes, then a reset (RST) in the middle of the response.
          s.write(crypto.randomBytes(MB), () => {
            s.resetAndDestroy();
            victimReset = true;
          });
        } else {
          sent = sendRandom(s, SIZE);
        }
      });
    };
    const victim = await connect(sock);
    const other = await connect(sock);
    const otherGot = receiveAll(other);
    const victimDone = new Promise<string>((resolve) => {
      victim.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      victim.on('end', () => resolve('ended'));
      victim.on('close', () => resolve('closed'));
      victim.resume();
    });
    victim.write('victim');
    await waitFor(() => victimReset, { what: 'the reset of the first connection' });
    other.end('download');
    assert.ok(await victimDone);
    const got = await otherGot;
    assert.equal(got.bytes, SIZE);
    assert.equal(got.sha, await sent!);
  });

  test('a client that goes away mid-download does not touch another', async () => {
    const SIZE = 32 * MB;
    const sent = new Map<string, Promise<string>>();
    const closed = new Map<string, Promise<unknown>>();
    up.handler = (s) => {
      s.on('error', () => undefined);
      s.once('data', (b: Buffer) => {
        const who = b.toString();
        closed.set(who, new Promise((r) => s.once('close', r))); // (events.once would reject on the reset's 'error')
        sent.set(who, sendRandom(s, SIZE).catch((e: Error) => e.message));
      });
    };
    const victim = await connect(sock);
    const other = await connect(sock);
    const otherGot = receiveAll(other);
    victim.write('victim');
    other.write('other');
    await once(victim, 'data');
    victim.destroy(); // gone mid-download: the proxy's next write to it fails
    await waitFor(() => closed.has('victim'), { what: "the victim's upstream connection" });
    await closed.get('victim'); // the proxy closed the victim's upstream side
    other.end();
    const got = await otherGot;
    assert.equal(got.bytes, SIZE);
    assert.equal(got.sha, await sent.get('other')!);
  });
});
