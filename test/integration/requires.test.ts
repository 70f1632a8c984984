/**
 * Stacks that need stacks, on the real test bed (systemd user manager, socket activation,
 * rootless podman): on-demand `app` and `app2` both require `db`, which has
 * `stop_when_unneeded: true`. systemd does the work from the rendered units
 * (Requires=, After=, StopWhenUnneeded=yes); zoopa adds no logic of its own.
 *
 *  - the first request to app wakes db, then app (db's containers start first);
 *  - app's idle stop stops db too;
 *  - with app2 awake (kept awake by its stop_check veto while a file exists: no
 *    timing), app's idle stop leaves db up; once app2 sleeps too, db stops;
 *  - a backup of db (real restic) stops app first and puts app, app2 and db back as
 *    they were (app running, app2 asleep with its socket listening), each journaled;
 *    `backup --dry-run` shows the chain.
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
    const repo = path.join(tb.dir, 'restic-repo');
    const pwFile = tb.writeFile(path.join(tb.dir, 'restic-password'), 'correct horse battery staple\n', 0o600);
    tb.writeFile(
      path.join(tb.root, 'zoopa.yaml'),
      YAML.stringify({
        backup: { restic: { repository: repo, password_file: pwFile, init: true } },
        stacks: {
          app: { requires: ['db'], ondemand: { upstream: `127.0.0.1:${app.port}`, idle: '5s' } },
          // app2 sleeps only when its veto allows it: while `hold` exists it stays awake.
          app2: { requires: ['db'], ondemand: { upstream: `127.0.0.1:${app2.port}`, idle: '2s', stop_check: ['/usr/bin/test', '!', '-e', hold] } },
          db: { stop_when_unneeded: true, backup: { jobs: [{ restic: { paths: ['.'] } }] } },
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
    assert.match(text.stdout, /^STACK +UNIT STATE +CONTAINERS +REQUIRES +REQUIRED BY +ON DEMAND +LAST BACKUP$/m);
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

  it('backup --dry-run db shows the chain: app and app2 are frozen and stopped first, and put back with db', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'backup', '--dry-run', 'db']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /stacks that require db: app \(requires db\), app2 \(requires db\); write each one's prior state to its own journal/);
    assert.match(r.stdout, /freeze their on-demand activation: zoopa-ondemand@app\.socket, zoopa-ondemand@app2\.socket/);
    assert.match(r.stdout, /stop them first, the furthest first: app-stack\.service, app2-stack\.service/);
    assert.match(r.stdout, /start again those of app, app2 that were running \(systemd starts db-stack\.service with them\)/);
    const j = await tb.zoopa(['--root', tb.root, 'backup', '--dry-run', '--json', 'db']);
    const plan = JSON.parse(j.stdout) as { stacks: Array<{ dependents: Array<{ name: string }> }> };
    assert.deepEqual(plan.stacks[0]!.dependents.map((d) => d.name), ['app', 'app2']);
  });

  it('a backup of db stops app first and puts app, app2 and db back as they were', async () => {
    const tb = bed();
    // app running (started by hand: no idle stop), so db too; app2 asleep, its socket listening.
    const up = await tb.zoopa(['--root', tb.root, 'up', 'app'], { timeoutMs: 180_000 });
    assert.equal(up.status, 0, up.stderr);
    assert.equal(await state('db-stack.service'), 'active');
    const r = await tb.zoopa(['--root', tb.root, 'backup', 'db'], { timeoutMs: 600_000 });
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const out = r.stdout + r.stderr;
    assert.match(out, /app requires db: prior state app-stack\.service active; running: app_web_1/);
    assert.match(out, /app2 requires db: prior state app2-stack\.service inactive; running: none/);
    assert.ok(out.indexOf('stopping app-stack.service first') >= 0, out);
    assert.ok(out.indexOf('stopping app-stack.service first') < out.indexOf('waiting for the containers of db to stop'), out);
    // podman saw app's container die before db's, and systemd started db before app again.
    const ev = await tb.podman(['events', '--stream=false', '--filter', 'event=died', '--format', '{{.Name}}']);
    assert.equal(ev.status, 0, ev.stderr);
    const died = ev.stdout.split('\n');
    assert.ok(died.lastIndexOf('app_web_1') >= 0 && died.lastIndexOf('app_web_1') < died.lastIndexOf('db_web_1'), `app's container died first: ${died.join(' ')}`);
    const entered = async (unit: string) => {
      const x = await tb.systemctl(['show', '--property=ActiveEnterTimestampMonotonic', '--value', unit]);
      assert.equal(x.status, 0, x.stderr);
      return Number(x.stdout.trim());
    };
    const [dbUp, appUp] = [await entered('db-stack.service'), await entered('app-stack.service')];
    assert.ok(dbUp > 0 && dbUp <= appUp, `db active again before app: ${dbUp} ${appUp}`);
    // As they were: app and db running, app2 asleep, both sockets listening again, no journal left.
    const st = await unitStates(tb, ['app-stack.service', 'db-stack.service', 'app2-stack.service', 'zoopa-ondemand@app.socket', 'zoopa-ondemand@app2.socket']);
    assert.deepEqual(Object.fromEntries([...st].map(([u, s]) => [u, s.active])), {
      'app-stack.service': 'active',
      'db-stack.service': 'active',
      'app2-stack.service': 'inactive',
      'zoopa-ondemand@app.socket': 'active',
      'zoopa-ondemand@app2.socket': 'active',
    });
    assert.equal((await runningContainers(tb, 'app')).length, 1);
    assert.equal((await runningContainers(tb, 'db')).length, 1);
    assert.deepEqual(await runningContainers(tb, 'app2'), []);
    const journal = path.join(tb.stateHome, 'zoopa', 'backup', 'journal');
    assert.deepEqual(fs.existsSync(journal) ? fs.readdirSync(journal) : [], [], 'every journal removed');
    await get(app2); // app2's socket wakes it as before
    // Leave nothing starting for the test bed's stop: stopping a unit in the middle of
    // `podman-compose up` can hang until TimeoutStopSec (podman 4.3).
    await tb.waitFor(async () => (await state('app2-stack.service')) === 'active', { ...DEADLINE, what: "app2's start job to finish" });
    const down = await tb.systemctl(['stop', 'zoopa-ondemand@app.socket', 'zoopa-ondemand@app2.socket', 'app-stack.service', 'app2-stack.service', 'db-stack.service'], { timeoutMs: 180_000 });
    assert.equal(down.status, 0, down.stderr);
  });
});

