/**
 * Issue 11's acceptance for what a waiting page must never be given to, end to
 * end: real socket activation, real rootless podman stacks whose app needs 8 s to
 * listen, a real nginx in front of the unix socket, the default wait style (`auto`).
 *
 *  - a WebSocket upgrade (sent with a browser's `Accept: text/html`) on a cold stack
 *    is held, not answered with the waiting page, and upgraded by the app: the
 *    handshake's Sec-WebSocket-Accept matches the key, and bytes sent after it come
 *    back byte-identical (the app is a byte echo after a real RFC 6455 handshake, so
 *    a client frame comes back as sent, masked: the assertions are on bytes);
 *  - a POST with a 200 KiB body (also with `Accept: text/html`) on a cold stack is
 *    held and its body reaches the app exactly once (the app's answer names the byte
 *    count and sha256 it read; the file it appends every body to holds it once);
 *  - the same with a 1000 KiB body, more than the proxy's scout reads before the app
 *    is confirmed (it used to drop the copy, then the client: nginx 502);
 *  - each stack's container started once, and the proxy logged no page for them.
 *
 * The waiting page itself and `Accept: application/json` are in ondemand-waitpage.test.ts.
 *
 *   npm run build && node scripts/run-tests.mjs ondemand-protocols
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { POST_RECORD_SEPARATOR, postRecorderStack, websocketEchoStack, WEBSOCKET_GUID, type StackFixture } from '../fixtures/stacks.js';
import { freePort, useTestbed, type Nginx, type Testbed } from '../testbed/index.js';
import { activeState, containerStarts, proxyLines, socketOf } from './ondemand-lib.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
/** A deadline for one request on a cold stack (the app listens after 8 s; the machine is shared). */
const REQUEST_DEADLINE_MS = 110_000;
/** nginx's own deadlines for the held request must outlast a slow cold start (its default is 60 s). */
const NGINX_TIMEOUTS = ['proxy_connect_timeout 110s', 'proxy_send_timeout 110s', 'proxy_read_timeout 110s'];
/** What nginx needs to pass a WebSocket upgrade on (as in nginx's own WebSocket proxying docs). */
const NGINX_WEBSOCKET = ['proxy_http_version 1.1', 'proxy_set_header Upgrade $http_upgrade', 'proxy_set_header Connection "upgrade"'];

interface PostAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(url: string, body: Buffer, headers: Record<string, string>): Promise<PostAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_DEADLINE_MS, () => req.destroy(new Error(`POST ${url}: no response in ${REQUEST_DEADLINE_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

interface Upgraded {
  res: http.IncomingMessage;
  socket: net.Socket;
  /** Bytes that arrived with the 101 (the start of the upgraded stream). */
  head: Buffer;
}

/** A WebSocket handshake through `url`; rejects with the answer when the server does not upgrade. */
function upgrade(url: string, key: string, extra: Record<string, string>): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      agent: false,
      headers: { ...extra, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
    });
    req.setTimeout(REQUEST_DEADLINE_MS, () => req.destroy(new Error(`upgrade ${url}: no answer in ${REQUEST_DEADLINE_MS} ms`)));
    req.on('upgrade', (res, socket, head) => {
      socket.setTimeout(0);
      resolve({ res, socket, head });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new Error(`upgrade ${url}: answered ${res.statusCode} ${JSON.stringify(res.headers)} instead of 101:\n${Buffer.concat(chunks).toString().slice(0, 400)}`)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A client's WebSocket frame (RFC 6455 5.2): FIN, the opcode, masked with `mask`. */
function clientFrame(opcode: number, payload: Buffer, mask: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const head = Buffer.alloc(2 + ext);
  head[0] = 0x80 | opcode;
  head[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, masked]);
}

/** Reads a (masked) frame back: its opcode and unmasked payload. */
function readFrame(frame: Buffer): { opcode: number; payload: Buffer } {
  const opcode = frame[0]! & 0x0f;
  let len = frame[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    len = frame.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    len = Number(frame.readBigUInt64BE(2));
    at = 10;
  }
  assert.ok(frame[1]! & 0x80, 'the echoed frame is still masked (a byte echo)');
  const mask = frame.subarray(at, at + 4);
  const payload = Buffer.from(frame.subarray(at + 4, at + 4 + len).map((b, i) => b ^ mask[i % 4]!));
  return { opcode, payload };
}

/** Collects `n` bytes from the socket (after `already`); rejects on close or after the deadline. */
function readBytes(socket: net.Socket, n: number, already: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks = [already];
    let have = already.length;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have >= n) done();
    };
    const onClose = () => done(new Error(`the upgraded connection closed after ${have} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error(`only ${have} of ${n} bytes came back in ${REQUEST_DEADLINE_MS} ms`)), REQUEST_DEADLINE_MS);
    if (have >= n) return done();
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** A body with a known pattern: numbered lines, cut to `size` bytes. */
function patternBody(size: number): Buffer {
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const line = `line ${String(i).padStart(6, '0')} of the zoopa POST body\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

function context(tb: Testbed, stack: string, web: Nginx | undefined): string {
  return `\n-- proxy log (${stack}) --\n${proxyLines(tb, stack).slice(-30).join('\n')}\n-- nginx error log --\n${(web?.errorLog() ?? '').slice(-1500)}`;
}

describe('on demand: a WebSocket upgrade and a POST body on a cold 8 s stack, through nginx', () => {
  const bed = useTestbed({ name: 'ondemand-protocols' });
  let chat: StackFixture;
  let upload: StackFixture & { postPath: string; recordFile: string };
  let bulk: StackFixture & { postPath: string; recordFile: string };
  /** One nginx per stack, each at /. */
  const nginx = new Map<string, Nginx>();
  const body = patternBody(200 * 1024);
  const expected = Buffer.concat([body, Buffer.from(POST_RECORD_SEPARATOR)]);
  /** Beyond what the proxy's scout keeps for sending again (SCOUT_MAX_BYTES, 256 KiB), within nginx's default client_max_body_size. */
  const bigBody = patternBody(1000 * 1024);
  const bigExpected = Buffer.concat([bigBody, Buffer.from(POST_RECORD_SEPARATOR)]);

  it('installs three cold stacks (a WebSocket echo, two POST recorders) behind on-demand sockets and nginx', async () => {
    const tb = bed();
    chat = websocketEchoStack(tb.root, 'chat', { port: await freePort(), startDelaySec: 8 });
    upload = postRecorderStack(tb.root, 'upload', { port: await freePort(), startDelaySec: 8 });
    bulk = postRecorderStack(tb.root, 'bulk', { port: await freePort(), startDelaySec: 8 });
    for (const s of [chat, upload, bulk]) {
      tb.writeFile(path.join(tb.home, '.config', 'zoopa-ondemand', `${s.name}.env`), `ZOOPA_UPSTREAM=127.0.0.1:${s.port}\n`, 0o600);
    }
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    for (const unit of ['zoopa-ondemand-dir.service', 'zoopa-ondemand@chat.socket', 'zoopa-ondemand@upload.socket', 'zoopa-ondemand@bulk.socket']) {
      const r = await tb.systemctl(['enable', '--now', unit]);
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
    }
    nginx.set('chat', await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'chat')}`, directives: [...NGINX_WEBSOCKET, ...NGINX_TIMEOUTS] }]));
    nginx.set('upload', await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'upload')}`, directives: NGINX_TIMEOUTS }]));
    nginx.set('bulk', await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'bulk')}`, directives: NGINX_TIMEOUTS }]));
    for (const s of ['chat', 'upload', 'bulk']) assert.equal(await activeState(tb, `${s}-stack.service`), 'inactive');
  });

  it('a WebSocket upgrade with a browser Accept is held (no waiting page) and upgraded by the app; bytes echo back unchanged', async () => {
    const tb = bed();
    const web = nginx.get('chat')!;
    const key = crypto.randomBytes(16).toString('base64');
    let up: Upgraded;
    try {
      up = await upgrade(`${web.url}/chat`, key, { Accept: BROWSER_ACCEPT });
    } catch (e) {
      assert.fail(`${(e as Error).message}${context(tb, 'chat', web)}`);
    }
    const { res, socket, head } = up;
    try {
      assert.equal(res.statusCode, 101);
      assert.equal(String(res.headers.upgrade).toLowerCase(), 'websocket');
      const want = crypto.createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
      assert.equal(res.headers['sec-websocket-accept'], want, 'the app computed the accept value from the key it received');
      // A masked text frame: the echo returns its bytes as sent (still masked).
      const text = clientFrame(0x1, Buffer.from('hello through nginx and a cold stack'), crypto.randomBytes(4));
      socket.write(text);
      const back1 = await readBytes(socket, text.length, head);
      assert.ok(back1.equals(text), `echo of the text frame: ${back1.toString('hex')} != ${text.toString('hex')}`);
      assert.deepEqual(readFrame(back1), { opcode: 0x1, payload: Buffer.from('hello through nginx and a cold stack') });
      // Then a 100 KiB binary frame, so the upgraded stream carries more than one read's worth each way.
      const binary = clientFrame(0x2, patternBody(100 * 1024), crypto.randomBytes(4));
      socket.write(binary);
      const back2 = await readBytes(socket, binary.length);
      assert.equal(back2.length, binary.length, 'no byte more than sent');
      assert.ok(back2.equals(binary), 'the binary frame came back byte-identical');
    } finally {
      socket.destroy();
    }
  });

  it('a POST with a 200 KiB body and a browser Accept is held and its body reaches the app exactly once', async () => {
    const tb = bed();
    const web = nginx.get('upload')!;
    const r = await post(`${web.url}${upload.postPath}`, body, { Accept: BROWSER_ACCEPT, 'Content-Type': 'application/octet-stream' });
    const sha = crypto.createHash('sha256').update(body).digest('hex');
    assert.equal(r.status, 200, `${r.body.slice(0, 400)}${context(tb, 'upload', web)}`);
    assert.equal(r.body, `${body.length} ${sha}\n`, 'the app read the whole body, byte for byte');
    const recorded = fs.readFileSync(upload.recordFile);
    assert.equal(recorded.length, expected.length, `the app recorded ${recorded.length} bytes, one body is ${expected.length}${context(tb, 'upload', web)}`);
    assert.ok(recorded.equals(expected), 'the recorded file holds the body exactly once');
  });

  it('a POST with a 1000 KiB body (more than the scout reads before the app is confirmed) is held and its body reaches the app exactly once', async () => {
    const tb = bed();
    const web = nginx.get('bulk')!;
    const r = await post(`${web.url}${bulk.postPath}`, bigBody, { Accept: BROWSER_ACCEPT, 'Content-Type': 'application/octet-stream' });
    const sha = crypto.createHash('sha256').update(bigBody).digest('hex');
    assert.equal(r.status, 200, `${r.body.slice(0, 400)}${context(tb, 'bulk', web)}`);
    assert.equal(r.body, `${bigBody.length} ${sha}\n`, 'the app read the whole body, byte for byte');
    const recorded = fs.readFileSync(bulk.recordFile);
    assert.equal(recorded.length, bigExpected.length, `the app recorded ${recorded.length} bytes, one body is ${bigExpected.length}${context(tb, 'bulk', web)}`);
    assert.ok(recorded.equals(bigExpected), 'the recorded file holds the body exactly once');
  });

  it('each stack started its container once, and the proxy served no page to them', async () => {
    const tb = bed();
    for (const stack of ['chat', 'upload', 'bulk']) assert.equal(await containerStarts(tb, stack), 1, `${stack}: container starts`);
    for (const stack of ['chat', 'upload', 'bulk']) {
      const pages = proxyLines(tb, stack).filter((l) => /served the \w+ page/.test(l));
      assert.deepEqual(pages, [], `no waiting (or other) page for ${stack}`);
    }
    assert.ok(fs.readFileSync(upload.recordFile).equals(expected), 'still one body: no late replay reached the app');
  });
});
