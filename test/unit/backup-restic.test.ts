/**
 * The restic engine against the real restic (Debian's) and a real local
 * repository in a temp folder: a backup tagged zoopa + stack:<name>, its JSON
 * summary read, a restore equal to the original, forget --keep-last, an
 * unreachable repository and an unreadable file as failures.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { BackupJobError, type JobContext } from '../../src/backup/engine.js';
import { forgetArgs, parseResticSummary, ResticEngine } from '../../src/backup/engines/restic.js';
import { run } from '../../src/exec.js';
import { which } from '../../src/unitfile/tools.js';
import { tmpDir } from '../helpers/cli.js';
import { tree } from '../helpers/tree.js';

function ctx(stack = 'web', lines: string[] = []): JobContext {
  return { stack, stackDir: '/', log: (l) => lines.push(l) };
}

describe('restic engine (real restic, real repository)', () => {
  const env = { ...process.env, RESTIC_PASSWORD: 'correct horse battery staple', RESTIC_CACHE_DIR: '' };
  let base: string;
  let repo: string;
  let data: string;

  before(async () => {
    assert.ok(which('restic'), 'restic must be installed (apt-get install restic); this test does not skip');
    base = tmpDir('zoopa-restic-');
    repo = path.join(base, 'repo');
    env.RESTIC_CACHE_DIR = path.join(base, 'cache');
    await run(['restic', '-r', repo, 'init'], { env });
    data = path.join(base, 'stacks', 'web', 'data');
    fs.mkdirSync(path.join(data, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(data, 'index.html'), '<h1>hello</h1>\n');
    fs.writeFileSync(path.join(data, 'sub', 'db.sqlite'), Buffer.from([0, 1, 2, 3, 255, 254, 10, 13]));
    fs.writeFileSync(path.join(data, 'sub', 'deeper', 'secret'), 'x'.repeat(100_000));
    fs.chmodSync(path.join(data, 'sub', 'deeper', 'secret'), 0o600);
  });

  test('backup: tagged, summary from the JSON message, and a restore equals the original', async () => {
    const engine = new ResticEngine({ command: 'restic', repository: repo, env });
    const job = { engine: 'restic' as const, paths: [data], tags: ['nightly'], exclude: [], timeoutSec: 300, pathsFrom: 'test' };
    await engine.prepare(job, ctx());
    const lines: string[] = [];
    const r = await engine.run(job, ctx('web', lines));
    assert.equal(r.engine, 'restic');
    assert.equal(r.data?.total_files_processed, 3);
    assert.equal(r.data?.files_new, 3);
    assert.match(r.summary, /^snapshot [0-9a-f]{8}: 3 files \(3 new, 0 changed\), [\d.]+ (B|KiB) added$/);

    const snaps = JSON.parse((await run(['restic', '-r', repo, 'snapshots', '--json', '--tag', 'zoopa,stack:web'], { env })).stdout) as Array<{ tags: string[]; paths: string[] }>;
    assert.equal(snaps.length, 1);
    assert.deepEqual(snaps[0]!.tags, ['zoopa', 'stack:web', 'nightly']);

    const target = path.join(base, 'restored');
    await engine.restoreLatest('web', target);
    assert.deepEqual(tree(path.join(target, data)), tree(data));

    // A second run of unchanged data: nothing new, still a success.
    const again = await engine.run(job, ctx());
    assert.equal(again.data?.files_unmodified, 3);
  });

  test('forget --keep-last keeps only that stack\'s newest snapshots', async () => {
    const other = path.join(base, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'f'), 'x');
    const plain = new ResticEngine({ command: 'restic', repository: repo, env });
    await plain.run({ engine: 'restic', paths: [other], tags: [], exclude: [], timeoutSec: 300, pathsFrom: 'test' }, ctx('db'));
    const engine = new ResticEngine({ command: 'restic', repository: repo, env, forget: { keep_last: 1, prune: false } });
    const job = { engine: 'restic' as const, paths: [data], tags: [], exclude: [], timeoutSec: 300, pathsFrom: 'test' };
    await engine.run(job, ctx('web'));
    const count = async (tag: string) => (JSON.parse((await run(['restic', '-r', repo, 'snapshots', '--json', '--tag', tag], { env })).stdout) as unknown[]).length;
    assert.equal(await count('zoopa,stack:web'), 1);
    assert.equal(await count('zoopa,stack:db'), 1, 'other stacks untouched');
  });

  test('a repository that cannot be opened fails prepare, before the stack is touched', async () => {
    const engine = new ResticEngine({ command: 'restic', repository: path.join(base, 'missing'), env });
    await assert.rejects(
      engine.prepare({ engine: 'restic', paths: [data], tags: [], exclude: [], timeoutSec: 60, pathsFrom: 'test' }, ctx()),
      (e: unknown) => e instanceof BackupJobError && /cannot be opened/.test(e.message),
    );
    const wrongPw = new ResticEngine({ command: 'restic', repository: repo, env: { ...env, RESTIC_PASSWORD: 'wrong' } });
    await assert.rejects(wrongPw.prepare({ engine: 'restic', paths: [data], tags: [], exclude: [], timeoutSec: 60, pathsFrom: 'test' }, ctx()), BackupJobError);
  });

  test('init: true creates a missing repository on first use', async () => {
    const fresh = path.join(base, 'fresh');
    const engine = new ResticEngine({ command: 'restic', repository: fresh, env, init: true });
    await engine.prepare({ engine: 'restic', paths: [data], tags: [], exclude: [], timeoutSec: 60, pathsFrom: 'test' }, ctx());
    assert.ok(fs.existsSync(path.join(fresh, 'config')));
  });

  test('a path that vanished is a failure (restic exits non-zero), not a silent partial backup', async () => {
    const engine = new ResticEngine({ command: 'restic', repository: repo, env });
    await assert.rejects(
      engine.run({ engine: 'restic', paths: [path.join(base, 'gone')], tags: [], exclude: [], timeoutSec: 60, pathsFrom: 'test' }, ctx()),
      BackupJobError,
    );
  });

  test('summary parsing and forget flags', () => {
    const s = parseResticSummary('{"message_type":"status","percent_done":0.5}\nnot json\n{"message_type":"summary","files_new":1,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_added":10,"total_files_processed":1,"total_bytes_processed":3,"total_duration":0.1,"snapshot_id":"abcd1234"}\n');
    assert.equal(s?.snapshot_id, 'abcd1234');
    assert.equal(parseResticSummary('{"message_type":"status"}'), undefined);
    assert.deepEqual(forgetArgs({ keep_daily: 7, keep_weekly: 4, prune: true }), ['--keep-daily', '7', '--keep-weekly', '4', '--prune']);
    assert.deepEqual(forgetArgs({ prune: true }), []);
  });
});
