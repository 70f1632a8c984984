/**
 * The waiting page (ZOOPA_WAIT=auto, the default), end to end: real socket
 * activation, real rootless podman stacks whose app needs 8 s to listen, a real
 * nginx in front of the unix socket, and Debian's Chromium.
 *
 *  - a browser-like request gets the 503 waiting page (Retry-After, text/html)
 *    long before the app listens; polling the readiness path turns ready; the
 *    next request gets the app's 200;
 *  - an `Accept: application/json` request on a cold stack is held and gets the app's 200;
 *  - in Chromium, opening a cold stack's URL ends on the app's own page with no
 *    manual reload (the waiting page's screenshot goes to assets/screenshots/);
 *  - during `zoopa freeze` a browser gets the 503 maintenance page and nothing
 *    wakes; after `zoopa thaw` the next request wakes the stack; in Chromium the
 *    maintenance page reloads itself once thawed and ends on the app's page.
 *
 * A WebSocket upgrade and a POST body on a cold stack through nginx are in
 * ondemand-protocols.test.ts; `hold` and `page` are tested with the proxy itself
 * (test/unit/proxy-waitpage.test.ts).
 *
 *   npm run build && node scripts/run-tests.mjs ondemand-waitpage
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { findRepoDir } from '../testbed/world.js';
import { freePort, httpGet, useTestbed, waitFor, type Nginx } from '../testbed/index.js';
import { activeState, proxyLines, socketOf } from './ondemand-lib.js';

const CHROMIUM = '/usr/bin/chromium';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('on demand: browsers get a waiting page while an 8 s app wakes', () => {
  const bed = useTestbed({ name: 'ondemand-waitpage' });
  const stacks = new Map<string, StackFixture>();
  /** One nginx per stack, each at / (the waiting page polls /.zoopa/ready at the site's root). */
  const nginx = new Map<string, Nginx>();
  const url = (stack: string, p = '/') => `${nginx.get(stack)!.url}${p}`;
  let browser: Browser | undefined;
  after(async () => {
    await browser?.close();
  });

  it('installs three cold stacks behind on-demand sockets and nginx', async () => {
    const tb = bed();
    for (const name of ['wiki', 'api', 'cold']) {
      const s = httpStack(tb.root, name, { port: await freePort(), startDelaySec: 8, body: `${name} app page` });
      stacks.set(name, s);
      tb.writeFile(path.join(tb.home, '.config', 'zoopa-ondemand', `${name}.env`), `ZOOPA_UPSTREAM=127.0.0.1:${s.port}\n`, 0o600);
    }
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    for (const unit of ['zoopa-ondemand-dir.service', ...[...stacks.keys()].map((n) => `zoopa-ondemand@${n}.socket`)]) {
      const r = await tb.systemctl(['enable', '--now', unit]);
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
    }
    for (const n of stacks.keys()) nginx.set(n, await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, n)}` }]));
  });

  it('a browser-like request gets the 503 waiting page; the readiness poll turns ready; the next request gets the app', async () => {
    const tb = bed();
    const page = await httpGet(url('wiki'), { headers: { Accept: BROWSER_ACCEPT }, timeoutMs: 110_000 });
    assert.equal(page.status, 503, `${page.body.slice(0, 300)}\n${nginx.get('wiki')!.errorLog().slice(-1000)}\n${tb.managerLog().slice(-4000)}`);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['retry-after']), /^\d+$/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.match(page.body, /wiki is starting/);
    assert.notEqual(await activeState(tb, 'wiki-stack.service'), 'inactive', 'the page load woke the stack');
    const poll = () => httpGet(url('wiki', '/.zoopa/ready'), { timeoutMs: 110_000 });
    const first = await poll();
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body), { ready: false }, 'still waking: the proxy answers the poll');
    // Ready: the poll is no longer the proxy's "not yet" (once awake it reaches the app).
    await waitFor(async () => (await poll()).headers['x-zoopa-ready'] !== '0', { what: 'the readiness poll turning ready', timeoutMs: 110_000, intervalMs: 500 });
    const app = await httpGet(url('wiki'), { headers: { Accept: BROWSER_ACCEPT }, timeoutMs: 110_000 });
    assert.equal(app.status, 200);
    assert.equal(app.body, stacks.get('wiki')!.expectBody);
    assert.ok(proxyLines(tb, 'wiki').some((l) => /served the waiting page/.test(l)), 'one log line for the page');
  });

  it('an Accept: application/json request on a cold stack is held and gets the app', async () => {
    const r = await httpGet(url('api'), { headers: { Accept: 'application/json' }, timeoutMs: 110_000 });
    assert.equal(r.status, 200, `${r.body.slice(0, 300)}`);
    assert.equal(r.body, stacks.get('api')!.expectBody);
  });

  it('during zoopa freeze: a browser gets the maintenance page, nothing wakes; after zoopa thaw the next request wakes the stack', async (t) => {
    const tb = bed();
    assert.equal((await tb.systemctl(['stop', 'zoopa-ondemand@api.service'])).status, 0);
    assert.equal((await tb.systemctl(['stop', 'api-stack.service'])).status, 0);
    const frz = await tb.zoopa(['--root', tb.root, 'freeze', 'api']);
    assert.equal(frz.status, 0, frz.stderr);
    const t0 = Date.now();
    const page = await httpGet(url('api'), { headers: { Accept: BROWSER_ACCEPT }, timeoutMs: 30_000 });
    t.diagnostic(`maintenance page ${Date.now() - t0} ms after the request (the proxy activated for it)`);
    assert.equal(page.status, 503, page.body.slice(0, 300));
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['retry-after'], '30', 'no expected length: the default');
    assert.match(page.body, /api is not available right now/);
    const json = await httpGet(url('api'), { headers: { Accept: 'application/json' }, timeoutMs: 30_000 });
    assert.equal(json.status, 503, 'every HTTP request of a frozen stack gets the maintenance page');
    assert.equal(await activeState(tb, 'api-stack.service'), 'inactive', 'nothing woke the stack');
    const thaw = await tb.zoopa(['--root', tb.root, 'thaw', 'api']);
    assert.equal(thaw.status, 0, thaw.stderr);
    assert.equal(await activeState(tb, 'zoopa-ondemand@api.service'), 'inactive', 'the maintenance proxy is gone');
    const r = await httpGet(url('api'), { headers: { Accept: 'application/json' }, timeoutMs: 110_000 });
    assert.equal(r.status, 200, r.body.slice(0, 300));
    assert.equal(r.body, stacks.get('api')!.expectBody);
  });

  it('in Chromium: a cold stack ends on the app page without a manual reload', async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const ctx = await browser.newContext({ viewport: { width: 900, height: 560 } });
    const tab = await ctx.newPage();
    const first = await tab.goto(url('cold'), { timeout: 110_000 });
    assert.equal(first?.status(), 503);
    await tab.waitForSelector('#zoopa-waiting', { timeout: 30_000 });
    const shots = path.join(findRepoDir(), 'assets', 'screenshots');
    fs.mkdirSync(shots, { recursive: true });
    await tab.screenshot({ path: path.join(shots, 'waiting-page.png') });
    // The page polls and reloads itself: the app's own body replaces it.
    await tab.waitForFunction((want) => document.body?.innerText.trim() === want, stacks.get('cold')!.expectBody.trim(), { timeout: 110_000, polling: 250 });
    assert.equal(await tab.locator('#zoopa-waiting').count(), 0);
    assert.equal(tab.url(), url('cold'));
  });

  it('in Chromium: during a freeze the maintenance page; after zoopa thaw it reloads itself and ends on the app page', async () => {
    const tb = bed();
    const frz = await tb.zoopa(['--root', tb.root, 'freeze', 'wiki', '--for', '10m']);
    assert.equal(frz.status, 0, frz.stderr);
    const ctx = await browser!.newContext({ viewport: { width: 900, height: 560 } });
    const tab = await ctx.newPage();
    const first = await tab.goto(url('wiki'), { timeout: 30_000 });
    assert.equal(first?.status(), 503);
    await tab.waitForSelector('#zoopa-maintenance', { timeout: 30_000 });
    assert.match(await tab.locator('#zoopa-maintenance').innerText(), /wiki is not available right now\s+It is under maintenance\.\s+It should be back in about 10 min/);
    await tab.screenshot({ path: path.join(findRepoDir(), 'assets', 'screenshots', 'maintenance-page.png') });
    const thaw = await tb.zoopa(['--root', tb.root, 'thaw', 'wiki']);
    assert.equal(thaw.status, 0, thaw.stderr);
    // The page's poll sees the freeze end and reloads: the app's own body replaces it.
    await tab.waitForFunction((want) => document.body?.innerText.trim() === want, stacks.get('wiki')!.expectBody.trim(), { timeout: 110_000, polling: 250 });
    assert.equal(await tab.locator('#zoopa-maintenance').count(), 0);
    assert.equal(tab.url(), url('wiki'));
  });
});
