/**
 * The backup lock: a second run is refused at once, naming the holder's pid and
 * start time; the lock of a process that has exited is taken over; a lock is
 * released only by its holder. Holders are real processes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { acquireLock, BackupLockedError, holderAlive, procStartTime, readLock } from '../../src/backup/lock.js';
import { isolatedEnv, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

/** A real process that holds `file` (written in lock format) until killed. */
async function otherHolder(file: string): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise<void>((resolve) => child.once('spawn', () => resolve()));
  const pid = child.pid!;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ pid, procStart: procStartTime(pid), startedAt: '2026-11-29T03:30:00.000Z', argv: ['backup', 'web'] }) + '\n');
  return {
    pid,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

describe('backup lock', () => {
  test('acquire writes pid and start time; release removes it', () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'backup', 'lock');
    const lock = acquireLock(file, { argv: ['backup', 'web'] });
    const info = readLock(file)!;
    assert.equal(info.pid, process.pid);
    assert.deepEqual(info.argv, ['backup', 'web']);
    assert.ok(Date.parse(info.startedAt) > 0);
    lock.release();
    assert.equal(fs.existsSync(file), false);
  });

  test('a second acquire while the holder lives is refused, naming pid and start time', async () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'lock');
    const other = await otherHolder(file);
    try {
      assert.throws(
        () => acquireLock(file),
        (e: unknown) =>
          e instanceof BackupLockedError &&
          e.holder.pid === other.pid &&
          e.message.includes(`pid ${other.pid}`) &&
          e.message.includes('started 2026-11-29T03:30:00.000Z'),
      );
      assert.equal(readLock(file)!.pid, other.pid, 'the holder keeps its lock');
    } finally {
      await other.stop();
    }
  });

  test('the lock of a process that has exited is taken over', async () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'lock');
    const other = await otherHolder(file);
    await other.stop();
    assert.equal(holderAlive(readLock(file)!), false);
    const lock = acquireLock(file);
    assert.equal(lock.tookOverFrom?.pid, other.pid);
    assert.equal(readLock(file)!.pid, process.pid);
    lock.release();
  });

  test('a reused pid (different process start time) does not count as the holder', () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'lock');
    fs.writeFileSync(file, JSON.stringify({ pid: process.pid, procStart: '1', startedAt: 'x', argv: [] }));
    const lock = acquireLock(file);
    assert.ok(lock.tookOverFrom);
    lock.release();
  });

  test('garbage in the lock file is taken over', () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'lock');
    fs.writeFileSync(file, 'not json');
    assert.deepEqual(readLock(file), { pid: 0, startedAt: 'unknown', argv: [] }, 'read as a holder that does not exist');
    const lock = acquireLock(file, { argv: ['backup', 'web'] });
    assert.deepEqual(lock.tookOverFrom, { pid: 0, startedAt: 'unknown', argv: [] }, 'taken over from nobody');
    const now = readLock(file)!;
    assert.equal(now.pid, process.pid, 'the file now names us');
    assert.deepEqual(now.argv, ['backup', 'web']);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['lock'], 'no stale or temporary file left beside it');
    lock.release();
    assert.equal(fs.existsSync(file), false);
  });

  test('release does not remove a lock someone else holds now', () => {
    const file = path.join(tmpDir('zoopa-lock-'), 'lock');
    const lock = acquireLock(file);
    fs.writeFileSync(file, JSON.stringify({ pid: 1, startedAt: 'other', argv: [] }));
    lock.release();
    assert.equal(readLock(file)!.pid, 1);
  });

  test('zoopa backup refuses a concurrent run at once: exit 1, holder named, nothing stopped', async () => {
    const base = tmpDir('zoopa-lock-cli-');
    const env = isolatedEnv(base);
    const root = path.join(base, 'stacks');
    writeFiles(root, {
      'zoopa.yaml': 'stacks:\n  web:\n    backup:\n      jobs: [web]\n',
      'web/compose.yaml': 'services:\n  app:\n    image: x\n',
    });
    const file = path.join(env.XDG_STATE_HOME!, 'zoopa', 'backup', 'lock');
    const other = await otherHolder(file);
    try {
      const r = await zoopa(['--root', root, 'backup', 'web'], { env });
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`another backup is running: pid ${other.pid}, started 2026-11-29T03:30:00.000Z`));
      assert.equal(fs.existsSync(path.join(env.XDG_STATE_HOME!, 'zoopa', 'backup', 'journal')), false, 'no journal: nothing was touched');
      const st = await zoopa(['--root', root, 'backup', 'status'], { env });
      assert.match(st.stdout, new RegExp(`a backup is running: pid ${other.pid}`));
    } finally {
      await other.stop();
    }
  });
});
