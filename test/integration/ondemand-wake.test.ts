/**
 * On demand, end to end: real systemd socket activation in an isolated user manager,
 * real rootless podman stacks, a real nginx in front of the unix socket.
 *
 *  - the original's setup, driven exactly as its README says: its env file (with the
 *    README's trailing comment), `systemctl --user enable --now zoopa-ondemand-dir.service`
 *    and `zoopa-ondemand@<stack>.socket`;
 *  - a slow app (3 s before it listens): 50 concurrent first requests through nginx
 *    give 50 × HTTP 200, with exactly one stack start;
 *  - both run in each wait style (ZOOPA_WAIT), each in its own test bed and stack:
 *    `[wait=hold]` (`ZOOPA_WAIT=hold` appended to the original env file; every connection
 *    held, as before the waiting page) and `[wait=auto]` (the original env file unchanged:
 *    auto is the default). Ten browser-like requests (`Accept: text/html,...`) go with
 *    the 50: in hold each gets the app's 200 and no page is ever served; in auto each gets
 *    the app's 200 or the proxy's 503 waiting page (`X-Zoopa-Page: waiting`), never an
 *    error, at least one the page (the app listens 3 s after the wake, page_after is 1 s);
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

/** The wait styles (ZOOPA_WAIT) the original setup and its herd run in. */
const MODES = ['hold', 'auto'] as const;
/** A browser's Accept header: a page load, which `auto` may answer with the waiting page. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

for (const mode of MODES) {
  /** The case's title, with its wait style. */
  const t = (title: string) => `[wait=${mode}] ${title}`;
  /** Each style its own stack (and test bed): slow-hold, slow-auto. */
  const name = `slow-${mode}`;

  describe(t(mode === 'auto' ? 'on demand: the original setup, unchanged, and a slow app' : 'on demand: the original setup (plus ZOOPA_WAIT=hold) and a slow app'), () => {
    const bed = useTestbed({ name: `ondemand-orig-${mode}` });
    let slow: StackFixture;
    let nginx: Nginx;

    it(t('installs, and the README commands enable the directory helper and the socket'), async () => {
      const tb = bed();
      slow = httpStack(tb.root, name, { port: await freePort(), startDelaySec: 3 });
      // No zoopa.yaml at all: the original's layout.
      const inst = await tb.zoopa(['--root', tb.root, 'install']);
      assert.equal(inst.status, 0, inst.stderr);
      for (const u of ['zoopa-ondemand-dir.service', 'zoopa-ondemand@.socket', 'zoopa-ondemand@.service']) assert.match(inst.stdout, new RegExp(`\\+ ${u.replace(/[.@]/g, '\\$&')}`));
      // The original README's env file, byte for byte (with its trailing comments); hold is one line more (auto is the default).
      tb.writeFile(
        path.join(tb.home, '.config', 'zoopa-ondemand', `${name}.env`),
        `ZOOPA_UPSTREAM=127.0.0.1:${slow.port}\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n# ZOOPA_STACK_UNIT=<stack>-stack.service   # optional override\n` +
          (mode === 'auto' ? '' : `ZOOPA_WAIT=${mode}\n`),
        0o600,
      );
      for (const unit of ['zoopa-ondemand-dir.service', `zoopa-ondemand@${name}.socket`]) {
        const r = await tb.systemctl(['enable', '--now', unit]);
        assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
      }
      const dir = path.join(tb.runtimeDir, 'ondemand');
      assert.equal(fs.statSync(dir).mode & 0o777, 0o711, '%t/ondemand mode');
      const st = fs.statSync(socketOf(tb, name));
      assert.ok(st.isSocket(), 'the socket nginx connects to exists');
      assert.equal(st.mode & 0o777, 0o666, 'socket mode');
      const states = await unitStates(tb, [`zoopa-ondemand@${name}.socket`, `zoopa-ondemand@${name}.service`, `${name}-stack.service`]);
      assert.equal(states.get(`zoopa-ondemand@${name}.socket`)!.active, 'active');
      assert.equal(states.get(`zoopa-ondemand@${name}.socket`)!.enabled, 'enabled');
      assert.equal(states.get(`zoopa-ondemand@${name}.service`)!.active, 'inactive', 'no proxy before the first connection');
      assert.equal(states.get(`${name}-stack.service`)!.active, 'inactive', 'asleep');
      assert.deepEqual(await runningContainers(tb, name), []);
      const s = (await status(tb)).get(name)!;
      assert.equal(s.ondemand?.state, 'sleeping');
    });

    it(t('50 concurrent first requests through nginx to a 3 s app: 50 × HTTP 200, exactly one stack start'), async () => {
      const tb = bed();
      nginx = await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, name)}` }]);
      const before = await containerStarts(tb, name);
      // 50 plain requests, and among them 10 browser-like page loads (every sixth).
      const all = await Promise.all(
        Array.from({ length: 60 }, (_, i) => {
          const browser = i % 6 === 5;
          return httpGet(`${nginx.url}/`, { timeoutMs: 110_000, ...(browser ? { headers: { Accept: BROWSER_ACCEPT } } : {}) }).then(
            (r) => {
              const page = r.headers['x-zoopa-page'];
              if (r.status === 200 && r.body === slow.expectBody && page === undefined) return { browser, r: 200 };
              if (browser && r.status === 503 && page === 'waiting' && String(r.headers['content-type']).startsWith('text/html')) return { browser, r: 'waiting page' };
              return { browser, r: `${r.status} X-Zoopa-Page=${String(page)} ${JSON.stringify(r.body.slice(0, 60))}` };
            },
            (e: Error) => ({ browser, r: `error: ${e.message}` }),
          );
        }),
      );
      const results = all.filter((x) => !x.browser).map((x) => x.r);
      const browsers = all.filter((x) => x.browser).map((x) => x.r);
      const logs = () => `nginx error log:\n${nginx.errorLog().slice(-2000)}\nmanager log:\n${tb.managerLog().slice(-3000)}`;
      assert.deepEqual(tally(results), { 200: 50 }, logs());
      const bt = tally(browsers);
      if (mode === 'hold') {
        assert.deepEqual(bt, { 200: 10 }, `hold: every page load is held and gets the app\n${logs()}`);
        assert.deepEqual(proxyLines(tb, name).filter((l) => / served the \w+ page /.test(l)), [], 'hold: no page is ever served');
      } else {
        assert.deepEqual(Object.keys(bt).filter((k) => k !== '200' && k !== 'waiting page'), [], `auto: the app's 200 or the waiting page: ${JSON.stringify(bt)}\n${logs()}`);
        // The app listens 3 s after the wake these requests began; page_after is 1 s.
        assert.ok((bt['waiting page'] ?? 0) >= 1, `auto: a held page load gets the waiting page: ${JSON.stringify(bt)}`);
      }
      assert.equal(await containerStarts(tb, name), before + 1, 'the container started exactly once');
      assert.equal(composeUps(tb, `${name}_web_1`), 1, 'the stack unit ran podman-compose up exactly once');
      assert.equal(await activeState(tb, `${name}-stack.service`), 'active');
      const s = (await status(tb)).get(name)!;
      assert.ok(s.ondemand && ['awake', 'waking'].includes(s.ondemand.state), `status: ${JSON.stringify(s.ondemand)}`);
      assert.equal(s.ondemand!.owned, true, 'zoopa owns the start');
      assert.ok(s.ondemand!.lastWake, 'the last wake is reported');
    });

    it(t('the proxy runs with the env file over the unit defaults, as the original did'), async () => {
      const tb = bed();
      const pid = (await unitStates(tb, [`zoopa-ondemand@${name}.service`])).get(`zoopa-ondemand@${name}.service`)!.mainPid;
      assert.ok(pid > 0, 'the proxy runs');
      const environ = new Map(
        fs
          .readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      assert.equal(environ.get('ZOOPA_UPSTREAM'), `127.0.0.1:${slow.port}`);
      assert.equal(environ.get('ZOOPA_STACK_UNIT'), `${name}-stack.service`, 'the unit default applies when the file does not set it');
      assert.match(environ.get('ZOOPA_IDLE_TIMEOUT') ?? '', /^600\b/, 'from the env file (systemd keeps the trailing comment; the proxy drops it)');
      assert.equal(environ.get('ZOOPA_WAIT'), mode === 'auto' ? undefined : mode, 'the wait style from the env file (auto: the default, not set)');
      assert.equal(environ.get('LISTEN_FDNAMES'), `zoopa-ondemand@${name}.socket`);
    });
  });
}

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
