/**
 * A frozen stack's answers (src/proxy/maintenance.ts), with real sockets: a
 * proxy started while the freeze record exists answers every HTTP request with
 * the 503 maintenance page (Retry-After from the record), the readiness poll
 * with `maintenance: true`, closes anything else, never asks systemd about the
 * stack (its unit manager throws), and exits at its first connection after the
 * freeze ended. A normal proxy stopped by a freeze (SIGTERM) while it holds
 * clients for a wake answers them with the page instead of closing them. Plus the pure parts: Retry-After and the page's words, and the
 * expected length of a backup from the status history.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { expectedRunSeconds } from '../../src/backup/freeze.js';
import { recordStatus, type StackStatus } from '../../src/backup/status.js';
import { createLogger } from '../../src/log.js';
import { freezeRecordPath, type FreezeRecord } from '../../src/ondemand/freeze-record.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { maintenanceInfo, MAINTENANCE_RETRY_S } from '../../src/proxy/maintenance.js';
import { Proxy } from '../../src/proxy/proxy.js';
import type { ProxyUnits } from '../../src/proxy/units.js';
import { maintenancePage } from '../../src/proxy/waitpage.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';
import { exchange } from '../helpers/exchange.js';
import { waitFor } from '../testbed/util.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const NAV = 'GET /files HTTP/1.1\r\nHost: wiki\r\nAccept: text/html,*/*;q=0.8\r\n\r\n';
const POLL = 'GET /.zoopa/ready HTTP/1.1\r\nHost: wiki\r\n\r\n';

function record(over: Partial<FreezeRecord> = {}): FreezeRecord {
  return {
    version: 1,
    stack: 'wiki',
    frozenAt: new Date().toISOString(),
    pid: 1,
    sockets: [{ name: 'zoopa-ondemand@wiki.socket', activeState: 'active', unitFileState: 'enabled', loadState: 'loaded' }],
    service: { name: 'zoopa-ondemand@wiki.service', activeState: 'inactive', unitFileState: 'static', loadState: 'loaded' },
    ...over,
  };
}


describe('maintenance: what the page says', () => {
  test('Retry-After is the time left of the expected length, within 5 s..1 h; unknown or overdue: the default', () => {
    const at = Date.parse('2026-12-02T03:00:00Z');
    const r = (expectedSeconds: number | undefined, elapsedS: number) =>
      maintenanceInfo(record({ frozenAt: new Date(at).toISOString(), reason: 'backup', ...(expectedSeconds === undefined ? {} : { expectedSeconds }) }), at + elapsedS * 1000);
    assert.deepEqual(r(600, 60), { reason: 'backup', remainingS: 540, retryAfterS: 540 });
    assert.deepEqual(r(600, 598), { reason: 'backup', remainingS: 2, retryAfterS: 5 });
    assert.deepEqual(r(20_000, 0), { reason: 'backup', remainingS: 20_000, retryAfterS: 3600 });
    assert.deepEqual(r(600, 601), { reason: 'backup', remainingS: null, retryAfterS: MAINTENANCE_RETRY_S }, 'overdue');
    assert.deepEqual(r(undefined, 1), { reason: 'backup', remainingS: null, retryAfterS: MAINTENANCE_RETRY_S });
    assert.deepEqual(maintenanceInfo(undefined), { reason: undefined, remainingS: null, retryAfterS: MAINTENANCE_RETRY_S }, 'a record gone meanwhile');
  });

  test('the page names the reason and the time left, escapes the title, and polls the readiness path', () => {
    const p = maintenancePage({ title: '<b>wiki</b>', reason: 'backup', remainingS: 240, retryAfterS: 240 });
    assert.match(p, /&lt;b&gt;wiki&lt;\/b&gt; is not available right now/);
    assert.doesNotMatch(p, /<b>wiki/);
    assert.match(p, /A backup is running\./);
    assert.match(p, /back in about 4 min/);
    assert.match(p, /<noscript><meta http-equiv="refresh" content="240"><\/noscript>/);
    assert.match(p, /fetch\("\/\.zoopa\/ready"/);
    assert.match(maintenancePage({ title: 'w', reason: 'restore', remainingS: null, retryAfterS: 30 }), /A restore from a backup is running\.<\/p><p><small>/);
    assert.match(maintenancePage({ title: 'w', reason: 'by hand', remainingS: 42, retryAfterS: 42 }), /It is under maintenance\.<\/p><p>It should be back in about 42 s\./);
  });

  test("a backup's expected length: the median of the stack's last successful runs", () => {
    const dir = tmpDir('zoopa-expected-');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    assert.equal(expectedRunSeconds(dir, 'wiki'), undefined, 'no history');
    const run = (stack: string, durationSec: number, result: StackStatus['result'] = 'ok'): StackStatus => ({
      stack,
      result,
      startedAt: '2026-12-01T03:00:00Z',
      finishedAt: '2026-12-01T03:10:00Z',
      durationSec,
      jobs: [],
      logFile: '/dev/null',
    });
    for (const s of [run('wiki', 100), run('wiki', 900, 'failed'), run('other', 5), run('wiki', 300), run('wiki', 200)]) recordStatus(dir, s);
    assert.equal(expectedRunSeconds(dir, 'wiki'), 200, 'median of 100, 300, 200; failed runs and other stacks left out');
    assert.equal(expectedRunSeconds(dir, 'nope'), undefined);
  });
});

describe('maintenance: a proxy started while the stack is frozen', { timeout: 60_000 }, () => {
  async function frozenProxy(rec: FreezeRecord, extra: Record<string, string> = {}): Promise<{ proxy: Proxy; sock: string; logs: string[]; env: NodeJS.ProcessEnv }> {
    const base = tmpDir('zoopa-maintenance-');
    const env = { ...isolatedEnv(base), ...extra };
    fs.mkdirSync(path.dirname(freezeRecordPath('wiki', env)), { recursive: true });
    fs.writeFileSync(freezeRecordPath('wiki', env), JSON.stringify(rec), { mode: 0o600 });
    const sock = path.join(base, 'proxy.sock');
    const logs: string[] = [];
    const settings = resolveProxySettings('wiki', env, { upstream: '127.0.0.1:9', listen: sock, stackUnit: 'wiki-stack.service' });
    // A frozen stack is the freeze's business: the proxy must not ask systemd anything.
    const untouchable: ProxyUnits = new UnitsThatThrow();
    const proxy = await Proxy.start(settings, { env, units: untouchable, diagnose: null, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
    cleanups.push(async () => {
      await proxy.close();
      fs.rmSync(base, { recursive: true, force: true });
    });
    return { proxy, sock, logs, env };
  }

  test('HTTP gets the 503 maintenance page with Retry-After from the record, the poll says maintenance, anything else is closed; nothing touches the stack', async () => {
    const { sock, logs } = await frozenProxy(record({ reason: 'backup', expectedSeconds: 600, frozenAt: new Date(Date.now() - 60_000).toISOString() }));
    const page = await exchange(sock, NAV);
    assert.match(page, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(page, /\r\nX-Zoopa-Page: maintenance\r\n/);
    assert.match(page, /\r\nCache-Control: no-store\r\n/);
    const retry = Number(/\r\nRetry-After: (\d+)\r\n/.exec(page)?.[1]);
    assert.ok(retry > 400 && retry <= 540, `Retry-After ${retry}: what is left of 600 s after 60 s`);
    assert.match(page, /A backup is running\./);
    const api = await exchange(sock, 'POST /api HTTP/1.1\r\nHost: wiki\r\nContent-Length: 5\r\nAccept: application/json\r\n\r\nhello');
    assert.match(api, /^HTTP\/1\.1 503 /, 'every HTTP request, a POST too');
    const poll = await exchange(sock, POLL);
    assert.match(poll, /^HTTP\/1\.1 200 OK\r\n/);
    assert.deepEqual(JSON.parse(poll.slice(poll.indexOf('\r\n\r\n') + 4)), { ready: false, maintenance: true });
    assert.equal(await exchange(sock, '\x16\x03\x01\x02\x00binary'), '', 'not HTTP: closed, nothing answered');
    assert.ok(logs.some((l) => /wiki is frozen: answering with the maintenance page until "zoopa thaw wiki", waking nothing/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /served the maintenance page/.test(l)), logs.join('\n'));
  });

  test('ZOOPA_MAINTENANCE_TEMPLATE: your own page, its variables filled in and escaped', async () => {
    const dir = tmpDir('zoopa-maint-tpl-');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tpl = path.join(dir, 'maint.html');
    fs.writeFileSync(tpl, '<p>{{stack}}: {{reason}}, {{remaining}} s left, poll {{ready_path}}, retry {{retry_after}}; {{unknown}}</p>');
    const { sock } = await frozenProxy(record({ stack: 'wiki', reason: 'restore', expectedSeconds: 120, frozenAt: new Date(Date.now() - 20_000).toISOString() }), { ZOOPA_MAINTENANCE_TEMPLATE: tpl });
    const page = await exchange(sock, NAV);
    assert.match(page, /^HTTP\/1\.1 503 [\s\S]*X-Zoopa-Page: maintenance/);
    const m = /<p>wiki: restore, (\d+) s left, poll \/\.zoopa\/ready, retry (\d+); \{\{unknown\}\}<\/p>$/.exec(page);
    assert.ok(m, page);
    assert.equal(m[1], m[2], 'remaining and Retry-After agree');
    assert.match(page, new RegExp(`\\r\\nRetry-After: ${m[2]}\\r\\n`));
  });

  test('once the freeze ended, its next connection still gets the page, and the proxy exits (the next one starts a normal proxy)', async () => {
    const { proxy, sock, env, logs } = await frozenProxy(record({ reason: 'by hand' }));
    assert.match(await exchange(sock, NAV), /^HTTP\/1\.1 503 [\s\S]*It is under maintenance/);
    fs.rmSync(freezeRecordPath('wiki', env));
    const last = await exchange(sock, NAV);
    assert.match(last, /^HTTP\/1\.1 503 [\s\S]*X-Zoopa-Page: maintenance/, 'answered, not dropped');
    assert.equal(await proxy.done, 'closed');
    assert.ok(logs.some((l) => /the freeze ended: exiting, so that the next connection starts a proxy that wakes wiki-stack\.service/.test(l)), logs.join('\n'));
  });
});

describe('maintenance: a proxy stopped by a freeze while clients wait for a wake', { timeout: 60_000 }, () => {
  test('the held clients get the maintenance page, not a closed connection', async () => {
    const base = tmpDir('zoopa-maintenance-');
    const env = { ...isolatedEnv(base), ZOOPA_WAIT: 'hold' };
    const sock = path.join(base, 'proxy.sock');
    const logs: string[] = [];
    const started: string[] = [];
    // The stack's unit as this test plays it: it starts, and its app never listens (port 9).
    const units: ProxyUnits = {
      show: async () => ({ loadState: 'loaded', activeState: started.length ? 'activating' : 'inactive', invocationId: '', props: {} }),
      start: async (unit) => void started.push(unit),
      stop: async () => undefined,
    };
    const settings = resolveProxySettings('wiki', env, { upstream: '127.0.0.1:9', listen: sock, stackUnit: 'wiki-stack.service' });
    const proxy = await Proxy.start(settings, { env, units, diagnose: null, stateFile: false, logger: createLogger({ write: (l) => logs.push(l), journal: false }) });
    cleanups.push(async () => {
      await proxy.close();
      fs.rmSync(base, { recursive: true, force: true });
    });
    const replies = [exchange(sock, NAV), exchange(sock, NAV)];
    await waitFor(() => proxy.connectionCount === 2 && started.length === 1, { what: 'two held clients and the start' });
    fs.mkdirSync(path.dirname(freezeRecordPath('wiki', env)), { recursive: true });
    fs.writeFileSync(freezeRecordPath('wiki', env), JSON.stringify(record({ reason: 'backup' })), { mode: 0o600 });
    await proxy.close('signal');
    for (const r of await Promise.all(replies)) assert.match(r, /^HTTP\/1\.1 503 [\s\S]*X-Zoopa-Page: maintenance[\s\S]*A backup is running/);
  });
});

/** A unit manager no call may reach. */
class UnitsThatThrow {
  show(): never {
    throw new Error('a frozen stack\'s proxy asked systemd about the stack');
  }
  start(): never {
    throw new Error('a frozen stack\'s proxy started the stack');
  }
  stop(): never {
    throw new Error('a frozen stack\'s proxy stopped the stack');
  }
}
