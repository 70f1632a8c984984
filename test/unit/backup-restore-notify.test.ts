/** The pure parts of restore (choosing the snapshot and paths, the plan) and of notifications (the requests, the config). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { globalBackupSchema } from '../../src/backup/config.js';
import type { ResticSnapshot } from '../../src/backup/engines/restic.js';
import { notifyRequest } from '../../src/backup/notify.js';
import { asideName, pickPaths, pickSnapshot, renderRestorePlan, restoreStamp, type RestorePlan } from '../../src/backup/restore.js';
import { InputError } from '../../src/errors.js';

const snaps: ResticSnapshot[] = [
  { id: 'aaaa1111' + '0'.repeat(56), short_id: 'aaaa1111', time: '2026-12-01T03:30:00Z', paths: ['/srv/web/data'] },
  { id: 'bbbb2222' + '0'.repeat(56), short_id: 'bbbb2222', time: '2026-12-02T03:30:00Z', paths: ['/srv/web/data', '/srv/web/db'] },
];

describe('restore: snapshot and paths', () => {
  test('latest is the newest; an id prefix picks one; an unknown or ambiguous id is an input error (exit 2) naming --snapshot', () => {
    assert.equal(pickSnapshot(snaps, 'web', 'latest').short_id, 'bbbb2222');
    assert.equal(pickSnapshot(snaps, 'web', 'aaaa11').short_id, 'aaaa1111');
    for (const bad of ['deadbeef', 'not-an-id']) {
      assert.throws(() => pickSnapshot(snaps, 'web', bad), (e: unknown) => e instanceof InputError && e.exitStatus === 2 && e.key === '--snapshot' && /no snapshot of web/.test(e.message));
    }
    assert.throws(() => pickSnapshot([], 'web', 'latest'), /web has no restic snapshot/);
  });

  test('--path: relative to the stack folder, inside the snapshot, or an input error', () => {
    const s = snaps[1]!;
    assert.deepEqual(pickPaths(s, '/srv/web', []), ['/srv/web/data', '/srv/web/db']);
    assert.deepEqual(pickPaths(s, '/srv/web', ['db', '/srv/web/data/sub']), ['/srv/web/db', '/srv/web/data/sub']);
    assert.throws(() => pickPaths(s, '/srv/web', ['database']), (e: unknown) => e instanceof InputError && e.key === '--path' && /not in snapshot bbbb2222/.test(e.message));
  });

  test('the plan names the set-aside folders and the state', () => {
    const stamp = restoreStamp(new Date('2026-12-02T04:05:06.789Z'));
    assert.equal(stamp, '2026-12-02T04-05-06Z');
    assert.equal(asideName('/srv/web/data', stamp), '/srv/web/data.zoopa-before-restore-2026-12-02T04-05-06Z');
    const plan: RestorePlan = {
      stack: 'web',
      snapshot: { id: snaps[1]!.id, shortId: 'bbbb2222', time: snaps[1]!.time, paths: snaps[1]!.paths },
      paths: ['/srv/web/data', '/srv/web/db'],
      to: null,
      replaces: [
        { path: '/srv/web/data', exists: true, asideTo: asideName('/srv/web/data', stamp) },
        { path: '/srv/web/db', exists: false, asideTo: asideName('/srv/web/db', stamp) },
      ],
      stamp,
    };
    const text = renderRestorePlan(plan, { unitActive: true, unitState: 'active', containers: ['web_app_1'], socket: null });
    assert.match(text, /^restore of web from snapshot bbbb2222 /);
    assert.match(text, /state: active; running: web_app_1/);
    assert.match(text, /\/srv\/web\/data: replaced; the current data is kept as \/srv\/web\/data\.zoopa-before-restore-2026-12-02T04-05-06Z/);
    assert.match(text, /\/srv\/web\/db: does not exist now; created/);
    assert.match(renderRestorePlan({ ...plan, to: '/tmp/look', replaces: [] }), /into \/tmp\/look \(the stack is not touched\)/);
  });
});

describe('notifications', () => {
  test('config: on defaults to [failure], timeout to 10s; unknown keys and non-http URLs are refused', () => {
    const cfg = globalBackupSchema.parse({ notify: [{ ntfy: 'https://ntfy.sh/topic' }, { webhook: 'http://127.0.0.1:9/x', on: ['failure', 'success'], timeout: '3s' }] });
    assert.deepEqual(cfg.notify.map((t) => [t.on, t.timeout]), [[['failure'], 10], [['failure', 'success'], 3]]);
    assert.equal(globalBackupSchema.safeParse({ notify: [{ ntfy: 'ftp://x/y' }] }).success, false);
    assert.equal(globalBackupSchema.safeParse({ notify: [{ ntfy: 'https://x/y', priority: 5 }] }).success, false);
  });

  test('the dry-run plan shows the targets with their secret paths redacted', async () => {
    const { renderPlan } = await import('../../src/backup/plan.js');
    const config = globalBackupSchema.parse({ notify: [{ ntfy: 'https://ntfy.sh/secret-topic' }, { webhook: 'https://h.example/x/token', on: ['failure', 'success'] }] });
    const text = renderPlan({ root: '/srv', logDir: '/srv/logs', stacks: [], engines: [], config } as unknown as Parameters<typeof renderPlan>[0]);
    assert.match(text, /^ {2}notify: ntfy https:\/\/ntfy\.sh\/\*\*\* \(on failure; timeout 10s\)$/m);
    assert.match(text, /^ {2}notify: webhook https:\/\/h\.example\/\*\*\* \(on failure, success; timeout 10s\)$/m);
    assert.doesNotMatch(text, /secret-topic|token/);
  });

  test('ntfy: a one-line body with title, priority and tags; webhook: JSON with every field, credentials redacted', () => {
    const [ntfy, hook] = globalBackupSchema.parse({ notify: [{ ntfy: 'https://ntfy.sh/topic' }, { webhook: 'https://h/x' }] }).notify;
    const e = { stack: 'web', result: 'failed' as const, durationSec: 12.5, error: 'restic: rest:https://u:pw@host/repo unreachable' };
    const n = notifyRequest(ntfy!, e);
    assert.deepEqual([n.headers['Title'], n.headers['Priority'], n.headers['Tags']], ['zoopa backup web: failed', 'high', 'warning']);
    assert.equal(n.body, 'backup of web failed: restic: rest:https://u:***@host/repo unreachable');
    const w = notifyRequest(hook!, { ...e, result: 'ok', error: undefined, snapshot: 'abcd1234', downtimeSec: 3 });
    assert.deepEqual(JSON.parse(w.body), { stack: 'web', result: 'ok', duration: 12.5, downtime: 3, snapshot: 'abcd1234', error: null });
  });
});
