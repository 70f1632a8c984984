/**
 * zoopa web on the real test bed: zoopa-web.socket activates the read-only server in
 * the user manager; the counters survive the proxy (which exits at each idle stop);
 * a real restic backup shows in /metrics; Debian's Chromium (driven by playwright-core)
 * loads the page and sees a stack turn from sleeping to awake without a reload.
 *
 *   npm run build && node scripts/run-tests.mjs integration/web
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import YAML from 'yaml';
import { run } from '../../src/exec.js';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { findRepoDir } from '../testbed/world.js';
import { freePort, httpGet, useTestbed } from '../testbed/index.js';
import { activeState, socketOf } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };
const CHROMIUM = '/usr/bin/chromium';

/** One sample's value from Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('zoopa web: socket-activated status page and metrics', () => {
  const bed = useTestbed({ name: 'web' });
  let quick: StackFixture;
  let page: StackFixture;
  let vault: StackFixture;
  let webUrl: string;
  let browser: Browser | undefined;

  const metrics = async (): Promise<string> => {
    const r = await httpGet(`${webUrl}/metrics`, { timeoutMs: 60_000 });
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return r.body;
  };

  before(async () => {
    const tb = bed();
    quick = httpStack(tb.root, 'quick', { port: await freePort() });
    page = httpStack(tb.root, 'page', { port: await freePort(), startDelaySec: 2 });
    vault = httpStack(tb.root, 'vault', { port: await freePort() });
    tb.writeFile(path.join(vault.dir, 'data', 'notes.txt'), 'keep me\n');
    tb.chown(path.join(vault.dir, 'data'));
    const repo = path.join(tb.dir, 'restic-repo');
    const pw = tb.writeFile(path.join(tb.dir, 'restic-password'), 'correct horse battery staple\n', 0o600);
    const init = await tb.run(['restic', '-r', repo, '--password-file', pw, 'init']);
    assert.equal(init.status, 0, init.stderr);
    const webPort = await freePort();
    webUrl = `http://127.0.0.1:${webPort}`;
    const config = {
      stacks: {
        quick: { ondemand: { upstream: `127.0.0.1:${quick.port}`, idle: '2s' } },
        page: { ondemand: { upstream: `127.0.0.1:${page.port}`, idle: '10m' } },
        vault: { backup: { jobs: [{ restic: { paths: ['data'] } }] } },
      },
      backup: { restic: { repository: repo, password_file: pw } },
      web: { listen: `127.0.0.1:${webPort}`, idle_exit: '5s' },
    };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(config));
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    assert.match(inst.stdout, /\+ zoopa-web\.socket/);
    const verify = await tb.run(['systemd-analyze', '--user', 'verify', path.join(tb.configHome, 'systemd', 'user', 'zoopa-web.socket'), path.join(tb.configHome, 'systemd', 'user', 'zoopa-web.service')]);
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify prints nothing');
    const en = await tb.systemctl(['enable', '--now', 'zoopa-ondemand-dir.service', 'zoopa-ondemand@quick.socket', 'zoopa-ondemand@page.socket', 'zoopa-web.socket']);
    assert.equal(en.status, 0, en.stderr);
    const up = await tb.zoopa(['--root', tb.root, 'up', 'vault']);
    assert.equal(up.status, 0, up.stderr);
  });

  after(async () => {
    await browser?.close();
  });

  it('nothing runs until a request: then zoopa-web.service serves /metrics that promtool accepts, and /api/status', async () => {
    const tb = bed();
    assert.equal(await activeState(tb, 'zoopa-web.service'), 'inactive', 'socket-activated: no server before the first request');
    const text = await metrics();
    assert.equal(await activeState(tb, 'zoopa-web.service'), 'active');
    assert.equal(sample(text, 'zoopa_stack_up{stack="quick"}'), 0, 'asleep');
    assert.equal(sample(text, 'zoopa_ondemand_state{stack="quick",state="sleeping"}'), 1);
    assert.equal(sample(text, 'zoopa_stack_up{stack="vault"}'), 1);
    const lint = await run(['promtool', 'check', 'metrics'], { input: text, reject: false });
    assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
    const api = await httpGet(`${webUrl}/api/status`);
    assert.equal(api.status, 200);
    const data = JSON.parse(api.body) as { stacks: Array<{ name: string; state: string }> };
    const cli = JSON.parse((await tb.zoopa(['--root', tb.root, 'status', '--json'])).stdout) as { stacks: Array<{ name: string; state: string }> };
    assert.deepEqual(data.stacks.map((s) => [s.name, s.state]), cli.stacks.map((s) => [s.name, s.state]), 'the same data as zoopa status --json');
    const wrong = await httpGet(`${webUrl}/metrics`, { method: 'POST' });
    assert.equal(wrong.status, 405, 'read-only');
  });

  it('two wakes and two idle stops, the proxy exiting in between: the counters and the histogram show 2', async () => {
    const tb = bed();
    for (let i = 1; i <= 2; i++) {
      const r = await httpGet('http://quick/', { socketPath: socketOf(tb, 'quick'), timeoutMs: 110_000 });
      assert.equal(r.status, 200, r.body);
      await tb.waitFor(async () => (await activeState(tb, 'quick-stack.service')) === 'inactive', { ...DEADLINE, what: `idle stop ${i} of quick` });
      await tb.waitFor(async () => (await activeState(tb, 'zoopa-ondemand@quick.service')) === 'inactive', { ...DEADLINE, what: `the proxy to exit after idle stop ${i}` });
    }
    // The page's cache holds a report for a second: wait for a fresh one.
    await tb.waitFor(async () => sample(await metrics(), 'zoopa_ondemand_idle_stops_total{stack="quick"}') === 2, { ...DEADLINE, what: 'idle stops = 2 in /metrics' });
    const text = await metrics();
    assert.equal(sample(text, 'zoopa_ondemand_wakes_total{stack="quick"}'), 2);
    assert.equal(sample(text, 'zoopa_ondemand_wake_failures_total{stack="quick"}'), 0);
    assert.equal(sample(text, 'zoopa_ondemand_wake_seconds_count{stack="quick"}'), 2);
    assert.equal(sample(text, 'zoopa_ondemand_wake_seconds_bucket{stack="quick",le="+Inf"}'), 2);
    assert.ok(sample(text, 'zoopa_ondemand_wake_seconds_sum{stack="quick"}')! > 0);
    assert.equal(sample(text, 'zoopa_stack_up{stack="quick"}'), 0, 'asleep again');
    assert.ok(sample(text, 'zoopa_ondemand_bytes_total{stack="quick",direction="out"}')! > 0, 'bytes of exited proxies are kept');
    const lint = await run(['promtool', 'check', 'metrics'], { input: text, reject: false });
    assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
  });

  it('after a restic backup of a running stack: last success, duration, result 1 and downtime', async () => {
    const tb = bed();
    const b = await tb.zoopa(['--root', tb.root, 'backup', 'vault']);
    assert.equal(b.status, 0, `${b.stdout}${b.stderr}`);
    let text = '';
    await tb.waitFor(async () => sample((text = await metrics()), 'zoopa_backup_last_result{stack="vault"}') === 1, { ...DEADLINE, what: 'the backup in /metrics' });
    const last = sample(text, 'zoopa_backup_last_success_timestamp_seconds{stack="vault"}')!;
    assert.ok(last > Date.now() / 1000 - 600 && last <= Date.now() / 1000 + 1, `last success ${last}`);
    assert.ok(sample(text, 'zoopa_backup_last_duration_seconds{stack="vault"}')! > 0);
    const down = sample(text, 'zoopa_backup_downtime_seconds{stack="vault"}')!;
    assert.ok(down > 0, `downtime ${down}`);
    assert.equal(sample(text, 'zoopa_stack_up{stack="vault"}'), 1, 'put back');
    const st = JSON.parse((await tb.zoopa(['--root', tb.root, 'status', '--json'])).stdout) as { stacks: Array<{ name: string; backup: { result: string } | null }> };
    assert.equal(st.stacks.find((s) => s.name === 'vault')!.backup?.result, 'ok', 'zoopa status shows the last backup');
  });

  it('in Chromium: the page shows the stacks, turns page from sleeping to awake without a reload, and reads on a phone', async () => {
    const tb = bed();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const tab = await ctx.newPage();
    let loads = 0;
    tab.on('load', () => loads++);
    await tab.goto(`${webUrl}/`);
    const state = () => tab.locator('tr[data-stack="page"] td.ondemand').getAttribute('data-state');
    assert.equal(await state(), 'sleeping');
    assert.equal(await tab.locator('tr[data-stack="vault"] td.unit .badge').textContent(), 'active');
    // Wake it (a 2 s app) and watch the page change by itself.
    const wake = httpGet('http://page/', { socketPath: socketOf(tb, 'page'), timeoutMs: 110_000 });
    await tab.waitForFunction(() => document.querySelector('tr[data-stack="page"] td.ondemand')?.getAttribute('data-state') === 'awake', undefined, { timeout: 110_000, polling: 200 });
    assert.equal((await wake).status, 200);
    assert.equal(loads, 1, 'no reload: the page refreshed in place');
    assert.match((await tab.locator('tr[data-stack="quick"]').textContent()) ?? '', /took/, 'the last wake of quick is shown');
    const shots = path.join(findRepoDir(), 'assets', 'screenshots');
    fs.mkdirSync(shots, { recursive: true });
    await tab.screenshot({ path: path.join(shots, 'status-page.png'), fullPage: true });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true });
    const ptab = await phone.newPage();
    await ptab.goto(`${webUrl}/`);
    const width = await ptab.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling on a phone (page width ${width})`);
    await ptab.screenshot({ path: path.join(shots, 'status-page-phone.png'), fullPage: true });
    // Scripts off: still a plain table with the stacks.
    const noJs = await browser.newContext({ javaScriptEnabled: false });
    const ntab = await noJs.newPage();
    await ntab.goto(`${webUrl}/`);
    assert.equal(await ntab.locator('table.stacks tbody tr').count(), 3);
    const down = await tb.zoopa(['--root', tb.root, 'down', 'page']);
    assert.equal(down.status, 0, down.stderr);
    await browser.close();
    browser = undefined;
  });

  it('after web.idle_exit without requests the server exits; the socket stays and the next request starts it again', async () => {
    const tb = bed();
    const props = await tb.systemctl(['show', '-p', 'ExecStart', 'zoopa-web.service']);
    assert.match(props.stdout, /--idle-exit 5 /, 'the unit passes web.idle_exit');
    await tb.waitFor(async () => (await activeState(tb, 'zoopa-web.service')) === 'inactive', { ...DEADLINE, what: 'zoopa web to exit when idle' });
    assert.equal(await activeState(tb, 'zoopa-web.socket'), 'active', 'the socket listens on');
    assert.match(tb.managerLog(), /web: no request for 5 s: exiting/);
    const r = await httpGet(`${webUrl}/api/status`);
    assert.equal(r.status, 200);
    assert.equal(await activeState(tb, 'zoopa-web.service'), 'active', 'started again by the next request');
  });
});
