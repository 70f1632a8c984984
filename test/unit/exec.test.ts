/**
 * src/exec.ts run(): process groups, timeouts, aborts, output caps, inherited stdio.
 * No timing assertions beyond "returns before the child's own end" (a deadline far
 * below the child's duration).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AbortError, CommandError, TimeoutError, ZoopaError } from '../../src/errors.js';
import { run } from '../../src/exec.js';

/** True while a process with this pid exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function gone(pid: number, deadlineMs = 20_000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('run', () => {
  it('a timeout kills the command and its children, and rejects with a TimeoutError carrying the argv', async () => {
    const argv = ['sh', '-c', 'sleep 8; echo done'];
    const t0 = Date.now();
    const e = await run(argv, { timeoutMs: 1000 }).then(
      () => assert.fail('resolved'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof TimeoutError, String(e));
    assert.deepEqual(e.argv, argv);
    assert.equal(e.code, 'ZOOPA_TIMEOUT');
    assert.ok(Date.now() - t0 < 7000, 'returned before the child would have ended on its own');
  });

  it('kills a child that ignores SIGTERM and outlives its parent (the whole process group)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-exec-'));
    const pidFile = path.join(dir, 'pid');
    const t0 = Date.now();
    const e = await run(['sh', '-c', `trap "" TERM; sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 1000 }).catch((x: unknown) => x);
    assert.ok(e instanceof TimeoutError, String(e));
    assert.ok(Date.now() - t0 < 20_000, 'returned long before the child (30 s) ends');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    assert.ok(await gone(pid), `the grandchild ${pid} was killed`);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an abort kills the group and rejects with AbortError (or the reason, when that is a ZoopaError)', async () => {
    const ac = new AbortController();
    const p = run(['sh', '-c', 'sleep 30 & wait'], { signal: ac.signal });
    setImmediate(() => ac.abort());
    const e = await p.catch((x: unknown) => x);
    assert.ok(e instanceof AbortError, String(e));
    assert.deepEqual(e.argv, ['sh', '-c', 'sleep 30 & wait']);
    const reason = new ZoopaError('ZOOPA_ABORTED', 'stopped by the test');
    const ac2 = new AbortController();
    const p2 = run(['sleep', '30'], { signal: ac2.signal });
    setImmediate(() => ac2.abort(reason));
    assert.equal(await p2.catch((x: unknown) => x), reason);
  });

  it('an already aborted signal rejects at once without starting the command', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-exec-'));
    const marker = path.join(dir, 'ran');
    const e = await run(['touch', marker], { signal: AbortSignal.abort() }).catch((x: unknown) => x);
    assert.ok(e instanceof AbortError, String(e));
    assert.equal(fs.existsSync(marker), false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('caps collected output, keeping the tail and saying what was cut', async () => {
    const r = await run(['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done'], { maxOutputBytes: 1000 });
    assert.match(r.stdout, /^\[… \d+ bytes of output cut …\]\n/);
    assert.match(r.stdout, /line-1999\n$/);
    assert.ok(r.stdout.length < 1100);
  });

  it('inherited stdout is not collected; stderr still is; a failure is a CommandError', async () => {
    const r = await run(['sh', '-c', 'echo to-the-terminal; echo oops >&2; exit 3'], { stdout: 'inherit', reject: false });
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim(), 'oops');
    assert.equal(r.status, 3);
    await assert.rejects(run(['sh', '-c', 'exit 4'], { stdout: 'inherit' }), (x: unknown) => x instanceof CommandError && x.status === 4);
  });
});
