/**
 * The Duplicati engine against the duplicati-server-util stand-in
 * (test/standins/duplicati-server-util), which speaks ServerUtil's plain-text
 * interface: with `run --wait` and without it (polling `status`), a failing job
 * whose `run --wait` still exits 0, a job that finished before the first check,
 * a job refused by the server, an unknown job, a job that outlives its timeout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BackupJobError, type JobContext } from '../../src/backup/engine.js';
import { DuplicatiEngine, judgeResult, parseListBackups, parseStatus } from '../../src/backup/engines/duplicati.js';
import { run } from '../../src/exec.js';
import { tmpDir } from '../helpers/cli.js';
import { DUPLICATI_STANDIN, type StandinJob } from '../helpers/duplicati-standin.js';

export const STANDIN = DUPLICATI_STANDIN;


function server(jobs: StandinJob[], opts: { wait?: boolean; wait_failure_exit?: number; down?: boolean } = {}) {
  const dir = tmpDir('zoopa-duplicati-');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ jobs, ...opts }));
  const env = { ...process.env, DUPLICATI_STANDIN_DIR: dir };
  const calls = () =>
    fs
      .readFileSync(path.join(dir, 'calls.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
  return { dir, env, calls };
}

function engine(env: NodeJS.ProcessEnv, wait: 'auto' | 'flag' | 'poll' = 'auto', pollIntervalSec = 0.2) {
  return new DuplicatiEngine({ command: [STANDIN], wait, pollIntervalSec, env });
}

function ctx(lines: string[] = []): JobContext {
  return { stack: 'web', stackDir: '/nonexistent', log: (l) => lines.push(l) };
}

const job = (name: string, timeoutSec = 60) => ({ engine: 'duplicati' as const, job: name, timeoutSec });

describe('duplicati-server-util output parsing', () => {
  test('list-backups --detailed blocks', () => {
    const jobs = parseListBackups(
      'Connecting to http://localhost:8200/...\n1: Web site\n  nightly\n  Last backup: 2026-11-29 03:31:00\n  Last duration: 00:01:02.1234567\n\n2: db\n  Last error: 2026-11-29 03:40:00 - Disk full\n\n',
    );
    assert.deepEqual(jobs, [
      { id: '1', name: 'Web site', details: { 'Last backup': '2026-11-29 03:31:00', 'Last duration': '00:01:02.1234567' } },
      { id: '2', name: 'db', details: { 'Last error': '2026-11-29 03:40:00 - Disk full' } },
    ]);
  });

  test('status: active task, scheduled tasks, none', () => {
    assert.deepEqual(
      parseStatus('Connecting to http://localhost:8200/...\nServer state: Running\nActive task: [Task 4]: BackupId = 1\nScheduled tasks:\n  [Task 5]: BackupId = 2\n'),
      { serverState: 'Running', active: { task: '4', backupId: '1' }, scheduled: [{ task: '5', backupId: '2' }] },
    );
    assert.deepEqual(parseStatus('Server state: Paused\nActive task: None\nScheduler tasks: Empty\n'), { serverState: 'Paused', active: undefined, scheduled: [] });
    assert.throws(() => parseStatus('Connecting to http://localhost:8200/...\nFailed to connect\n'));
  });

  test('result judged from the job block, not from an exit status', () => {
    const before = { id: '1', name: 'w', details: { 'Last backup': 'a', 'Last duration': 'x' } };
    assert.equal(judgeResult(before, { ...before, details: { 'Last backup': 'b', 'Last duration': 'y' } }).ok, true);
    assert.equal(judgeResult(before, { ...before, details: { ...before.details, 'Last error': 'c - Disk full' } }).ok, false);
    const unchanged = judgeResult(before, before);
    assert.equal(unchanged.ok, false);
    assert.match((unchanged as { reason: string }).reason, /no new result/);
  });
});

describe('Duplicati engine against the stand-in', () => {
  test('with run --wait: succeeds, confirmed from the job result', async () => {
    const s = server([{ id: '1', name: 'Web', seconds: 1.2 }]);
    const lines: string[] = [];
    const r = await engine(s.env).run(job('web'), ctx(lines));
    assert.equal(r.engine, 'duplicati');
    assert.equal(r.job, '1: Web');
    assert.match(r.summary, /^last backup \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, took 00:00:01\.\d+, 1 versions$/);
    assert.ok(s.calls().some((c) => c[0] === 'run' && c.includes('--wait')), 'used run --wait');
    assert.ok(lines.some((l) => /Backup finished/.test(l)));
  });

  test('a failed backup is a failure even though run --wait exits 0', async () => {
    const s = server([{ id: '1', name: 'Web', seconds: 1, fail: 'Disk full' }]);
    await assert.rejects(engine(s.env).run(job('1'), ctx()), (e: unknown) => e instanceof BackupJobError && /failed: Duplicati reports: .* - Disk full/.test(e.message));
  });

  test('a version whose run --wait exits non-zero on failure is a failure too', async () => {
    const s = server([{ id: '1', name: 'Web', seconds: 1, fail: 'Disk full' }], { wait_failure_exit: 1 });
    await assert.rejects(engine(s.env).run(job('1'), ctx()), BackupJobError);
  });

  test('a job that finished before --wait first checked ("not queued or running", exit 2) is judged by its result', async () => {
    const ok = server([{ id: '1', name: 'Web', seconds: 0 }]);
    const lines: string[] = [];
    const r = await engine(ok.env).run(job('Web'), ctx(lines));
    assert.match(r.summary, /last backup/);
    assert.ok(lines.some((l) => /finished before/.test(l)));
    const bad = server([{ id: '1', name: 'Web', seconds: 0, fail: 'Access denied' }]);
    await assert.rejects(engine(bad.env).run(job('Web'), ctx()), /Access denied/);
  });

  test('without --wait (older versions): detected from run --help, polls status until Active task: None', async () => {
    const s = server([{ id: '3', name: 'Web', seconds: 1 }], { wait: false });
    const lines: string[] = [];
    const r = await engine(s.env).run(job('web'), ctx(lines));
    assert.match(r.summary, /last backup/);
    const calls = s.calls();
    assert.ok(calls.some((c) => c.join(' ') === 'run --help'));
    assert.ok(calls.some((c) => c.join(' ') === 'run 3'), 'plain run');
    assert.ok(calls.filter((c) => c[0] === 'status').length >= 1);
    assert.ok(!calls.some((c) => c.includes('--wait')));
  });

  test('polling: a job already finished at the first status check, and a failed one', async () => {
    const s = server([{ id: '1', name: 'Web', seconds: 0 }], { wait: false });
    const lines: string[] = [];
    await engine(s.env, 'poll').run(job('Web'), ctx(lines));
    assert.ok(lines.some((l) => /already finished at the first status check/.test(l)));
    const f = server([{ id: '1', name: 'Web', seconds: 0.5, fail: 'Quota exceeded' }], { wait: false });
    await assert.rejects(engine(f.env, 'poll').run(job('Web'), ctx()), /Quota exceeded/);
  });

  test('polling waits behind a queued job of another backup', async () => {
    const s = server(
      [
        { id: '1', name: 'Other', seconds: 1 },
        { id: '2', name: 'Web', seconds: 0.5 },
      ],
      { wait: false },
    );
    // Another job is running in Duplicati (started outside zoopa): ours is queued behind it.
    await run([STANDIN, 'run', 'Other'], { env: s.env });
    const lines: string[] = [];
    const r = await engine(s.env, 'poll').run(job('Web'), ctx(lines));
    assert.match(r.summary, /last backup/);
    assert.ok(!lines.some((l) => /already finished/.test(l)), 'it was still queued at the first check');
  });

  test('timeout: a job that does not finish in time fails, naming the timeout', async () => {
    const s = server([{ id: '1', name: 'Web', seconds: 3600 }], { wait: false });
    await assert.rejects(engine(s.env, 'poll').run(job('Web', 1), ctx()), (e: unknown) => e instanceof BackupJobError && /did not finish within 1s/.test(e.message));
    const w = server([{ id: '1', name: 'Web', seconds: 3600 }]);
    await assert.rejects(engine(w.env, 'flag').run(job('Web', 1), ctx()), /did not finish within 1s/);
  });

  test('unknown job: prepare fails naming the jobs Duplicati has', async () => {
    const s = server([
      { id: '1', name: 'Web' },
      { id: '2', name: 'db' },
    ]);
    await assert.rejects(
      engine(s.env).prepare(job('nope'), ctx()),
      (e: unknown) => e instanceof BackupJobError && /no job "nope"/.test(e.message) && /1: Web, 2: db/.test(e.hint ?? ''),
    );
  });

  test('the server refuses the run (exit 2): failure with its message', async () => {
    const s = server([{ id: '1', name: 'Web', run_error: 'Backup is disabled' }]);
    await assert.rejects(engine(s.env).run(job('Web'), ctx()), (e: unknown) => e instanceof BackupJobError && /status 2: Server error \(500\): Backup is disabled/.test(e.message));
  });

  test('server unreachable: failure naming it', async () => {
    const s = server([{ id: '1', name: 'Web' }], { down: true });
    await assert.rejects(engine(s.env).prepare(job('Web'), ctx()), /Failed to connect to server/);
  });
});
