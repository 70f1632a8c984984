/**
 * zoopa proxy as systemd starts it: listening sockets passed by file descriptor
 * (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES), here by `systemd-socket-activate`
 * from the systemd package (the real protocol, without a service manager; the
 * integration tests do it under a real user manager). Plain proxy mode
 * (ZOOPA_STACK_UNIT=none), which exits at idle like socket-proxyd's
 * --exit-idle-time. Nothing asserts on durations.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { readProxyState } from '../../src/proxy/state-file.js';
import { waitFor } from '../testbed/util.js';
import { isolatedEnv, tmpDir, ZOOPA } from '../helpers/cli.js';

const ACTIVATE = 'systemd-socket-activate';

interface Activated {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  env: NodeJS.ProcessEnv;
}

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `systemd-socket-activate -l ... [--fdname=a:b] node zoopa.js proxy <stack>` with env (started at the first connection). */
async function activate(base: string, stack: string, sockets: string[], env: Record<string, string>, fdnames?: string[]): Promise<Activated> {
  const full = { ...isolatedEnv(base), ...env };
  const argv = [
    ...sockets.flatMap((s) => ['-l', s]),
    ...(fdnames ? [`--fdname=${fdnames.join(':')}`] : []),
    ...Object.keys(full).flatMap((k) => ['-E', k]),
    process.execPath,
    ZOOPA,
    'proxy',
    stack,
  ];
  const child = spawn(ACTIVATE, argv, { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  // systemd-socket-activate binds now and starts the proxy at the first connection.
  await waitFor(() => sockets.every((s) => fs.existsSync(s)), { what: 'the sockets' });
  return { child, exit, output: () => out, env: full };
}

async function answering(name: string): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', () => s.end(`${name}\n`));
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  after(() => server.close());
  return { server, port: (server.address() as net.AddressInfo).port };
}

function ask(sockPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const c = net.connect({ path: sockPath });
    c.on('connect', () => c.write('hello'));
    c.on('data', (b: Buffer) => (reply += b.toString()));
    c.on('error', reject);
    c.on('close', () => resolve(reply));
  });
}

describe('zoopa proxy with sockets passed by systemd-socket-activate', { timeout: 60_000 }, () => {
  test('each named socket goes to its ZOOPA_UPSTREAM_<NAME>, the others to ZOOPA_UPSTREAM', async () => {
    const base = tmpDir('zoopa-proxy-act-');
    const main = await answering('main');
    const api = await answering('api');
    const mainSock = path.join(base, 'main.sock');
    const apiSock = path.join(base, 'api.sock');
    const p = await activate(base, 'multi', [mainSock, apiSock], { ZOOPA_UPSTREAM: `127.0.0.1:${main.port}`, ZOOPA_UPSTREAM_WEB_API: `127.0.0.1:${api.port}`, ZOOPA_STACK_UNIT: 'none' }, [
      'zoopa-ondemand@multi.socket',
      'web-api',
    ]);
    assert.equal(await ask(mainSock), 'main\n');
    assert.equal(await ask(apiSock), 'api\n');
    assert.match(p.output(), new RegExp(`fd zoopa-ondemand@multi\\.socket → 127\\.0\\.0\\.1:${main.port}, fd web-api → 127\\.0\\.0\\.1:${api.port}`));
    p.child.kill('SIGTERM');
    assert.deepEqual(await p.exit, { code: 0, signal: null }, p.output());
    fs.rmSync(base, { recursive: true, force: true });
  });

  test('traffic idle: a silent open connection does not keep it awake; it is closed and the proxy exits 0', async () => {
    const base = tmpDir('zoopa-proxy-act-');
    const up = await answering('up');
    const sock = path.join(base, 'p.sock');
    const p = await activate(base, 'quiet', [sock], { ZOOPA_UPSTREAM: `127.0.0.1:${up.port}`, ZOOPA_STACK_UNIT: 'none', ZOOPA_IDLE_TIMEOUT: '1s' });
    assert.equal(await ask(sock), 'up\n');
    const silent = net.connect({ path: sock });
    const silentClosed = once(silent, 'close');
    await waitFor(() => readProxyState('quiet', p.env)?.connections === 1, { what: 'the silent connection' });
    assert.equal(typeof readProxyState('quiet', p.env)?.idleDeadline, 'number', 'an idle stop is planned although a connection is open');
    assert.deepEqual(await p.exit, { code: 0, signal: null }, p.output());
    await silentClosed;
    assert.match(p.output(), /quiet: idle for \d+s; closed 1 silent connection\(s\); exiting/);
    fs.rmSync(base, { recursive: true, force: true });
  });

  test('connections idle mode: no idle stop while a connection is open; after the last one closes it exits 0', async () => {
    const base = tmpDir('zoopa-proxy-act-');
    const up = await answering('up');
    const sock = path.join(base, 'p.sock');
    const p = await activate(base, 'held', [sock], {
      ZOOPA_UPSTREAM: `127.0.0.1:${up.port}`,
      ZOOPA_STACK_UNIT: 'none',
      ZOOPA_IDLE_TIMEOUT: '1s',
      ZOOPA_IDLE_MODE: 'connections',
    });
    const open = net.connect({ path: sock });
    await waitFor(() => readProxyState('held', p.env)?.state === 'awake' && readProxyState('held', p.env)?.connections === 1, { what: 'one open connection' });
    assert.equal(readProxyState('held', p.env)?.idleDeadline, null, 'no idle stop planned while a connection is open');
    assert.equal(p.child.exitCode, null);
    open.end();
    assert.deepEqual(await p.exit, { code: 0, signal: null }, p.output());
    assert.match(p.output(), /held: idle for \d+s; exiting/);
    fs.rmSync(base, { recursive: true, force: true });
  });
});
