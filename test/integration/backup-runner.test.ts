/**
 * The backup runner's own rules, on the real test bed: the isolated systemd user
 * manager, `<stack>-stack.service` units installed by `zoopa install`, rootless podman
 * busybox stacks (httpStack fixture), the on-demand sockets and freeze, and the
 * duplicati-server-util stand-in (Duplicati cannot be installed here) as the engine.
 * Every run is `zoopa backup` through the real CLI, as the test user.
 *
 * What test/integration/backup.test.ts proves already (stopped at job time, a sleeping
 * on-demand stack stays asleep, failing jobs put back, SIGKILL then the next run
 * repairs first, SIGTERM puts back) is not repeated here. This file proves:
 *  - the order of a stack's run, with the journal on disk (prior state, "stopped") when
 *    systemd stops the unit (a drop-in ExecStop copies it at that moment);
 *  - a container that ignores the stop: a warning after stop_timeout, the job still runs;
 *  - a failing pre_stop hook or an unknown job: the unit is never touched, earlier undo runs;
 *  - a unit that does not start again: failed, journal kept, named by status and the
 *    doctor check, put back by `zoopa backup repair`;
 *  - restore: previous leaves a stopped stack stopped, always starts it, and previous
 *    starts a stack that was being started (held in ExecStartPre by a drop-in) when the
 *    backup began;
 *  - a stack the user froze stays frozen;
 *  - SIGKILL of an on-demand stack's run: a repair while it runs does nothing, the check
 *    names what was left, `zoopa doctor` only reports it, `zoopa doctor --fix` repairs it (undo, thaw); a freeze made by someone
 *    else afterwards is left alone by the repair;
 *  - SIGTERM during the first of two stacks: put back, the second skipped untouched;
 *  - pings (start, success, fail with the summary; unreachable is a warning), and after a
 *    failed job: its pre_stop hook had run, post_backup did not, the undo did.
 *
 *   npm run build && node scripts/run-tests.mjs integration backup-runner
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import YAML from 'yaml';
import { backupJournalCheck } from '../../src/backup/doctor.js';
import type { JournalEntry } from '../../src/backup/journal.js';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { IMAGE, freePort, httpGet, useTestbed, type Spawned, type Testbed } from '../testbed/index.js';
import { isZombie, pidAlive } from '../testbed/procs.js';
import { containerStarts, runningContainers, socketOf, unitStates } from './ondemand-lib.js';
import { DUPLICATI_STANDIN, type StandinJob } from '../helpers/duplicati-standin.js';

const STANDIN_SRC = DUPLICATI_STANDIN;
const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };
/**
 * web: running; idle: stopped; woke: starts slowly (held by a drop-in); duo: asleep on
 * demand (zoopa.yaml); hand: asleep on demand through a hand-written env file only.
 */
const STACKS = ['web', 'idle', 'woke', 'duo', 'hand'] as const;
type StackName = (typeof STACKS)[number];


interface StackBackup {
  jobs?: unknown[];
  hooks?: Record<string, unknown>;
  restore?: 'previous' | 'always';
  stop_timeout?: number;
}

describe('the backup runner on the test bed', () => {
  const bed = useTestbed({ name: 'backup-runner' });
  const fx = {} as Record<StackName, StackFixture>;
  let standin: string;
  let standinDir: string;

  const journal = (tb: Testbed, s: string) => path.join(tb.stateHome, 'zoopa', 'backup', 'journal', `${s}.json`);
  const frozenRecord = (tb: Testbed, s: string) => path.join(tb.runtimeDir, 'ondemand', `${s}.frozen.json`);
  /** A browser's request over the stack's socket gets the maintenance page (frozen: nothing wakes it). */
  const maintenance = async (tb: Testbed, s: string) => {
    const r = await httpGet(`http://${s}/`, { socketPath: socketOf(tb, s), headers: { Accept: 'text/html' }, timeoutMs: 30_000 });
    return r.status === 503 && r.headers['x-zoopa-page'] === 'maintenance';
  };
  /** Where the web unit's drop-in ExecStop copies web's journal while systemd stops it. */
  const atStop = (tb: Testbed) => path.join(tb.dir, 'web-journal-at-stop.json');
  /** woke's start waits in ExecStartPre until this file exists. */
  const wokeGo = (tb: Testbed) => path.join(tb.dir, 'woke-go');
  const jobId = (name: StackName) => String(STACKS.indexOf(name) + 1);
  const record = (name: StackName, n: number) => path.join(standinDir, `job-${jobId(name)}-${n}.record`);
  /** How many runs of the job the stand-in has recorded. */
  const runs = (name: StackName) => fs.readdirSync(standinDir).filter((f) => f.startsWith(`job-${jobId(name)}-`) && f.endsWith('.record')).length;
  const psRecord = (name: string) => ['podman', 'ps', '--filter', `label=io.podman.compose.project=${name}`, '--format', '{{.Names}}'];

  /** The stand-in's server: one job per stack (named as the stack), behaviour per test. */
  function standinJobs(tb: Testbed, overrides: Partial<Record<StackName, Partial<StandinJob>>> = {}): void {
    const jobs = STACKS.map((s) => ({ id: jobId(s), name: s, seconds: 1, record: psRecord(s), ...overrides[s] }));
    tb.writeFile(path.join(standinDir, 'config.json'), JSON.stringify({ jobs }, null, 2));
  }

  /** zoopa.yaml: each stack's job is its Duplicati job; duo is on demand. */
  function config(tb: Testbed, stacks: Partial<Record<StackName, StackBackup>> = {}, backup: Record<string, unknown> = {}): void {
    const cfg = {
      backup: { duplicati: { command: ['/usr/bin/env', `DUPLICATI_STANDIN_DIR=${standinDir}`, standin], poll_interval: 1 }, ...backup },
      stacks: Object.fromEntries(
        STACKS.map((s) => [s, { ...(s === 'duo' ? { ondemand: { upstream: `127.0.0.1:${fx.duo.port}` } } : {}), backup: { jobs: [s], ...stacks[s] } }]),
      ),
    };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
  }

  async function ok(p: Promise<{ status: number | null; stdout: string; stderr: string }>, what: string) {
    const r = await p;
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    return r;
  }

  const backup = (tb: Testbed, ...stacks: string[]) => tb.zoopa(['--root', tb.root, 'backup', ...stacks], { timeoutMs: 300_000 });

  async function active(tb: Testbed, unit: string): Promise<string> {
    return (await unitStates(tb, [unit])).get(unit)!.active;
  }

  /** When systemd last entered active and inactive: unchanged means never stopped or started. */
  async function unitTimes(tb: Testbed, unit: string): Promise<string> {
    const r = await tb.systemctl(['show', '--property=ActiveEnterTimestampMonotonic,InactiveEnterTimestampMonotonic', unit]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  async function containerIds(tb: Testbed, project: string): Promise<string> {
    const r = await tb.podman(['ps', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.ID}}']);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  /** The stack's log lines of its latest run (the day's log file holds every run of the day). */
  function lastRunLog(tb: Testbed, stack: string): string {
    const dir = path.join(tb.root, 'duplicati', 'logs');
    const file = fs.readdirSync(dir).filter((f) => f.startsWith(`backup-${stack}-`)).sort().pop();
    assert.ok(file, `no log file for ${stack} in ${dir}`);
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    return text.slice(text.lastIndexOf(`=== backup of ${stack} (pid `));
  }

  /** Each pattern matches, each after the one before. */
  function inOrder(text: string, patterns: RegExp[]): void {
    let at = 0;
    for (const p of patterns) {
      const m = p.exec(text.slice(at));
      assert.ok(m, `${p} not found after position ${at} in:\n${text}`);
      at += m.index + m[0].length;
    }
  }

  /** Summary table rows by stack. */
  function rows(stdout: string): Record<string, string> {
    return Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => l && !l.startsWith('STACK '))
        .map((l) => [l.split(/\s+/)[0], l]),
    );
  }

  function spawnBackup(tb: Testbed, stacks: string[]): Spawned {
    return tb.spawn([process.execPath, path.join(tb.appDir, 'bin', 'zoopa.js'), '--root', tb.root, 'backup', ...stacks]);
  }

  /** Wait for a spawned process to exit (polling: the spawned child does not keep the event loop alive). */
  async function exitOf(tb: Testbed, p: Spawned): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await tb.waitFor(() => p.child.exitCode !== null || p.child.signalCode !== null, { ...DEADLINE, what: 'the backup run to exit' });
    return p.exited;
  }

  function status(tb: Testbed): Record<string, { result: string; error?: string }> {
    return (JSON.parse(fs.readFileSync(path.join(tb.stateHome, 'zoopa', 'backup', 'status.json'), 'utf8')) as { stacks: Record<string, { result: string }> }).stacks;
  }

  // Set up: four stacks, stand-in, units installed with two drop-ins; web running, idle and woke stopped, duo asleep on demand.
  before(async () => {
    const tb = bed();
    for (const s of STACKS) fx[s] = httpStack(tb.root, s, { port: await freePort() });
    standin = tb.writeFile('bin/duplicati-server-util', fs.readFileSync(STANDIN_SRC), 0o755);
    standinDir = path.join(tb.dir, 'duplicati');
    standinJobs(tb);
    config(tb);
    await ok(tb.zoopa(['--root', tb.root, 'install']), 'zoopa install');
    await ok(tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'duo']), 'ondemand enable');
    // hand is on demand as the original set it up: an env file written by hand, the socket enabled by hand.
    tb.writeFile(path.join(tb.configHome, 'zoopa-ondemand', 'hand.env'), `ZOOPA_UPSTREAM=127.0.0.1:${fx.hand.port}\nZOOPA_IDLE_TIMEOUT=600\n`, 0o600);
    await ok(tb.systemctl(['enable', '--now', 'zoopa-ondemand@hand.socket']), 'enable the socket of hand');
    const unitDir = path.join(tb.configHome, 'systemd', 'user');
    // While systemd stops web, it copies web's backup journal as it is at that moment.
    tb.writeFile(path.join(unitDir, 'web-stack.service.d', 'journal-at-stop.conf'), `[Service]\nExecStop=-/bin/cp ${journal(tb, 'web')} ${atStop(tb)}\n`);
    // woke starts slowly: its start stays in ExecStartPre (activating) until a file exists.
    tb.writeFile(path.join(unitDir, 'woke-stack.service.d', 'held.conf'), `[Service]\nExecStartPre=/bin/sh -c 'until [ -e ${wokeGo(tb)} ]; do sleep 0.1; done'\n`);
    await ok(tb.systemctl(['daemon-reload']), 'daemon-reload');
    await ok(tb.systemctl(['start', 'web-stack.service']), 'start web');
    assert.equal((await httpGet(fx.web.url)).body, fx.web.expectBody);
    const st = await unitStates(tb, ['idle-stack.service', 'woke-stack.service', 'duo-stack.service', 'zoopa-ondemand@duo.socket', 'hand-stack.service', 'zoopa-ondemand@hand.socket']);
    assert.deepEqual([...st.values()].map((u) => u.active), ['inactive', 'inactive', 'inactive', 'active', 'inactive', 'active']);
  });

  it('a running stack, step by step: the journal holds the prior state when systemd stops the unit; stop, wait, job, start, wait, DONE', async () => {
    const tb = bed();
    fs.rmSync(atStop(tb), { force: true });
    const n = runs('web') + 1;
    const r = await ok(backup(tb, 'web'), 'zoopa backup web');
    assert.match(r.stdout, /^STACK +RESULT +TIME +DETAILS\nweb +ok +/);
    const j = JSON.parse(fs.readFileSync(atStop(tb), 'utf8')) as JournalEntry;
    assert.deepEqual(j.prior, { unitActive: true, unitState: 'active', containers: ['web_web_1'], socket: null }, 'prior state on disk before the stop');
    assert.equal(j.stopped, true, 'the journal says "stopped" before systemd stops it');
    assert.equal(fs.readFileSync(record('web', n), 'utf8'), '', 'no container of web ran when the job started');
    inOrder(lastRunLog(tb, 'web'), [
      /prior state: web-stack\.service active; running: web_web_1\n/,
      /checking the jobs/,
      /stopping web-stack\.service/,
      /no container of web runs/,
      /job 1\/1: /,
      /starting web-stack\.service/,
      /running again: web_web_1/,
      /DONE in /,
    ]);
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1']);
    assert.equal((await httpGet(fx.web.url)).body, fx.web.expectBody);
    assert.equal(fs.existsSync(journal(tb, 'web')), false, 'journal removed');
    assert.equal(status(tb).web!.result, 'ok');
  });

  it('a container that ignores the stop: a warning after stop_timeout, the job runs anyway, and both containers run again after', async () => {
    const tb = bed();
    config(tb, { web: { stop_timeout: 1 } });
    // A container of the project that the unit's `podman-compose down` does not stop.
    await ok(tb.podman(['run', '-d', '--name', 'web_stray', '--label', 'io.podman.compose.project=web', '--network', 'none', IMAGE, 'sleep', '2147483647']), 'podman run');
    try {
      const n = runs('web') + 1;
      const r = await ok(backup(tb, 'web'), 'zoopa backup web');
      assert.match(r.stderr, /warning: web: containers still running after 1s: web_stray; going on/);
      assert.match(r.stdout, /^web +ok /m);
      assert.equal(fs.readFileSync(record('web', n), 'utf8'), 'web_stray\n', 'the job ran with only the stubborn container left');
      assert.deepEqual((await runningContainers(tb, 'web')).sort(), ['web_stray', 'web_web_1']);
    } finally {
      await tb.podman(['rm', '-f', '-t', '0', 'web_stray']);
      config(tb);
    }
  });

  it('a failing pre_stop hook, or an unknown job, fails the stack before its unit is touched; the undo of an earlier hook runs', async () => {
    const tb = bed();
    const times = await unitTimes(tb, 'web');
    const ids = await containerIds(tb, 'web');
    const flag = path.join(tb.home, 'web-pre-stop-flag');
    try {
      config(tb, { web: { hooks: { pre_stop: [{ run: ['touch', flag], undo: ['rm', flag] }, { run: ['false'] }] } } });
      const h = await backup(tb, 'web');
      assert.equal(h.status, 1, h.stderr);
      assert.match(rows(h.stdout).web!, /FAILED .*pre_stop hook false exited with status 1/);
      assert.equal(fs.existsSync(flag), false, 'the undo of the first hook ran');
      const log = lastRunLog(tb, 'web');
      inOrder(log, [/pre_stop: touch /, /pre_stop: false/, /undo pre_stop: rm /]);
      assert.doesNotMatch(log, /stopping web-stack/);

      config(tb, { web: { jobs: ['nosuch'] } });
      const u = await backup(tb, 'web');
      assert.equal(u.status, 1, u.stderr);
      assert.match(rows(u.stdout).web!, /FAILED .*Duplicati has no job "nosuch"/);
    } finally {
      config(tb);
    }
    assert.equal(await unitTimes(tb, 'web'), times, 'systemd never stopped or started web');
    assert.equal(await containerIds(tb, 'web'), ids, 'the same container still runs');
    assert.equal(fs.existsSync(journal(tb, 'web')), false);
  });

  it('a unit that does not start again: failed, journal kept (status and the doctor check name it); zoopa backup repair brings it back', async () => {
    const tb = bed();
    const away = `${fx.web.composeFile}.away`;
    // The compose file goes away during the backup: podman-compose up fails, so does the unit's start.
    config(tb, { web: { hooks: { post_backup: { run: ['mv', 'compose.yaml', 'compose.yaml.away'] } } } });
    try {
      const r = await backup(tb, 'web');
      assert.equal(r.status, 1, r.stderr);
      assert.match(rows(r.stdout).web!, /FAILED .*web-stack\.service/);
      assert.match(r.stderr, /warning: web: could not put back: starting web-stack\.service: /);
      assert.match(r.stderr, /warning: web: journal kept: /);
      assert.ok(fs.existsSync(journal(tb, 'web')), 'journal kept');
      assert.deepEqual(await runningContainers(tb, 'web'), []);
      assert.equal(status(tb).web!.result, 'failed');

      const check = await backupJournalCheck({ env: tb.env }); // read only
      assert.equal(check.verdict, 'fail');
      assert.match(check.detail, /web \(unit stopped; pid \d+, started /);
      assert.match(check.fix ?? '', /zoopa backup repair/);
    } finally {
      if (fs.existsSync(away)) fs.renameSync(away, fx.web.composeFile); // the cause fixed
      config(tb);
    }
    const st = await ok(tb.zoopa(['--root', tb.root, 'backup', 'status']), 'backup status');
    assert.match(st.stdout, /^web .*FAILED .*\[journal left: run "zoopa backup repair"\]$/m);
    assert.ok(fs.existsSync(journal(tb, 'web')), 'reading changed nothing');
    const rep = await ok(tb.zoopa(['--root', tb.root, 'backup', 'repair'], { timeoutMs: 300_000 }), 'backup repair');
    assert.match(rep.stdout, /^repaired: web$/m);
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1']);
    assert.equal(await active(tb, 'web-stack.service'), 'active');
    assert.equal((await httpGet(fx.web.url)).body, fx.web.expectBody);
    assert.equal(fs.existsSync(journal(tb, 'web')), false);
  });

  it('restore: previous leaves a stopped stack stopped; always starts it', async () => {
    const tb = bed();
    try {
      await ok(backup(tb, 'idle'), 'backup idle (previous)');
      assert.match(lastRunLog(tb, 'idle'), /leaving idle-stack\.service stopped: its containers were not running before \(restore: previous\)/);
      assert.equal(await active(tb, 'idle-stack.service'), 'inactive');
      assert.deepEqual(await runningContainers(tb, 'idle'), []);

      config(tb, { idle: { restore: 'always' } });
      await ok(backup(tb, 'idle'), 'backup idle (always)');
      assert.match(lastRunLog(tb, 'idle'), /starting idle-stack\.service/);
      assert.equal(await active(tb, 'idle-stack.service'), 'active');
      assert.deepEqual(await runningContainers(tb, 'idle'), ['idle_web_1']);
      assert.equal((await httpGet(fx.idle.url)).body, fx.idle.expectBody);
    } finally {
      config(tb);
      await ok(tb.systemctl(['stop', 'idle-stack.service']), 'stop idle');
    }
  });

  it('restore: previous starts a stack that was being started (as a wake does) when the backup began', async () => {
    const tb = bed();
    // Its start is held until post_stop (after the backup has stopped it) lets it go.
    config(tb, { woke: { hooks: { post_stop: { run: ['touch', wokeGo(tb)] } } } });
    try {
      await ok(tb.systemctl(['start', '--no-block', 'woke-stack.service']), 'start --no-block woke');
      await tb.waitFor(async () => (await active(tb, 'woke-stack.service')) === 'activating', { ...DEADLINE, what: 'woke to be activating' });
      const r = await ok(backup(tb, 'woke'), 'backup woke');
      assert.match(r.stdout, /^woke +ok /m);
      const log = lastRunLog(tb, 'woke');
      assert.match(log, /prior state: woke-stack\.service activating; running: none\n/);
      inOrder(log, [/stopping woke-stack\.service/, /post_stop: touch /, /job 1\/1: /, /starting woke-stack\.service/, /running again: woke_web_1/]);
      assert.equal(await active(tb, 'woke-stack.service'), 'active');
      assert.deepEqual(await runningContainers(tb, 'woke'), ['woke_web_1']);
      assert.equal((await httpGet(fx.woke.url)).body, fx.woke.expectBody);
    } finally {
      config(tb);
      tb.writeFile(wokeGo(tb), '');
      await ok(tb.systemctl(['stop', 'woke-stack.service']), 'stop woke');
    }
  });

  it('a stack the user froze stays frozen after its backup', async () => {
    const tb = bed();
    await ok(tb.zoopa(['--root', tb.root, 'freeze', 'duo']), 'zoopa freeze duo');
    try {
      await ok(backup(tb, 'duo'), 'backup duo');
      assert.match(lastRunLog(tb, 'duo'), /on-demand activation was frozen already: it stays frozen afterwards/);
      assert.ok(fs.existsSync(frozenRecord(tb, 'duo')), 'still frozen');
      assert.ok(await maintenance(tb, 'duo'), 'its socket answers with the maintenance page');
      assert.equal(await active(tb, 'duo-stack.service'), 'inactive');
    } finally {
      await ok(tb.zoopa(['--root', tb.root, 'thaw', 'duo']), 'zoopa thaw duo');
    }
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active');
  });

  it('a stack on demand through a hand-written env file only, asleep: the dry run shows the freeze; a connection during its backup wakes nothing; the socket listens again after', async () => {
    const tb = bed();
    const go = path.join(tb.dir, 'hand-go');
    const dry = await ok(tb.zoopa(['--root', tb.root, 'backup', '--dry-run', 'hand']), 'backup --dry-run hand');
    assert.match(dry.stdout, /freeze on-demand activation \(on demand \(.*hand\.env exists\)\): record the state of zoopa-ondemand@hand\.socket \(active, enabled now\) and its proxy, stop the proxy; the socket answers with the maintenance page/);
    assert.match(dry.stdout, /thaw: stop the maintenance proxy, then restore exactly the on-demand units' recorded state/);
    const startsBefore = await containerStarts(tb, 'hand');
    standinJobs(tb, { hand: { until: go } });
    const n = runs('hand') + 1;
    const run = spawnBackup(tb, ['hand']);
    try {
      await tb.waitFor(() => fs.existsSync(record('hand', n)), { ...DEADLINE, what: 'the hand job to start' });
      assert.ok(fs.existsSync(frozenRecord(tb, 'hand')), 'frozen during the job');
      assert.ok(await maintenance(tb, 'hand'), 'a request during the backup gets the maintenance page');
      assert.equal(await active(tb, 'hand-stack.service'), 'inactive', 'not woken');
      tb.writeFile(go, '');
      const exit = await exitOf(tb, run);
      assert.equal(exit.code, 0, run.log());
    } finally {
      tb.writeFile(go, '');
      await run.stop();
      standinJobs(tb);
    }
    assert.equal(fs.readFileSync(record('hand', n), 'utf8'), '', 'no container of hand ran during its job');
    assert.match(lastRunLog(tb, 'hand'), /freezing on-demand activation \(zoopa-ondemand@hand\.socket\)/);
    assert.doesNotMatch(tb.managerLog(), /client connected while hand-stack\.service was inactive/);
    assert.equal(await containerStarts(tb, 'hand'), startsBefore, 'never woken');
    assert.equal(await active(tb, 'hand-stack.service'), 'inactive', 'still asleep');
    assert.equal(await active(tb, 'zoopa-ondemand@hand.socket'), 'active', 'thawed');
    assert.equal(await active(tb, 'zoopa-ondemand@hand.service'), 'inactive', 'the maintenance proxy is gone: no proxy ran before');
    assert.equal(fs.existsSync(frozenRecord(tb, 'hand')), false);
    assert.ok(fs.statSync(socketOf(tb, 'hand')).isSocket(), 'listening again (not connected to: that would wake it)');
  });

  it('a journal folder that turns read-only mid-run: warnings, the stack and its socket still put back, the next stack still backed up', async () => {
    const tb = bed();
    const jdir = path.dirname(journal(tb, 'duo'));
    // From post_stop on, no journal write of duo succeeds; its verify hook (after the put-back) makes the folder writable again.
    config(tb, { duo: { hooks: { post_stop: { run: ['chmod', '500', jdir] }, verify: { run: ['chmod', '700', jdir] } } } });
    try {
      const r = await backup(tb, 'duo', 'web');
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stderr, /warning: duo: cannot write the journal \(EACCES[^)]*\); putting the stack back all the same/);
      assert.match(lastRunLog(tb, 'duo'), /thawing the on-demand socket of duo/);
      assert.match(rows(r.stdout).duo!, /^duo +ok /);
      assert.match(rows(r.stdout).web!, /^web +ok /);
    } finally {
      await tb.run(['chmod', '700', jdir]);
      config(tb);
    }
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'duo thawed');
    assert.equal(fs.existsSync(frozenRecord(tb, 'duo')), false);
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive', 'duo still asleep');
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1'], 'web backed up and running again');
    assert.equal(fs.existsSync(journal(tb, 'duo')), false);
    assert.equal(fs.existsSync(journal(tb, 'web')), false);
  });

  it('a podman ps that hangs mid-run: past backup.call_timeout the stack fails and is put back, the lock is released, nothing is left', async () => {
    const tb = bed();
    // A fault injector around the real podman (not a stand-in: every other call is podman's own):
    // the first `podman ps` after the trigger file appears hangs.
    const trigger = path.join(tb.dir, 'hang-next-ps');
    const podman = (await tb.run(['sh', '-c', 'command -v podman'])).stdout.trim();
    assert.ok(podman.startsWith('/'), `podman on PATH: ${podman}`);
    const binDir = path.join(tb.dir, 'hung-bin');
    const hungPid = path.join(tb.dir, 'hung-ps.pid');
    tb.writeFile(path.join(binDir, 'podman'), `#!/bin/sh\nif [ "$1" = ps ] && [ -e ${trigger} ]; then rm -f ${trigger}; echo $$ > ${hungPid}; exec sleep 600; fi\nexec ${podman} "$@"\n`, 0o755);
    config(tb, { web: { hooks: { pre_stop: { run: ['touch', trigger] } } } }, { call_timeout: 3 });
    try {
      const r = await tb.zoopa(['--root', tb.root, 'backup', 'web'], { timeoutMs: 300_000, env: { PATH: `${binDir}:${tb.env.PATH}` } });
      assert.equal(r.status, 1, r.stderr + r.stdout);
      assert.match(rows(r.stdout).web!, /FAILED .*podman ps did not finish within 3s/);
      assert.equal(fs.existsSync(trigger), false, 'the hung call did happen');
      inOrder(lastRunLog(tb, 'web'), [/stopping web-stack\.service/, /waiting for the containers of web to stop/, /failed: podman ps did not finish within 3s/, /starting web-stack\.service again/]);
      const pid = Number(fs.readFileSync(hungPid, 'utf8').trim());
      assert.ok(!pidAlive(pid) || isZombie(pid), `the hung podman ps (pid ${pid}) was killed, not left behind`);
    } finally {
      fs.rmSync(trigger, { force: true });
      config(tb);
    }
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1'], 'put back: running again');
    assert.equal((await httpGet(fx.web.url)).body, fx.web.expectBody);
    assert.equal(fs.existsSync(journal(tb, 'web')), false, 'no journal left');
    assert.equal(fs.existsSync(path.join(tb.stateHome, 'zoopa', 'backup', 'lock')), false, 'the lock is released');
    assert.equal(status(tb).web!.result, 'failed');
  });

  /** Start a backup of duo whose job waits for `go`, and SIGKILL it while the job runs. */
  async function killedRun(tb: Testbed, go: string, whileRunning: (run: Spawned) => Promise<void> = async () => {}): Promise<Spawned> {
    standinJobs(tb, { duo: { until: go } });
    const n = runs('duo') + 1;
    const run = spawnBackup(tb, ['duo']);
    try {
      await tb.waitFor(() => fs.existsSync(record('duo', n)), { ...DEADLINE, what: 'the duo job to start' });
      await whileRunning(run);
    } finally {
      await run.stop('SIGKILL');
      tb.writeFile(go, ''); // let the stand-in's abandoned task end
      standinJobs(tb);
    }
    return run;
  }

  it('SIGKILL mid-run of an on-demand stack: a repair while it runs does nothing; afterwards zoopa doctor names what was left and changes nothing, zoopa doctor --fix puts it back', async () => {
    const tb = bed();
    const maint = path.join(tb.home, 'duo-maintenance');
    config(tb, { duo: { hooks: { pre_stop: { run: ['touch', maint], undo: ['rm', maint] } } } });
    try {
      const run = await killedRun(tb, path.join(tb.dir, 'duo-go-kill-1'), async (r) => {
        const rep = await ok(tb.zoopa(['--root', tb.root, 'backup', 'repair']), 'repair while running');
        assert.match(rep.stdout, new RegExp(`^a backup is running \\(pid ${r.pid}, started \\S+\\); its journal is its own$`, 'm'));
        const check = await backupJournalCheck({ env: tb.env });
        assert.equal(check.verdict, 'ok');
        assert.match(check.detail, new RegExp(`^a backup is running \\(pid ${r.pid}, `));
        assert.ok(fs.existsSync(journal(tb, 'duo')), 'the running backup keeps its journal');
      });
      assert.ok(fs.existsSync(maint), 'left by the killed run: maintenance on');
      assert.ok(fs.existsSync(frozenRecord(tb, 'duo')), 'left by the killed run: frozen');
      const check = await backupJournalCheck({ env: tb.env });
      assert.equal(check.verdict, 'fail');
      assert.match(check.detail, new RegExp(`duo \\(unit stopped, on-demand frozen, 1 undo hook\\(s\\) pending; pid ${run.pid}, started `));
      assert.match(check.fix ?? '', /zoopa backup repair/);
      assert.ok(fs.existsSync(journal(tb, 'duo')), 'the check changed nothing');

      // zoopa doctor only reads: it names the journal and the fix, and puts nothing back.
      const doc = await tb.zoopa(['--root', tb.root, 'doctor', '--json'], { timeoutMs: 300_000 });
      const found = (JSON.parse(doc.stdout) as Array<{ check: string; verdict: string; detail: string; fix?: string }>).find((c) => c.check === 'backup journal');
      assert.equal(found?.verdict, 'fail', doc.stdout);
      assert.match(found!.fix ?? '', /zoopa backup repair, or zoopa doctor --fix/);
      assert.ok(fs.existsSync(journal(tb, 'duo')), 'doctor changed nothing');
      assert.ok(fs.existsSync(maint), 'doctor ran no undo hook');
      assert.ok(fs.existsSync(frozenRecord(tb, 'duo')), 'doctor thawed nothing');

      // zoopa doctor --fix repairs first, then checks.
      const fixed = await tb.zoopa(['--root', tb.root, 'doctor', '--fix', '--json'], { timeoutMs: 300_000 });
      assert.match(fixed.stderr, /repaired: duo/);
      const after = (JSON.parse(fixed.stdout) as Array<{ check: string; verdict: string }>).find((c) => c.check === 'backup journal');
      assert.equal(after?.verdict, 'ok', fixed.stdout);
    } finally {
      config(tb);
    }
    assert.equal(fs.existsSync(maint), false, 'the undo ran');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'thawed');
    assert.equal(fs.existsSync(frozenRecord(tb, 'duo')), false);
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive', 'still asleep');
    assert.deepEqual(await runningContainers(tb, 'duo'), []);
    assert.equal(fs.existsSync(journal(tb, 'duo')), false);
  });

  it('SIGKILL mid-run, then the user thaws and freezes the stack: the repair runs the undo but leaves that freeze alone', async () => {
    const tb = bed();
    const maint = path.join(tb.home, 'duo-maintenance');
    config(tb, { duo: { hooks: { pre_stop: { run: ['touch', maint], undo: ['rm', maint] } } } });
    try {
      const run = await killedRun(tb, path.join(tb.dir, 'duo-go-kill-2'));
      await ok(tb.zoopa(['--root', tb.root, 'thaw', 'duo']), 'zoopa thaw duo');
      await ok(tb.zoopa(['--root', tb.root, 'freeze', 'duo']), 'zoopa freeze duo');
      const rec = JSON.parse(fs.readFileSync(frozenRecord(tb, 'duo'), 'utf8')) as { pid: number };
      assert.notEqual(rec.pid, run.pid);

      const rep = await ok(tb.zoopa(['--root', tb.root, 'backup', 'repair']), 'backup repair');
      assert.match(rep.stdout, /^repaired: duo$/m);
      assert.equal(fs.existsSync(maint), false, 'the undo ran');
      assert.equal(fs.existsSync(journal(tb, 'duo')), false);
      assert.deepEqual(JSON.parse(fs.readFileSync(frozenRecord(tb, 'duo'), 'utf8')), rec, "the user's freeze is untouched");
      assert.ok(await maintenance(tb, 'duo'), 'and its socket still answers with the maintenance page');
    } finally {
      config(tb);
      await ok(tb.zoopa(['--root', tb.root, 'thaw', 'duo']), 'zoopa thaw duo');
    }
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active');
  });

  it('SIGTERM during the first of two stacks: it is put back (undo ran, socket thawed, still asleep), the second is skipped untouched, exit 143', async () => {
    const tb = bed();
    const flag = path.join(tb.home, 'duo-post-stop');
    const go = path.join(tb.dir, 'duo-go-term');
    config(tb, { duo: { hooks: { post_stop: { run: ['touch', flag], undo: ['rm', flag] } } } });
    standinJobs(tb, { duo: { until: go } });
    const webTimes = await unitTimes(tb, 'web');
    const webRuns = runs('web');
    const n = runs('duo') + 1;
    const run = spawnBackup(tb, ['duo', 'web']);
    try {
      await tb.waitFor(() => fs.existsSync(record('duo', n)), { ...DEADLINE, what: 'the duo job to start' });
      assert.ok(fs.existsSync(flag), 'post_stop ran');
      assert.ok(fs.existsSync(frozenRecord(tb, 'duo')), 'frozen during the job');
      await run.stop('SIGTERM');
      const exit = await exitOf(tb, run);
      assert.equal(exit.code, 143, run.log());
    } finally {
      tb.writeFile(go, '');
      await run.stop('SIGKILL');
      standinJobs(tb);
      config(tb);
    }
    const out = run.log();
    assert.match(out, /^duo +INTERRUPTED /m);
    assert.match(out, /^web +SKIPPED +- +skipped after SIGTERM$/m);
    assert.equal(fs.existsSync(flag), false, 'the undo ran');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'thawed');
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive', 'still asleep');
    assert.equal(fs.existsSync(journal(tb, 'duo')), false);
    assert.equal(await unitTimes(tb, 'web'), webTimes, 'web never stopped');
    assert.equal(runs('web'), webRuns, 'no job of web ran');
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1']);
  });

  it('pings: start then success, start then fail with the summary; after the failed job its pre_stop hook had run, post_backup had not, the undo had; an unreachable ping URL is only a warning', async () => {
    const tb = bed();
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
    const pingUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/ping/abc`;
    const maint = path.join(tb.home, 'idle-maintenance');
    const never = path.join(tb.home, 'idle-post-backup');
    try {
      config(tb, {}, { ping_url: pingUrl });
      await ok(backup(tb, 'idle'), 'backup idle');

      config(tb, { idle: { hooks: { pre_stop: { run: ['touch', maint], undo: ['rm', maint] }, post_backup: { run: ['touch', never] } } } }, { ping_url: pingUrl });
      standinJobs(tb, { idle: { fail: 'Disk full', record: ['ls', maint] } });
      const n = runs('idle') + 1;
      const f = await backup(tb, 'idle');
      assert.equal(f.status, 1, f.stderr);
      assert.match(rows(f.stdout).idle!, /FAILED .*Disk full/);

      assert.deepEqual(hits.map((h) => h.url), ['/ping/abc/start', '/ping/abc', '/ping/abc/start', '/ping/abc/fail']);
      assert.equal(hits[0]!.body, 'zoopa backup idle');
      assert.match(hits[1]!.body, /^idle +ok /m);
      assert.match(hits[3]!.body, /^idle +FAILED .*Disk full/m);

      assert.equal(fs.readFileSync(record('idle', n), 'utf8'), `${maint}\n`, 'the pre_stop hook had run when the job started');
      assert.equal(fs.existsSync(never), false, 'post_backup does not run after a failed job');
      assert.equal(fs.existsSync(maint), false, 'the undo ran');
      assert.equal(status(tb).idle!.result, 'failed');
    } finally {
      server.close();
      standinJobs(tb);
    }
    const closed = await freePort();
    try {
      config(tb, {}, { ping_url: `http://127.0.0.1:${closed}/x`, ping_timeout: 2 });
      const u = await ok(backup(tb, 'idle'), 'backup idle, ping unreachable');
      assert.match(u.stderr, new RegExp(`warning: ping http://127\\.0\\.0\\.1:${closed}/\\*\\*\\*/start: .*\\(the backup goes on\\)`));
      assert.doesNotMatch(u.stderr, /\/x\/start/, 'the secret path of the ping URL is not shown');
      assert.match(u.stdout, /^idle +ok /m);
    } finally {
      config(tb);
    }
    assert.equal(await active(tb, 'idle-stack.service'), 'inactive');
  });

  it('zoopa backup snapshots of a stack with a Duplicati job: the job\'s versions as duplicati-server-util reports them', async () => {
    const tb = bed();
    const r = await ok(tb.zoopa(['--root', tb.root, 'backup', 'snapshots', 'web', '--json']), 'backup snapshots web');
    const data = JSON.parse(r.stdout) as { stack: string; restic: unknown[]; duplicati: Array<{ job: string; found: string; versions: number; lastBackup: string | null }> };
    assert.deepEqual(data.restic, [], 'no restic job: restic is not asked');
    assert.equal(data.duplicati.length, 1);
    assert.equal(data.duplicati[0]!.job, 'web');
    assert.equal(data.duplicati[0]!.found, `${jobId('web')}: web`);
    assert.ok(data.duplicati[0]!.versions >= 1, JSON.stringify(data));
    assert.ok(data.duplicati[0]!.lastBackup);
    const text = await ok(tb.zoopa(['--root', tb.root, 'backup', 'snapshots', 'web']), 'backup snapshots web (text)');
    assert.match(text.stdout, new RegExp(`^duplicati job ${jobId('web')}: web: ${data.duplicati[0]!.versions} versions?, last backup \\d{4}-`, 'm'));
  });
});
