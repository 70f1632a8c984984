/**
 * zoopa proxy under real systemd socket activation, in the test bed's isolated
 * user manager. The units here are hand-written and minimal (the ondemand
 * feature tests its rendered units): a socket `zoopa-ondemand@.socket`, the
 * proxy service `zoopa-ondemand@.service` running `zoopa proxy %i` with the
 * original's env file, and per stack a `<stack>-stack.service` running a small
 * Node app that logs its start, the moment it listens (after a delay) and its
 * stop (which can take a while, like `podman-compose down`).
 *
 *  - 50 concurrent first connections to a slow app: 50 answers, one start;
 *  - idle stop: the stack stops, the marker goes, the proxy exits 0;
 *  - a stack started by hand is proxied and not stopped at idle;
 *  - a veto postpones the stop;
 *  - requests fired continuously across idle stops (and into the stop itself): none fails;
 *  - a stack being stopped by hand when a connection arrives: held, started again, served;
 *  - an app never ready: clients answered 502 after the start timeout, one log line, the next connection tries again;
 *  - two listeners (LISTEN_FDNAMES): each to its upstream, one stack, one start;
 *  - a start job that fails: 502 at once, one line with the cause, no start again during the
 *    backoff, and the next connection after it wakes the stack;
 *  - a start by hand while zoopa's idle stop runs (unit deactivating): the stop is cancelled,
 *    logged as such, and the stack stays up through later idle timeouts;
 *  - a restart by hand (a new InvocationID) makes the run the user's: not stopped at idle;
 *  - runtime files (state, owned marker) are mode 0600.
 *
 * Nothing asserts on durations: waits have deadlines only.
 *
 *   npm run build && node scripts/run-tests.mjs integration proxy
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readProxyState } from '../../src/proxy/state-file.js';
import { freePort, httpGet, sleep, useTestbed, type Testbed } from '../testbed/index.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 100 };

/** The app each test stack runs (a stand-in for a stack's containers); see its header. */
const APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'standins', 'stack-app.mjs');

interface StackOptions {
  /** ms before the app listens */
  delayMs?: number;
  /** ms the app takes to stop */
  stopDelayMs?: number;
  /** extra env file lines */
  env?: Record<string, string>;
  /** a second port, served on the api listener */
  apiPort?: number;
  /** ExecStartPre= line (a start job that fails while it does) */
  execStartPre?: string;
}

interface TestStack {
  name: string;
  port: number;
  sock: string;
  log: string;
  /** Lines of the app's log. */
  lines(): string[];
  count(word: string): number;
}

function unitDir(tb: Testbed): string {
  return path.join(tb.configHome, 'systemd', 'user');
}

/** The proxy's socket and service templates, like the original's. */
function writeProxyUnits(tb: Testbed): void {
  const zoopa = path.join(tb.appDir, 'bin', 'zoopa.js');
  tb.writeFile(path.join(unitDir(tb), 'zoopa-ondemand@.socket'), ['[Socket]', 'ListenStream=%t/ondemand/%i.sock', 'SocketMode=0666', 'DirectoryMode=0711', ''].join('\n'));
  tb.writeFile(
    path.join(unitDir(tb), 'zoopa-ondemand@.service'),
    [
      '[Service]',
      'Environment=ZOOPA_STACK_UNIT=%i-stack.service ZOOPA_IDLE_TIMEOUT=600',
      'EnvironmentFile=-%h/.config/zoopa-ondemand/%i.env',
      `ExecStart=${process.execPath} ${zoopa} proxy %i`,
      '',
    ].join('\n'),
  );
  tb.writeFile(path.join(tb.home, 'app.mjs'), fs.readFileSync(APP));
}

async function makeStack(tb: Testbed, name: string, o: StackOptions = {}): Promise<TestStack> {
  writeProxyUnits(tb);
  const port = await freePort();
  const log = path.join(tb.home, `${name}.log`);
  tb.writeFile(log, '');
  const args = [process.execPath, path.join(tb.home, 'app.mjs'), String(port), String(o.delayMs ?? 0), log, ...(o.apiPort ? [String(o.apiPort)] : [])];
  tb.writeFile(
    path.join(unitDir(tb), `${name}-stack.service`),
    ['[Service]', `Environment=STOP_DELAY_MS=${o.stopDelayMs ?? 0}`, ...(o.execStartPre ? [`ExecStartPre=${o.execStartPre}`] : []), `ExecStart=${args.join(' ')}`, ''].join('\n'),
  );
  const env = { ZOOPA_UPSTREAM: `127.0.0.1:${port}`, ...o.env };
  tb.writeFile(
    path.join(tb.configHome, 'zoopa-ondemand', `${name}.env`),
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    0o600,
  );
  const lines = () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return {
    name,
    port,
    sock: path.join(tb.runtimeDir, 'ondemand', `${name}.sock`),
    log,
    lines,
    count: (word) => lines().filter((l) => l.split(' ')[0] === word).length,
  };
}

async function ok(r: Promise<{ status: number | null }> | { status: number | null }, what: string): Promise<void> {
  const res = await r;
  assert.equal(res.status, 0, `${what}: ${JSON.stringify(res)}`);
}

async function activeState(tb: Testbed, unit: string): Promise<string> {
  return (await tb.systemctl(['show', '-P', 'ActiveState', unit])).stdout.trim();
}

async function show(tb: Testbed, unit: string, prop: string): Promise<string> {
  return (await tb.systemctl(['show', '-P', prop, unit])).stdout.trim();
}

async function startSocket(tb: Testbed, name: string): Promise<void> {
  await ok(tb.systemctl(['daemon-reload']), 'daemon-reload');
  await ok(tb.systemctl(['start', `zoopa-ondemand@${name}.socket`]), `start ${name} socket`);
}

/** GET / through the stack's socket. */
function get(s: TestStack, timeoutMs = 110_000) {
  return httpGet(`http://${s.name}/`, { socketPath: s.sock, timeoutMs });
}

/** The proxy's lines for a stack, without the level label ("error: ", "warning: ") or journal prefix ("<3>"). */
function proxyLog(tb: Testbed, name: string): string[] {
  return tb
    .managerLog()
    .split('\n')
    .map((l) => l.replace(/^(<\d>|error: |warning: )/, ''))
    .filter((l) => l.startsWith(`${name}: `));
}

function markerPath(tb: Testbed, name: string): string {
  return path.join(tb.runtimeDir, 'ondemand', `${name}.owned`);
}

describe('zoopa proxy under systemd socket activation', () => {
  const bed = useTestbed({ name: 'proxy', image: false });

  it('50 concurrent first connections to a slow app: 50 answers, one start', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'slow', { delayMs: 3000 });
    await startSocket(tb, 'slow');
    assert.equal(await activeState(tb, 'slow-stack.service'), 'inactive');
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        get(s).then(
          (r) => (r.status === 200 && r.body.startsWith('main ') ? 'ok' : `${r.status} ${r.body.slice(0, 60)}`),
          (e: Error) => `error: ${e.message}`,
        ),
      ),
    );
    const tally = results.reduce<Record<string, number>>((t, r) => ({ ...t, [r]: (t[r] ?? 0) + 1 }), {});
    assert.deepEqual(tally, { ok: 50 }, tb.managerLog().slice(-3000));
    assert.equal(s.count('start'), 1, 'the app started once');
    assert.equal(await activeState(tb, 'slow-stack.service'), 'active');
    const log = proxyLog(tb, 'slow');
    assert.equal(log.filter((l) => l.startsWith('slow: wake: ')).length, 1, log.join('\n'));
    assert.equal(log.filter((l) => l.startsWith('slow: ready: ')).length, 1, log.join('\n'));
    assert.ok(fs.existsSync(markerPath(tb, 'slow')), 'the owned marker is written');
    const st = readProxyState('slow', tb.env);
    assert.equal(st?.state, 'awake');
    assert.equal(st?.owned, true);
    assert.ok(st?.lastWake, 'the last wake is recorded');
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@slow.socket', 'zoopa-ondemand@slow.service', 'slow-stack.service']), 'stop');
  });

  it('idle: the stack it started is stopped, the marker removed, the proxy exits 0', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'idle', { env: { ZOOPA_IDLE_TIMEOUT: '2s' } });
    await startSocket(tb, 'idle');
    const r = await get(s);
    assert.equal(r.status, 200);
    await tb.waitFor(async () => (await activeState(tb, 'idle-stack.service')) === 'inactive', { ...DEADLINE, what: 'the idle stop' });
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@idle.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit' });
    assert.equal(await show(tb, 'zoopa-ondemand@idle.service', 'Result'), 'success');
    assert.equal(await show(tb, 'zoopa-ondemand@idle.service', 'ExecMainStatus'), '0');
    assert.equal(fs.existsSync(markerPath(tb, 'idle')), false, 'the marker is removed');
    assert.equal(s.count('stopped'), 1);
    assert.ok(proxyLog(tb, 'idle').some((l) => /^idle: idle stop: nothing moved for \d+s; stopping idle-stack\.service \(started by zoopa\)/.test(l)), proxyLog(tb, 'idle').join('\n'));
    assert.equal(readProxyState('idle', tb.env)?.state, 'sleeping');
    assert.equal(await activeState(tb, 'zoopa-ondemand@idle.socket'), 'active', 'the socket listens on');
    // And it wakes again.
    assert.equal((await get(s)).status, 200);
    assert.equal(s.count('start'), 2);
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@idle.socket', 'zoopa-ondemand@idle.service', 'idle-stack.service']), 'stop');
  });

  it('a stack started by hand is proxied and left running at idle', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'hand', { env: { ZOOPA_IDLE_TIMEOUT: '2s' } });
    await ok(tb.systemctl(['daemon-reload']), 'daemon-reload');
    await ok(tb.systemctl(['start', 'hand-stack.service']), 'start by hand');
    await tb.waitFor(() => s.count('listening') === 1, { ...DEADLINE, what: 'the app to listen' });
    await startSocket(tb, 'hand');
    const r = await get(s);
    assert.equal(r.status, 200);
    assert.equal(fs.existsSync(markerPath(tb, 'hand')), false, 'not owned');
    assert.equal(readProxyState('hand', tb.env)?.owned, false);
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@hand.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit at idle' });
    assert.equal(await show(tb, 'zoopa-ondemand@hand.service', 'Result'), 'success');
    assert.equal(await activeState(tb, 'hand-stack.service'), 'active', 'still up');
    assert.equal(s.count('stopping'), 0);
    assert.ok(proxyLog(tb, 'hand').some((l) => l.includes('leaving hand-stack.service running (not started by zoopa)')));
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@hand.socket', 'hand-stack.service']), 'stop');
  });

  it('a veto postpones the stop until it allows it', async () => {
    const tb = bed();
    const busy = path.join(tb.home, 'veto-busy');
    tb.writeFile(busy, 'busy\n');
    const s = await makeStack(tb, 'veto', { env: { ZOOPA_IDLE_TIMEOUT: '1s', ZOOPA_STOP_CHECK: `/usr/bin/test ! -e ${busy}` } });
    await startSocket(tb, 'veto');
    assert.equal((await get(s)).status, 200);
    await tb.waitFor(() => proxyLog(tb, 'veto').filter((l) => l.startsWith('veto: veto: ')).length >= 2, { ...DEADLINE, what: 'two vetoes' });
    assert.equal(await activeState(tb, 'veto-stack.service'), 'active', 'vetoed: still up');
    assert.equal(s.count('stopping'), 0);
    assert.match(proxyLog(tb, 'veto').find((l) => l.startsWith('veto: veto: '))!, /\/usr\/bin\/test '?!'? -e .* exited with 1; the stop of veto-stack\.service is postponed by 1s/);
    fs.rmSync(busy);
    await tb.waitFor(async () => (await activeState(tb, 'veto-stack.service')) === 'inactive', { ...DEADLINE, what: 'the stop once the veto lifts' });
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@veto.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit' });
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@veto.socket']), 'stop');
  });

  it('requests fired continuously across idle stops, and into a stop in progress: none fails', async () => {
    const tb = bed();
    // Stopping takes 1.5 s (like podman-compose down), so requests land in it.
    const s = await makeStack(tb, 'cont', { delayMs: 300, stopDelayMs: 1500, env: { ZOOPA_IDLE_TIMEOUT: '1s' } });
    await startSocket(tb, 'cont');
    const failures: string[] = [];
    let done = 0;
    const one = async (): Promise<void> => {
      try {
        const r = await get(s, 60_000);
        if (r.status !== 200 || !r.body.startsWith('main ')) failures.push(`${r.status} ${r.body.slice(0, 80)}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      done++;
    };
    // A steady trickle with pauses longer than the idle timeout now and then...
    const trickle = (async () => {
      for (let i = 0; i < 24; i++) {
        await one();
        await sleep(i % 6 === 5 ? 2500 : 150);
      }
    })();
    // ...and bursts whenever the proxy says it is stopping the stack.
    let bursts = 0;
    const burster = (async () => {
      while (bursts < 2) {
        await tb.waitFor(() => readProxyState('cont', tb.env)?.state === 'stopping', { timeoutMs: 120_000, intervalMs: 20, what: 'a stop in progress' });
        bursts++;
        await Promise.all(Array.from({ length: 10 }, one));
        await tb.waitFor(() => readProxyState('cont', tb.env)?.state !== 'stopping', { ...DEADLINE, what: 'the stop to end' });
      }
    })();
    await Promise.all([trickle, burster]);
    assert.deepEqual(failures, [], tb.managerLog().slice(-3000));
    assert.equal(done, 24 + 20);
    assert.ok(s.count('stopped') >= 2, `idle stops happened: ${s.lines().join(', ')}`);
    assert.ok(s.count('start') >= 3, 'and the stack woke again each time');
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@cont.socket', 'zoopa-ondemand@cont.service', 'cont-stack.service']), 'stop');
  });

  it('a stack being stopped (by hand) when a connection arrives: held, started again after the stop, served', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'deact', { stopDelayMs: 3000 });
    await startSocket(tb, 'deact');
    assert.equal((await get(s)).status, 200);
    await ok(tb.systemctl(['stop', '--no-block', 'deact-stack.service']), 'stop by hand');
    await tb.waitFor(async () => (await activeState(tb, 'deact-stack.service')) === 'deactivating' && s.count('stopping') === 1, { ...DEADLINE, what: 'deactivating' });
    const r = await get(s);
    assert.equal(r.status, 200);
    assert.deepEqual(
      s.lines().map((l) => l.split(' ')[0]),
      ['start', 'listening', 'stopping', 'stopped', 'start', 'listening'],
      'served by the app started after the stop finished',
    );
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@deact.socket', 'zoopa-ondemand@deact.service', 'deact-stack.service']), 'stop');
  });

  it('an app never ready: HTTP clients answered 502 after the start timeout, one log line, the next connection tries again', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'never', { delayMs: 8000, env: { ZOOPA_START_TIMEOUT: '2s' } });
    await startSocket(tb, 'never');
    const first = await Promise.all(Array.from({ length: 3 }, () => get(s).then((r) => `${r.status} ${r.body}`, (e: Error) => `error: ${e.message}`)));
    // HTTP clients get a 502 naming the stack (never the cause's details); others are closed.
    for (const f of first) assert.match(f, /^502 never could not be started; the administrator can see why with "zoopa status never"/);
    await tb.waitFor(() => proxyLog(tb, 'never').some((l) => l.includes('wake failed')), { ...DEADLINE, what: 'the failure log line' });
    const fails = proxyLog(tb, 'never').filter((l) => l.includes('wake failed'));
    assert.equal(fails.length, 1, proxyLog(tb, 'never').join('\n'));
    assert.match(fails[0]!, /never-stack\.service: 127\.0\.0\.1:\d+ was not ready within 2 s .*closed 3 waiting connection\(s\); the next connection tries again/);
    assert.equal(await activeState(tb, 'zoopa-ondemand@never.service'), 'active', 'the proxy keeps running');
    await tb.waitFor(() => s.count('listening') === 1, { ...DEADLINE, what: 'the app to listen at last' });
    const again = await get(s);
    assert.equal(again.status, 200);
    assert.equal(s.count('start'), 1, 'the unit was started once; the second wake only waited for it');
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@never.socket', 'zoopa-ondemand@never.service', 'never-stack.service']), 'stop');
  });

  it('two listeners (LISTEN_FDNAMES): each reaches its own upstream, one stack, one start', async () => {
    const tb = bed();
    const apiPort = await freePort();
    const s = await makeStack(tb, 'multi', { delayMs: 1000, apiPort, env: { ZOOPA_UPSTREAM_API: `127.0.0.1:${apiPort}` } });
    tb.writeFile(
      path.join(unitDir(tb), 'multi-api.socket'),
      ['[Socket]', 'ListenStream=%t/ondemand/multi.api.sock', 'SocketMode=0666', 'FileDescriptorName=api', 'Service=zoopa-ondemand@multi.service', ''].join('\n'),
    );
    await ok(tb.systemctl(['daemon-reload']), 'daemon-reload');
    await ok(tb.systemctl(['start', 'zoopa-ondemand@multi.socket', 'multi-api.socket']), 'start sockets');
    const apiSock = path.join(tb.runtimeDir, 'ondemand', 'multi.api.sock');
    const [main, api] = await Promise.all([get(s), httpGet('http://multi/', { socketPath: apiSock, timeoutMs: 110_000 })]);
    assert.equal(main.status, 200);
    assert.match(main.body, /^main /);
    assert.equal(api.status, 200);
    assert.match(api.body, /^api /);
    assert.equal(s.count('start'), 1);
    assert.equal(proxyLog(tb, 'multi').filter((l) => l.startsWith('multi: wake: ')).length, 1);
    await ok(tb.systemctl(['stop', 'multi-api.socket', 'zoopa-ondemand@multi.socket', 'zoopa-ondemand@multi.service', 'multi-stack.service']), 'stop');
  });

  it('a start job that fails: 502 at once naming the stack, one line with the cause, no new start during the backoff, then the next connection wakes it', async () => {
    const tb = bed();
    const broken = path.join(tb.home, 'failing-broken');
    tb.writeFile(broken, 'broken\n');
    const s = await makeStack(tb, 'failing', { execStartPre: `/usr/bin/test ! -e ${broken}`, env: { ZOOPA_START_TIMEOUT: '100s' } });
    await startSocket(tb, 'failing');
    const first = await Promise.all(Array.from({ length: 3 }, () => get(s, 30_000).then((r) => `${r.status} ${r.body}`, (e: Error) => `error: ${e.message}`)));
    for (const f of first) assert.match(f, /^502 failing could not be started/, 'answered, not held for the start timeout');
    const fails = () => proxyLog(tb, 'failing').filter((l) => l.includes('wake failed'));
    await tb.waitFor(() => fails().length === 1, { ...DEADLINE, what: 'the failure line' });
    assert.match(fails()[0]!, /failing-stack\.service: .*failing-stack\.service.*closed [1-3] waiting connection\(s\); stopped it again; the next connection tries again in \d+s/, proxyLog(tb, 'failing').join('\n'));
    assert.equal(s.count('start'), 0, 'the app never ran');
    const st = readProxyState('failing', tb.env);
    assert.ok(st?.backoffUntil, `a backoff is recorded: ${JSON.stringify(st)}`);
    assert.match(st?.lastFailure?.cause ?? '', /Job for failing-stack\.service failed/, 'the cause is kept for zoopa status');
    // During the backoff: refused at once, without a start job.
    const during = await get(s, 30_000);
    assert.equal(during.status, 502);
    assert.equal(fails().length, 1, 'no second start');
    assert.ok(proxyLog(tb, 'failing').some((l) => /not waking: failing-stack\.service failed to start .*not trying again for \d+s unless the cause is fixed/.test(l)), proxyLog(tb, 'failing').join('\n'));
    // Fixed; once the backoff is over, the next connection wakes the stack.
    fs.rmSync(broken);
    await tb.waitFor(() => Date.now() > (readProxyState('failing', tb.env)?.backoffUntil ?? 0), { ...DEADLINE, what: 'the backoff to end' });
    const after = await get(s);
    assert.equal(after.status, 200, after.body);
    assert.equal(s.count('start'), 1);
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@failing.socket', 'zoopa-ondemand@failing.service', 'failing-stack.service']), 'stop');
  });

  it('a start by hand while the idle stop runs (unit deactivating): the stop is cancelled, logged as such, and the stack stays up through later idle timeouts', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'handstop', { stopDelayMs: 4000, env: { ZOOPA_IDLE_TIMEOUT: '1s' } });
    await startSocket(tb, 'handstop');
    assert.equal((await get(s)).status, 200);
    await tb.waitFor(async () => (await activeState(tb, 'handstop-stack.service')) === 'deactivating' && s.count('stopping') === 1, { ...DEADLINE, what: 'the idle stop in progress' });
    await ok(tb.systemctl(['start', 'handstop-stack.service']), 'start by hand');
    const log = () => proxyLog(tb, 'handstop');
    await tb.waitFor(() => log().some((l) => /idle stop of handstop-stack\.service was canceled/.test(l)), { ...DEADLINE, what: 'the cancelled stop line' });
    assert.ok(!log().some((l) => /idle stop of .* failed/.test(l)), log().join('\n'));
    assert.equal(fs.existsSync(markerPath(tb, 'handstop')), false, 'not zoopa\'s any more');
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@handstop.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit' });
    // Several idle timeouts, each with a fresh proxy: the stack is left running.
    for (let i = 1; i <= 3; i++) {
      assert.equal((await get(s)).status, 200);
      await tb.waitFor(() => log().filter((l) => l.includes('leaving handstop-stack.service running (not started by zoopa)')).length === i, { ...DEADLINE, what: `idle timeout ${i}` });
      await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@handstop.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit' });
    }
    assert.equal(await activeState(tb, 'handstop-stack.service'), 'active', 'still up');
    assert.equal(s.count('stopping'), 1, 'only the cancelled stop ever stopped the app');
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@handstop.socket', 'handstop-stack.service']), 'stop');
  });

  it('a restart by hand makes the run the user\'s (a new InvocationID): not stopped at idle; runtime files are 0600', async () => {
    const tb = bed();
    const s = await makeStack(tb, 'restarted', { env: { ZOOPA_IDLE_TIMEOUT: '10s' } });
    await startSocket(tb, 'restarted');
    assert.equal((await get(s)).status, 200);
    const invocation = await show(tb, 'restarted-stack.service', 'InvocationID');
    await tb.waitFor(() => JSON.parse(fs.readFileSync(markerPath(tb, 'restarted'), 'utf8')).invocation === invocation, { ...DEADLINE, what: 'the marker to record the run' });
    assert.equal(fs.statSync(markerPath(tb, 'restarted')).mode & 0o777, 0o600, 'owned marker mode');
    assert.equal(fs.statSync(path.join(tb.runtimeDir, 'ondemand', 'restarted.state.json')).mode & 0o777, 0o600, 'state file mode');
    await ok(tb.systemctl(['restart', 'restarted-stack.service']), 'restart by hand');
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@restarted.service')) === 'inactive', { ...DEADLINE, what: 'the proxy to exit at idle' });
    assert.ok(proxyLog(tb, 'restarted').some((l) => l.includes('leaving restarted-stack.service running (not started by zoopa)')), proxyLog(tb, 'restarted').join('\n'));
    assert.equal(await activeState(tb, 'restarted-stack.service'), 'active', 'still up');
    assert.equal(fs.existsSync(markerPath(tb, 'restarted')), false, 'the marker of the old run is gone');
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@restarted.socket', 'restarted-stack.service']), 'stop');
  });
});
