/**
 * On demand, end to end: real systemd socket activation in an isolated user manager,
 * real rootless podman stacks, a real nginx in front of the unix socket.
 *
 *  - the original's setup, driven exactly as its README says: its env file (with the
 *    README's trailing comment), `systemctl --user enable --now zoopa-ondemand-dir.service`
 *    and `zoopa-ondemand@<stack>.socket`;
 *  - a slow app (3 s before it listens): 50 concurrent first requests through nginx
 *    give 50 × HTTP 200, with exactly one stack start;
 *  - `zoopa ondemand enable` (zoopa.yaml), idle stop, a stack started by hand is not
 *    stopped, a veto (stop_check) postpones the stop;
 *  - a stack whose image is missing: through nginx a 502 within seconds (not the start
 *    timeout), one log line naming the image; once the image exists the next request
 *    wakes the stack (podman-compose 1.0.3 exits 0 here: the proxy asks podman why);
 *  - a container that exits a moment after `up`: 502 within seconds, the log names it and its exit
 *    code; once its compose file is fixed the next request wakes it.
 *
 * The proxy's data path (integrity, half-close, never-ready upstream, continuous
 * requests across an idle stop) is tested with the proxy (test/integration/proxy*).
 *
 *   npm run build && node scripts/run-tests.mjs ondemand
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { freePort, httpGet, IMAGE, useTestbed, type Nginx } from '../testbed/index.js';
import { activeState, composeUps, containerStarts, crashingStack, imageStack, proxyLines, runningContainers, socketOf, status, tally, unitStates } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };

describe('on demand: the original setup, unchanged, and a slow app', () => {
  const bed = useTestbed({ name: 'ondemand-orig' });
  let slow: StackFixture;
  let nginx: Nginx;

  it('installs, and the README commands enable the directory helper and the socket', async () => {
    const tb = bed();
    slow = httpStack(tb.root, 'slow', { port: await freePort(), startDelaySec: 3 });
    // No zoopa.yaml at all: the original's layout.
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    for (const u of ['zoopa-ondemand-dir.service', 'zoopa-ondemand@.socket', 'zoopa-ondemand@.service']) assert.match(inst.stdout, new RegExp(`\\+ ${u.replace(/[.@]/g, '\\$&')}`));
    // The original README's env file, byte for byte (with its trailing comments).
    tb.writeFile(
      path.join(tb.home, '.config', 'zoopa-ondemand', 'slow.env'),
      `ZOOPA_UPSTREAM=127.0.0.1:${slow.port}\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n# ZOOPA_STACK_UNIT=<stack>-stack.service   # optional override\n`,
      0o600,
    );
    for (const unit of ['zoopa-ondemand-dir.service', 'zoopa-ondemand@slow.socket']) {
      const r = await tb.systemctl(['enable', '--now', unit]);
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
    }
    const dir = path.join(tb.runtimeDir, 'ondemand');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o711, '%t/ondemand mode');
    const st = fs.statSync(socketOf(tb, 'slow'));
    assert.ok(st.isSocket(), 'the socket nginx connects to exists');
    assert.equal(st.mode & 0o777, 0o666, 'socket mode');
    const states = await unitStates(tb, ['zoopa-ondemand@slow.socket', 'zoopa-ondemand@slow.service', 'slow-stack.service']);
    assert.equal(states.get('zoopa-ondemand@slow.socket')!.active, 'active');
    assert.equal(states.get('zoopa-ondemand@slow.socket')!.enabled, 'enabled');
    assert.equal(states.get('zoopa-ondemand@slow.service')!.active, 'inactive', 'no proxy before the first connection');
    assert.equal(states.get('slow-stack.service')!.active, 'inactive', 'asleep');
    assert.deepEqual(await runningContainers(tb, 'slow'), []);
    const s = (await status(tb)).get('slow')!;
    assert.equal(s.ondemand?.state, 'sleeping');
  });

  it('50 concurrent first requests through nginx to a 3 s app: 50 × HTTP 200, exactly one stack start', async () => {
    const tb = bed();
    nginx = await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'slow')}` }]);
    const before = await containerStarts(tb, 'slow');
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        httpGet(`${nginx.url}/`, { timeoutMs: 110_000 }).then(
          (r) => (r.status === 200 && r.body === slow.expectBody ? 200 : `${r.status} ${JSON.stringify(r.body.slice(0, 60))}`),
          (e: Error) => `error: ${e.message}`,
        ),
      ),
    );
    assert.deepEqual(tally(results), { 200: 50 }, `nginx error log:\n${nginx.errorLog().slice(-2000)}\nmanager log:\n${tb.managerLog().slice(-3000)}`);
    assert.equal(await containerStarts(tb, 'slow'), before + 1, 'the container started exactly once');
    assert.equal(composeUps(tb, 'slow_web_1'), 1, 'the stack unit ran podman-compose up exactly once');
    assert.equal(await activeState(tb, 'slow-stack.service'), 'active');
    const s = (await status(tb)).get('slow')!;
    assert.ok(s.ondemand && ['awake', 'waking'].includes(s.ondemand.state), `status: ${JSON.stringify(s.ondemand)}`);
    assert.equal(s.ondemand!.owned, true, 'zoopa owns the start');
    assert.ok(s.ondemand!.lastWake, 'the last wake is reported');
  });

  it('the proxy runs with the env file over the unit defaults, as the original did', async () => {
    const tb = bed();
    const pid = (await unitStates(tb, ['zoopa-ondemand@slow.service'])).get('zoopa-ondemand@slow.service')!.mainPid;
    assert.ok(pid > 0, 'the proxy runs');
    const environ = new Map(
      fs
        .readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    assert.equal(environ.get('ZOOPA_UPSTREAM'), `127.0.0.1:${slow.port}`);
    assert.equal(environ.get('ZOOPA_STACK_UNIT'), 'slow-stack.service', 'the unit default applies when the file does not set it');
    assert.match(environ.get('ZOOPA_IDLE_TIMEOUT') ?? '', /^600\b/, 'from the env file (systemd keeps the trailing comment; the proxy drops it)');
    assert.equal(environ.get('LISTEN_FDNAMES'), 'zoopa-ondemand@slow.socket');
  });
});

describe('on demand: zoopa ondemand enable, idle stop, a stack started by hand, a veto', () => {
  const bed = useTestbed({ name: 'ondemand-idle' });
  let quick: StackFixture;

  it('zoopa ondemand enable writes zoopa.yaml, installs and starts the socket', async () => {
    const tb = bed();
    quick = httpStack(tb.root, 'quick', { port: await freePort() });
    const r = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'quick', '--upstream', `127.0.0.1:${quick.port}`, '--idle', '3s']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /enabled and started zoopa-ondemand-dir\.service, zoopa-ondemand@quick\.socket/);
    assert.match(fs.readFileSync(path.join(tb.root, 'zoopa.yaml'), 'utf8'), /quick:\n {4}ondemand:\n {6}upstream: 127\.0\.0\.1:\d+\n {6}idle: 3s\n/);
    const envFile = fs.readFileSync(path.join(tb.configHome, 'zoopa-ondemand', 'quick.env'), 'utf8');
    assert.match(envFile, /^# Generated by zoopa/);
    assert.match(envFile, /\nZOOPA_IDLE_TIMEOUT=3\n/);
    assert.equal(fs.statSync(path.join(tb.configHome, 'zoopa-ondemand', 'quick.env')).mode & 0o777, 0o600);
    const st = await unitStates(tb, ['zoopa-ondemand@quick.socket', 'zoopa-ondemand-dir.service', 'quick-stack.service']);
    assert.equal(st.get('zoopa-ondemand@quick.socket')!.active, 'active');
    assert.equal(st.get('zoopa-ondemand@quick.socket')!.enabled, 'enabled');
    assert.equal(st.get('zoopa-ondemand-dir.service')!.enabled, 'enabled');
    assert.equal(st.get('quick-stack.service')!.active, 'inactive');
    // Again: nothing to change, still fine.
    const again = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'quick']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /settings unchanged/);
  });

  it('a request wakes the stack; after the idle timeout it is stopped and the proxy exits', async () => {
    const tb = bed();
    const r = await httpGet('http://quick/', { socketPath: path.join(tb.runtimeDir, 'ondemand', 'quick.sock'), timeoutMs: 110_000 });
    assert.equal(r.status, 200);
    assert.equal(r.body, quick.expectBody);
    await tb.waitFor(async () => (await activeState(tb, 'quick-stack.service')) === 'inactive', { ...DEADLINE, what: 'the idle stop of quick-stack.service' });
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@quick.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit' });
    assert.deepEqual(await runningContainers(tb, 'quick'), []);
    assert.equal(await activeState(tb, 'zoopa-ondemand@quick.socket'), 'active', 'the socket listens on');
    const s = (await status(tb)).get('quick')!;
    assert.equal(s.ondemand?.state, 'sleeping');
    assert.equal(s.ondemand?.owned, false);
  });

  it('a stack started by hand is not stopped at idle', async () => {
    const tb = bed();
    const up = await tb.zoopa(['--root', tb.root, 'up', 'quick'], { timeoutMs: 120_000 });
    assert.equal(up.status, 0, up.stderr);
    await tb.waitFor(async () => (await httpGet(quick.url).catch(() => undefined))?.status === 200, { ...DEADLINE, what: 'quick to answer' });
    const r = await httpGet('http://quick/', { socketPath: path.join(tb.runtimeDir, 'ondemand', 'quick.sock'), timeoutMs: 110_000 });
    assert.equal(r.status, 200);
    assert.equal((await status(tb)).get('quick')!.ondemand?.owned, false, 'zoopa does not own a stack started by hand');
    // The proxy exits at the idle timeout without stopping the stack.
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@quick.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit at idle' });
    assert.equal(await activeState(tb, 'quick-stack.service'), 'active', 'the stack started by hand stays up');
    assert.equal((await runningContainers(tb, 'quick')).length, 1);
    const down = await tb.zoopa(['--root', tb.root, 'down', 'quick'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, down.stderr);
  });

  it('a veto (stop_check) postpones the idle stop until it allows it', async () => {
    const tb = bed();
    const guard = httpStack(tb.root, 'guard', { port: await freePort() });
    const busy = path.join(tb.dir, 'guard-busy');
    tb.writeFile(busy, 'busy\n');
    const yaml = path.join(tb.root, 'zoopa.yaml');
    tb.writeFile(
      yaml,
      fs.readFileSync(yaml, 'utf8') + `  guard:\n    ondemand:\n      upstream: 127.0.0.1:${guard.port}\n      idle: 2s\n      stop_check: [/usr/bin/test, '!', -e, ${busy}]\n`,
    );
    const en = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'guard']);
    assert.equal(en.status, 0, en.stderr);
    assert.match(fs.readFileSync(path.join(tb.configHome, 'zoopa-ondemand', 'guard.env'), 'utf8'), new RegExp(`\\nZOOPA_STOP_CHECK="/usr/bin/test ! -e ${busy}"\\n`));
    const r = await httpGet('http://guard/', { socketPath: path.join(tb.runtimeDir, 'ondemand', 'guard.sock'), timeoutMs: 110_000 });
    assert.equal(r.status, 200);
    // The check runs at the idle timeout and vetoes (the busy file exists): the stack stays up.
    await tb.waitFor(() => tb.managerLog().includes('guard: veto: '), { ...DEADLINE, what: 'a veto log line' });
    assert.equal(await activeState(tb, 'guard-stack.service'), 'active', 'vetoed: still up');
    // The proxy, kept alive by the veto, runs with the env file's values over the
    // unit's Environment= defaults (systemd reads EnvironmentFile= last).
    const pid = (await unitStates(tb, ['zoopa-ondemand@guard.service'])).get('zoopa-ondemand@guard.service')!.mainPid;
    assert.ok(pid > 0, 'the proxy runs');
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('ZOOPA_IDLE_TIMEOUT=2'), `ZOOPA_IDLE_TIMEOUT from the env file, not the default 600: ${environ.filter((e) => e.startsWith('ZOOPA_')).join(' ')}`);
    assert.ok(environ.includes('ZOOPA_STACK_UNIT=guard-stack.service'), 'the default where the env file is silent');
    fs.rmSync(busy);
    await tb.waitFor(async () => (await activeState(tb, 'guard-stack.service')) === 'inactive', { ...DEADLINE, what: 'the stop once the veto lifts' });
    assert.deepEqual(await runningContainers(tb, 'guard'), []);
  });
});

describe('on demand: a stack that cannot start fails fast, and wakes once the cause is fixed', () => {
  const bed = useTestbed({ name: 'ondemand-fail' });

  it('a missing image: nginx answers 502 within 20 s naming the stack, the log names the image; after the image exists the next request gets 200', async () => {
    const tb = bed();
    const missing = 'localhost/zoopa-missing:1';
    const noimg = imageStack(tb, 'noimg', await freePort(), missing);
    const en = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'noimg', '--upstream', `127.0.0.1:${noimg.port}`, '--idle', '10m']);
    assert.equal(en.status, 0, en.stderr);
    const nginx = await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'noimg')}` }]);
    // The deadline is the acceptance bound (20 s, against nginx's 60-s 504 and the 120-s start timeout).
    const r = await httpGet(`${nginx.url}/`, { timeoutMs: 20_000 });
    assert.equal(r.status, 502, r.body);
    assert.match(r.body, /noimg could not be started/);
    assert.doesNotMatch(r.body, /zoopa-missing/, 'no details for the public');
    const failed = () => proxyLines(tb, 'noimg').filter((l) => l.includes('wake failed'));
    await tb.waitFor(() => failed().length === 1, { ...DEADLINE, what: 'the failure line' });
    assert.match(failed()[0]!, /noimg-stack\.service: noimg-stack\.service (started, but|failed to start:) .*service web: image localhost\/zoopa-missing:1 does not exist.*stopped it again/, proxyLines(tb, 'noimg').join('\n'));
    await tb.waitFor(async () => (await activeState(tb, 'noimg-stack.service')) !== 'active', { ...DEADLINE, what: 'the failed start to be stopped again' });
    // The cause is fixed: the next request wakes the stack (no wait for the backoff).
    const tag = await tb.podman(['tag', IMAGE, missing]);
    assert.equal(tag.status, 0, tag.stderr);
    const ok = await httpGet(`${nginx.url}/`, { timeoutMs: 110_000 });
    assert.equal(ok.status, 200, `${ok.body}\n${proxyLines(tb, 'noimg').join('\n')}`);
    assert.equal(ok.body, noimg.expectBody);
    assert.equal(failed().length, 1, 'no second failure');
    await nginx.stop();
    // The app answers before podman-compose up has ended; stopping the unit in the middle of it can hang until TimeoutStopSec.
    await tb.waitFor(async () => (await activeState(tb, 'noimg-stack.service')) === 'active', { ...DEADLINE, what: 'the start job to end' });
    const down = await tb.zoopa(['--root', tb.root, 'down', 'noimg'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, down.stderr);
  });

  it('a container that exits a moment after up: nginx answers 502 within 20 s, the log names the container and its exit code', async () => {
    const tb = bed();
    const crashy = crashingStack(tb, 'crashy', await freePort(), 2, 3);
    const en = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'crashy', '--upstream', `127.0.0.1:${crashy.port}`, '--idle', '10m']);
    assert.equal(en.status, 0, en.stderr);
    const nginx = await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'crashy')}` }]);
    const r = await httpGet(`${nginx.url}/`, { timeoutMs: 20_000 });
    assert.equal(r.status, 502, r.body);
    assert.match(r.body, /crashy could not be started/);
    const failed = () => proxyLines(tb, 'crashy').filter((l) => l.includes('wake failed'));
    await tb.waitFor(() => failed().length === 1, { ...DEADLINE, what: 'the failure line' });
    assert.match(failed()[0]!, /crashy-stack\.service started, but container crashy_web_1 \(image localhost\/zoopa-busybox:latest\) is exited \(exit code 3\).*stopped it again/, proxyLines(tb, 'crashy').join('\n'));
    await tb.waitFor(async () => (await activeState(tb, 'crashy-stack.service')) !== 'active', { ...DEADLINE, what: 'the failed start to be stopped again' });
    // The user fixes the compose file: the next request wakes the stack, without waiting for the backoff.
    const fixed = imageStack(tb, 'crashy', crashy.port, IMAGE);
    const ok = await httpGet(`${nginx.url}/`, { timeoutMs: 110_000 });
    assert.equal(ok.status, 200, `${ok.body}\n${proxyLines(tb, 'crashy').join('\n')}`);
    assert.equal(ok.body, fixed.expectBody);
    await nginx.stop();
    await tb.waitFor(async () => (await activeState(tb, 'crashy-stack.service')) === 'active', { ...DEADLINE, what: 'the start job to end' });
    const down = await tb.zoopa(['--root', tb.root, 'down', 'crashy'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, down.stderr);
  });
});
