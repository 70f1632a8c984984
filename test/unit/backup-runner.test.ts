/**
 * The backup journal and the run summary: pure logic over real files, no systemd, no
 * podman. What the runner does to real units, containers and on-demand sockets is
 * tested on the test bed: test/integration/backup.test.ts and
 * test/integration/backup-runner.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { backupJournalCheck } from '../../src/backup/doctor.js';
import { backupStateDir, journalDir, JournalStore, type JournalEntry } from '../../src/backup/journal.js';
import { repairFromJournal } from '../../src/backup/put-back.js';
import { summaryTable } from '../../src/backup/run.js';
import { bounded } from '../../src/backup/bounded.js';
import { TimeoutError } from '../../src/errors.js';
import { run } from '../../src/exec.js';
import { isolatedEnv, tmpDir } from '../helpers/cli.js';

function entry(stack: string): JournalEntry {
  return {
    version: 1,
    stack,
    stackDir: `/srv/stacks/${stack}`,
    unit: `${stack}-stack.service`,
    project: stack,
    pid: 4242,
    startedAt: '2026-11-29T03:30:00.000Z',
    restore: 'previous',
    startTimeoutSec: 5,
    prior: { unitActive: true, unitState: 'active', containers: [`${stack}_app_1`], socket: null },
    frozen: false,
    stopped: true,
    pendingUndo: [],
  };
}

describe('backup journal files', () => {
  test('the store lists journals and reports files that are not journals separately', () => {
    const dir = journalDir(tmpDir('zoopa-journal-'));
    const store = new JournalStore(dir);
    store.write(entry('web'));
    fs.writeFileSync(path.join(dir, 'db.json'), JSON.stringify({ version: 2, stack: 'db' }));
    fs.writeFileSync(path.join(dir, 'db.json.123.tmp'), '{"torn":');
    const { entries, unreadable } = store.list();
    assert.deepEqual(entries, [entry('web')]);
    assert.deepEqual(unreadable, [{ file: path.join(dir, 'db.json'), error: 'not a zoopa backup journal' }]);
    assert.deepEqual(store.read('web'), entry('web'));
    store.remove('web');
    assert.equal(store.read('web'), undefined);
  });

  test('an unreadable journal is reported by the repair and by the doctor check, not guessed at', async () => {
    const base = tmpDir('zoopa-journal-');
    const env = isolatedEnv(base);
    const stateDir = backupStateDir(env);
    fs.mkdirSync(journalDir(stateDir), { recursive: true });
    const file = path.join(journalDir(stateDir), 'web.json');
    fs.writeFileSync(file, '{"torn":');
    // Nothing to put back: the repair returns before it would ask systemd or podman anything.
    const rep = await repairFromJournal({ env, stateDir, log: () => {} });
    assert.deepEqual(rep.repaired, []);
    assert.deepEqual(rep.failed, []);
    assert.deepEqual(rep.unreadable.map((u) => u.file), [file]);
    const c = await backupJournalCheck({ env });
    assert.equal(c.verdict, 'fail');
    assert.match(c.detail, new RegExp(`unreadable ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(fs.readFileSync(file, 'utf8'), '{"torn":', 'left as it was');
  });
});

describe('backup summary table', () => {
  test('one row per stack: ok with its job summaries, a failure with its error, a skipped stack without a time', () => {
    const times = { startedAt: '2026-11-29T03:30:00.000Z', finishedAt: '2026-11-29T03:30:02.000Z', logFile: '/x.log' };
    const table = summaryTable({
      stacks: [
        { stack: 'web', result: 'ok', durationSec: 2, jobs: [{ engine: 'duplicati', job: 'web', summary: 'job web ok' }, { engine: 'restic', job: 'restic', summary: 'snapshot 1a2b3c4d' }], ...times },
        { stack: 'app', result: 'failed', durationSec: 0.25, jobs: [], error: 'job app failed: Disk full', ...times },
        { stack: 'db', result: 'skipped', error: 'skipped after SIGTERM' },
      ],
    });
    assert.equal(
      table,
      [
        'STACK  RESULT   TIME   DETAILS',
        'web    ok       2s     job web ok; snapshot 1a2b3c4d',
        'app    FAILED   250ms  job app failed: Disk full',
        'db     SKIPPED  -      skipped after SIGTERM',
        '',
      ].join('\n'),
    );
  });
});

describe('bounded calls', () => {
  test('a call that hangs past its deadline is killed and becomes a TimeoutError naming it, so the run can put the stack back', async () => {
    await assert.rejects(
      bounded((c) => run(['sh', '-c', 'sleep 600 & wait'], { timeoutMs: c.timeoutMs, reject: false }), 200, 'podman ps'),
      (e: unknown) => e instanceof TimeoutError && /^podman ps did not finish within 200ms$/.test(e.message) && e.cause instanceof TimeoutError,
    );
  });

  test('a call that ignores its deadline still settles a little after it', async () => {
    await assert.rejects(
      bounded(() => new Promise<never>(() => {}), 100, 'thawing web'),
      (e: unknown) => e instanceof TimeoutError && /^thawing web did not finish within /.test(e.message),
    );
  });

  test('a call that settles in time passes its value or its error through', async () => {
    assert.equal((await bounded((c) => run(['true'], c), 60_000, 'true')).status, 0);
    await assert.rejects(bounded((c) => run(['false'], c), 60_000, 'false'), /false exited with status 1/);
  });
});
