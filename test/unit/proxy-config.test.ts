/**
 * zoopa proxy settings: env and flags → ProxySettings, and bad input as an
 * InputError naming the env var or flag and the value (exit 2 through the CLI,
 * nothing started: no socket file, no state file).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { listenerEnvKey } from '../../src/names.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { takeListenFds } from '../../src/proxy/listen-fds.js';
import { replaceRuntimeFile } from '../../src/proxy/runtime-file.js';
import { readProxyState, writeProxyState } from '../../src/proxy/state-file.js';
import { parseUpstream } from '../../src/proxy/upstream.js';
import { isolatedEnv, tmpDir, zoopa } from '../helpers/cli.js';

function inputError(fn: () => unknown, key: string, value?: string): InputError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof InputError, `expected an InputError, got ${String(caught)}`);
  assert.equal(caught.exitStatus, 2);
  assert.ok(caught.message.includes(key) || caught.key === key, `"${caught.message}" names ${key}`);
  if (value !== undefined) assert.ok(caught.message.includes(value), `"${caught.message}" shows the value ${value}`);
  assert.ok(caught.hint, 'has a hint');
  return caught;
}

describe('proxy upstream parsing', () => {
  test('host:port, [v6]:port, names, unix paths and bare ports', () => {
    assert.deepEqual(parseUpstream('127.0.0.1:8080', 'K'), { kind: 'tcp', host: '127.0.0.1', port: 8080, text: '127.0.0.1:8080' });
    assert.deepEqual(parseUpstream('[::1]:3000', 'K'), { kind: 'tcp', host: '::1', port: 3000, text: '[::1]:3000' });
    assert.deepEqual(parseUpstream('app.internal:443', 'K'), { kind: 'tcp', host: 'app.internal', port: 443, text: 'app.internal:443' });
    assert.deepEqual(parseUpstream('localhost:1', 'K'), { kind: 'tcp', host: 'localhost', port: 1, text: 'localhost:1' });
    assert.deepEqual(parseUpstream('/run/user/1000/app.sock', 'K'), { kind: 'unix', path: '/run/user/1000/app.sock', text: '/run/user/1000/app.sock' });
    assert.deepEqual(parseUpstream(' 8080 ', 'K'), { kind: 'tcp', host: '127.0.0.1', port: 8080, text: '127.0.0.1:8080' });
  });

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['localhost', /port is missing/],
    ['app.sock/x', /must be absolute/],
    ['127.0.0.1:0', /outside 1-65535/],
    ['127.0.0.1:70000', /outside 1-65535/],
    ['127.0.0.1:http', /not a number/],
    ['::1:8080', /brackets/],
    ['[::1]8080', /\[address\]:port/],
    ['[nope]:80', /not an IPv6 address/],
    ['bad_host!:80', /neither an IPv4 address nor a host name/],
  ];
  for (const [text, why] of bad) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      const e = inputError(() => parseUpstream(text, 'ZOOPA_UPSTREAM'), 'ZOOPA_UPSTREAM');
      assert.match(e.message, why);
      assert.equal(e.value, text);
    });
  }
});

describe('proxy settings from env and flags', () => {
  test('defaults: 600 s traffic idle, <stack>-stack.service, tcp ready, 120 s start timeout', () => {
    const s = resolveProxySettings('web', { ZOOPA_UPSTREAM: '127.0.0.1:8080' });
    assert.equal(s.stack, 'web');
    assert.equal(s.upstream.text, '127.0.0.1:8080');
    assert.equal(s.idleTimeoutMs, 600_000);
    assert.equal(s.idleMode, 'traffic');
    assert.equal(s.stackUnit, 'web-stack.service');
    assert.deepEqual(s.ready, { kind: 'tcp' });
    assert.equal(s.startTimeoutMs, 120_000);
    assert.equal(s.stopCheck, null);
    assert.equal(s.listen, null);
    assert.equal(s.namedUpstreams.size, 0);
  });

  test('every env var read, spans and seconds alike', () => {
    const s = resolveProxySettings('cryptpad', {
      ZOOPA_UPSTREAM: '/run/app.sock',
      ZOOPA_UPSTREAM_SANDBOX: '127.0.0.1:3003',
      ZOOPA_UPSTREAM_WEB_UI: '[::1]:3001',
      ZOOPA_IDLE_TIMEOUT: '1h30m',
      ZOOPA_IDLE_MODE: 'connections',
      ZOOPA_STACK_UNIT: 'other',
      ZOOPA_READY: 'http:/health?x=1',
      ZOOPA_START_TIMEOUT: '45',
      ZOOPA_STOP_CHECK: '  /usr/local/bin/busy   --stack cryptpad ',
    });
    assert.equal(s.upstream.text, '/run/app.sock');
    assert.equal(s.namedUpstreams.get('SANDBOX')?.text, '127.0.0.1:3003');
    assert.equal(s.namedUpstreams.get(listenerEnvKey('web-ui'))?.text, '[::1]:3001');
    assert.equal(s.idleTimeoutMs, 5_400_000);
    assert.equal(s.idleMode, 'connections');
    assert.equal(s.stackUnit, 'other.service');
    assert.deepEqual(s.ready, { kind: 'http', path: '/health?x=1' });
    assert.equal(s.startTimeoutMs, 45_000);
    assert.deepEqual(s.stopCheck, ['/usr/local/bin/busy', '--stack', 'cryptpad']);
  });

  test("the original README's env file line with a trailing comment still reads as 600", () => {
    const s = resolveProxySettings('web', { ZOOPA_UPSTREAM: '127.0.0.1:8080', ZOOPA_IDLE_TIMEOUT: '600   # optional override (seconds)' });
    assert.equal(s.idleTimeoutMs, 600_000);
  });

  test('0 and infinity never stop; empty values are unset', () => {
    assert.equal(resolveProxySettings('web', { ZOOPA_UPSTREAM: '1.2.3.4:5', ZOOPA_IDLE_TIMEOUT: '0' }).idleTimeoutMs, null);
    assert.equal(resolveProxySettings('web', { ZOOPA_UPSTREAM: '1.2.3.4:5', ZOOPA_IDLE_TIMEOUT: 'infinity' }).idleTimeoutMs, null);
    assert.equal(resolveProxySettings('web', { ZOOPA_UPSTREAM: '1.2.3.4:5', ZOOPA_IDLE_TIMEOUT: '' }).idleTimeoutMs, 600_000);
  });

  test('flags override env; --stack-unit none is a plain proxy; --listen takes paths and HOST:PORT', () => {
    const env = { ZOOPA_UPSTREAM: '127.0.0.1:1', ZOOPA_IDLE_TIMEOUT: '5', ZOOPA_READY: 'tcp', ZOOPA_START_TIMEOUT: '5', ZOOPA_STACK_UNIT: 'x.service' };
    const s = resolveProxySettings('web', env, { upstream: '127.0.0.1:2', idle: '2m', ready: 'http:/', startTimeout: '1s', stackUnit: 'none', listen: 'run/web.sock' }, '/srv');
    assert.equal(s.upstream.text, '127.0.0.1:2');
    assert.equal(s.idleTimeoutMs, 120_000);
    assert.deepEqual(s.ready, { kind: 'http', path: '/' });
    assert.equal(s.startTimeoutMs, 1000);
    assert.equal(s.stackUnit, null);
    assert.deepEqual(s.listen, { kind: 'unix', path: '/srv/run/web.sock' });
    assert.deepEqual(resolveProxySettings('web', env, { listen: '127.0.0.1:0' }).listen, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    assert.deepEqual(resolveProxySettings('web', env, { listen: '[::1]:8080' }).listen, { kind: 'tcp', host: '::1', port: 8080 });
  });

  test('missing upstream names ZOOPA_UPSTREAM and the env file', () => {
    const e = inputError(() => resolveProxySettings('web', {}), 'ZOOPA_UPSTREAM');
    assert.match(e.hint!, /zoopa-ondemand\/web\.env/);
  });

  test('bad values name their env var or flag and the value', () => {
    const up = { ZOOPA_UPSTREAM: '127.0.0.1:8080' };
    inputError(() => resolveProxySettings('web', { ZOOPA_UPSTREAM: 'nohost' }), 'ZOOPA_UPSTREAM', 'nohost');
    inputError(() => resolveProxySettings('web', up, { upstream: 'x:y' }), '--upstream', 'x:y');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_UPSTREAM_API: 'api' }), 'ZOOPA_UPSTREAM_API', 'api');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_IDLE_TIMEOUT: '10 parsecs' }), 'ZOOPA_IDLE_TIMEOUT', '10 parsecs');
    inputError(() => resolveProxySettings('web', up, { idle: 'soon' }), '--idle', 'soon');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_START_TIMEOUT: '0' }), 'ZOOPA_START_TIMEOUT', '0');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_START_TIMEOUT: 'never' }), 'ZOOPA_START_TIMEOUT', 'never');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_IDLE_MODE: 'bytes' }), 'ZOOPA_IDLE_MODE', 'bytes');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_READY: 'http' }), 'ZOOPA_READY', 'http');
    inputError(() => resolveProxySettings('web', up, { ready: 'ping' }), '--ready', 'ping');
    inputError(() => resolveProxySettings('web', { ...up, ZOOPA_STACK_UNIT: 'a b' }), 'ZOOPA_STACK_UNIT', 'a b');
    inputError(() => resolveProxySettings('web', up, { listen: 'nohostport' }), '--listen', 'nohostport');
    inputError(() => resolveProxySettings('web', up, { listen: '127.0.0.1:99999' }), '--listen', '99999');
    inputError(() => resolveProxySettings('Web', up), 'stack', 'Web');
    inputError(() => resolveProxySettings('../etc', up), 'stack', '../etc');
  });
});

describe('systemd socket passing (sd_listen_fds)', () => {
  test('fds 3.. with their names; the LISTEN_* vars are removed', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '4242', LISTEN_FDS: '3', LISTEN_FDNAMES: 'zoopa-ondemand@web.socket:api', OTHER: 'x' };
    assert.deepEqual(takeListenFds(env, 4242), [
      { fd: 3, name: 'zoopa-ondemand@web.socket' },
      { fd: 4, name: 'api' },
      { fd: 5, name: 'unknown' },
    ]);
    assert.deepEqual(env, { OTHER: 'x' });
  });

  test('fds meant for another process are ignored (and the vars still removed)', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1' };
    assert.deepEqual(takeListenFds(env, 4242), []);
    assert.deepEqual(env, {});
    assert.deepEqual(takeListenFds({}, 4242), []);
  });

  test('a garbled LISTEN_FDS is an InputError', () => {
    inputError(() => takeListenFds({ LISTEN_PID: '7', LISTEN_FDS: 'two' }, 7), 'LISTEN_FDS', 'two');
  });
});

describe('state file', () => {
  test('written atomically, read back; a dead proxy reads as sleeping with no connections', () => {
    const base = tmpDir('zoopa-proxy-state-');
    const env = isolatedEnv(base);
    fs.mkdirSync(path.join(env.XDG_RUNTIME_DIR!, 'ondemand'), { recursive: true });
    const state = {
      stack: 'web',
      pid: process.pid,
      state: 'awake' as const,
      owned: false,
      connections: 3,
      bytesIn: 10,
      bytesOut: 20,
      idleDeadline: 1234,
      lastWake: { at: '2026-01-01T00:00:00.000Z', peer: '127.0.0.1:5555' },
      updatedAt: 99,
    };
    assert.equal(writeProxyState(state, env), null);
    assert.deepEqual(fs.readdirSync(path.join(env.XDG_RUNTIME_DIR!, 'ondemand')), ['web.state.json'], 'no temp file left');
    assert.deepEqual(readProxyState('web', env), state);
    // A pid that cannot be alive (beyond pid_max).
    writeProxyState({ ...state, pid: 2 ** 30 }, env);
    assert.deepEqual(readProxyState('web', env), { ...state, pid: null, state: 'sleeping', connections: 0, idleDeadline: null });
    assert.equal(readProxyState('nothing', env), null);
    fs.rmSync(base, { recursive: true, force: true });
  });
});

describe('bounds settings', () => {
  test('ZOOPA_MAX_HELD defaults to 1024 and takes a whole number; ZOOPA_CONN_IDLE_TIMEOUT is off by default', () => {
    const d = resolveProxySettings('web', { ZOOPA_UPSTREAM: '127.0.0.1:8080' });
    assert.equal(d.maxHeld, 1024);
    assert.equal(d.connIdleTimeoutMs, null);
    const s = resolveProxySettings('web', { ZOOPA_UPSTREAM: '127.0.0.1:8080', ZOOPA_MAX_HELD: '50', ZOOPA_CONN_IDLE_TIMEOUT: '5m' });
    assert.equal(s.maxHeld, 50);
    assert.equal(s.connIdleTimeoutMs, 300_000);
    assert.equal(resolveProxySettings('web', { ZOOPA_UPSTREAM: '1', ZOOPA_CONN_IDLE_TIMEOUT: '0' }).connIdleTimeoutMs, null);
    for (const bad of ['0', '-1', '1.5', '10k', '2000000']) inputError(() => resolveProxySettings('web', { ZOOPA_UPSTREAM: '1', ZOOPA_MAX_HELD: bad }), 'ZOOPA_MAX_HELD', bad);
    inputError(() => resolveProxySettings('web', { ZOOPA_UPSTREAM: '1', ZOOPA_CONN_IDLE_TIMEOUT: 'soon' }), 'ZOOPA_CONN_IDLE_TIMEOUT', 'soon');
  });
});

describe('runtime files', () => {
  test('replaced through an exclusive temp file, mode 0600; on an error nothing is left behind', () => {
    const base = tmpDir('zoopa-proxy-runtime-');
    const file = path.join(base, 'web.state.json');
    fs.writeFileSync(file, 'old\n', { mode: 0o644 });
    replaceRuntimeFile(file, 'new\n');
    assert.equal(fs.readFileSync(file, 'utf8'), 'new\n');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    // The target is a directory: the rename fails, the temp file goes.
    const dir = path.join(base, 'taken');
    fs.mkdirSync(path.join(dir, 'inside'), { recursive: true });
    assert.throws(() => replaceRuntimeFile(dir, 'x'));
    assert.deepEqual(fs.readdirSync(base).sort(), ['taken', 'web.state.json']);
    fs.rmSync(base, { recursive: true, force: true });
  });
});

describe('zoopa proxy: bad input through the CLI', () => {
  const cases: Array<[string, NodeJS.ProcessEnv, string[], RegExp]> = [
    ['missing upstream', {}, [], /ZOOPA_UPSTREAM is not set/],
    ['bad upstream', { ZOOPA_UPSTREAM: 'web:port' }, [], /ZOOPA_UPSTREAM="web:port" is not a valid upstream/],
    ['bad idle', { ZOOPA_UPSTREAM: '127.0.0.1:1', ZOOPA_IDLE_TIMEOUT: 'ten' }, [], /ZOOPA_IDLE_TIMEOUT="ten" is not a duration/],
    ['bad idle mode', { ZOOPA_UPSTREAM: '127.0.0.1:1', ZOOPA_IDLE_MODE: 'lazy' }, [], /ZOOPA_IDLE_MODE="lazy"/],
    ['bad stack name', { ZOOPA_UPSTREAM: '127.0.0.1:1' }, [], /"BAD" is not a stack name/],
    ['bad flag value', { ZOOPA_UPSTREAM: '127.0.0.1:1' }, ['--start-timeout', 'later'], /--start-timeout="later" is not a duration/],
    ['bad max held', { ZOOPA_UPSTREAM: '127.0.0.1:1', ZOOPA_MAX_HELD: 'lots' }, [], /ZOOPA_MAX_HELD="lots" is not a count of connections/],
    ['bad connection idle timeout', { ZOOPA_UPSTREAM: '127.0.0.1:1', ZOOPA_CONN_IDLE_TIMEOUT: 'soon' }, [], /ZOOPA_CONN_IDLE_TIMEOUT="soon" is not a duration/],
  ];
  for (const [name, extra, flags, message] of cases) {
    test(`${name}: exit 2, clear message, nothing created`, async () => {
      const base = tmpDir('zoopa-proxy-cli-');
      const env = { ...isolatedEnv(base), ...extra };
      const sock = path.join(base, 'p.sock');
      const stack = name === 'bad stack name' ? 'BAD' : 'web';
      const r = await zoopa(['proxy', stack, '--listen', sock, ...flags], { env });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /hint: /);
      assert.equal(fs.existsSync(sock), false, 'no socket was created');
      assert.equal(fs.existsSync(path.join(env.XDG_RUNTIME_DIR!, 'ondemand')), false, 'no state or marker was written');
      fs.rmSync(base, { recursive: true, force: true });
    });
  }

  test('no socket from systemd and no --listen: exit 2 before anything', async () => {
    const base = tmpDir('zoopa-proxy-cli-');
    const env = { ...isolatedEnv(base), ZOOPA_UPSTREAM: '127.0.0.1:1' };
    const r = await zoopa(['proxy', 'web'], { env });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no socket to listen on/);
    fs.rmSync(base, { recursive: true, force: true });
  });
});
