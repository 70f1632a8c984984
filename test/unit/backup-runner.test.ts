/**
 * The backup runner and the journal, against real files (journal, lock, status,
 * logs, hook commands) and an in-memory host behind the core's own ports
 * (UnitManager, ContainerEngine): what a real systemd and podman do is covered
 * by the integration tests on the test bed; here every branch of the runner is
 * driven deterministically. Freezing goes through the real on-demand freeze
 * (src/ondemand/freeze.ts) with its record in a temp runtime folder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ContainerEngine, ContainerInfo, UnitInfo, UnitManager } from '../../src/core/ports.js';
import { BackupJobError, sleep, type BackupEngine, type JobContext, type JobResult, type JobSpec } from '../../src/backup/engine.js';
import { backupJournalCheck } from '../../src/backup/doctor.js';
import { OndemandModuleFreezer } from '../../src/backup/freeze.js';
import { journalDir, JournalStore, repairFromJournal, type JournalEntry } from '../../src/backup/journal.js';
import { procStartTime } from '../../src/backup/lock.js';
import { buildPlan, resolveTargets } from '../../src/backup/plan.js';
import { plainProgress } from '../../src/backup/progress.js';
import { runBackup, summaryTable, type RunnerDeps } from '../../src/backup/run.js';
import { readStatus } from '../../src/backup/status.js';
import { createLogger } from '../../src/log.js';
import { freeze as ondemandFreeze, isFrozen } from '../../src/ondemand/freeze.js';
import { loadProject } from '../../src/stacks/discover.js';
import { isolatedEnv, tmpDir, writeFiles } from '../helpers/cli.js';

/** systemd + podman in memory: a stack unit's start runs its containers, stop removes them. */
class FakeHost implements UnitManager, ContainerEngine {
  readonly active = new Map<string, boolean>();
  readonly running = new Map<string, string[]>();
  readonly calls: string[] = [];
  /** Containers that ignore stop (to test the stop timeout). */
  stubborn = new Set<string>();
  /** Called on every stop/start, before it happens. */
  onCall: (what: string) => void = () => {};
  failStart = new Set<string>();
  /** Units systemd reports as activating (being started, e.g. woken on demand). */
  activating = new Set<string>();

  constructor(readonly containersOf: Record<string, string[]>) {}

  project(unit: string): string | undefined {
    const m = /^(.+)-stack\.service$/.exec(unit);
    return m ? m[1] : undefined;
  }
  async show(units: readonly string[]): Promise<Map<string, UnitInfo>> {
    const out = new Map<string, UnitInfo>();
    for (const name of units) {
      const known = this.active.has(name);
      const st = this.activating.has(name) ? 'activating' : this.active.get(name) ? 'active' : 'inactive';
      out.set(name, { name, loadState: known ? 'loaded' : 'not-found', activeState: st, subState: st === 'active' ? 'running' : 'dead', unitFileState: known ? 'enabled' : '', fragmentPath: '', props: {} });
    }
    return out;
  }
  async list(): Promise<Map<string, UnitInfo>> {
    return this.show([...this.active.keys()]);
  }
  async start(unit: string): Promise<void> {
    this.calls.push(`start ${unit}`);
    this.onCall(`start ${unit}`);
    if (this.failStart.has(unit)) throw new Error(`start of ${unit} failed`);
    this.active.set(unit, true);
    this.activating.delete(unit);
    const p = this.project(unit);
    if (p) this.running.set(p, [...(this.containersOf[p] ?? [])]);
  }
  async stop(unit: string): Promise<void> {
    this.calls.push(`stop ${unit}`);
    this.onCall(`stop ${unit}`);
    this.active.set(unit, false);
    this.activating.delete(unit);
    const p = this.project(unit);
    if (p) this.running.set(p, (this.running.get(p) ?? []).filter((c) => this.stubborn.has(c)));
  }
  async restart(unit: string): Promise<void> {
    await this.stop(unit);
    await this.start(unit);
  }
  async enable(): Promise<void> {}
  async disable(): Promise<void> {}
  async daemonReload(): Promise<void> {}
  async logs(): Promise<void> {}
  async runningByProject(): Promise<Map<string, ContainerInfo[]>> {
    const out = new Map<string, ContainerInfo[]>();
    for (const [p, names] of this.running) if (names.length) out.set(p, names.map((n) => ({ id: n, name: n, project: p, state: 'running', image: 'x' })));
    return out;
  }
}

/** A BackupEngine for the runner's tests: records what ran at job time and can fail or hang. */
class ProbeEngine implements BackupEngine {
  readonly kind = 'duplicati' as const;
  readonly seen: Array<{ job: string; running: string[]; socketActive: boolean | undefined }> = [];
  fail = new Set<string>();
  hang = new Set<string>();
  onRun: (job: string) => void = () => {};
  constructor(private readonly host: FakeHost) {}
  async prepare(job: JobSpec): Promise<void> {
    if (job.engine === 'duplicati' && job.job === 'unknown') throw new BackupJobError('Duplicati has no job "unknown"');
  }
  async run(job: JobSpec, ctx: JobContext): Promise<JobResult> {
    const name = (job as { job: string }).job;
    const project = ctx.stack;
    this.seen.push({ job: name, running: [...(this.host.running.get(project) ?? [])], socketActive: this.host.active.get(`zoopa-ondemand@${project}.socket`) });
    this.onRun(name);
    if (this.hang.has(name)) await sleep(3_600_000, ctx.signal);
    if (this.fail.has(name)) throw new BackupJobError(`job ${name} failed: Disk full`);
    return { engine: 'duplicati', job: name, summary: `job ${name} ok` };
  }
}

const COMPOSE = 'services:\n  app:\n    image: x\n';

function setup(yaml: string, stacks: string[], opts: { running?: string[]; sockets?: string[] } = {}) {
  const base = tmpDir('zoopa-runner-');
  const env = isolatedEnv(base);
  const root = path.join(base, 'stacks');
  const files: Record<string, string> = { 'zoopa.yaml': yaml };
  for (const s of stacks) files[`${s}/compose.yaml`] = COMPOSE;
  writeFiles(root, files);
  const host = new FakeHost(Object.fromEntries(stacks.map((s) => [s, [`${s}_app_1`]])));
  for (const s of stacks) host.active.set(`${s}-stack.service`, false);
  for (const s of opts.running ?? []) {
    host.active.set(`${s}-stack.service`, true);
    host.running.set(s, [`${s}_app_1`]);
  }
  for (const s of opts.sockets ?? []) {
    host.active.set(`zoopa-ondemand@${s}.socket`, true);
    host.active.set(`zoopa-ondemand@${s}.service`, false);
  }
  const project = loadProject({ root, env });
  const stateDir = path.join(env.XDG_STATE_HOME!, 'zoopa', 'backup');
  const engine = new ProbeEngine(host);
  const lines: string[] = [];
  const logger = createLogger({ write: (l) => lines.push(l), journal: false, debug: true });
  const deps: RunnerDeps = {
    env,
    units: host,
    containers: host,
    freezer: new OndemandModuleFreezer(host),
    engines: { duplicati: engine },
    progress: plainProgress(logger),
    logger,
    stateDir,
    pollMs: 10,
  };
  const plan = (args: string[]) => buildPlan(project, resolveTargets(project, args), { env });
  return { base, env, root, host, engine, deps, plan, stateDir, lines, project };
}

const journalFile = (stateDir: string, stack: string) => path.join(journalDir(stateDir), `${stack}.json`);

describe('backup runner', () => {
  test('a running stack: journal first, stopped during the job, running again after, DONE logged, status recorded', async () => {
    const t = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web'], { running: ['web'] });
    let journalAtStop: JournalEntry | undefined;
    t.host.onCall = (what) => {
      if (what.startsWith('stop') && !journalAtStop) journalAtStop = JSON.parse(fs.readFileSync(journalFile(t.stateDir, 'web'), 'utf8')) as JournalEntry;
    };
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.deepEqual(journalAtStop?.prior, { unitActive: true, unitState: 'active', containers: ['web_app_1'], socket: null }, 'prior state written before the stop');
    assert.deepEqual(t.engine.seen, [{ job: 'web', running: [], socketActive: undefined }], 'no container of the project ran at job time');
    assert.deepEqual(t.host.calls, ['stop web-stack.service', 'start web-stack.service']);
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
    assert.equal(fs.existsSync(journalFile(t.stateDir, 'web')), false, 'journal removed');
    const st = readStatus(t.stateDir).stacks.web!;
    assert.equal(st.result, 'ok');
    assert.deepEqual(st.jobs, [{ engine: 'duplicati', job: 'web', summary: 'job web ok' }]);
    const log = fs.readFileSync(st.logFile, 'utf8');
    assert.match(st.logFile, /duplicati\/logs\/backup-web-\d{4}-\d\d-\d\d\.log$/);
    assert.match(log, /prior state: web-stack.service active; running: web_app_1/);
    assert.match(log, /DONE in /);
    assert.match(summaryTable(out), /^STACK +RESULT +TIME +DETAILS\nweb +ok +\S+ +job web ok\n$/);
  });

  test('a sleeping on-demand stack stays asleep; its socket is frozen during the job and active after', async () => {
    const t = setup('stacks:\n  web:\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [web]\n', ['web'], { sockets: ['web'] });
    let frozenDuring = false;
    t.engine.onRun = () => (frozenDuring = isFrozen('web', t.env));
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.equal(t.engine.seen[0]!.socketActive, false, 'socket stopped during the job');
    assert.ok(frozenDuring);
    assert.equal(t.host.active.get('zoopa-ondemand@web.socket'), true, 'socket active again');
    assert.equal(isFrozen('web', t.env), false);
    assert.equal(t.host.active.get('web-stack.service'), false, 'still asleep');
    assert.ok(!t.host.calls.includes('start web-stack.service'));
  });

  test('a stack the user froze stays frozen afterwards', async () => {
    const t = setup('stacks:\n  web:\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [web]\n', ['web'], { sockets: ['web'] });
    await ondemandFreeze('web', { units: t.host, env: t.env });
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.equal(isFrozen('web', t.env), true);
    assert.equal(t.host.active.get('zoopa-ondemand@web.socket'), false);
  });

  test('a failing job: stack and socket put back, undo hook ran, exit 1, the next stack still backed up', async () => {
    const yaml =
      'stacks:\n  app:\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [app]\n      hooks:\n        pre_stop: { run: [touch, maintenance], undo: [rm, maintenance] }\n        post_backup: [touch, never]\n  web:\n    backup:\n      jobs: [web]\n';
    const t = setup(yaml, ['app', 'web'], { running: ['app', 'web'], sockets: ['app'] });
    t.engine.fail.add('app');
    let maintenanceDuringJob = false;
    t.engine.onRun = (job) => {
      if (job === 'app') maintenanceDuringJob = fs.existsSync(path.join(t.root, 'app', 'maintenance'));
    };
    const out = await runBackup(t.plan(['app', 'web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 1);
    assert.ok(maintenanceDuringJob, 'the hook ran before the job');
    assert.equal(fs.existsSync(path.join(t.root, 'app', 'maintenance')), false, 'its undo ran');
    assert.equal(fs.existsSync(path.join(t.root, 'app', 'never')), false, 'post_backup does not run after a failure');
    assert.deepEqual(t.host.running.get('app'), ['app_app_1'], 'app running again');
    assert.equal(t.host.active.get('zoopa-ondemand@app.socket'), true, 'socket thawed');
    assert.deepEqual(out.stacks.map((s) => [s.stack, s.result]), [['app', 'failed'], ['web', 'ok']]);
    assert.match(summaryTable(out), /app +FAILED +\S+ +job app failed: Disk full/);
    assert.equal(readStatus(t.stateDir).stacks.app!.result, 'failed');
    assert.equal(fs.existsSync(journalFile(t.stateDir, 'app')), false, 'put back: no journal left');
  });

  test('a failing pre_stop hook: the stack is never stopped; earlier undo still runs', async () => {
    const yaml =
      'stacks:\n  web:\n    backup:\n      jobs: [web]\n      hooks:\n        pre_stop:\n          - { run: [touch, flag], undo: [rm, flag] }\n          - \"false\"\n';
    const t = setup(yaml, ['web'], { running: ['web'] });
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 1);
    assert.match(out.stacks[0]!.error ?? '', /pre_stop hook false exited with status 1/);
    assert.deepEqual(t.host.calls, [], 'the unit was not touched');
    assert.equal(fs.existsSync(path.join(t.root, 'web', 'flag')), false);
    assert.equal(t.engine.seen.length, 0);
  });

  test('an unknown job fails the stack before it is touched', async () => {
    const t = setup('stacks:\n  web:\n    backup:\n      jobs: [unknown]\n', ['web'], { running: ['web'] });
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 1);
    assert.deepEqual(t.host.calls, []);
  });

  test('restore: previous leaves a stopped stack stopped; always starts it', async () => {
    const prev = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web']);
    await runBackup(prev.plan(['web']), prev.deps, { installSignals: false });
    assert.deepEqual(prev.host.calls, ['stop web-stack.service']);
    const always = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n      restore: always\n', ['web']);
    await runBackup(always.plan(['web']), always.deps, { installSignals: false });
    assert.deepEqual(always.host.calls, ['stop web-stack.service', 'start web-stack.service']);
    assert.deepEqual(always.host.running.get('web'), ['web_app_1']);
  });

  test('restore: previous starts a stack that was being started (woken) when the backup began', async () => {
    const t = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web']);
    t.host.activating.add('web-stack.service');
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.deepEqual(t.host.calls, ['stop web-stack.service', 'start web-stack.service']);
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
  });

  test('containers that do not stop in time: a warning, and the job still runs (as the original)', async () => {
    const t = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n      stop_timeout: 0.1\n', ['web'], { running: ['web'] });
    t.host.stubborn.add('web_app_1');
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.ok(t.lines.some((l) => /warning: web: containers still running after 100ms: web_app_1; going on/.test(l)), t.lines.join(''));
  });

  test('containers that do not come back: failed, journal kept for repair', async () => {
    const t = setup('stacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web'], { running: ['web'] });
    t.host.failStart.add('web-stack.service');
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 1);
    assert.ok(fs.existsSync(journalFile(t.stateDir, 'web')), 'journal kept');
    t.host.failStart.clear();
    const rep = await repairFromJournal({ env: t.env, units: t.host, containers: t.host, freezer: t.deps.freezer, stateDir: t.stateDir, pollMs: 10, log: () => {} });
    assert.deepEqual(rep.repaired, ['web']);
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
  });

  test('SIGTERM during a job: the stack is put back, the rest skipped, exit 143', async () => {
    const yaml = 'stacks:\n  web:\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [web]\n      hooks:\n        post_stop: { run: [touch, flag], undo: [rm, flag] }\n  db:\n    backup:\n      jobs: [db]\n';
    const t = setup(yaml, ['web', 'db'], { running: ['web', 'db'], sockets: ['web'] });
    t.engine.hang.add('web');
    t.engine.onRun = () => setImmediate(() => process.kill(process.pid, 'SIGTERM'));
    const out = await runBackup(t.plan(['web', 'db']), t.deps);
    assert.equal(out.exitCode, 143);
    assert.equal(out.interrupted, 'SIGTERM');
    assert.deepEqual(out.stacks.map((s) => [s.stack, s.result]), [['web', 'interrupted'], ['db', 'skipped']]);
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
    assert.deepEqual(t.host.running.get('db'), ['db_app_1'], 'db never touched');
    assert.equal(t.host.active.get('zoopa-ondemand@web.socket'), true);
    assert.equal(fs.existsSync(path.join(t.root, 'web', 'flag')), false, 'undo ran');
    assert.equal(process.listenerCount('SIGTERM'), 0, 'handlers removed');
  });
});

describe('backup journal repair', () => {
  /** A pid that certainly no longer runs. */
  async function deadPid(): Promise<number> {
    const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => c.once('exit', r));
    return c.pid!;
  }

  async function leftovers(t: ReturnType<typeof setup>, pid: number) {
    // What a run killed during its job leaves: socket frozen by it, unit stopped, an undo pending.
    await ondemandFreeze('web', { units: t.host, env: t.env });
    const rec = path.join(t.env.XDG_RUNTIME_DIR!, 'ondemand', 'web.frozen.json');
    fs.writeFileSync(rec, JSON.stringify({ ...JSON.parse(fs.readFileSync(rec, 'utf8')), pid }));
    await t.host.stop('web-stack.service');
    t.host.calls.length = 0;
    fs.writeFileSync(path.join(t.root, 'web', 'maintenance'), '');
    const entry: JournalEntry = {
      version: 1,
      stack: 'web',
      stackDir: path.join(t.root, 'web'),
      unit: 'web-stack.service',
      project: 'web',
      pid,
      startedAt: '2026-11-29T03:30:00.000Z',
      restore: 'previous',
      startTimeoutSec: 5,
      prior: { unitActive: true, unitState: 'active', containers: ['web_app_1'], socket: { unit: 'zoopa-ondemand@web.socket', active: true } },
      frozen: true,
      stopped: true,
      pendingUndo: [{ point: 'pre_stop', argv: ['rm', 'maintenance'], timeoutSec: 10 }],
    };
    new JournalStore(journalDir(t.stateDir)).write(entry);
  }

  const yaml = 'stacks:\n  web:\n    ondemand: { upstream: "127.0.0.1:8080" }\n    backup:\n      jobs: [web]\n';

  test('repairFromJournal: unit started, containers back, undo run, socket thawed, journal removed', async () => {
    const t = setup(yaml, ['web'], { running: ['web'], sockets: ['web'] });
    await leftovers(t, await deadPid());
    const rep = await repairFromJournal({ env: t.env, units: t.host, containers: t.host, freezer: t.deps.freezer, stateDir: t.stateDir, pollMs: 10, log: () => {} });
    assert.deepEqual(rep, { repaired: ['web'], failed: [], unreadable: [] });
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
    assert.equal(fs.existsSync(path.join(t.root, 'web', 'maintenance')), false);
    assert.equal(t.host.active.get('zoopa-ondemand@web.socket'), true);
    assert.equal(isFrozen('web', t.env), false);
    assert.equal(fs.existsSync(journalFile(t.stateDir, 'web')), false);
  });

  test('a freeze made by someone else is not thawed by a repair', async () => {
    const t = setup(yaml, ['web'], { running: ['web'], sockets: ['web'] });
    await leftovers(t, await deadPid());
    const rec = path.join(t.env.XDG_RUNTIME_DIR!, 'ondemand', 'web.frozen.json');
    fs.writeFileSync(rec, JSON.stringify({ ...JSON.parse(fs.readFileSync(rec, 'utf8')), pid: 1 }));
    await repairFromJournal({ env: t.env, units: t.host, containers: t.host, freezer: t.deps.freezer, stateDir: t.stateDir, pollMs: 10, log: () => {} });
    assert.equal(isFrozen('web', t.env), true);
  });

  test('the next run repairs first, before touching anything else', async () => {
    const t = setup(yaml, ['web'], { running: ['web'], sockets: ['web'] });
    await leftovers(t, await deadPid());
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.deepEqual(out.repair.repaired, ['web']);
    assert.deepEqual(t.host.calls.slice(0, 2), ['start web-stack.service', 'start zoopa-ondemand@web.socket'], 'repair before the new run');
    assert.deepEqual(t.engine.seen[0]!.running, [], 'then the normal run');
    assert.deepEqual(t.host.running.get('web'), ['web_app_1']);
    assert.ok(t.lines.some((l) => /web: repairing after an interrupted backup/.test(l)));
  });

  test('while a backup runs (a live lock holder), repair does nothing and says so', async () => {
    const t = setup(yaml, ['web'], { running: ['web'], sockets: ['web'] });
    await leftovers(t, await deadPid());
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    fs.writeFileSync(path.join(t.stateDir, 'lock'), JSON.stringify({ pid: child.pid, procStart: procStartTime(child.pid!), startedAt: 'now', argv: [] }));
    try {
      const rep = await repairFromJournal({ env: t.env, units: t.host, containers: t.host, freezer: t.deps.freezer, stateDir: t.stateDir, log: () => {} });
      assert.match(rep.skipped ?? '', new RegExp(`a backup is running \\(pid ${child.pid}`));
      assert.ok(fs.existsSync(journalFile(t.stateDir, 'web')));
      assert.deepEqual(t.host.calls, []);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('the doctor check reports a left journal (read only) and names the fix', async () => {
    const t = setup(yaml, ['web'], { running: ['web'], sockets: ['web'] });
    assert.equal((await backupJournalCheck({ env: t.env })).verdict, 'ok');
    const pid = await deadPid();
    await leftovers(t, pid);
    const c = await backupJournalCheck({ env: t.env });
    assert.equal(c.verdict, 'fail');
    assert.match(c.detail, new RegExp(`web \\(unit stopped, on-demand frozen, 1 undo hook\\(s\\) pending; pid ${pid}`));
    assert.match(c.fix ?? '', /zoopa backup repair/);
    assert.ok(fs.existsSync(journalFile(t.stateDir, 'web')), 'the check changed nothing');
  });

  test('an unreadable journal is reported, not guessed at', async () => {
    const t = setup(yaml, ['web']);
    fs.mkdirSync(journalDir(t.stateDir), { recursive: true });
    fs.writeFileSync(journalFile(t.stateDir, 'web'), '{"torn":');
    const rep = await repairFromJournal({ env: t.env, units: t.host, containers: t.host, freezer: t.deps.freezer, stateDir: t.stateDir, log: () => {} });
    assert.equal(rep.unreadable.length, 1);
  });
});

describe('pings', () => {
  test('start, then success or fail, with the summary; an unreachable ping URL never fails the backup', async () => {
    const hits: Array<{ url: string; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hits.push({ url: req.url ?? '', body });
        res.end('OK');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const t = setup(`backup:\n  ping_url: http://127.0.0.1:${port}/ping/abc\nstacks:\n  web:\n    backup:\n      jobs: [web]\n  db:\n    backup:\n      jobs: [db]\n`, ['web', 'db'], { running: ['web'] });
      await runBackup(t.plan(['web']), t.deps, { installSignals: false });
      t.engine.fail.add('db');
      await runBackup(t.plan(['db']), t.deps, { installSignals: false });
      assert.deepEqual(hits.map((h) => h.url), ['/ping/abc/start', '/ping/abc', '/ping/abc/start', '/ping/abc/fail']);
      assert.match(hits[3]!.body, /db +FAILED/);
    } finally {
      server.close();
    }
    const t = setup('backup:\n  ping_url: http://127.0.0.1:9/x\n  ping_timeout: 2\nstacks:\n  web:\n    backup:\n      jobs: [web]\n', ['web']);
    const out = await runBackup(t.plan(['web']), t.deps, { installSignals: false });
    assert.equal(out.exitCode, 0);
    assert.ok(t.lines.some((l) => /warning: ping http:\/\/127\.0\.0\.1:9\/x\/start: .*\(the backup goes on\)/.test(l)));
  });
});
