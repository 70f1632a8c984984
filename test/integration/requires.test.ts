/**
 * Stacks that need stacks, on the real test bed (systemd user manager, socket activation,
 * rootless podman): on-demand `app` and `app2` both require `db`, which has
 * `stop_when_unneeded: true`. systemd does the work from the rendered units
 * (Requires=, After=, StopWhenUnneeded=yes); zoopa adds no logic of its own.
 *
 *  - the first request to app wakes db, then app (db's containers start first);
 *  - app's idle stop stops db too;
 *  - with app2 awake (kept awake by its stop_check veto while a file exists: no
 *    timing), app's idle stop leaves db up; once app2 sleeps too, db stops.
 *
 *   npm run build && node scripts/run-tests.mjs integration/requires
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { freePort, httpGet, useTestbed } from '../testbed/index.js';
import { activeState, runningContainers, socketOf, unitStates } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 180_000, intervalMs: 200 };

describe('requires: an on-demand app needing a db that stops when unneeded', () => {
  const bed = useTestbed({ name: 'requires' });
  let app: StackFixture;
  let app2: StackFixture;
  let db: StackFixture;
  let hold: string;

  const get = async (stack: StackFixture) => {
    const tb = bed();
    const r = await httpGet(`http://${stack.name}/`, { socketPath: socketOf(tb, stack.name), timeoutMs: 170_000 });
    assert.equal(r.status, 200, `${stack.name}: ${r.body}`);
    assert.equal(r.body, stack.expectBody);
  };
  const state = async (unit: string) => activeState(bed(), unit);

  it('install renders the requirements; the sockets listen; everything sleeps', async () => {
    const tb = bed();
    app = httpStack(tb.root, 'app', { port: await freePort() });
    app2 = httpStack(tb.root, 'app2', { port: await freePort() });
    db = httpStack(tb.root, 'db', { port: await freePort() });
    hold = path.join(tb.dir, 'app2-busy');
    tb.writeFile(
      path.join(tb.root, 'zoopa.yaml'),
      YAML.stringify({
        stacks: {
          app: { requires: ['db'], ondemand: { upstream: `127.0.0.1:${app.port}`, idle: '2s' } },
          // app2 sleeps only when its veto allows it: while `hold` exists it stays awake.
          app2: { requires: ['db'], ondemand: { upstream: `127.0.0.1:${app2.port}`, idle: '2s', stop_check: ['/usr/bin/test', '!', '-e', hold] } },
          db: { stop_when_unneeded: true },
        },
      }),
    );
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    const unit = fs.readFileSync(path.join(tb.root, 'systemd', 'app-stack.service'), 'utf8');
    assert.match(unit, /^Requires=db-stack\.service$/m);
    assert.match(unit, /^After=db-stack\.service$/m);
    assert.match(fs.readFileSync(path.join(tb.root, 'systemd', 'db-stack.service'), 'utf8'), /^StopWhenUnneeded=yes$/m);
    const en = await tb.systemctl(['enable', '--now', 'zoopa-ondemand-dir.service', 'zoopa-ondemand@app.socket', 'zoopa-ondemand@app2.socket']);
    assert.equal(en.status, 0, en.stderr);
    const st = await unitStates(tb, ['app-stack.service', 'app2-stack.service', 'db-stack.service', 'zoopa-ondemand@app.socket']);
    assert.deepEqual([...st.values()].map((u) => u.active), ['inactive', 'inactive', 'inactive', 'active']);

    const s = await tb.zoopa(['--root', tb.root, 'status', '--json']);
    assert.equal(s.status, 0, s.stderr);
    const rows = new Map((JSON.parse(s.stdout) as { stacks: Array<{ name: string; requires: string[]; requiredBy: string[] }> }).stacks.map((r) => [r.name, r]));
    assert.deepEqual(rows.get('app')!.requires, ['db']);
    assert.deepEqual(rows.get('db')!.requiredBy, ['app', 'app2']);
    assert.deepEqual(rows.get('db')!.requires, []);
    const text = await tb.zoopa(['--root', tb.root, 'status']);
    assert.match(text.stdout, /^STACK +UNIT STATE +CONTAINERS +REQUIRES +REQUIRED BY +ON DEMAND$/m);
    assert.match(text.stdout, /^db +inactive \(dead\) +0 +- +app, app2 /m);
  });

  it('the first request to app wakes db first, then app', async () => {
    const tb = bed();
    await get(app);
    assert.equal(await state('db-stack.service'), 'active');
    assert.equal((await runningContainers(tb, 'db')).length, 1);
    // podman-compose's output reaches the manager log when it exits (Python buffers it).
    const up = (container: string) => tb.managerLog().indexOf(`podman run --name=${container} `);
    await tb.waitFor(() => up('db_web_1') >= 0 && up('app_web_1') >= 0, { ...DEADLINE, what: `both stacks' podman-compose up in the manager log` });
    assert.ok(up('db_web_1') < up('app_web_1'), 'db started before app');
  });

  it("app's idle stop stops db too (StopWhenUnneeded)", async () => {
    const tb = bed();
    await tb.waitFor(async () => (await state('app-stack.service')) === 'inactive', { ...DEADLINE, what: "app's idle stop" });
    await tb.waitFor(async () => (await state('db-stack.service')) === 'inactive', { ...DEADLINE, what: 'db to stop once unneeded' });
    assert.deepEqual(await runningContainers(tb, 'db'), []);
    assert.deepEqual(await runningContainers(tb, 'app'), []);
  });

  it('with app2 awake, db stays up through the idle stop of app, and stops when app2 sleeps too', async () => {
    const tb = bed();
    tb.writeFile(hold, 'busy\n');
    await get(app2);
    await get(app);
    assert.equal(await state('db-stack.service'), 'active');
    await tb.waitFor(async () => (await state('app-stack.service')) === 'inactive', { ...DEADLINE, what: "app's idle stop" });
    // app2 vetoes its own idle stop at least once after app stopped: by then systemd has long
    // had the chance to stop db if it were unneeded.
    const vetoes = () => tb.managerLog().split('\n').filter((l) => l.includes('app2: veto: ')).length;
    const seen = vetoes();
    await tb.waitFor(() => vetoes() > seen, { ...DEADLINE, what: 'a veto from app2 after app stopped' });
    assert.equal(await state('app2-stack.service'), 'active');
    assert.equal(await state('db-stack.service'), 'active', 'db stays up while app2 needs it');
    assert.equal((await runningContainers(tb, 'db')).length, 1);
    fs.rmSync(hold);
    await tb.waitFor(async () => (await state('app2-stack.service')) === 'inactive', { ...DEADLINE, what: "app2's idle stop once its veto lifts" });
    await tb.waitFor(async () => (await state('db-stack.service')) === 'inactive', { ...DEADLINE, what: 'db to stop when both sleep' });
    assert.deepEqual(await runningContainers(tb, 'db'), []);
  });
});
