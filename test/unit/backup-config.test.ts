/**
 * Backup configuration and plan: bad input is an InputError naming the key,
 * thrown before anything is touched (and exit 2 with nothing written through the
 * real CLI); the plan says what will happen to each stack in order; the service
 * and timer render as the original's and pass `systemd-analyze --user verify`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildPlan, planJson, planSteps, renderPlan, resolveTargets } from '../../src/backup/plan.js';
import { ondemandEnvFile } from '../../src/paths.js';
import { renderBackupUnits } from '../../src/backup/units.js';
import { ConfigError, InputError, UsageError } from '../../src/errors.js';
import { run } from '../../src/exec.js';
import { loadProject, type Project } from '../../src/stacks/discover.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { resolveTools } from '../../src/unitfile/tools.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n    volumes:\n      - ./data:/data\n';

function world(yaml: string, files: Record<string, string> = {}) {
  const base = tmpDir('zoopa-backup-cfg-');
  const root = path.join(base, 'stacks');
  const env = { ...isolatedEnv(base), RESTIC_PASSWORD: 'pw' };
  writeFiles(root, {
    'zoopa.yaml': yaml,
    'web/compose.yaml': COMPOSE,
    'web/data/index.html': 'hello\n',
    'db/compose.yaml': 'services:\n  db:\n    image: localhost/zoopa-busybox:latest\n',
    'duplicati/compose.yaml': 'services:\n  duplicati:\n    image: localhost/zoopa-busybox:latest\n',
    ...files,
  });
  return { base, root, env };
}

function project(yaml: string, files: Record<string, string> = {}): { p: Project; env: NodeJS.ProcessEnv; root: string; base: string } {
  const w = world(yaml, files);
  return { p: loadProject({ root: w.root, env: w.env }), env: w.env, root: w.root, base: w.base };
}

function planErr(yaml: string, args: string[], files: Record<string, string> = {}): InputError {
  let err: unknown;
  try {
    const { p, env } = project(yaml, files);
    buildPlan(p, resolveTargets(p, args), { env });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
  return err;
}

describe('backup config and plan validation', () => {
  test('unknown stack: UsageError naming it and listing the stacks', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['nope']);
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /unknown stack "nope"/);
    assert.match(e.hint ?? '', /db, duplicati, web/);
  });

  test('an unknown stack in backup.stacks names backup.stacks.N', () => {
    const e = planErr('backup:\n  stacks: [web, nope]\nstacks:\n  web:\n    backup:\n      jobs: [web]\n', []);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'backup.stacks.1');
  });

  test('a stack with no jobs: ConfigError on stacks.<name>.backup.jobs', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      restore: always\n', ['web']);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'stacks.web.backup.jobs');
    assert.match(e.message, /no backup jobs/);
  });

  test('a stack without a backup section at all is refused the same way', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web', 'db']);
    assert.equal(e.key, 'stacks.db.backup.jobs');
  });

  test('a bad restore policy is a ConfigError from zoopa.yaml with the allowed values', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n      restore: sometimes\n', ['web']);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'stacks.web.backup.restore');
    assert.match(e.message, /line 5/);
    assert.match(e.hint ?? '', /previous, always/);
  });

  test('unknown keys are errors (strict), with a suggestion', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n      restor: always\n', ['web']);
    assert.equal(e.key, 'stacks.web.backup.restor');
    assert.match(e.hint ?? '', /restore/);
  });

  test('a bad duration names its key', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n      stop_timeout: soon\n', ['web']);
    assert.equal(e.key, 'stacks.web.backup.stop_timeout');
  });

  test('no targets and no backup.stacks: usage error', () => {
    const e = planErr('stacks:\n  web:\n    backup:\n      jobs: [web]\n', []);
    assert.ok(e instanceof UsageError);
  });

  test('restic without a repository, and a missing restic path, are refused before anything runs', () => {
    const a = planErr('stacks:\n  web:\n    backup:\n      jobs: [{ restic: {} }]\n', ['web']);
    assert.equal(a.key, 'backup.restic.repository');
    const b = planErr('backup:\n  restic: { repository: repo }\nstacks:\n  web:\n    backup:\n      jobs: [{ restic: { paths: [missing] } }]\n', ['web']);
    assert.equal(b.key, 'stacks.web.backup.jobs.0.restic.paths');
    assert.match(b.message, /missing does not exist/);
    const c = planErr('backup:\n  restic: { repository: repo }\nstacks:\n  db:\n    backup:\n      jobs: [{ restic: {} }]\n', ['db']);
    assert.match(c.message, /no bind mounts/);
  });

  test('targets: names, units and paths as the original took them; "all"; backup.stacks', () => {
    const { p, root } = project(
      'backup:\n  stacks: [db, web]\nstacks:\n  web:\n    backup:\n      jobs: [web]\n  db:\n    backup:\n      jobs: ["7"]\n',
    );
    assert.deepEqual(resolveTargets(p, ['web-stack.service', `${root}/db`, 'web']).map((s) => s.name), ['web', 'db']);
    assert.deepEqual(resolveTargets(p, ['all']).map((s) => s.name), ['db', 'web']);
    assert.deepEqual(resolveTargets(p, []).map((s) => s.name), ['db', 'web']);
  });

  test('defaults: unit, project, timeouts from the stack, restore previous, freeze when on demand, restic paths from bind mounts', () => {
    const { p, env, root } = project(
      'backup:\n  restic: { repository: repo }\nstacks:\n  web:\n    stop_timeout: 45\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [web, { duplicati: 3, timeout: 2h }, { restic: { tags: [nightly] } }]\n',
    );
    const plan = buildPlan(p, resolveTargets(p, ['web']), { env, now: new Date(2026, 10, 29, 3, 30) });
    const sp = plan.stacks[0]!;
    assert.equal(sp.unit, 'web-stack.service');
    assert.equal(sp.project, 'web');
    assert.equal(sp.stopTimeoutSec, 45);
    assert.equal(sp.restore, 'previous');
    assert.equal(sp.freeze, 'yes');
    assert.deepEqual(sp.jobs[0], { engine: 'duplicati', job: 'web', timeoutSec: 6 * 3600 });
    assert.deepEqual(sp.jobs[1], { engine: 'duplicati', job: '3', timeoutSec: 7200 });
    assert.equal(sp.jobs[2]!.engine, 'restic');
    assert.deepEqual((sp.jobs[2] as { paths: string[] }).paths, [path.join(root, 'web', 'data')]);
    assert.equal(sp.logFile, path.join(root, 'duplicati', 'logs', 'backup-web-2026-11-29.log'));
    assert.equal(plan.restic?.repository, path.join(root, 'repo'));
  });
});

describe('hooks read as written', () => {
  const withHooks = (hooks: string) => `stacks:\n  web:\n    backup:\n      jobs: [web]\n      hooks:\n${hooks}`;
  const hooksOf = (hooks: string) => {
    const { p, env } = project(withHooks(hooks));
    return buildPlan(p, resolveTargets(p, ['web']), { env }).stacks[0]!.hooks;
  };

  test('a flow list of plain words ([sh, -c, "..."]) is an input error naming file, key and value, with the run: fix', () => {
    const e = planErr(withHooks('        pre_backup: [sh, -c, "pg_dump db > /srv/dump.sql"]\n'), ['web']);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'stacks.web.backup.hooks.pre_backup');
    assert.deepEqual(e.value, ['sh', '-c', 'pg_dump db > /srv/dump.sql']);
    assert.match(e.file ?? '', /zoopa\.yaml$/);
    assert.match(e.message, /^line 6: stacks\.web\.backup\.hooks\.pre_backup: a list of plain words would run each word as a hook of its own.*write \{ run: \[sh, -c, "\.\.\."\] \}/);
  });

  test('[false] (a YAML boolean), and a one-line hook with quotes, are input errors with the argv form as the fix', () => {
    const b = planErr(withHooks('        verify: [false]\n'), ['web']);
    assert.equal(b.key, 'stacks.web.backup.hooks.verify.0');
    assert.match(b.message, /false is a YAML boolean, not a command: write \{ run: \["false"\] \}/);
    const q = planErr(withHooks(`        pre_stop: "sh -c 'echo hi'"\n`), ['web']);
    assert.equal(q.key, 'stacks.web.backup.hooks.pre_stop');
    assert.match(q.message, /split on white space only \(no shell, no quotes\)/);
  });

  test('what reads unambiguously: a command line, a list of command lines, run: with an argv', () => {
    const h = hooksOf('        pre_stop: touch /tmp/a\n        post_stop: ["touch /tmp/a", "rm -f /tmp/b"]\n        pre_backup: { run: [sh, -c, "echo hi > /tmp/x"] }\n        verify: [healthcheck.sh]\n');
    assert.deepEqual(h.pre_stop.map((x) => x.run), [['touch', '/tmp/a']]);
    assert.deepEqual(h.post_stop.map((x) => x.run), [['touch', '/tmp/a'], ['rm', '-f', '/tmp/b']]);
    assert.deepEqual(h.pre_backup.map((x) => x.run), [['sh', '-c', 'echo hi > /tmp/x']]);
    assert.deepEqual(h.verify.map((x) => x.run), [['healthcheck.sh']]);
    assert.equal(h.pre_stop[0]!.timeout, 600, 'backup.hook_timeout by default');
  });

  test('through the real CLI: exit 2, the file, key and value, and nothing written', async () => {
    const { root, env, base } = world(withHooks('        pre_backup: [sh, -c, "echo hi"]\n'));
    const before = snapshot(base);
    const r = await zoopa(['--root', root, 'backup', 'web'], { env });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /zoopa\.yaml: line 6: stacks\.web\.backup\.hooks\.pre_backup: a list of plain words/);
    assert.match(r.stderr, /run: \[sh, -c, "\.\.\."\]/);
    assert.deepEqual(snapshot(base), before);
  });
});

describe('which stacks a backup freezes', () => {
  const yaml = 'stacks:\n  web:\n    backup:\n      jobs: [web]\n  db:\n    backup:\n      jobs: [db]\n      freeze: false\n';
  const sleeping = { unitActive: false, unitState: 'inactive', containers: [] };

  test('on demand through a hand-written env file only (no ondemand: section): frozen, and the dry run shows it', () => {
    const { p, env } = project(yaml);
    fs.mkdirSync(path.dirname(ondemandEnvFile('web', env)), { recursive: true });
    fs.writeFileSync(ondemandEnvFile('web', env), 'ZOOPA_UPSTREAM=127.0.0.1:8080\n');
    const sp = buildPlan(p, resolveTargets(p, ['web']), { env }).stacks[0]!;
    assert.equal(sp.freeze, 'yes');
    assert.match(sp.freezeReason, /web\.env exists/);
    const steps = planSteps(sp);
    assert.ok(steps.some((s) => /^freeze on-demand activation \(on demand \(.*web\.env exists\)\): record the state of zoopa-ondemand@web\.socket .*the socket answers with the maintenance page/.test(s)), steps.join('\n'));
    assert.ok(steps.some((s) => /^thaw: /.test(s)));
  });

  test('no env file, no ondemand: section: frozen when its socket unit is enabled or active as the run starts, else not', () => {
    const { p, env } = project(yaml);
    const plan = buildPlan(p, resolveTargets(p, ['web']), { env });
    const sp = plan.stacks[0]!;
    assert.equal(sp.freeze, 'auto');
    const enabled = planSteps(sp, { ...sleeping, socket: { unit: 'zoopa-ondemand@web.socket', active: false, enabled: true } });
    assert.ok(enabled.some((s) => /^freeze on-demand activation \(on demand: zoopa-ondemand@web\.socket is enabled\)/.test(s)), enabled.join('\n'));
    const active = planSteps(sp, { ...sleeping, socket: { unit: 'zoopa-ondemand@web.socket', active: true } });
    assert.ok(active.some((s) => /^freeze on-demand activation \(on demand: zoopa-ondemand@web\.socket is active\)/.test(s)), active.join('\n'));
    const none = planSteps(sp, { ...sleeping, socket: null });
    assert.ok(!none.some((s) => /freeze|thaw/.test(s)), none.join('\n'));
    const json = planJson(plan, new Map([['web', { ...sleeping, socket: { unit: 'zoopa-ondemand@web.socket', active: true } }]])) as { stacks: Array<{ freeze: unknown }> };
    assert.equal(json.stacks[0]!.freeze, true);
  });

  test('a stack requiring the one backed up is frozen by the same rule (its env file), else if its socket is enabled or active', async () => {
    const { dependentPlans, dependentSteps } = await import('../../src/backup/dependents.js');
    const { p, env } = project('stacks:\n  web:\n    requires: [db]\n  duplicati:\n    requires: [db]\n  db:\n    backup:\n      jobs: [db]\n');
    fs.mkdirSync(path.dirname(ondemandEnvFile('web', env)), { recursive: true });
    fs.writeFileSync(ondemandEnvFile('web', env), 'ZOOPA_UPSTREAM=127.0.0.1:8080\n');
    const plans = dependentPlans(p.stacks, p.stacks.find((s) => s.name === 'db')!, env);
    assert.deepEqual(plans.map((d) => [d.name, d.freeze, d.freezeIfSocket]).sort(), [['duplicati', false, true], ['web', true, false]]);
    const steps = dependentSteps('db', 'db-stack.service', plans).beforeStop.join('\n');
    assert.match(steps, /^freeze their on-demand activation: zoopa-ondemand@web\.socket$/m);
    assert.match(steps, /^freeze, if enabled or active when the run starts: zoopa-ondemand@duplicati\.socket$/m);
  });

  test('freeze: false opts out even with an env file', () => {
    const { p, env } = project(yaml);
    fs.mkdirSync(path.dirname(ondemandEnvFile('db', env)), { recursive: true });
    fs.writeFileSync(ondemandEnvFile('db', env), 'ZOOPA_UPSTREAM=127.0.0.1:8080\n');
    const sp = buildPlan(p, resolveTargets(p, ['db']), { env }).stacks[0]!;
    assert.equal(sp.freeze, 'no');
    assert.ok(!planSteps(sp, { ...sleeping, socket: { unit: 'zoopa-ondemand@db.socket', active: true } }).some((s) => /freeze/.test(s)));
  });
});

describe('backup plan rendering', () => {
  const yaml =
    'stacks:\n  web:\n    backup:\n      jobs: [web]\n      hooks:\n        pre_stop: { run: [occ, maintenance:mode, --on], undo: [occ, maintenance:mode, --off] }\n        verify: "curl -fsS http://127.0.0.1:8080/"\n';

  test('steps in order, with hooks, undo and the restore decision from the current state', () => {
    const { p, env } = project(yaml);
    const plan = buildPlan(p, resolveTargets(p, ['web']), { env });
    const sp = plan.stacks[0]!;
    const steps = planSteps(sp, { unitActive: true, unitState: 'active', containers: ['web_app_1'], socket: null });
    const idx = (re: RegExp) => steps.findIndex((s) => re.test(s));
    assert.ok(idx(/^write the prior state/) === 0);
    assert.ok(idx(/^pre_stop: occ maintenance:mode --on .*undo afterwards: occ maintenance:mode --off/) > 0);
    assert.ok(idx(/^stop web-stack.service; wait up to 2m until no container labelled io.podman.compose.project=web/) > idx(/^pre_stop/));
    assert.ok(idx(/^duplicati job "web"/) > idx(/^stop /));
    assert.ok(idx(/^start web-stack.service again: running now web_app_1/) > idx(/^duplicati job/));
    assert.ok(idx(/^run the undo of every hook/) > idx(/^start /));
    assert.ok(idx(/^verify: curl -fsS/) > idx(/^run the undo/));
    const sleeping = planSteps(sp, { unitActive: false, unitState: 'inactive', containers: [], socket: null });
    assert.ok(sleeping.some((s) => /^leave web-stack.service stopped/.test(s)));
  });

  test('rendered text names the stack, the log file, and what happens on failure', () => {
    const { p, env } = project(yaml);
    const plan = buildPlan(p, resolveTargets(p, ['web']), { env });
    const text = renderPlan(plan);
    assert.match(text, /^Backup plan for 1 stack in .* \(dry run: nothing is changed\)/);
    assert.match(text, /1\. web {2}\(web-stack\.service, project web\)/);
    assert.match(text, /log: .*duplicati\/logs\/backup-web-\d{4}-\d\d-\d\d\.log/);
    assert.match(text, /On failure or SIGINT\/SIGTERM/);
  });
});

describe('backup units', () => {
  const yaml =
    'backup:\n  stacks: [web, db]\nstacks:\n  web:\n    backup:\n      jobs: [web]\n  db:\n    backup:\n      jobs: [{ restic: { paths: [.] } }]\n';

  function render(y: string) {
    const { p, env, root, base } = project(y);
    const tools = resolveTools({ configFile: p.configFile, env });
    return { units: renderBackupUnits({ project: p, tools, env }), tools, root, env, base };
  }

  test('duplicati-backup.service: oneshot, zoopa backup <stacks> with --root, Wants/After the Duplicati stack', () => {
    const { units, tools, root } = render(yaml);
    assert.deepEqual(units.map((u) => u.name), ['duplicati-backup.service', 'duplicati-backup.timer']);
    const svc = parseUnitText(units[0]!.content);
    const s = new Map(svc.get('Service'));
    assert.equal(s.get('Type'), 'oneshot');
    assert.equal(s.get('ExecStart'), `${tools.node} ${tools.zoopa} --root ${root} backup web db`);
    assert.equal(s.get('KillMode'), 'mixed');
    const u = new Map(svc.get('Unit'));
    assert.equal(u.get('Wants'), 'duplicati-stack.service');
    assert.equal(u.get('After'), 'duplicati-stack.service');
    const timer = new Map(parseUnitText(units[1]!.content).get('Timer'));
    assert.equal(timer.get('OnCalendar'), '*-*-* 03:30:00');
    assert.equal(timer.get('Persistent'), 'yes');
  });

  test('restic-only setups: configurable names, no Duplicati dependency, own calendar', () => {
    const { units } = render(
      'backup:\n  stacks: [db]\n  unit: zoopa-backup\n  on_calendar: "Sun *-*-* 04:00:00"\nstacks:\n  db:\n    backup:\n      jobs: [{ restic: { paths: [.] } }]\n',
    );
    assert.deepEqual(units.map((u) => u.name), ['zoopa-backup.service', 'zoopa-backup.timer']);
    assert.equal(new Map(parseUnitText(units[0]!.content).get('Unit')).get('Wants'), undefined);
    assert.equal(new Map(parseUnitText(units[1]!.content).get('Timer')).get('OnCalendar'), 'Sun *-*-* 04:00:00');
  });

  test('backup.check_calendar: <unit>-check.service runs zoopa backup check on that calendar; they pass systemd-analyze verify', async () => {
    const { units, tools, root, base, env } = render('backup:\n  check_calendar: "Sun *-*-* 05:00:00"\nstacks:\n  db:\n    backup:\n      jobs: [{ restic: { paths: [.] } }]\n');
    assert.deepEqual(units.map((u) => u.name), ['duplicati-backup-check.service', 'duplicati-backup-check.timer']);
    const s = new Map(parseUnitText(units[0]!.content).get('Service'));
    assert.equal(s.get('Type'), 'oneshot');
    assert.equal(s.get('ExecStart'), `${tools.node} ${tools.zoopa} --root ${root} backup check`);
    const t = new Map(parseUnitText(units[1]!.content).get('Timer'));
    assert.equal(t.get('OnCalendar'), 'Sun *-*-* 05:00:00');
    assert.equal(t.get('Unit'), 'duplicati-backup-check.service');
    const dir = path.join(base, 'check-units');
    fs.mkdirSync(dir);
    for (const u of units) fs.writeFileSync(path.join(dir, u.name), u.content);
    const r = await run(['systemd-analyze', '--user', 'verify', ...units.map((u) => path.join(dir, u.name))], { env, reject: false });
    assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
    assert.equal(r.status, 0);
  });

  test('no backup.stacks: no units', () => {
    assert.deepEqual(render('stacks:\n  web:\n    backup:\n      jobs: [web]\n').units, []);
  });

  test('a stack in backup.stacks without jobs is a ConfigError at render time', () => {
    assert.throws(() => render('backup:\n  stacks: [db]\n'), (e: unknown) => e instanceof ConfigError && e.key === 'stacks.db.backup.jobs');
  });

  test('service and timer pass systemd-analyze --user verify with empty output', async () => {
    const { units, base, env } = render(yaml);
    const dir = path.join(base, 'units');
    fs.mkdirSync(dir);
    for (const u of units) fs.writeFileSync(path.join(dir, u.name), u.content);
    // verify checks the units named in Wants=/After= exist: give it the Duplicati stack's unit.
    fs.writeFileSync(path.join(dir, 'duplicati-stack.service'), '[Service]\nType=oneshot\nExecStart=/bin/true\n');
    const r = await run(['systemd-analyze', '--user', 'verify', ...units.map((u) => path.join(dir, u.name))], { env, reject: false });
    assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
    assert.equal(r.status, 0);
  });
});

describe('zoopa backup through the real CLI: bad input', () => {
  for (const [name, yaml, args, re] of [
    ['unknown stack', 'stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['backup', 'nope'], /unknown stack "nope"/],
    ['no jobs', 'stacks:\n  web:\n    backup:\n      restore: always\n', ['backup', 'web'], /stacks\.web\.backup\.jobs/],
    ['bad policy', 'stacks:\n  web:\n    backup:\n      jobs: [web]\n      restore: sometimes\n', ['backup', 'web'], /"sometimes" is not allowed/],
  ] as const) {
    test(`${name}: exit 2, a clear message, nothing written anywhere`, async () => {
      const w = world(yaml);
      const before = snapshot(w.base);
      const r = await zoopa(['--root', w.root, ...args], { env: w.env });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.deepEqual(snapshot(w.base), before);
    });
  }

  test('--dry-run prints the plan and changes nothing (even with no systemd to ask)', async () => {
    const w = world('stacks:\n  web:\n    backup:\n      jobs: [web]\n');
    const before = snapshot(w.base);
    const r = await zoopa(['--root', w.root, 'backup', '--dry-run', 'web'], { env: w.env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Backup plan for 1 stack/);
    assert.match(r.stdout, /duplicati job "web"/);
    assert.deepEqual(snapshot(w.base), before);
  });
});
