/**
 * Extra listeners, freeze/thaw and unit verification, for real: an isolated systemd user
 * manager, a rootless podman stack publishing two ports (like CryptPad's 3000 and 3003),
 * nginx in front.
 *
 *  - both sockets wake the same stack through one proxy; each goes to its own upstream;
 *  - every installed on-demand unit passes `systemd-analyze --user verify` with empty output;
 *  - freeze/thaw round trips (asleep, awake, disabled) leave the units exactly as they were;
 *    during a freeze the sockets keep listening and wake nothing: through nginx a browser
 *    gets the 503 maintenance page (on both listeners), the readiness poll says
 *    maintenance, a non-HTTP client is closed at once; after thaw the next request wakes it;
 *  - zoopa ondemand disable stops and disables the sockets and the proxy.
 *
 *   npm run build && node scripts/run-tests.mjs ondemand
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { httpStack, writeZoopaYaml } from '../fixtures/stacks.js';
import { freePort, httpGet, useTestbed, type Nginx } from '../testbed/index.js';
import { activeState, containerStarts, exchange, runningContainers, socketOf, status, tryConnect, twoPortStack, unitStates } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };
const BROWSER = { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

/** Files (not sockets: nginx must reach those) under `dir` that users other than the owner may read or write. */
function exposedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) out.push(...exposedFiles(p));
    else if (!st.isSocket() && (st.mode & 0o077) !== 0) out.push(`${p} (mode ${(st.mode & 0o777).toString(8)})`);
  }
  return out;
}
const UNITS = ['zoopa-ondemand@duo.socket', 'zoopa-ondemand@duo.second.socket', 'zoopa-ondemand@duo.service', 'zoopa-ondemand-dir.service'];

describe('on demand: two listeners, freeze and thaw', () => {
  const bed = useTestbed({ name: 'ondemand-freeze' });
  let duo: ReturnType<typeof twoPortStack>;
  let nginx: Nginx;

  async function snapshotUnits(): Promise<Record<string, string>> {
    const tb = bed();
    const st = await unitStates(tb, UNITS);
    return Object.fromEntries([...st].map(([n, s]) => [n, `${s.active}/${s.enabled}`]));
  }

  it('zoopa ondemand enable with listeners from zoopa.yaml: both sockets listen', async () => {
    const tb = bed();
    duo = twoPortStack(tb, 'duo', [await freePort(), await freePort()]);
    writeZoopaYaml(tb.root, {
      stacks: { duo: { ondemand: { upstream: `127.0.0.1:${duo.port}`, listeners: [{ name: 'second', upstream: `127.0.0.1:${duo.port2}` }] } } },
    });
    const r = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'duo']);
    assert.equal(r.status, 0, r.stderr);
    for (const sock of [socketOf(tb, 'duo'), socketOf(tb, 'duo', 'second')]) assert.ok(fs.statSync(sock).isSocket(), `${sock} listens`);
    const st = await snapshotUnits();
    assert.deepEqual(st, {
      'zoopa-ondemand@duo.socket': 'active/enabled',
      // installed as a link to <root>/systemd and without [Install]: "linked"
      'zoopa-ondemand@duo.second.socket': 'active/linked',
      'zoopa-ondemand@duo.service': 'inactive/static',
      'zoopa-ondemand-dir.service': 'active/enabled',
    });
  });

  it('every installed on-demand unit passes systemd-analyze --user verify with empty output', async () => {
    const tb = bed();
    const dir = path.join(tb.configHome, 'systemd', 'user');
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('zoopa-ondemand'));
    assert.deepEqual(files.sort(), ['zoopa-ondemand-dir.service', 'zoopa-ondemand@.service', 'zoopa-ondemand@.socket', 'zoopa-ondemand@duo.second.socket', 'zoopa-ondemand@duo.socket']);
    // The files as installed, plus the proxy's instance as systemd loads it for this stack.
    const r = await tb.run(['systemd-analyze', '--user', 'verify', ...[...files, 'zoopa-ondemand@duo.service'].map((f) => path.join(dir, f))]);
    assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
    assert.equal(r.status, 0);
  });

  it('each socket wakes the same stack through one proxy and reaches its own upstream', async () => {
    const tb = bed();
    nginx = await tb.startNginx([
      { path: '/', upstream: `unix:${socketOf(tb, 'duo')}` },
      { path: '/second/', upstream: `unix:${socketOf(tb, 'duo', 'second')}`, directives: ['rewrite ^/second/(.*)$ /$1 break'] },
    ]);
    const before = await containerStarts(tb, 'duo');
    const [a, b] = await Promise.all([httpGet(`${nginx.url}/`, { timeoutMs: 110_000 }), httpGet(`${nginx.url}/second/`, { timeoutMs: 110_000 })]);
    assert.equal(a.status, 200, nginx.errorLog().slice(-1500));
    assert.equal(a.body, duo.expectBody);
    assert.equal(b.status, 200, nginx.errorLog().slice(-1500));
    assert.equal(b.body, duo.expectBody2);
    assert.equal(await containerStarts(tb, 'duo'), before + 2, 'one stack start (its two containers, once each)');
    const st = await unitStates(tb, ['zoopa-ondemand@duo.service']);
    const pid = st.get('zoopa-ondemand@duo.service')!.mainPid;
    assert.ok(pid > 0);
    const names = fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((kv) => kv.startsWith('LISTEN_FDNAMES='));
    assert.deepEqual(names?.slice('LISTEN_FDNAMES='.length).split(':').sort(), ['second', 'zoopa-ondemand@duo.socket'], 'one proxy got both listening fds');
  });

  it('freeze and thaw while awake: the proxy stops, the sockets answer with the maintenance page, then exactly the previous state is back', async () => {
    const tb = bed();
    const before = await snapshotUnits();
    assert.equal(before['zoopa-ondemand@duo.service'], 'active/static', 'the proxy runs');
    const f = await tb.zoopa(['--root', tb.root, 'freeze', 'duo', '--json']);
    assert.equal(f.status, 0, f.stderr);
    const fr = JSON.parse(f.stdout) as { already: boolean; stopped: string[] };
    assert.equal(fr.already, false);
    assert.deepEqual(fr.stopped, ['zoopa-ondemand@duo.service'], 'only the proxy stops');
    const frozen = await snapshotUnits();
    assert.equal(frozen['zoopa-ondemand@duo.socket'], 'active/enabled', 'the socket listens on');
    assert.equal(frozen['zoopa-ondemand@duo.second.socket']!.split('/')[0], 'active');
    assert.equal(frozen['zoopa-ondemand@duo.service']!.split('/')[0], 'inactive');
    assert.equal((await status(tb)).get('duo')!.ondemand?.state, 'frozen');
    // The stack is still up, but a frozen stack's proxy serves nobody: the maintenance page.
    const page = await httpGet(`${nginx.url}/`, { headers: BROWSER, timeoutMs: 30_000 });
    assert.equal(page.status, 503, page.body.slice(0, 300));
    assert.equal(page.headers['x-zoopa-page'], 'maintenance');
    assert.match(page.body, /duo is not available right now/);
    assert.notEqual(await activeState(tb, 'duo-stack.service'), 'inactive', 'the freeze leaves the stack as it is (up, or its start job finishing)');
    // After a wake and a freeze: nothing zoopa wrote under the runtime folder is open to other users.
    const runtime = path.join(tb.runtimeDir, 'ondemand');
    assert.ok(fs.readdirSync(runtime).includes('duo.frozen.json'), 'the freeze record is there');
    assert.deepEqual(exposedFiles(runtime), [], 'runtime files are 0600 (the proxy state, the owned marker, the freeze record)');
    assert.equal(fs.statSync(path.join(runtime, 'duo.frozen.json')).mode & 0o777, 0o600);
    const t = await tb.zoopa(['--root', tb.root, 'thaw', 'duo', '--json']);
    assert.equal(t.status, 0, t.stderr);
    const tr = JSON.parse(t.stdout) as { started: string[]; stopped: string[] };
    assert.deepEqual(tr, { ...tr, stopped: ['zoopa-ondemand@duo.service'], started: ['zoopa-ondemand@duo.service'] }, 'the maintenance proxy went, a normal one came');
    assert.deepEqual(await snapshotUnits(), before, 'thaw restores every unit as it was');
    const run = (await tb.systemctl(['show', '-P', 'InvocationID', 'duo-stack.service'])).stdout.trim();
    const marker = JSON.parse(fs.readFileSync(path.join(runtime, 'duo.owned'), 'utf8')) as { invocation: string };
    assert.equal(marker.invocation, run, 'the run zoopa started is still zoopa\'s (named in the marker, even when its start job was not done at the freeze)');
    const app = await httpGet(`${nginx.url}/`, { headers: BROWSER, timeoutMs: 110_000 });
    assert.equal(app.status, 200);
    assert.equal(app.body, duo.expectBody);
  });

  it('a torn freeze record: thaw logs the error and falls back to the safe state, its sockets started', async () => {
    const tb = bed();
    const before = await snapshotUnits();
    assert.equal(before['zoopa-ondemand@duo.socket'], 'active/enabled');
    const f = await tb.zoopa(['--root', tb.root, 'freeze', 'duo']);
    assert.equal(f.status, 0, f.stderr);
    const record = path.join(tb.runtimeDir, 'ondemand', 'duo.frozen.json');
    fs.writeFileSync(record, '{"version": 1, "sta');
    const t = await tb.zoopa(['--root', tb.root, 'thaw', 'duo', '--json']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, /duo: the freeze record .*duo\.frozen\.json is not valid JSON .*restarting its sockets/);
    const started = (JSON.parse(t.stdout) as { started: string[] }).started;
    assert.deepEqual(started, [], 'the sockets listened all along');
    assert.equal(fs.existsSync(record), false, 'the record is gone');
    for (const sock of [socketOf(tb, 'duo'), socketOf(tb, 'duo', 'second')]) assert.ok(fs.statSync(sock).isSocket(), `${sock} listens again`);
  });

  it('freeze while asleep: through nginx the maintenance page on both listeners, nothing wakes; thaw restores exactly, the next request wakes it', async (t) => {
    const tb = bed();
    // Let the stack's start job finish first (stopping a unit in the middle of
    // `podman-compose up` can hang its stop with podman 4.3).
    await tb.waitFor(async () => (await activeState(tb, 'duo-stack.service')) === 'active', { ...DEADLINE, what: 'the start job of duo-stack.service to finish' });
    const down = await tb.zoopa(['--root', tb.root, 'down', 'duo'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, down.stderr);
    const stopProxy = await tb.systemctl(['stop', 'zoopa-ondemand@duo.service']);
    assert.equal(stopProxy.status, 0, stopProxy.stderr);
    assert.deepEqual(await runningContainers(tb, 'duo'), []);
    const before = await snapshotUnits();
    assert.equal(before['zoopa-ondemand@duo.socket'], 'active/enabled');
    assert.equal(before['zoopa-ondemand@duo.service'], 'inactive/static');
    assert.equal((await status(tb)).get('duo')!.ondemand?.state, 'sleeping');

    const f = await tb.zoopa(['--root', tb.root, 'freeze', 'duo', '--for', '20m']);
    assert.equal(f.status, 0, f.stderr);
    assert.match(f.stdout, /duo frozen: no proxy was running; its sockets answer with a maintenance page/);
    const again = await tb.zoopa(['--root', tb.root, 'freeze', 'duo']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already frozen/, 'idempotent');
    const shown = await tb.zoopa(['--root', tb.root, 'status']);
    assert.match(shown.stdout, /^duo .* frozen \(by hand since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, about 20m\)/m, shown.stdout);

    const startsBefore = await containerStarts(tb, 'duo');
    const t0 = Date.now();
    const page = await httpGet(`${nginx.url}/`, { headers: BROWSER, timeoutMs: 30_000 });
    t.diagnostic(`the first maintenance page (activating the proxy) came ${Date.now() - t0} ms after the request`);
    assert.equal(page.status, 503, page.body.slice(0, 300));
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['x-zoopa-page'], 'maintenance');
    assert.equal(page.headers['cache-control'], 'no-store');
    const retry = Number(page.headers['retry-after']);
    assert.ok(retry > 60 && retry <= 1200, `Retry-After from --for 20m: ${page.headers['retry-after']}`);
    assert.match(page.body, /duo is not available right now.*It is under maintenance.*back in about (19|20) min/s);
    const t1 = Date.now();
    const second = await httpGet(`${nginx.url}/second/`, { headers: BROWSER, timeoutMs: 30_000 });
    t.diagnostic(`the next one, from the running maintenance proxy, ${Date.now() - t1} ms`);
    assert.equal(second.status, 503, 'the extra listener too');
    assert.equal(second.headers['x-zoopa-page'], 'maintenance');
    const api = await httpGet(`${nginx.url}/`, { headers: { Accept: 'application/json' }, timeoutMs: 30_000 });
    assert.equal(api.status, 503, 'every HTTP request of a frozen stack gets the maintenance page');
    const poll = await httpGet(`${nginx.url}/.zoopa/ready`, { timeoutMs: 30_000 });
    assert.deepEqual(JSON.parse(poll.body), { ready: false, maintenance: true }, 'the page keeps polling while frozen');
    assert.equal(await exchange(socketOf(tb, 'duo'), '\x16\x03\x01 not http\r\n\r\n'), '', 'a non-HTTP client is closed, answered nothing');
    assert.match(tb.managerLog(), /duo: served the maintenance page/);
    assert.match(tb.managerLog(), /duo: duo is frozen: answering with the maintenance page until "zoopa thaw duo", waking nothing/);
    const st = await unitStates(tb, ['duo-stack.service', 'zoopa-ondemand@duo.service']);
    assert.equal(st.get('duo-stack.service')!.active, 'inactive', 'the stack was not woken');
    assert.equal(st.get('zoopa-ondemand@duo.service')!.active, 'active', 'the maintenance proxy answers');
    assert.deepEqual(await runningContainers(tb, 'duo'), []);
    assert.equal(await containerStarts(tb, 'duo'), startsBefore, 'no container started');

    const th = await tb.zoopa(['--root', tb.root, 'thaw', 'duo', '--json']);
    assert.equal(th.status, 0, th.stderr);
    const tr = JSON.parse(th.stdout) as { started: string[]; stopped: string[] };
    assert.deepEqual([tr.stopped, tr.started], [['zoopa-ondemand@duo.service'], []], 'the maintenance proxy is stopped; nothing else changes');
    assert.deepEqual(await snapshotUnits(), before, 'thaw restores every unit as it was (the proxy off)');
    const t2 = await tb.zoopa(['--root', tb.root, 'thaw', 'duo']);
    assert.equal(t2.status, 0, t2.stderr);
    assert.match(t2.stdout, /not frozen/, 'idempotent');

    const woke = await httpGet(`${nginx.url}/second/`, { timeoutMs: 110_000 });
    assert.equal(woke.status, 200);
    assert.equal(woke.body, duo.expectBody2);
  });

  it('zoopa ondemand disable stops and disables the sockets and the proxy; freeze/thaw of a disabled stack changes nothing', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'ondemand', 'disable', 'duo']);
    assert.equal(r.status, 0, r.stderr);
    const st = await snapshotUnits();
    assert.equal(st['zoopa-ondemand@duo.socket'], 'inactive/disabled');
    assert.equal(st['zoopa-ondemand@duo.second.socket']!.split('/')[0], 'inactive');
    assert.equal(st['zoopa-ondemand@duo.service']!.split('/')[0], 'inactive');
    assert.equal(await tryConnect(socketOf(tb, 'duo')), 'ENOENT');
    for (const cmd of ['freeze', 'thaw']) {
      const x = await tb.zoopa(['--root', tb.root, cmd, 'duo']);
      assert.equal(x.status, 0, x.stderr);
    }
    assert.deepEqual(await snapshotUnits(), st, 'a round trip on a disabled stack leaves it disabled and stopped');
    // The stack the proxy had woken is left to its own unit.
    await tb.waitFor(async () => (await activeState(tb, 'duo-stack.service')) === 'active', { ...DEADLINE, what: 'the start job of duo-stack.service to finish' });
    await tb.zoopa(['--root', tb.root, 'down', 'duo'], { timeoutMs: 120_000 });
    assert.equal(await activeState(tb, 'duo-stack.service'), 'inactive');
  });
});

describe('on demand: bad input gives a clear error and starts no stack', () => {
  const bed = useTestbed({ name: 'ondemand-bad' });

  const cases: Array<{ stack: string; env: (port: number) => string; log: RegExp }> = [
    { stack: 'noup', env: () => 'ZOOPA_IDLE_TIMEOUT=600\n', log: /ZOOPA_UPSTREAM is not set/ },
    { stack: 'badup', env: () => 'ZOOPA_UPSTREAM=localhost\n', log: /ZOOPA_UPSTREAM="localhost" is not a valid upstream/ },
    { stack: 'baddur', env: (port) => `ZOOPA_UPSTREAM=127.0.0.1:${port}\nZOOPA_IDLE_TIMEOUT=soon\n`, log: /ZOOPA_IDLE_TIMEOUT="soon" is not a duration/ },
  ];

  for (const c of cases) {
    it(`${c.stack}: the original's README commands, a broken env file: the proxy logs why, the client is closed, no stack starts`, async () => {
      const tb = bed();
      const s = httpStack(tb.root, c.stack, { port: await freePort() });
      const inst = await tb.zoopa(['--root', tb.root, 'install']);
      assert.equal(inst.status, 0, inst.stderr);
      tb.writeFile(path.join(tb.home, '.config', 'zoopa-ondemand', `${c.stack}.env`), c.env(s.port), 0o600);
      for (const unit of ['zoopa-ondemand-dir.service', `zoopa-ondemand@${c.stack}.socket`]) {
        const r = await tb.systemctl(['enable', '--now', unit]);
        assert.equal(r.status, 0, r.stderr);
      }
      const res = await httpGet(`http://${c.stack}/`, { socketPath: socketOf(tb, c.stack), timeoutMs: 60_000 }).then(
        (r) => r.status,
        (e: Error) => e.message,
      );
      assert.notEqual(res, 200);
      await tb.waitFor(() => c.log.test(tb.managerLog()), { ...DEADLINE, what: `the proxy's error line for ${c.stack}` });
      assert.equal(await activeState(tb, `${c.stack}-stack.service`), 'inactive', 'no stack started');
      assert.deepEqual(await runningContainers(tb, c.stack), []);
      assert.equal(await containerStarts(tb, c.stack), 0);
      // zoopa ondemand enable refuses the same file up front (exit 2).
      const en = await tb.zoopa(['--root', tb.root, 'ondemand', 'enable', c.stack]);
      assert.equal(en.status, 2, en.stderr);
      assert.match(en.stderr, new RegExp(`${c.stack}\\.env`));
    });
  }

  it('an unknown stack: zoopa ondemand enable, freeze and thaw exit 2 and touch nothing in systemd', async () => {
    const tb = bed();
    const dir = path.join(tb.configHome, 'systemd', 'user');
    const list = () => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : []);
    const before = list();
    const unitsBefore = await tb.systemctl(['list-units', '--all', '--plain', '--no-legend', 'zoopa-ondemand*']);
    for (const args of [['ondemand', 'enable', 'ghost', '--upstream', '127.0.0.1:1'], ['ondemand', 'disable', 'ghost'], ['freeze', 'ghost'], ['thaw', 'ghost']]) {
      const r = await tb.zoopa(['--root', tb.root, ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /unknown stack "ghost"/);
    }
    assert.deepEqual(list(), before);
    const unitsAfter = await tb.systemctl(['list-units', '--all', '--plain', '--no-legend', 'zoopa-ondemand*']);
    assert.equal(unitsAfter.stdout, unitsBefore.stdout);
    assert.equal(await activeState(tb, 'ghost-stack.service'), 'inactive');
  });
});
