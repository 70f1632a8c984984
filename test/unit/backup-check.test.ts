/**
 * `zoopa backup snapshots` and `zoopa backup check` through the real CLI, on the
 * real restic with a real local repository: snapshots newest first with size and
 * files; check passes on a healthy repository, fails naming a stack whose latest
 * snapshot is older than its max_age (or that has none), and fails when a pack
 * file of the repository is corrupted (read with --read-data-subset 100%); bad
 * arguments are input errors (exit 2). Snapshot times are set with restic's own
 * `backup --time`, so nothing here waits for time to pass.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { run } from '../../src/exec.js';
import { which } from '../../src/unitfile/tools.js';
import { isolatedEnv, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n    volumes:\n      - ./data:/data\n';

/** restic's --time format (local time), `days` ago. */
function daysAgo(days: number): string {
  const d = new Date(Date.now() - days * 86400_000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

interface CheckJson {
  ok: boolean;
  repository: { ok: boolean; detail: string; subset: string | null };
  stacks: Array<{ stack: string; ok: boolean; detail: string; maxAgeSec: number; latest: { id: string } | null }>;
}

describe('zoopa backup snapshots and check (real restic)', () => {
  let root: string;
  let repo: string;
  let env: NodeJS.ProcessEnv;
  const ids: Record<string, string[]> = {};

  const restic = async (args: string[]) => {
    const r = await run(['restic', '-r', repo, '--password-file', path.join(root, 'pw'), ...args], { env, reject: false });
    assert.equal(r.status, 0, r.stderr);
    return r;
  };
  const snap = async (stack: string, days: number) => {
    const r = await restic(['backup', '--json', '--tag', 'zoopa', '--tag', `stack:${stack}`, '--time', daysAgo(days), path.join(root, stack, 'data')]);
    const summary = r.stdout.split('\n').filter((l) => l.includes('"summary"')).pop()!;
    (ids[stack] ??= []).push((JSON.parse(summary) as { snapshot_id: string }).snapshot_id.slice(0, 8));
  };
  const cli = (args: string[]) => zoopa(['--root', root, 'backup', ...args], { env });

  before(async () => {
    assert.ok(which('restic'), 'restic must be installed (apt-get install restic); this test does not skip');
    const base = tmpDir('zoopa-backup-check-');
    root = path.join(base, 'stacks');
    repo = path.join(base, 'repo');
    env = { ...isolatedEnv(base), XDG_CACHE_HOME: path.join(base, 'cache') };
    writeFiles(root, {
      'zoopa.yaml': [
        'backup:',
        `  restic: { repository: ${repo}, password_file: pw, max_age: 1d }`,
        'stacks:',
        '  web: { backup: { jobs: [{ restic: {} }] } }',
        '  db: { backup: { jobs: [{ restic: {} }], max_age: 2d } }',
        '  new: { backup: { jobs: [{ restic: {} }] } }',
        '',
      ].join('\n'),
      pw: 'correct horse battery staple\n',
      'web/compose.yaml': COMPOSE,
      'web/data/index.html': 'hello\n',
      'web/data/sub/notes.txt': 'notes\n',
      'db/compose.yaml': COMPOSE,
      'db/data/db.sqlite': 'x'.repeat(5000),
      'new/compose.yaml': COMPOSE,
      'new/data/f': 'f\n',
    });
    fs.chmodSync(path.join(root, 'pw'), 0o600);
    await restic(['init']);
    await snap('web', 10); // an old one first
    await snap('web', 0.01); // then a recent one (about 15 minutes ago)
    await snap('db', 3); // db: only one, 3 days old
  });

  test('snapshots: newest first, with id, time, paths, tags, size and files; text has one row each', async () => {
    const r = await cli(['snapshots', 'web', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const data = JSON.parse(r.stdout) as { stack: string; duplicati: unknown[]; restic: Array<{ shortId: string; time: string; paths: string[]; tags: string[]; size: number; files: number }> };
    assert.equal(data.stack, 'web');
    assert.deepEqual(data.duplicati, [], 'no Duplicati job');
    const rows = data.restic;
    assert.deepEqual(rows.map((x) => x.shortId), [...ids.web!].reverse(), 'newest first');
    assert.ok(Date.parse(rows[0]!.time) > Date.parse(rows[1]!.time));
    assert.deepEqual(rows[0]!.paths, [path.join(root, 'web', 'data')]);
    assert.deepEqual(rows[0]!.tags, ['zoopa', 'stack:web']);
    assert.equal(rows[0]!.size, 'hello\n'.length + 'notes\n'.length);
    assert.ok(rows[0]!.files >= 2, String(rows[0]!.files));
    const text = await cli(['snapshots', 'web']);
    assert.match(text.stdout, /^ID {8}TIME +SIZE +FILES +TAGS +PATHS\n/);
    assert.equal(text.stdout.trim().split('\n').length, 3);
    const none = await cli(['snapshots', 'new']);
    assert.equal(none.status, 0);
    assert.equal(none.stdout, 'no restic snapshot of new (tags zoopa,stack:new)\n');
  });

  test('check: the repository is fine, web is recent enough; db (older than its max_age) and new (no snapshot) fail by name; exit 1', async () => {
    const r = await cli(['check', '--json']);
    assert.equal(r.status, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as CheckJson;
    assert.equal(rep.repository.ok, true, rep.repository.detail);
    const by = Object.fromEntries(rep.stacks.map((s) => [s.stack, s]));
    assert.deepEqual(Object.keys(by).sort(), ['db', 'new', 'web']);
    assert.equal(by.web!.ok, true, by.web!.detail);
    assert.equal(by.web!.maxAgeSec, 86400);
    assert.equal(by.web!.latest?.id, ids.web![1]);
    assert.equal(by.db!.ok, false);
    assert.equal(by.db!.maxAgeSec, 2 * 86400, 'the stack\'s own max_age');
    assert.match(by.db!.detail, new RegExp(`^latest snapshot ${ids.db![0]} is (3d|2d 23h) old, older than max_age 2d$`));
    assert.equal(by.new!.ok, false);
    assert.match(by.new!.detail, /^no snapshot at all/);

    const text = await cli(['check']);
    assert.equal(text.status, 1);
    assert.match(text.stdout, /^repository {2}ok {6}restic check: no errors were found/m);
    assert.match(text.stdout, /^db +FAILED {2}latest snapshot \w+ is .* older than max_age 2d$/m);

    const web = await cli(['check', 'web']);
    assert.equal(web.status, 0, web.stdout + web.stderr);
    assert.match(web.stdout, /^web +ok +latest snapshot \w+ is .* old \(max_age 1d\)$/m);
  });

  test('bad arguments are input errors (exit 2) before restic runs', async () => {
    const bad = await cli(['check', '--read-data-subset', 'lots']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--read-data-subset: "lots" is not a share of the data/);
    assert.match(bad.stderr, /hint: .*10%/);
    assert.equal((await cli(['check', '--read-data-subset', '150%'])).status, 2);
    assert.equal((await cli(['check', 'nosuch'])).status, 2);
    const two = await cli(['snapshots']);
    assert.equal(two.status, 2);
    assert.match(two.stderr, /backup snapshots takes one stack/);
    assert.equal((await cli(['status', '--read-data-subset', '10%'])).status, 2);
  });

  // Last: it breaks the repository.
  test('check fails when a pack file is corrupted (found by reading the data)', async () => {
    const packs: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else packs.push(path.join(d, e.name));
      }
    };
    walk(path.join(repo, 'data'));
    assert.ok(packs.length > 0);
    for (const p of packs) {
      // Same size, different bytes in the middle: only reading the data can tell.
      fs.chmodSync(p, 0o600);
      const buf = fs.readFileSync(p);
      for (let i = Math.floor(buf.length / 3); i < Math.floor(buf.length / 3) + 16 && i < buf.length; i++) buf[i] = buf[i]! ^ 0xff;
      fs.writeFileSync(p, buf);
    }
    const r = await cli(['check', 'web', '--read-data-subset', '100%', '--json']);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const rep = JSON.parse(r.stdout) as CheckJson;
    assert.equal(rep.repository.ok, false);
    assert.equal(rep.repository.subset, '100%');
    assert.match(rep.repository.detail, /^restic check exited with status 1: /);
    const text = await cli(['check', 'web', '--read-data-subset', '100%']);
    assert.match(text.stdout, /^repository {2}FAILED {2}restic check --read-data-subset 100%: restic check exited with status 1/m);
  });
});
