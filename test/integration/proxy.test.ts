/**
 * zoopa proxy under real systemd socket activation, in the test bed's isolated
 * user manager. The units here are hand-written and minimal (the ondemand
 * feature tests its rendered units): a socket `zoopa-ondemand@.socket`, the
 * proxy service `zoopa-ondemand@.service` running `zoopa proxy %i` with the
 * original's env file, and per stack a `<stack>-stack.service` running a small
 * Node app that logs its start, the moment it listens (after a delay) and its
 * stop (which can take a while, like `podman-compose down`).
 *
 *  - 50 concurrent first connections to a slow app: 50 answers, one start (in both wait styles);
 *  - idle stop: the stack stops, the marker goes, the proxy exits 0;
 *  - a stack started by hand is proxied and not stopped at idle;
 *  - a veto postpones the stop;
 *  - requests fired continuously across idle stops (and into the stop itself): none fails (both wait styles);
 *  - a stack being stopped by hand when a connection arrives: held, started again, served (both wait styles);
 *  - an app never ready: clients answered 502 after the start timeout, one log line, the next connection tries again;
 *  - two listeners (LISTEN_FDNAMES): each to its upstream, one stack, one start;
 *  - a start job that fails: 502 at once, one line with the cause, no start again during the
 *    backoff, and the next connection after it wakes the stack;
 *  - a start by hand while zoopa's idle stop runs (unit deactivating): the stop is cancelled,
 *    logged as such, and the stack stays up through later idle timeouts;
 *  - a restart by hand (a new InvocationID) makes the run the user's: not stopped at idle;
 *  - runtime files (state, owned marker) are mode 0600.
 *
 * The three cases marked "both wait styles" run once per ZOOPA_WAIT (set in the stack's env
 * file), each with its own stack: `[wait=hold]` (every connection is held, as before the
 * waiting page) and `[wait=auto]` (the default). Each also sends browser-like requests
 * (`Accept: text/html,...`) beside the plain ones: plain requests are held and get the app's
 * 200 in both styles; a browser-like request gets the app's 200 in `hold` (and no page is ever
 * served), and the app's 200 or the proxy's 503 waiting page (`X-Zoopa-Page: waiting`) in
 * `auto`, never an error; the herd still starts the stack exactly once.
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
import { freePort, httpGet, sleep, useTestbed, type HttpResponse, type Testbed } from '../testbed/index.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 100 };

/** The wait styles (ZOOPA_WAIT) the herd and idle-race cases run in: today's `hold`, and the default `auto`. */
const MODES = ['hold', 'auto'] as const;
type Mode = (typeof MODES)[number];
/** A browser's Accept header: a page load, which `auto` may answer with the waiting page. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

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

/** GET / through the stack's socket as a browser's page load (Accept: text/html). */
function browserGet(s: TestStack, timeoutMs = 110_000) {
  return httpGet(`http://${s.name}/`, { socketPath: s.sock, timeoutMs, headers: { Accept: BROWSER_ACCEPT } });
}

/**
 * What a browser-like request got: `ok` (the app's 200), `page` (the proxy's 503
 * waiting page) or a description of anything else (always a failure).
 */
function browserOutcome(r: HttpResponse): string {
  const page = r.headers['x-zoopa-page'];
  if (r.status === 200 && r.body.startsWith('main ') && page === undefined) return 'ok';
  if (r.status === 503 && page === 'waiting' && String(r.headers['content-type']).startsWith('text/html')) return 'page';
  return `${r.status} X-Zoopa-Page=${String(page)} ${r.body.slice(0, 60)}`;
}

/** A browser-like request's outcomes allowed in a wait style: `hold` never shows a page. */
function browserAllowed(mode: Mode): readonly string[] {
  return mode === 'hold' ? ['ok'] : ['ok', 'page'];
}

/** A browser-like request's outcome, or `error: ...`. */
function browser(s: TestStack, timeoutMs?: number): Promise<string> {
  return browserGet(s, timeoutMs).then(browserOutcome, (e: Error) => `error: ${e.message}`);
}

function tally(xs: readonly string[]): Record<string, number> {
  return xs.reduce<Record<string, number>>((t, r) => ({ ...t, [r]: (t[r] ?? 0) + 1 }), {});
}

/** The proxy's per-page log lines ("served the waiting page to ..."). */
function pagesServed(tb: Testbed, name: string): string[] {
  return proxyLog(tb, name).filter((l) => / served the \w+ page /.test(l));
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

  for (const mode of MODES) {
    /** The case's title, with its wait style. */
    const t = (title: string) => `[wait=${mode}] ${title}`;
    /** Its own stack per case and style (`slow-hold`, `slow-auto`, ...), ZOOPA_WAIT in the env file. */
    const stackIn = (tb: Testbed, base: string, o: StackOptions) => makeStack(tb, `${base}-${mode}`, { ...o, env: { ...o.env, ZOOPA_WAIT: mode } });
    /** `hold`: no page was ever served for the stack. */
    const assertNoPageInHold = (tb: Testbed, name: string) => {
      if (mode === 'hold') assert.deepEqual(pagesServed(tb, name), [], proxyLog(tb, name).join('\n'));
    };

    it(t('50 concurrent first connections to a slow app: 50 answers, one start'), async () => {
      const tb = bed();
      const s = await stackIn(tb, 'slow', { delayMs: 3000 });
      const name = s.name;
      await startSocket(tb, name);
      assert.equal(await activeState(tb, `${name}-stack.service`), 'inactive');
      // 50 plain requests, and among them 10 browser-like page loads (every sixth).
      const fired = Array.from({ length: 60 }, (_, i) =>
        i % 6 === 5
          ? browser(s).then((r) => ({ kind: 'browser' as const, r }))
          : get(s).then(
              (r) => ({ kind: 'plain' as const, r: r.status === 200 && r.body.startsWith('main ') && r.headers['x-zoopa-page'] === undefined ? 'ok' : `${r.status} ${r.body.slice(0, 60)}` }),
              (e: Error) => ({ kind: 'plain' as const, r: `error: ${e.message}` }),
            ),
      );
      const all = await Promise.all(fired);
      const plain = all.filter((x) => x.kind === 'plain').map((x) => x.r);
      const browsers = all.filter((x) => x.kind === 'browser').map((x) => x.r);
      assert.deepEqual(tally(plain), { ok: 50 }, tb.managerLog().slice(-3000));
      const bt = tally(browsers);
      assert.deepEqual(
        Object.keys(bt).filter((k) => !browserAllowed(mode).includes(k)),
        [],
        `browser-like requests in ${mode}: ${JSON.stringify(bt)}\n${proxyLog(tb, name).join('\n')}`,
      );
      assert.equal(browsers.length, 10);
      if (mode === 'auto') {
        // The app listens 3 s after its start, which follows these connections; page_after is 1 s.
        assert.ok((bt.page ?? 0) >= 1, `auto: a held page load gets the waiting page: ${JSON.stringify(bt)}`);
      }
      assertNoPageInHold(tb, name);
      assert.equal(s.count('start'), 1, 'the app started once');
      assert.equal(await activeState(tb, `${name}-stack.service`), 'active');
      const log = proxyLog(tb, name);
      assert.equal(log.filter((l) => l.startsWith(`${name}: wake: `)).length, 1, log.join('\n'));
      assert.equal(log.filter((l) => l.startsWith(`${name}: ready: `)).length, 1, log.join('\n'));
      assert.ok(fs.existsSync(markerPath(tb, name)), 'the owned marker is written');
      const st = readProxyState(name, tb.env);
      assert.equal(st?.state, 'awake');
      assert.equal(st?.owned, true);
      assert.ok(st?.lastWake, 'the last wake is recorded');
      await ok(tb.systemctl(['stop', `zoopa-ondemand@${name}.socket`, `zoopa-ondemand@${name}.service`, `${name}-stack.service`]), 'stop');
    });

    it(t('requests fired continuously across idle stops, and into a stop in progress: none fails'), async () => {
      const tb = bed();
      // Stopping takes 1.5 s (like podman-compose down), so requests land in it.
      const s = await stackIn(tb, 'cont', { delayMs: 300, stopDelayMs: 1500, env: { ZOOPA_IDLE_TIMEOUT: '1s' } });
      const name = s.name;
      await startSocket(tb, name);
      const failures: string[] = [];
      let done = 0;
      let browsersDone = 0;
      const one = async (): Promise<void> => {
        try {
          const r = await get(s, 60_000);
          if (r.status !== 200 || !r.body.startsWith('main ')) failures.push(`${r.status} ${r.body.slice(0, 80)}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
        done++;
      };
      /** A browser-like page load: the app's 200 (or, in auto, the waiting page). */
      const page = async (): Promise<void> => {
        const r = await browser(s, 60_000);
        if (!browserAllowed(mode).includes(r)) failures.push(`browser-like: ${r}`);
        browsersDone++;
      };
      // A steady trickle with pauses longer than the idle timeout now and then (a page load beside every fourth request)...
      const trickle = (async () => {
        for (let i = 0; i < 24; i++) {
          await Promise.all([one(), ...(i % 4 === 1 ? [page()] : [])]);
          await sleep(i % 6 === 5 ? 2500 : 150);
        }
      })();
      // ...and bursts (10 plain requests, 4 page loads) whenever the proxy says it is stopping the stack.
      let bursts = 0;
      const burster = (async () => {
        while (bursts < 2) {
          await tb.waitFor(() => readProxyState(name, tb.env)?.state === 'stopping', { timeoutMs: 120_000, intervalMs: 20, what: 'a stop in progress' });
          bursts++;
          await Promise.all([...Array.from({ length: 10 }, one), ...Array.from({ length: 4 }, page)]);
          await tb.waitFor(() => readProxyState(name, tb.env)?.state !== 'stopping', { ...DEADLINE, what: 'the stop to end' });
        }
      })();
      await Promise.all([trickle, burster]);
      assert.deepEqual(failures, [], `${proxyLog(tb, name).join('\n')}\n${tb.managerLog().slice(-3000)}`);
      assert.equal(done, 24 + 20);
      assert.equal(browsersDone, 6 + 8);
      assertNoPageInHold(tb, name);
      assert.ok(s.count('stopped') >= 2, `idle stops happened: ${s.lines().join(', ')}`);
      assert.ok(s.count('start') >= 3, 'and the stack woke again each time');
      await ok(tb.systemctl(['stop', `zoopa-ondemand@${name}.socket`, `zoopa-ondemand@${name}.service`, `${name}-stack.service`]), 'stop');
    });

    it(t('a stack being stopped (by hand) when a connection arrives: held, started again after the stop, served'), async () => {
      const tb = bed();
      const s = await stackIn(tb, 'deact', { stopDelayMs: 3000 });
      const name = s.name;
      const unit = `${name}-stack.service`;
      await startSocket(tb, name);
      assert.equal((await get(s)).status, 200);
      await ok(tb.systemctl(['stop', '--no-block', unit]), 'stop by hand');
      await tb.waitFor(async () => (await activeState(tb, unit)) === 'deactivating' && s.count('stopping') === 1, { ...DEADLINE, what: 'deactivating' });
      // A plain request and a browser's page load arrive together.
      const [r, b] = await Promise.all([get(s), browser(s)]);
      assert.equal(r.status, 200);
      assert.ok(browserAllowed(mode).includes(b), `browser-like request in ${mode}: ${b}\n${proxyLog(tb, name).join('\n')}`);
      assertNoPageInHold(tb, name);
      assert.deepEqual(
        s.lines().map((l) => l.split(' ')[0]),
        ['start', 'listening', 'stopping', 'stopped', 'start', 'listening'],
        'served by the app started after the stop finished',
      );
      await ok(tb.systemctl(['stop', `zoopa-ondemand@${name}.socket`, `zoopa-ondemand@${name}.service`, unit]), 'stop');
    });
  }

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
