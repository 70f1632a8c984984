/**
 * zoopa web without systemd: the Prometheus text (checked by the real promtool),
 * the page's HTML (escaping, scripts-off table), web.listen validation through the
 * real CLI (exit 2, nothing written), the rendered units (systemd-analyze verify is
 * in test/integration/web.test.ts, where a manager runs).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { run } from '../../src/exec.js';
import { emptyStats, recordIdleStop, recordWake, readStats, statsFile } from '../../src/ondemand/stats.js';
import type { StatusReport } from '../../src/status/collect.js';
import { parseWebListen } from '../../src/web/config.js';
import { renderMetrics } from '../../src/web/metrics.js';
import { renderPage } from '../../src/web/page.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';
import fs from 'node:fs';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

function report(): StatusReport {
  const stats = emptyStats('cloud');
  stats.wakes = 3;
  stats.wakeFailures = 1;
  stats.idleStops = 2;
  stats.wakeSeconds = { buckets: [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2], sum: 7.5, count: 2 };
  stats.recent = [
    { kind: 'wake', at: '2026-12-01T10:00:00.000Z', seconds: 2, result: 'ready', peer: '<script>' },
    { kind: 'idle-stop', at: '2026-12-01T10:10:00.000Z' },
  ];
  return {
    root: '/srv/stacks',
    generatedAt: '2026-12-01T10:20:00.000Z',
    stacks: [
      {
        name: 'cloud',
        unit: 'cloud-stack.service',
        rootful: false,
        installed: true,
        state: 'inactive',
        subState: 'dead',
        enabled: 'disabled',
        containers: { running: 0, names: [] },
        ondemand: { state: 'off', socket: 'active', connections: 0, bytes: 0, secondsUntilIdleStop: null, lastWake: null, owned: false, stats, bytesTotal: { in: 10, out: 2000 } },
        requires: [],
        requiredBy: [],
        backup: { result: 'ok', startedAt: '2026-12-01T03:30:00.000Z', finishedAt: '2026-12-01T03:31:00.000Z', durationSec: 60, downtimeSec: 42.5, lastSuccessAt: '2026-12-01T03:31:00.000Z', jobs: ['restic data: 3 files'], error: null },
      },
      {
        name: 'we"ird',
        unit: 'x-stack.service',
        rootful: true,
        installed: true,
        state: 'active',
        subState: 'exited',
        enabled: 'enabled',
        containers: { running: 1, names: ['x_app_1'] },
        ondemand: null,
        backup: null,
        requires: [],
        requiredBy: [],
      },
    ],
    llama: [],
    backups: [],
  };
}

test('metrics: every family has HELP and TYPE, the values of the report, and promtool accepts it', async () => {
  const text = renderMetrics(report());
  for (const m of [
    'zoopa_stack_up{stack="cloud"} 0',
    'zoopa_stack_up{stack="we\\"ird"} 1',
    'zoopa_ondemand_state{stack="cloud",state="sleeping"} 1',
    'zoopa_ondemand_state{stack="cloud",state="awake"} 0',
    'zoopa_ondemand_wakes_total{stack="cloud"} 3',
    'zoopa_ondemand_wake_failures_total{stack="cloud"} 1',
    'zoopa_ondemand_idle_stops_total{stack="cloud"} 2',
    'zoopa_ondemand_wake_seconds_bucket{stack="cloud",le="2.5"} 1',
    'zoopa_ondemand_wake_seconds_bucket{stack="cloud",le="+Inf"} 2',
    'zoopa_ondemand_wake_seconds_count{stack="cloud"} 2',
    'zoopa_ondemand_wake_seconds_sum{stack="cloud"} 7.5',
    'zoopa_ondemand_bytes_total{stack="cloud",direction="out"} 2000',
    'zoopa_backup_last_result{stack="cloud"} 1',
    'zoopa_backup_downtime_seconds{stack="cloud"} 42.5',
    `zoopa_backup_last_success_timestamp_seconds{stack="cloud"} ${Date.parse('2026-12-01T03:31:00.000Z') / 1000}`,
  ]) {
    assert.ok(text.split('\n').includes(m), `missing line ${m}\n${text}`);
  }
  for (const fam of new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/(_bucket|_sum|_count)?\{.*$/, '')))) {
    assert.match(text, new RegExp(`^# HELP ${fam} .+$`, 'm'));
    assert.match(text, new RegExp(`^# TYPE ${fam} (gauge|counter|histogram)$`, 'm'));
  }
  const r = await run(['promtool', 'check', 'metrics'], { input: text, reject: false });
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
});

test('page: a plain table that reads without scripts, with every value escaped', () => {
  const html = renderPage(report(), { refreshSeconds: 2 });
  assert.match(html, /<table class="stacks">/);
  assert.match(html, /<tr data-stack="cloud">/);
  assert.match(html, /data-state="sleeping"/);
  assert.match(html, /we&quot;ird/);
  assert.ok(!html.includes('<script>'), 'a peer name is escaped');
  assert.match(html, /&lt;script&gt;/);
  assert.match(html, /<script src="assets\/zoopa\.js" defer><\/script>/);
  assert.ok(!/https?:\/\//.test(html), 'no external assets');
});

test('stats: wakes, failures and idle stops add up across writes; the file is 0600', () => {
  const env = isolatedEnv(tmpDir());
  assert.equal(recordWake('cloud', { seconds: 1.2, ready: true }, env), null);
  assert.equal(recordWake('cloud', { seconds: 30, ready: false, reason: 'no image' }, env), null);
  assert.equal(recordIdleStop('cloud', env), null);
  const s = readStats('cloud', env);
  assert.equal(s.wakes, 2);
  assert.equal(s.wakeFailures, 1);
  assert.equal(s.idleStops, 1);
  assert.equal(s.wakeSeconds.count, 1);
  assert.deepEqual(s.recent.map((e) => e.kind), ['wake', 'wake', 'idle-stop']);
  assert.equal(fs.statSync(statsFile('cloud', env)).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(statsFile('cloud', env))), ['cloud.stats.json'], 'no temp file left');
});

test('web.listen: host:port, [v6]:port and absolute paths; everything else has a reason', () => {
  assert.deepEqual(parseWebListen('127.0.0.1:9330'), { kind: 'tcp', host: '127.0.0.1', port: 9330, text: '127.0.0.1:9330' });
  assert.deepEqual(parseWebListen('[::1]:80'), { kind: 'tcp', host: '::1', port: 80, text: '[::1]:80' });
  assert.equal((parseWebListen('/run/user/1000/zoopa-web.sock') as { kind: string }).kind, 'unix');
  for (const bad of ['9330', 'localhost', '127.0.0.1:0', '127.0.0.1:70000', 'run/web.sock', '/run/../x.sock', 'a b:80', '[zz]:80']) {
    assert.equal(typeof parseWebListen(bad), 'string', bad);
  }
});

test('bad input: a bad web.listen → exit 2 naming the key, nothing written', async () => {
  const base = tmpDir();
  const root = path.join(base, 'stacks');
  writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'web:\n  listen: "localhost"\n' });
  const env = isolatedEnv(base);
  const before = snapshot(base);
  const r = await zoopa(['--root', root, 'install'], { env });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /zoopa\.yaml: line 2: web\.listen/);
  assert.match(r.stderr, /"localhost"/);
  assert.match(r.stderr, /host:port/);
  assert.deepEqual(snapshot(base), before, 'nothing written');
});

test('render: web: renders zoopa-web.socket (ListenStream) and zoopa-web.service (zoopa web --idle-exit); none without web:', async () => {
  const base = tmpDir();
  const root = path.join(base, 'stacks');
  writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'web:\n  listen: 127.0.0.1:9444\n  idle_exit: 90s\n' });
  const env = isolatedEnv(base);
  const r = await zoopa(['--root', root, 'render', '--out', path.join(base, 'out')], { env });
  assert.equal(r.status, 0, r.stderr);
  const sock = fs.readFileSync(path.join(base, 'out', 'zoopa-web.socket'), 'utf8');
  assert.match(sock, /^ListenStream=127\.0\.0\.1:9444$/m);
  const svc = fs.readFileSync(path.join(base, 'out', 'zoopa-web.service'), 'utf8');
  assert.match(svc, /^ExecStart=\S+ \S+zoopa\.js --root \S+ web --idle-exit 90$/m);
  const base2 = tmpDir();
  writeFiles(path.join(base2, 'stacks'), { 'web/compose.yaml': COMPOSE });
  const r2 = await zoopa(['--root', path.join(base2, 'stacks'), 'render', '--out', path.join(base2, 'out')], { env: isolatedEnv(base2) });
  assert.equal(r2.status, 0, r2.stderr);
  assert.ok(!fs.existsSync(path.join(base2, 'out', 'zoopa-web.socket')));
});
